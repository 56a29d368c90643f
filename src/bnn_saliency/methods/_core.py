"""Machinery the saliency methods share: input checks, compiled gradient and forward
functions cached on the model, batching, and the baselines (black, blur, mean)."""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf
from tensorflow import keras

from .. import checks

DEFAULT_BATCH_SIZE = 64


_CACHE_ATTR = "_bnn_saliency_cache"


_MAX_BLOCK_ELEMENTS = 1 << 24  # floats per block of noisy copies / path points (64 MB)


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
    if not isinstance(images, np.ndarray) and not tf.is_tensor(images):
        raise TypeError(
            f"images must be a numpy array of shape (N, H, W, C), got {type(images).__name__}")
    images = checks.images(images)
    expected = tuple(model.inputs[0].shape[1:])
    for axis, (want, got) in enumerate(zip(expected, images.shape[1:]), start=1):
        if want is not None and want != got:
            raise ValueError(
                f"images have shape {images.shape} but model {model.name!r} expects "
                f"(N, {', '.join(str(d) for d in expected)}): axis {axis} is {got}, expected {want}")
    x = images.astype(_model_dtype(model).as_numpy_dtype, copy=False)
    return x, _prepare_targets(model, targets, len(x))


def _prepare_targets(model, targets, n: int) -> np.ndarray:
    return checks.targets(targets, n, _n_classes(model)).astype(np.int32)


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
                         "(for the twins see bnn_saliency.models.twins.gradcam_layer)")
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


def ig_blur_sigma(shape) -> float:
    """IG's blurred-baseline width: 5 px at 32 x 32, scaled with the image size."""
    return 5.0 * min(shape[1], shape[2]) / 32.0


def baseline_images(x: np.ndarray, baseline, blur_sigma: float | None = None) -> np.ndarray:
    """The reference images of a baseline spec, shaped like ``x`` (N, H, W, C), same dtype: the
    one implementation behind the path methods, DeepLIFT and the perturbation metrics.

    ``baseline``: ``"black"`` (zeros), ``"mean"`` (each image's per-channel mean), ``"blur"``
    (Gaussian blur of ``blur_sigma`` pixels, reflecting at the border; default
    :func:`ig_blur_sigma`) or a number / array broadcastable to ``x``.
    """
    if isinstance(baseline, str):
        if baseline == "black":
            return np.zeros_like(x)
        if baseline == "mean":
            return np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape).astype(x.dtype)
        if baseline == "blur":
            from scipy.ndimage import gaussian_filter

            sigma = ig_blur_sigma(x.shape) if blur_sigma is None else float(blur_sigma)
            return gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="reflect").astype(x.dtype)
        raise ValueError(f"unknown baseline {baseline!r}; use 'black', 'blur', 'mean' or an array")
    if tf.is_tensor(baseline):
        baseline = baseline.numpy()
    if not isinstance(baseline, (np.ndarray, float, int, np.floating)) or isinstance(baseline, bool):
        raise TypeError(f"baseline must be 'black', 'blur', 'mean' or a float array, "
                        f"got {type(baseline).__name__}")
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


def forward(model):
    """The model's logits in inference mode as a compiled numpy function ``f(x) -> (N, K)``.

    One ``tf.function`` per model with a variable batch axis (traced once), cached on the
    model and shared with the saliency methods; inputs are cast to the model's float dtype.
    Pass it wherever :mod:`bnn_saliency.evaluation` accepts "any callable ``f(x) -> (N, K)``"
    (e.g. :func:`~bnn_saliency.evaluation.insertion_auc`): the results equal the Keras
    model's up to float rounding, without Keras's eager per-call overhead.
    """
    cache = _cache(model)
    if "forward" not in cache:
        if len(model.inputs) != 1:
            raise ValueError(f"model {model.name!r} must have one input, has {len(model.inputs)}")
        logits = _logits_fn(model)
        dtype = _model_dtype(model).as_numpy_dtype

        def f(x):
            return logits(tf.constant(np.asarray(x, dtype=dtype))).numpy()

        f.__name__ = f"forward_{model.name}"
        f.__memo_key__ = model  # memo keys use the model's weights, not the closure
        cache["forward"] = f
    return cache["forward"]
