"""Class activation maps: Grad-CAM, Grad-CAM++, Score-CAM and Guided Grad-CAM."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow import keras

from .. import postprocess
from ._core import (
    DEFAULT_BATCH_SIZE,
    _batched,
    _cache,
    _check_batch_size,
    _get_layer,
    _logits_fn,
    _model_dtype,
    _prepare,
    _specs,
)
from .rules import guided_backprop


def _cam_fn(model, layer_name: str):
    cache = _cache(model)
    key = ("cam", layer_name)
    if key not in cache:
        sub = keras.Model(model.inputs, [model.get_layer(layer_name).output, model.outputs[0]])
        x_spec, t_spec = _specs(model)

        @tf.function(input_signature=[x_spec, t_spec])
        def fn(x, t):
            with tf.GradientTape() as tape:
                tape.watch(x)
                acts, logits = sub(x, training=False)
                score = tf.gather(logits, t, axis=1, batch_dims=1)
            grads = tape.gradient(score, acts, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return acts, grads

        cache[key] = fn
    return cache[key]


def _acts_and_weights(model, images, targets, layer, batch_size):
    x, t = _prepare(model, images, targets)
    lay = _get_layer(model, layer)
    acts, grads = _batched(_cam_fn(model, lay.name), _check_batch_size(batch_size), x, t)
    return acts.astype(np.float64), grads.astype(np.float64).mean(axis=(1, 2))


def gradcam_weights(model, images, targets, layer: str | None = None, *,
                    batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Grad-CAM channel weights ``alpha_k = mean_{i,j} d logit[t] / d A_ij^k``.

    Returns:
        float32 array (N, K), K = channels of ``layer``. Their sign distribution shows how
        much of the map is positive vs negative evidence.
    """
    _, alpha = _acts_and_weights(model, images, targets, layer, batch_size)
    return alpha.astype(np.float32)


def gradcam(model, images, targets, *, layer: str | None = None, relu: bool = True,
            invert: bool = False, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Grad-CAM, written out: ``L = sum_k alpha_k A^k`` with ``alpha_k = mean_ij dlogit/dA_ij^k``.

    Args:
        layer: name of a 4-D layer (required; e.g. ``twins.gradcam_layer(family)``).
        relu: apply ReLU to the map (default True, as in the paper).
        invert: negate the weighted sum *before* the ReLU: ``L = ReLU(-sum_k alpha_k A^k)``
            (``-sum_k alpha_k A^k`` with ``relu=False``). This keeps the regions that are
            evidence *against* the target, i.e. the "inverted" Grad-CAM; it equals Grad-CAM
            with negated weights ``-alpha_k`` (Selvaraju et al.'s counterfactual explanation)
            and is not the same as ``-gradcam(relu=True)``.

    Returns:
        float32 array (N, h, w) at the layer's resolution (no upsampling, no normalization).

    References:
        Selvaraju et al. 2019, arXiv:1610.02391.
    """
    acts, alpha = _acts_and_weights(model, images, targets, layer, batch_size)
    cam = np.einsum("nhwk,nk->nhw", acts, alpha)
    if invert:
        cam = -cam
    if relu:
        cam = np.maximum(cam, 0.0)
    return cam.astype(np.float32)


def _tkv_inputs(model, images, targets, layer, batch_size):
    x, t = _prepare(model, images, targets)
    lay = _get_layer(model, layer)
    return x, t, lay.name, _check_batch_size(batch_size)


def _zero_valued_score(targets: np.ndarray):
    """tf-keras-vis score: target logit minus its own stopped value (value 0, same gradient)."""
    idx = tf.constant(targets, dtype=tf.int32)

    def score(output):
        logit = tf.gather(output, idx, axis=1, batch_dims=1)
        return logit - tf.stop_gradient(logit)

    return score


def gradcam_plus_plus(model, images, targets, *, layer: str | None = None, relu: bool = True,
                      batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Grad-CAM++ by tf-keras-vis 0.8.7 (``GradcamPlusPlus``).

    Called with ``penultimate_layer=layer``, ``seek_penultimate_conv_layer=False``,
    ``expand_cam=False``, ``normalize_cam=False``, ``model_modifier=None`` (our models output
    logits already) and ``activation_modifier=relu`` (or None for ``relu=False``).
    tf-keras-vis's closed form assumes the class score is ``exp(S)`` of the network's score
    ``S``: with ``g = dS/dA``, ``alpha = g^2 / (2 g^2 + sum_ij A g^3)`` (0 where ``g = 0``),
    then the alphas are divided by their spatial sum (a tf-keras-vis step not in the paper)
    and ``w_k = sum_ij alpha * relu(exp(S) g)``, map ``relu(sum_k w_k A^k)``. The map thus
    carries a factor ``exp(S)``, which overflows float32 for logits above ~88. We pass the
    score ``S = logit - stop_gradient(logit)`` (value 0, gradient of the logit), so our map
    is tf-keras-vis's map divided by ``exp(logit)``: a positive per-image constant that
    cancels in any per-map normalization.

    Returns:
        float32 (N, h, w) at the layer's resolution.

    References:
        Chattopadhay et al. 2018, arXiv:1710.11063.
    """
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

    x, t, name, batch_size = _tkv_inputs(model, images, targets, layer, batch_size)
    viz = GradcamPlusPlus(model, model_modifier=None, clone=False)
    modifier = {} if relu else {"activation_modifier": None}
    parts = [np.asarray(viz(_zero_valued_score(t[s:s + batch_size]), x[s:s + batch_size],
                            penultimate_layer=name, seek_penultimate_conv_layer=False,
                            expand_cam=False, normalize_cam=False, **modifier))
             for s in range(0, len(x), batch_size)]
    return np.concatenate(parts).astype(np.float32)


def _quiet_proxy(model):
    """A functional view of ``model`` whose ``predict`` is our silent compiled forward pass."""
    cache = _cache(model)
    if "proxy" not in cache:
        proxy = keras.Model(model.inputs, model.outputs, name=f"{model.name}_view")
        logits = _logits_fn(model)
        dtype = _model_dtype(model).as_numpy_dtype

        def predict(inputs, batch_size=32, **_):
            arr = np.asarray(inputs[0] if isinstance(inputs, list) else inputs, dtype=dtype)
            return _batched(logits, int(batch_size), arr)

        object.__setattr__(proxy, "predict", predict)
        cache["proxy"] = proxy
    return cache["proxy"]


def scorecam(model, images, targets, *, layer: str | None = None, relu: bool = True,
             max_n: int | None = None, batch_size: int = 32) -> np.ndarray:
    """Score-CAM by tf-keras-vis 0.8.7 (``Scorecam``).

    Called with ``penultimate_layer=layer``, ``seek_penultimate_conv_layer=False``,
    ``expand_cam=False``, ``normalize_cam=False``, ``model_modifier=None``. tf-keras-vis's
    behaviour: each channel ``A^k`` is upsampled to the input size (scipy ``zoom``, order 1,
    mode "nearest"), min-max normalized to [0, 1] (epsilon 1e-7), multiplied into the image;
    the weight is the **softmax probability** of the target for that masked image (it applies
    ``softmax`` to the model output, right for logit models; no subtraction of a baseline
    score); map ``relu(sum_k w_k A^k)``. Costs K forward passes per image (K = channels of
    ``layer``); ``max_n`` keeps only the ``max_n`` channels of largest spatial std (Faster
    Score-CAM). The model's forward pass is run by a silent compiled function instead of
    ``model.predict``. Float32 models only (tf-keras-vis casts the weights to float32).

    Returns:
        float32 (N, h, w) at the layer's resolution.

    References:
        Wang et al. 2020, arXiv:1910.01279.
    """
    from tf_keras_vis.scorecam import Scorecam
    from tf_keras_vis.utils.scores import CategoricalScore

    x, t, name, batch_size = _tkv_inputs(model, images, targets, layer, batch_size)
    if _model_dtype(model) != tf.float32:
        raise ValueError("tf-keras-vis 0.8.7 Score-CAM works with float32 models only (it casts "
                         f"its channel weights to float32); {model.name!r} computes in "
                         f"{_model_dtype(model).name}")
    viz = Scorecam(_quiet_proxy(model), model_modifier=None, clone=False)
    modifier = {} if relu else {"activation_modifier": None}
    parts = []
    for s in range(0, len(x), batch_size):
        cam = viz(CategoricalScore(t[s:s + batch_size].tolist()), x[s:s + batch_size],
                  penultimate_layer=name, seek_penultimate_conv_layer=False, batch_size=batch_size,
                  max_N=max_n, expand_cam=False, normalize_cam=False, **modifier)
        parts.append(np.asarray(cam))
    return np.concatenate(parts).astype(np.float32)


def guided_gradcam(model, images, targets, *, layer: str | None = None,
                   batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Guided Grad-CAM: :func:`guided_backprop` times the Grad-CAM map (ReLU'd) upsampled
    bilinearly to the input size (``postprocess.upsample``), broadcast over channels.

    Returns:
        float32 array shaped like ``images``.

    References:
        Selvaraju et al. 2019, arXiv:1610.02391.
    """
    cam = gradcam(model, images, targets, layer=layer, relu=True, batch_size=batch_size)
    guided = guided_backprop(model, images, targets, batch_size=batch_size)
    up = postprocess.upsample(cam, guided.shape[1:3])
    return (guided * up[..., None]).astype(np.float32)
