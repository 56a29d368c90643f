"""Modified-backward methods: guided backpropagation and DeepLIFT (Rescale rule)."""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import tensorflow as tf
from tensorflow import keras

from ._core import (
    DEFAULT_BATCH_SIZE,
    baseline_images,
    _batched,
    _cache,
    _check_batch_size,
    _make_grad_fn,
    _prepare,
    _specs,
)

RESCALE_EPS = 1e-6  # |z - z_ref| below this: DeepLIFT falls back to the local gradient


_RELU_FAMILY = (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU, keras.layers.ThresholdedReLU)


def _is_nonlinear(act) -> bool:
    """True for elementwise nonlinear activations (not None/linear/softmax)."""
    if act is None or act is keras.activations.linear:
        return False
    name = getattr(act, "__name__", type(act).__name__)
    return name not in ("linear", "softmax", "log_softmax", "Softmax")


def _override(act: Callable, rule: str) -> Callable:
    """``act`` with its gradient replaced according to ``rule`` ("guided" or "rescale").

    The local derivative ``f'(z)`` is taken by autodiff of ``act`` itself, so it is the
    normal derivative for ReLU and the straight-through estimator for larq sign quantizers.
    """

    @tf.custom_gradient
    def wrapped(z):
        with tf.GradientTape() as tape:
            tape.watch(z)
            y = act(z)
        local = tape.gradient(y, z, unconnected_gradients=tf.UnconnectedGradients.ZERO)

        def grad(dy):
            if rule == "guided":
                return tf.nn.relu(dy) * local
            # DeepLIFT rescale: rows [0, n) are inputs, rows [n, 2n) their references
            n = tf.shape(z)[0] // 2
            dz = z[:n] - z[n:]
            small = tf.abs(dz) < tf.cast(RESCALE_EPS, dz.dtype)
            ratio = (y[:n] - y[n:]) / tf.where(small, tf.ones_like(dz), dz)
            mult = tf.where(small, local[:n], ratio)
            return dy * tf.concat([mult, mult], axis=0)

        return y, grad

    return wrapped


def _maxpool_rescale(pool: Callable) -> Callable:
    """Max pooling with DeepLIFT's exact (Captum's) multiplier, for rows ``[x; x']``.

    With ``y = pool(z)``, ``top = max(y, y')`` elementwise, the output difference splits as
    ``(top - y') + (y - top)``; the first part is routed back to the input's argmax, the
    second to the reference's argmax (the ordinary unpooling of each row), both into the
    input rows, and divided by ``z - z'`` (the local gradient where ``|z - z'| < 1e-6``).
    Then ``sum(m * (z - z')) = sum(dy * (y - y'))`` per window: summation-to-delta holds.
    """

    @tf.custom_gradient
    def wrapped(z):
        y = pool(z)

        def grad(dy):
            n = tf.shape(z)[0] // 2
            top = tf.maximum(y[:n], y[n:])
            split = tf.concat([dy[:n] * (top - y[n:]), dy[:n] * (y[:n] - top)], axis=0)
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(z)
                y2 = pool(z)
            routed = tape.gradient(y2, z, output_gradients=split)
            local = tape.gradient(y2, z, output_gradients=dy)
            dz = z[:n] - z[n:]
            small = tf.abs(dz) < tf.cast(RESCALE_EPS, dz.dtype)
            mult = tf.where(small, local[:n], (routed[:n] + routed[n:]) / tf.where(small, tf.ones_like(dz), dz))
            return tf.concat([mult, local[n:]], axis=0)

        return y, grad

    return wrapped


def _patch_layer(layer, rule: str):
    """Return ``layer`` (already a fresh copy) with its nonlinearities overridden."""
    if isinstance(layer, keras.layers.PReLU):
        raise NotImplementedError(
            f"layer {layer.name!r}: PReLU (a nonlinearity with weights) is not supported by "
            "gradient-override methods")
    if isinstance(layer, _RELU_FAMILY):
        return keras.layers.Activation(_override(layer.call, rule), name=layer.name)
    if rule == "rescale_maxpool" and isinstance(layer, (keras.layers.MaxPooling1D,
                                                        keras.layers.MaxPooling2D,
                                                        keras.layers.MaxPooling3D)):
        return keras.layers.Activation(_maxpool_rescale(layer.call), name=layer.name)
    if _is_nonlinear(getattr(layer, "activation", None)):
        layer.activation = _override(layer.activation, rule)
    quantizer = getattr(layer, "input_quantizer", None)
    if quantizer is not None:
        layer.input_quantizer = _override(quantizer, rule)
    return layer


def _modified_copy(model, rule: str):
    """A copy of ``model`` (weights not yet copied) with overridden nonlinearity gradients."""

    def clone_function(layer):
        if isinstance(layer, keras.Model):
            return _modified_copy(layer, rule)
        return _patch_layer(layer.__class__.from_config(layer.get_config()), rule)

    with warnings.catch_warnings():  # e.g. larq-zoo's function initializers on re-config
        warnings.filterwarnings("ignore", message=".*initializers.serialize", category=UserWarning)
        copy = keras.models.clone_model(model, clone_function=clone_function)
    copy._name = f"{model.name}_{rule}"
    return copy


def _synced_copy(model, rule: str):
    """Cached modified copy of ``model`` with weights refreshed from ``model``."""
    cache = _cache(model)
    if rule not in cache:
        cache[rule] = _modified_copy(model, rule)
    copy = cache[rule]
    copy.set_weights(model.get_weights())
    return copy


def guided_backprop(model, images, targets, *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Guided backpropagation on a copy of ``model`` (the caller's model is never modified).

    Every elementwise nonlinearity ``y = f(z)`` passes ``relu(dy) * f'(z)`` backwards:

    * ReLU (``Activation("relu")``, ``activation="relu"`` inside Conv/Dense layers,
      ``keras.layers.ReLU``): ``dy * (z > 0) * (dy > 0)`` (Springenberg et al.);
    * sign with a straight-through estimator (larq ``SteSign(clip_value=c)``, standalone
      activation or a QuantConv ``input_quantizer`` as in larq-zoo's QuickNet): the guided
      STE ``dy * (|z| <= c) * (dy > 0)``; our convention, the direct analogue of the ReLU
      rule with the STE as local derivative (c = 1 for the twins, 1.25 for QuickNet);
    * other elementwise activations: ``relu(dy) * f'(z)``.

    Kernel quantizers (binary weights) keep their forward value; they do not enter the input
    gradient. Max pooling, BN (inference), linear layers keep their ordinary gradient.
    Nonlinearities applied as raw TF ops in a functional model (``tf.nn.relu(x)``, a
    ``TFOpLambda`` layer) are not recognized and keep their ordinary gradient.

    Returns:
        float32 array shaped like ``images`` (signed: negative values can still arise from
        negative weights below the last nonlinearity, e.g. in the first conv layer).

    References:
        Springenberg et al. 2014, arXiv:1412.6806.
    """
    x, t = _prepare(model, images, targets)
    batch_size = _check_batch_size(batch_size)
    copy = _synced_copy(model, "guided")
    cache = _cache(model)
    if "guided_grad" not in cache:
        cache["guided_grad"] = _make_grad_fn(copy, model)
    grads, _ = _batched(cache["guided_grad"], batch_size, x, t)
    return grads.astype(np.float32)


DEEPLIFT_MAXPOOL_RULES = ("gradient", "rescale")


def deeplift_rescale(model, images, targets, *, baseline="black", blur_sigma: float | None = None,
                     batch_size: int = DEFAULT_BATCH_SIZE, maxpool: str = "gradient") -> np.ndarray:
    """DeepLIFT with the rescale rule, via gradient overrides on a copy of ``model``.

    Each input and its reference (baseline) go through the copy in the same batch (rows
    ``[x; x']``). Every elementwise nonlinearity ``y = f(z)`` (ReLU, sign/STE activations,
    activations inside Conv/Dense layers, larq ``input_quantizer``s) backpropagates the
    multiplier ``m = (f(z) - f(z')) / (z - z')``; where ``|z - z'| < 1e-6`` it falls back to
    the local derivative ``f'(z)`` (the normal gradient; the STE for sign). For sign,
    ``m = (sign(z) - sign(z')) / (z - z')`` is 0 or ``2 / |z - z'|``: a true finite
    difference, no straight-through estimator involved. Linear layers, batch normalization
    (inference mode, an affine map), average pooling and additions keep their gradient, so
    the chain rule of multipliers makes ``attr = (x - x') * m`` satisfy summation-to-delta,
    ``sum(attr) = f(x)[t] - f(x')[t]``, exactly (to rounding) on nets built from these.
    Max pooling keeps its ordinary gradient (the gradient rule), which breaks exactness
    when input and reference select different maxima (e.g. the VGG twins, QuickNet), unless
    ``maxpool="rescale"``.

    Args:
        baseline: reference input: ``"black"`` (zeros), ``"blur"`` (see
            :func:`integrated_gradients`) or an array broadcastable to ``images``.
        maxpool: rule at ``MaxPooling`` layers: ``"gradient"`` (default; the ordinary
            gradient, the original DeepLIFT code's default) or ``"rescale"`` (Captum's rule:
            the output difference ``y - y'`` is routed to the input's and the reference's
            maxima and divided by ``z - z'``, so summation-to-delta holds through max pooling).

    Returns:
        float32 attributions shaped like ``images``.

    References:
        Shrikumar, Greenside & Kundaje 2017, arXiv:1704.02685; Ancona et al. 2018,
        arXiv:1711.06104 (the gradient-override formulation).
    """
    if maxpool not in DEEPLIFT_MAXPOOL_RULES:
        raise ValueError(f"maxpool must be one of {DEEPLIFT_MAXPOOL_RULES}, got {maxpool!r}")
    x, t = _prepare(model, images, targets)
    batch_size = _check_batch_size(batch_size)
    base = baseline_images(x, baseline, blur_sigma)
    rule = "rescale" if maxpool == "gradient" else "rescale_maxpool"
    copy = _synced_copy(model, rule)
    cache = _cache(model)
    if f"{rule}_grad" not in cache:
        x_spec, t_spec = _specs(model)

        @tf.function(input_signature=[x_spec, x_spec, t_spec])
        def fn(xb, bb, tb):
            n = tf.shape(xb)[0]
            both = tf.concat([xb, bb], axis=0)
            with tf.GradientTape() as tape:
                tape.watch(both)
                logits = copy(both, training=False)
                score = tf.gather(logits[:n], tb, axis=1, batch_dims=1)
            g = tape.gradient(score, both, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return g[:n]

        cache[f"{rule}_grad"] = fn
    mult = _batched(cache[f"{rule}_grad"], batch_size, x, base, t)
    return ((x - base) * mult).astype(np.float32)
