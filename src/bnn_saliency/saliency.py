"""Saliency methods behind one call shape: ``method(model, images, targets, **params)``.

Every method takes a ``tf.keras`` model that outputs **logits** (one input, one output of
shape ``(N, n_classes)``), float images ``(N, H, W, C)`` in the model's input space and
integer class indices ``targets`` (shape ``(N,)``; a scalar broadcasts), and returns a
float32 ``np.ndarray``:

* pixel methods (:data:`PIXEL_METHODS`) return raw, signed maps shaped like ``images``;
* CAM methods (:data:`CAM_METHODS`) return ``(N, h, w)`` maps at the resolution of the
  named layer (upsampling, abs, channel reduction and normalization live in
  :mod:`bnn_saliency.postprocess`).

The score is always the target logit (never a softmax probability), except inside
Score-CAM where tf-keras-vis applies a softmax by design. Computation runs in the
model's input dtype (float32 for the twins; float64 models stay float64) in inference
mode (``training=False``, so batch normalization uses its moving statistics), batched
internally through one ``tf.function`` per model and method (``batch_size`` rows at a
time). Compiled functions and modified model copies are cached on the model object;
weights changed in place (e.g. by a randomization test) are picked up on the next call.

Binary networks: gradients flow through larq's straight-through estimators (STE), e.g.
``SteSign``'s ``dy * (|x| <= clip_value)``, exactly as in training. Methods that override
gradients (guided backprop, DeepLIFT) treat every elementwise nonlinearity alike:
``keras.layers.Activation`` layers (ReLU, larq ``SteSign``, ...), ``activation=...`` inside
Conv/Dense layers, ``keras.layers.ReLU``-family layers, and larq ``input_quantizer``s
(the sign activation of larq-zoo models such as QuickNet).

References:
    Simonyan, Vedaldi & Zisserman 2013, "Deep inside convolutional networks", arXiv:1312.6034.
    Shrikumar et al. 2016, "Not just a black box" (gradient x input), arXiv:1605.01713.
    Smilkov et al. 2017, "SmoothGrad: removing noise by adding noise", arXiv:1706.03825.
    Springenberg et al. 2014, "Striving for simplicity: the all convolutional net", arXiv:1412.6806.
    Selvaraju et al. 2019, "Grad-CAM", IJCV (arXiv:1610.02391).
    Chattopadhay et al. 2018, "Grad-CAM++", arXiv:1710.11063.
    Wang et al. 2020, "Score-CAM", arXiv:1910.01279.
    Sundararajan, Taly & Yan 2017, "Axiomatic attribution for deep networks", arXiv:1703.01365.
    Shrikumar, Greenside & Kundaje 2017, "Learning important features through propagating
    activation differences" (DeepLIFT), arXiv:1704.02685.
    Courbariaux et al. 2016 / Hubara et al. 2016 (straight-through estimator for sign),
    arXiv:1602.02830, arXiv:1609.07061.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import tensorflow as tf
from tensorflow import keras

from . import postprocess

__all__ = [
    "gradient", "gradient_x_input", "smoothgrad", "smoothgrad_tfkerasvis", "draw_noisy_copies",
    "integrated_gradients", "convergence_delta", "deeplift_rescale", "guided_backprop",
    "gradcam", "gradcam_weights", "gradcam_plus_plus", "scorecam", "guided_gradcam",
    "METHODS", "PIXEL_METHODS", "CAM_METHODS", "LAYER_METHODS", "get_method", "clear_cache",
]

DEFAULT_BATCH_SIZE = 64
RESCALE_EPS = 1e-6  # |z - z_ref| below this: DeepLIFT falls back to the local gradient
_CACHE_ATTR = "_bnn_saliency_cache"
_MAX_BLOCK_ELEMENTS = 1 << 24  # floats per block of noisy copies / path points (64 MB)


# ---------------------------------------------------------------------- validation
def _check_model(model) -> None:
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a tf.keras Model, got {type(model).__name__}")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"saliency methods need a model with one input and one output; {model.name!r} has "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs")
    out_shape = model.outputs[0].shape
    if out_shape.rank != 2 or out_shape[-1] is None:
        raise ValueError(
            f"model output must be logits of shape (N, n_classes); {model.name!r} outputs {out_shape}")
    if model.inputs[0].shape.rank != 4:
        raise ValueError(
            f"model input must be images (N, H, W, C); {model.name!r} takes {model.inputs[0].shape}")
    low = [lay.name for lay in model.layers if getattr(lay, "compute_dtype", None) in ("bfloat16", "float16")]
    if low:
        warnings.warn(
            f"model {model.name!r} computes {len(low)} layers (e.g. {low[0]!r}) in "
            f"{model.get_layer(low[0]).compute_dtype}; "
            "gradients will be low precision. Rebuild it under the float32 policy "
            "(keras.mixed_precision.set_global_policy('float32')) and load the weights.",
            stacklevel=3)
    last = getattr(model.layers[-1], "activation", None)
    if last is keras.activations.softmax or getattr(last, "__name__", "") == "softmax":
        warnings.warn(
            f"model {model.name!r} ends in a softmax; the methods expect logits. Rebuild it "
            "without the softmax, e.g. keras.Model(model.input, model.layers[-2].output).",
            stacklevel=3)


def _model_dtype(model) -> tf.DType:
    dtype = tf.as_dtype(model.inputs[0].dtype)
    return dtype if dtype.is_floating and dtype != tf.bfloat16 and dtype != tf.float16 else tf.float32


def _n_classes(model) -> int:
    return int(model.outputs[0].shape[-1])


def _prepare(model, images, targets) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``images``/``targets`` against ``model``; return (images in model dtype, int32 targets)."""
    _check_model(model)
    if tf.is_tensor(images):
        images = images.numpy()
    if not isinstance(images, np.ndarray):
        raise TypeError(
            f"images must be a numpy array of shape (N, H, W, C), got {type(images).__name__}")
    if images.dtype.kind != "f":
        raise TypeError(
            f"images must be a float array in the model's input range, got dtype {images.dtype}; "
            "convert uint8 images first (e.g. bnn_saliency.data.to_float)")
    if images.ndim != 4:
        raise ValueError(
            f"images must have shape (N, H, W, C), got shape {images.shape}; "
            "for a single image pass images[None]")
    expected = tuple(model.inputs[0].shape[1:])
    for axis, (want, got) in enumerate(zip(expected, images.shape[1:]), start=1):
        if want is not None and want != got:
            raise ValueError(
                f"images have shape {images.shape} but model {model.name!r} expects "
                f"(N, {', '.join(str(d) for d in expected)}): axis {axis} is {got}, expected {want}")
    if images.shape[0] == 0:
        raise ValueError("images is an empty batch (N = 0); pass at least one image")
    if not np.all(np.isfinite(images)):
        bad = int(np.size(images) - np.count_nonzero(np.isfinite(images)))
        raise ValueError(f"images contain {bad} NaN or infinite values; saliency needs finite inputs")
    x = images.astype(_model_dtype(model).as_numpy_dtype, copy=False)
    return x, _prepare_targets(model, targets, len(x))


def _prepare_targets(model, targets, n: int) -> np.ndarray:
    if tf.is_tensor(targets):
        targets = targets.numpy()
    t = np.asarray(targets)
    if t.dtype.kind not in "iu":
        raise TypeError(f"targets must be integer class indices, got dtype {t.dtype}")
    if t.ndim == 0:
        t = np.full(n, int(t))
    if t.shape != (n,):
        raise ValueError(f"targets must have shape ({n},) (one class per image) or be a scalar, "
                         f"got shape {t.shape}")
    n_classes = _n_classes(model)
    bad = (t < 0) | (t >= n_classes)
    if bad.any():
        raise ValueError(f"targets must be in [0, {n_classes}); got {sorted(set(t[bad].tolist()))[:5]}")
    return t.astype(np.int32)


def _check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def _get_layer(model, layer) -> keras.layers.Layer:
    """The named 4-D layer of ``model`` (CAM methods)."""
    def hint():
        candidates = [lay.name for lay in model.layers if _output_rank(lay) == 4]
        return f"4-D layers of {model.name!r} include {candidates[-6:]}"

    if layer is None:
        raise ValueError(f"this method needs layer=<name of a 4-D layer>; {hint()} "
                         "(for the twins see bnn_saliency.twins.gradcam_layer)")
    if not isinstance(layer, str):
        raise ValueError(f"layer must be named explicitly by a string, got {layer!r}; {hint()}")
    try:
        found = model.get_layer(layer)
    except ValueError:
        raise ValueError(f"model {model.name!r} has no layer named {layer!r}; {hint()}") from None
    rank = _output_rank(found)
    if rank != 4:
        raise ValueError(f"layer {layer!r} outputs a rank-{rank} tensor; CAM methods need a 4-D "
                         f"(N, h, w, K) feature map; {hint()}")
    return found


def _output_rank(layer) -> int | None:
    try:
        out = layer.output
    except (AttributeError, ValueError):  # shared or never-called layers
        return None
    return out.shape.rank if hasattr(out, "shape") else None


# ------------------------------------------------------------------------- caching
def _cache(model) -> dict:
    cache = model.__dict__.get(_CACHE_ATTR)
    if cache is None:
        cache = {}
        object.__setattr__(model, _CACHE_ATTR, cache)  # bypass Keras attribute tracking
    return cache


def _specs(model):
    shape = (None,) + tuple(model.inputs[0].shape[1:])
    return tf.TensorSpec(shape, _model_dtype(model)), tf.TensorSpec((None,), tf.int32)


def _make_grad_fn(net, model):
    """tf.function (x, t) -> (d logit[t] / d x, logit[t]) for ``net`` (``model`` or a copy)."""
    x_spec, t_spec = _specs(model)

    @tf.function(input_signature=[x_spec, t_spec])
    def fn(x, t):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = net(x, training=False)
            score = tf.gather(logits, t, axis=1, batch_dims=1)
        grad = tape.gradient(score, x, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return grad, score

    return fn


def _grad_fn(model):
    cache = _cache(model)
    if "grad" not in cache:
        cache["grad"] = _make_grad_fn(model, model)
    return cache["grad"]


def _logits_fn(model):
    cache = _cache(model)
    if "logits" not in cache:
        x_spec, _ = _specs(model)
        cache["logits"] = tf.function(lambda x: model(x, training=False), input_signature=[x_spec])
    return cache["logits"]


def clear_cache(model) -> None:
    """Drop the compiled functions and modified copies cached on ``model`` (frees memory)."""
    model.__dict__.pop(_CACHE_ATTR, None)


def _batched(fn, batch_size: int, *arrays):
    """Apply ``fn`` to row-chunks of ``arrays``; concatenate the numpy outputs."""
    outs = []
    for start in range(0, len(arrays[0]), batch_size):
        res = fn(*(tf.constant(a[start:start + batch_size]) for a in arrays))
        outs.append(tuple(r.numpy() for r in res) if isinstance(res, (tuple, list)) else (res.numpy(),))
    merged = tuple(np.concatenate(parts) for parts in zip(*outs))
    return merged if len(merged) > 1 else merged[0]


def _blocks(n_images: int, n_copies: int, image_size: int):
    """Slices of images such that a block's copies stay under the memory cap."""
    per = max(1, _MAX_BLOCK_ELEMENTS // max(1, n_copies * image_size))
    for start in range(0, n_images, per):
        yield slice(start, min(n_images, start + per))


# ----------------------------------------------------------------- vanilla gradient
def gradient(model, images, targets, *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Vanilla gradient: signed ``d logit[target] / d input``.

    Args:
        model: tf.keras model outputting logits.
        images: float array (N, H, W, C) in the model's input space.
        targets: int class indices (N,) or a scalar.
        batch_size: rows per compiled call (default 64).

    Returns:
        float32 array shaped like ``images``. For BNNs the gradient passes through the
        straight-through estimators of the sign functions.

    References:
        Simonyan, Vedaldi & Zisserman 2013, arXiv:1312.6034.
    """
    x, t = _prepare(model, images, targets)
    grads, _ = _batched(_grad_fn(model), _check_batch_size(batch_size), x, t)
    return grads.astype(np.float32)


def gradient_x_input(model, images, targets, *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Gradient times input, ``x * d logit[target] / d x`` (signed).

    For ReLU networks without additive biases (e.g. randomly initialized twins whose BN
    has beta = 0 and moving mean 0) the network is positively homogeneous, and gradient x
    input equals integrated gradients and DeepLIFT-rescale with a zero baseline (Ancona et
    al. 2018, arXiv:1711.06104).

    References:
        Shrikumar et al. 2016, arXiv:1605.01713.
    """
    x, t = _prepare(model, images, targets)
    grads, _ = _batched(_grad_fn(model), _check_batch_size(batch_size), x, t)
    return (grads * x).astype(np.float32)


# ------------------------------------------------------------------------ SmoothGrad
MAGNITUDES = ("none", "abs", "square")


def smoothgrad(model, images, targets, *, method: str | Callable = "gradient", noise: float = 0.2,
               n_samples: int = 50, seed: int = 0, magnitude: str = "none",
               value_range: tuple[float, float] | None = None,
               batch_size: int = DEFAULT_BATCH_SIZE, **method_params) -> np.ndarray:
    """SmoothGrad: the average of a saliency method over Gaussian-noised copies of each image.

    A wrapper around any method of this module (like Captum's ``NoiseTunnel``). Image ``i``
    gets ``n_samples`` copies ``x_i + eps``, ``eps ~ N(0, sigma_i^2)`` i.i.d. per element, with
    ``sigma_i = noise * (max(x_i) - min(x_i))`` over all pixels and channels of that image
    (Smilkov et al.'s "noise level", as in tf-keras-vis), or ``noise * (hi - lo)`` if
    ``value_range=(lo, hi)`` is given. Noise comes from ``np.random.default_rng(seed)``, drawn
    image by image in order (:func:`draw_noisy_copies`), so the noisy inputs do not depend on
    ``batch_size`` (the maps only up to float rounding). The copies of a block
    of images are stacked along the batch axis and sent through the wrapped method in one
    call (for ``gradient``: one compiled ``tf.function``, ``batch_size`` rows at a time),
    not a Python loop per sample.

    Args:
        method: name in :data:`METHODS` or a callable with the uniform call shape (default
            ``"gradient"``).
        noise: noise level relative to the image's value range (default 0.2; 0 gives
            ``n_samples`` identical copies).
        n_samples: noisy copies per image (default 50).
        seed: seed of the noise generator (default 0).
        magnitude: ``"none"`` averages the signed maps (default, the paper's SmoothGrad),
            ``"abs"`` averages ``|map|`` (what tf-keras-vis computes), ``"square"`` averages
            ``map**2`` (SmoothGrad-Squared, Hooker et al. 2019, arXiv:1806.10758).
        value_range: fixed (lo, hi) used for sigma instead of each image's own range.
        batch_size: passed to the wrapped method.
        **method_params: passed to the wrapped method (e.g. ``layer=`` for CAM methods,
            ``steps=`` for integrated gradients).

    Returns:
        float32 array of the wrapped method's output shape.

    Note:
        tf-keras-vis (``Saliency(...)(..., smooth_samples=n)``) by default takes ``|grad|``
        per sample, then the max over channels (``keepdims=False``), then min-max
        normalizes each map. ``smoothgrad(..., magnitude="abs")`` followed by a channel max
        (``postprocess.reduce_channels(m, "max")``) and ``postprocess.normalize`` reproduces it
        (up to Monte-Carlo noise and tf-keras-vis's epsilon in the normalization).

    References:
        Smilkov et al. 2017, arXiv:1706.03825.
    """
    fn = get_method(method) if isinstance(method, str) else method
    if not callable(fn):
        raise TypeError(f"method must be a method name or a callable, got {type(method).__name__}")
    if fn is smoothgrad:
        raise ValueError("smoothgrad cannot wrap itself")
    if magnitude not in MAGNITUDES:
        raise ValueError(f"magnitude must be one of {MAGNITUDES}, got {magnitude!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    x, t = _prepare(model, images, targets)
    batch_size = _check_batch_size(batch_size)
    if value_range is not None:
        lo, hi = value_range
        if not hi >= lo:
            raise ValueError(f"value_range must be (lo, hi) with hi >= lo, got {value_range}")
    rng = np.random.default_rng(seed)
    n = int(n_samples)
    baseline = method_params.get("baseline")
    out = None
    for blk in _blocks(len(x), n, x[0].size):
        xb = x[blk]
        noisy = draw_noisy_copies(xb, noise, n, rng, value_range).reshape((-1,) + x.shape[1:])
        params = dict(method_params)
        if isinstance(baseline, np.ndarray) and baseline.ndim == 4:  # per-image baselines
            params["baseline"] = np.repeat(np.broadcast_to(baseline, x.shape)[blk], n, axis=0)
        if fn is gradient and not method_params:  # validated inputs: the compiled gradient
            maps, _ = _batched(_grad_fn(model), batch_size, noisy, np.repeat(t[blk], n))
            maps = maps.astype(np.float32, copy=False)  # as gradient() returns it
        else:
            maps = fn(model, noisy, np.repeat(t[blk], n), batch_size=batch_size, **params)
        maps = np.asarray(maps, dtype=np.float64).reshape((len(xb), n) + maps.shape[1:])
        if magnitude == "abs":
            maps = np.abs(maps)
        elif magnitude == "square":
            maps = maps ** 2
        mean = maps.mean(axis=1)
        if out is None:
            out = np.empty((len(x),) + mean.shape[1:], dtype=np.float32)
        out[blk] = mean
    return out


def draw_noisy_copies(images: np.ndarray, noise: float, n_samples: int,
                      rng: np.random.Generator, value_range: tuple[float, float] | None = None
                      ) -> np.ndarray:
    """SmoothGrad's noisy copies of ``images``: ``(N, n_samples, H, W, C)``, images' dtype.

    The one definition of the noise draws, shared by :func:`smoothgrad` and
    :func:`bnn_saliency.perturbation.noisy_copies`. Copy ``d`` of image ``i`` is
    ``x_i + float32(noise * spread_i) * eps_id`` with ``spread_i = max(x_i) - min(x_i)`` (or
    ``hi - lo`` for ``value_range=(lo, hi)``) and ``eps`` float32 standard normal, drawn from
    ``rng`` image by image, copy by copy, element by element (one call for the whole batch
    consumes the generator exactly like a loop over images and copies). The noise term is
    float32 and is added in the images' dtype. Calling this on consecutive blocks of images
    with the same ``rng`` gives the same copies as one call on all of them.

    Args:
        images: float array (N, H, W, C), validated by the caller.
        noise: noise level relative to the value range (>= 0).
        n_samples: copies per image (>= 1).
        rng: the generator, advanced by ``N * n_samples * H * W * C`` draws.
        value_range: fixed (lo, hi) for the spread instead of each image's own range.
    """
    x = np.asarray(images)
    if value_range is not None:
        lo, hi = value_range
        spread = np.full(len(x), float(hi - lo))
    else:
        flat = x.reshape(len(x), -1)
        spread = flat.max(axis=1) - flat.min(axis=1)  # in the images' dtype, as max - min
    scale = np.array([np.float32(noise * float(s)) for s in spread], dtype=np.float32)
    eps = rng.standard_normal((len(x), int(n_samples)) + x.shape[1:], dtype=np.float32)
    eps *= scale.reshape((-1,) + (1,) * (eps.ndim - 1))
    return x[:, None] + eps


def smoothgrad_tfkerasvis(model, images, targets, noise: float = 0.2, n_samples: int = 50,
                          seed: int = 0, *, signed: bool = False,
                          batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """SmoothGrad computed by tf-keras-vis 0.8.7 (reference implementation, benchmarks).

    Calls ``tf_keras_vis.saliency.Saliency(model)(CategoricalScore(targets), images,
    smooth_samples=n_samples, smooth_noise=noise, keepdims=True, normalize_map=False)`` with
    the global numpy RNG seeded by ``np.random.seed(seed)`` (its previous state is restored
    afterwards). tf-keras-vis draws the noise with ``np.random.normal`` and sigma
    ``noise * (max - min)`` of each image, like :func:`smoothgrad`, but loops in Python over
    the samples (one eager gradient of the whole batch per sample).

    tf-keras-vis defaults, and what we override: ``gradient_modifier=abs`` (kept unless
    ``signed=True``, which passes ``None``), ``keepdims=False`` i.e. max over channels
    (overridden: ``keepdims=True`` returns (N, H, W, C)), ``normalize_map=True`` i.e. per-map
    min-max with a 1e-7 epsilon (overridden: raw averages). With the defaults kept this
    function equals ``smoothgrad(..., magnitude="abs")`` in expectation (``magnitude="none"``
    for ``signed=True``); apply ``postprocess.tfkerasvis_style`` to get tf-keras-vis's
    displayed map. The environment variable ``TF_KERAS_VIS_MAX_STEPS`` caps ``n_samples``
    inside tf-keras-vis.

    Returns:
        float32 array shaped like ``images``.
    """
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.scores import CategoricalScore

    x, t = _prepare(model, images, targets)
    batch_size = _check_batch_size(batch_size)
    viz = Saliency(model, model_modifier=None, clone=False)
    kwargs = {"gradient_modifier": None} if signed else {}
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        parts = []
        for start in range(0, len(x), batch_size):
            xb, tb = x[start:start + batch_size], t[start:start + batch_size]
            parts.append(np.asarray(viz(CategoricalScore(tb.tolist()), xb, smooth_samples=int(n_samples),
                                        smooth_noise=noise, keepdims=True, normalize_map=False,
                                        **kwargs)))
    finally:
        np.random.set_state(state)
    return np.concatenate(parts).astype(np.float32)


# ------------------------------------------------------------------------- baselines
def _blur_sigma(shape, blur_sigma) -> float:
    return 5.0 * min(shape[1], shape[2]) / 32.0 if blur_sigma is None else float(blur_sigma)


def _baseline(x: np.ndarray, baseline, blur_sigma=None) -> np.ndarray:
    """Resolve a baseline spec to an array shaped like ``x`` (same dtype)."""
    if isinstance(baseline, str):
        if baseline == "black":
            return np.zeros_like(x)
        if baseline == "blur":
            from scipy.ndimage import gaussian_filter

            sigma = _blur_sigma(x.shape, blur_sigma)
            return gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="reflect").astype(x.dtype)
        raise ValueError(f"unknown baseline {baseline!r}; use 'black', 'blur' or an array")
    if tf.is_tensor(baseline):
        baseline = baseline.numpy()
    if not isinstance(baseline, (np.ndarray, float, int, np.floating)) or isinstance(baseline, bool):
        raise TypeError(f"baseline must be 'black', 'blur' or a float array, got {type(baseline).__name__}")
    base = np.asarray(baseline)
    if base.dtype.kind not in "fiu":
        raise TypeError(f"baseline must be numeric, got dtype {base.dtype}")
    try:
        base = np.broadcast_to(base, x.shape)
    except ValueError:
        raise ValueError(f"baseline of shape {base.shape} does not broadcast to images {x.shape}; "
                         "pass (H, W, C) or (N, H, W, C)") from None
    if not np.all(np.isfinite(base)):
        raise ValueError("baseline contains NaN or infinite values")
    return np.array(base, dtype=x.dtype)


# --------------------------------------------------------------- integrated gradients
IG_RULES = ("midpoint", "trapezoid")


def integrated_gradients(model, images, targets, *, baseline="black", steps: int = 64,
                         rule: str = "midpoint", blur_sigma: float | None = None,
                         batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Integrated gradients: ``(x - x') * integral_0^1 grad f(x' + a (x - x')) da``.

    The integral is a Riemann sum over ``steps`` points: ``rule="midpoint"`` (default)
    evaluates the gradient at ``a_k = (k + 1/2) / steps``, k = 0..steps-1, with equal weights
    (error O(1/steps^2) for smooth f); ``rule="trapezoid"`` uses ``steps + 1`` points
    ``a_k = k / steps`` with half weights at the ends. All path points of a block of images
    go through one compiled gradient, ``batch_size`` rows at a time.

    Args:
        baseline: ``"black"`` (all-zero model input: black for the twins' [0, 1] images; for
            models with their own preprocessing pass an array), ``"blur"`` (the image blurred
            by a Gaussian of ``blur_sigma`` pixels per channel, reflect padding; default
            ``sigma = 5 * min(H, W) / 32``, i.e. 5 px on 32x32 CIFAR-10 images, 35 px at
            224x224 — enough to remove object detail, Sturmfels et al. 2020, Distill), or an
            array broadcastable to ``images`` ((H, W, C) or (N, H, W, C)).
        steps: number of Riemann intervals (default 64; completeness improves with more).
        rule: ``"midpoint"`` or ``"trapezoid"``.

    Returns:
        float32 attributions shaped like ``images``; :func:`convergence_delta` measures
        completeness (``sum(attr) == f(x) - f(x')``).

    References:
        Sundararajan, Taly & Yan 2017, arXiv:1703.01365.
    """
    if rule not in IG_RULES:
        raise ValueError(f"rule must be one of {IG_RULES}, got {rule!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    x, t = _prepare(model, images, targets)
    batch_size = _check_batch_size(batch_size)
    base = _baseline(x, baseline, blur_sigma)
    if rule == "midpoint":
        alphas = (np.arange(steps) + 0.5) / steps
        weights = np.full(steps, 1.0 / steps)
    else:
        alphas = np.arange(steps + 1) / steps
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] *= 0.5
    s = len(alphas)
    a = alphas.astype(x.dtype).reshape((1, s) + (1,) * (x.ndim - 1))
    fn = _grad_fn(model)
    out = np.empty(x.shape, dtype=np.float32)
    for blk in _blocks(len(x), s, x[0].size):
        xb, bb = x[blk], base[blk]
        path = bb[:, None] + a * (xb - bb)[:, None]
        grads, _ = _batched(fn, batch_size, path.reshape((-1,) + x.shape[1:]), np.repeat(t[blk], s))
        grads = grads.reshape((len(xb), s) + x.shape[1:])
        avg = np.einsum("s,bs...->b...", weights, grads.astype(np.float64))
        out[blk] = (xb - bb) * avg
    return out


def convergence_delta(model, images, targets, attributions, baseline="black", *,
                      blur_sigma: float | None = None,
                      batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """Completeness gap ``sum(attr) - (f(x)[t] - f(x')[t])`` per image, in float64.

    Zero for exact integrated gradients and for DeepLIFT on nets without max pooling.
    ``baseline`` and ``blur_sigma`` must be those used to compute ``attributions``.

    Returns:
        float64 array (N,).
    """
    x, t = _prepare(model, images, targets)
    attributions = np.asarray(attributions)
    if attributions.shape != x.shape:
        raise ValueError(f"attributions have shape {attributions.shape}, expected {x.shape}")
    base = _baseline(x, baseline, blur_sigma)
    fn = _logits_fn(model)
    batch_size = _check_batch_size(batch_size)
    fx = _batched(fn, batch_size, x)[np.arange(len(x)), t].astype(np.float64)
    fb = _batched(fn, batch_size, base)[np.arange(len(x)), t].astype(np.float64)
    total = attributions.astype(np.float64).reshape(len(x), -1).sum(axis=1)
    return total - (fx - fb)


# -------------------------------------------------- gradient overrides on a model copy
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
    base = _baseline(x, baseline, blur_sigma)
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


# ------------------------------------------------------------------------ CAM methods
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


# ------------------------------------------------------------------------- registry
METHODS: dict[str, Callable] = {
    "gradient": gradient,
    "gradient_x_input": gradient_x_input,
    "smoothgrad": smoothgrad,
    "integrated_gradients": integrated_gradients,
    "guided_backprop": guided_backprop,
    "deeplift_rescale": deeplift_rescale,
    "guided_gradcam": guided_gradcam,
    "gradcam": gradcam,
    "gradcam_plus_plus": gradcam_plus_plus,
    "scorecam": scorecam,
}
PIXEL_METHODS = ("gradient", "gradient_x_input", "smoothgrad", "integrated_gradients",
                 "guided_backprop", "deeplift_rescale", "guided_gradcam")
CAM_METHODS = ("gradcam", "gradcam_plus_plus", "scorecam")
LAYER_METHODS = ("guided_gradcam",) + CAM_METHODS  # need layer=


def get_method(name: str) -> Callable:
    """The saliency method called ``name`` (see :data:`METHODS`)."""
    if not isinstance(name, str) or name not in METHODS:
        raise KeyError(f"unknown saliency method {name!r}; available: {', '.join(METHODS)}")
    return METHODS[name]
