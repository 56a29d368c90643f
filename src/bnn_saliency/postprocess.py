"""Post-processing of saliency maps: abs, channel reduction, normalization, upsampling.

Saliency methods (:mod:`bnn_saliency.methods`) return raw maps: pixel methods (N, H, W, C)
signed, CAM methods (N, h, w). Everything that turns them into pictures or comparable maps
is a separate, named step here, so that chapters state exactly which pipeline they use.
tf-keras-vis's displayed saliency map, as used by Widdicombe & Julier, is
:func:`tfkerasvis_style`: abs -> max over channels -> per-map min-max.
"""

from __future__ import annotations

import numpy as np

#: Channel reductions ``(N, H, W, C) -> (N, H, W)`` by name (the one table, also used by the
#: metrics' ``reduce=`` argument).
CHANNEL_REDUCTIONS: dict = {
    "max": lambda m: m.max(axis=-1),
    "sum": lambda m: m.sum(axis=-1),
    "mean": lambda m: m.mean(axis=-1),
    "l2": lambda m: np.sqrt((m ** 2).sum(axis=-1)),
    "abs_max": lambda m: np.abs(m).max(axis=-1),
    "abs_sum": lambda m: np.abs(m).sum(axis=-1),
    "abs_mean": lambda m: np.abs(m).mean(axis=-1),
}
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


def reduce_channels(maps, how: str = "max", dtype=np.float32) -> np.ndarray:
    """Collapse the channel axis of (N, H, W, C) maps to (N, H, W).

    Args:
        how: a name in :data:`CHANNEL_REDUCTIONS`: ``"max"`` (signed max over channels,
            tf-keras-vis's ``keepdims=False``), ``"sum"``, ``"mean"``, ``"l2"`` (Euclidean norm
            over channels), ``"abs_max"`` (max of ``|map|``), ``"abs_sum"``, ``"abs_mean"``.
        dtype: of the result (computed in float64).

    Returns:
        (N, H, W) array of ``dtype``.
    """
    arr = _as_maps(maps)
    if arr.ndim != 4:
        raise ValueError(f"reduce_channels needs (N, H, W, C) maps, got shape {arr.shape}")
    if how not in CHANNEL_REDUCTIONS:
        raise ValueError(f"how must be one of {sorted(CHANNEL_REDUCTIONS)}, got {how!r}")
    return CHANNEL_REDUCTIONS[how](arr.astype(np.float64)).astype(dtype)


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


def upsample(maps, size, dtype=np.float32) -> np.ndarray:
    """Bilinear resize of (N, h, w) or (N, h, w, C) maps to spatial ``size = (H, W)``: the one
    upsampling of the package (CAMs for display, for Average Drop and for agreement).

    OpenCV's ``INTER_LINEAR`` in float64: half-pixel centers, edge values clamped, no
    antialiasing, the input not renormalized (what common Grad-CAM code uses; equal to
    ``tf.image.resize(method="bilinear")`` up to float32 rounding). tf-keras-vis's
    ``expand_cam`` instead uses scipy's ``zoom(order=1)``, which aligns corners; the two
    differ slightly near the borders.

    Returns:
        (N, H, W) or (N, H, W, C) array of ``dtype``.
    """
    import cv2

    arr = _as_maps(maps, 3)
    if arr.ndim not in (3, 4):
        raise ValueError(f"upsample needs (N, h, w) or (N, h, w, C) maps, got shape {arr.shape}")
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (H, W) with positive entries, got {size}")
    arr = arr.astype(np.float64)
    if arr.shape[1:3] != size:
        def one(m):
            return cv2.resize(m, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        if arr.ndim == 3:
            arr = np.stack([one(m) for m in arr])
        else:
            arr = np.stack([np.stack([one(m[..., c]) for c in range(arr.shape[-1])], -1)
                            for m in arr])
    return arr.astype(dtype)


def tfkerasvis_style(maps) -> np.ndarray:
    """tf-keras-vis's displayed saliency map: abs -> max over channels -> per-map min-max.

    Takes raw signed (N, H, W, C) maps (e.g. :func:`bnn_saliency.methods.gradient`) and
    returns float32 (N, H, W) in [0, 1]. This is the pipeline behind the saliency figures of
    Widdicombe & Julier (tf-keras-vis ``Saliency`` with its defaults; tf-keras-vis adds 1e-7
    to the min-max denominator, which we do not).
    """
    return normalize(reduce_channels(abs_map(maps), "max"), "minmax")
