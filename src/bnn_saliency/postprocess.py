"""Post-processing of saliency maps: abs, channel reduction, normalization, upsampling.

Saliency methods (:mod:`bnn_saliency.saliency`) return raw maps: pixel methods (N, H, W, C)
signed, CAM methods (N, h, w). Everything that turns them into pictures or comparable maps
is a separate, named step here, so that chapters state exactly which pipeline they use.
tf-keras-vis's displayed saliency map, as used by Widdicombe & Julier, is
:func:`tfkerasvis_style`: abs -> max over channels -> per-map min-max.
"""

from __future__ import annotations

import numpy as np

CHANNEL_REDUCTIONS = ("max", "sum", "mean", "l2", "absmax")
NORMALIZATIONS = ("minmax", "maxabs")


def _as_maps(maps, min_ndim: int = 2) -> np.ndarray:
    arr = np.asarray(maps)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"maps must be numeric, got dtype {arr.dtype}")
    if arr.ndim < min_ndim:
        raise ValueError(f"maps must have a leading batch axis and >= {min_ndim} dims, got shape {arr.shape}")
    return arr


def abs_map(maps) -> np.ndarray:
    """Elementwise absolute value, float32."""
    return np.abs(_as_maps(maps, 1)).astype(np.float32)


def reduce_channels(maps, how: str = "max") -> np.ndarray:
    """Collapse the channel axis of (N, H, W, C) maps to (N, H, W).

    Args:
        how: ``"max"`` (signed max over channels, tf-keras-vis's ``keepdims=False``),
            ``"sum"``, ``"mean"``, ``"l2"`` (Euclidean norm over channels) or ``"absmax"``
            (max of ``|map|``, equal to abs then max).

    Returns:
        float32 (N, H, W).
    """
    arr = _as_maps(maps)
    if arr.ndim != 4:
        raise ValueError(f"reduce_channels needs (N, H, W, C) maps, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if how == "max":
        out = arr.max(axis=-1)
    elif how == "sum":
        out = arr.sum(axis=-1)
    elif how == "mean":
        out = arr.mean(axis=-1)
    elif how == "l2":
        out = np.sqrt((arr ** 2).sum(axis=-1))
    elif how == "absmax":
        out = np.abs(arr).max(axis=-1)
    else:
        raise ValueError(f"how must be one of {CHANNEL_REDUCTIONS}, got {how!r}")
    return out.astype(np.float32)


def normalize(maps, how: str = "minmax") -> np.ndarray:
    """Per-sample normalization (over all axes but the first).

    Args:
        how: ``"minmax"``: ``(m - min) / (max - min)`` in [0, 1]; ``"maxabs"``:
            ``m / max|m|`` in [-1, 1] (keeps sign and zero). A map with zero range (constant,
            or all zero for maxabs) becomes all zeros, never NaN. Unlike tf-keras-vis's
            ``normalize``, no epsilon is added to the denominator.

    Returns:
        float32 array of the input's shape.
    """
    arr = _as_maps(maps).astype(np.float64)
    axes = tuple(range(1, arr.ndim))
    if how == "minmax":
        lo = arr.min(axis=axes, keepdims=True)
        span = arr.max(axis=axes, keepdims=True) - lo
        shifted = arr - lo
    elif how == "maxabs":
        span = np.abs(arr).max(axis=axes, keepdims=True)
        shifted = arr
    else:
        raise ValueError(f"how must be one of {NORMALIZATIONS}, got {how!r}")
    safe = np.where(span > 0, span, 1.0)
    out = np.where(span > 0, shifted / safe, 0.0)
    return out.astype(np.float32)


def upsample(cams, size) -> np.ndarray:
    """Bilinear resize of (N, h, w) or (N, h, w, C) maps to spatial ``size = (H, W)``.

    Uses ``tf.image.resize(method="bilinear")`` (half-pixel centers, no antialiasing; the
    input is not renormalized). tf-keras-vis's ``expand_cam`` instead uses scipy's
    ``zoom(order=1)``, which aligns corners; the two differ slightly near the borders.

    Returns:
        float32 array (N, H, W) or (N, H, W, C).
    """
    import tensorflow as tf

    arr = _as_maps(cams, 3)
    if arr.ndim not in (3, 4):
        raise ValueError(f"upsample needs (N, h, w) or (N, h, w, C) maps, got shape {arr.shape}")
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (H, W) with positive entries, got {size}")
    squeeze = arr.ndim == 3
    x = arr[..., None] if squeeze else arr
    out = tf.image.resize(x.astype(np.float32), size, method="bilinear").numpy()
    return out[..., 0] if squeeze else out


def tfkerasvis_style(maps) -> np.ndarray:
    """tf-keras-vis's displayed saliency map: abs -> max over channels -> per-map min-max.

    Takes raw signed (N, H, W, C) maps (e.g. :func:`bnn_saliency.saliency.gradient`) and
    returns float32 (N, H, W) in [0, 1]. This is the pipeline behind the saliency figures of
    Widdicombe & Julier (tf-keras-vis ``Saliency`` with its defaults; tf-keras-vis adds 1e-7
    to the min-max denominator, which we do not).
    """
    return normalize(reduce_channels(abs_map(maps), "max"), "minmax")
