"""Metric registries (with Quantus-style ``category``/``score_direction`` attributes) and
the input checks and reductions the metrics share."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..postprocess import CHANNEL_REDUCTIONS, reduce_channels

SIMILARITY: dict[str, Callable] = {}


COMPLEXITY: dict[str, Callable] = {}


FAITHFULNESS: dict[str, Callable] = {}


#: Channel reductions accepted by the ``reduce`` argument: :data:`bnn_saliency.postprocess.CHANNEL_REDUCTIONS`.
REDUCTIONS = CHANNEL_REDUCTIONS


def _register(registry: dict, category: str, direction: str):
    def deco(func):
        func.category = category
        func.score_direction = direction
        registry[func.__name__] = func
        return func
    return deco


def _check_maps(maps, name: str = "maps") -> np.ndarray:
    """float64 copy of a batch of maps, after checking shape, emptiness and finiteness."""
    arr = np.asarray(maps)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim not in (3, 4):
        raise ValueError(
            f"{name} must have shape (N,H,W) or (N,H,W,C), got {arr.shape}; "
            "for a single map add a batch axis with maps[None]"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (N=0); pass at least one map")
    if arr.size == 0:
        raise ValueError(f"{name} has a zero-sized spatial or channel axis: {arr.shape}")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{name} contains NaN or inf in samples {np.flatnonzero(bad)[:10].tolist()}; "
            "fix or drop those maps before scoring them"
        )
    return arr


def _check_pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = _check_maps(a, "maps_a")
    b = _check_maps(b, "maps_b")
    if a.shape != b.shape:
        raise ValueError(
            f"maps_a and maps_b must have the same shape, got {a.shape} and {b.shape}; "
            "reduce channels / upsample both to a common shape first"
        )
    return a, b


def _to_2d(maps: np.ndarray, reduce, name: str = "maps") -> np.ndarray:
    """(N,H,W) maps; (N,H,W,1) is squeezed, (N,H,W,C>1) needs an explicit ``reduce``."""
    if maps.ndim == 3:
        return maps
    if reduce is None:
        if maps.shape[-1] == 1:
            return maps[..., 0]
        raise ValueError(
            f"{name} has {maps.shape[-1]} channels but this metric needs 2-D maps; reduce the "
            f"channels first or pass reduce= one of {sorted(REDUCTIONS)} or a callable"
        )
    if callable(reduce):
        out = np.asarray(reduce(maps), dtype=np.float64)
    elif reduce in REDUCTIONS:
        out = reduce_channels(maps, reduce, dtype=np.float64)
    else:
        raise ValueError(f"unknown reduce {reduce!r}; use one of {sorted(REDUCTIONS)} or a callable")
    if out.shape != maps.shape[:3]:
        raise ValueError(f"reduce must map {maps.shape} to {maps.shape[:3]}, got {out.shape}")
    return out


def _flat(maps: np.ndarray) -> np.ndarray:
    return maps.reshape(maps.shape[0], -1)


def _constant(x2: np.ndarray) -> np.ndarray:
    """Rows of a (N, D) array with zero range."""
    return np.ptp(x2, axis=1) == 0


def _minmax(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample min-max normalization to [0, 1]; constant samples become 0 and are flagged."""
    flat = _flat(maps)
    lo = flat.min(axis=1)
    rng = flat.max(axis=1) - lo
    const = rng == 0
    shape = (-1,) + (1,) * (maps.ndim - 1)
    out = (maps - lo.reshape(shape)) / np.where(const, 1.0, rng).reshape(shape)
    out[const] = 0.0
    return out, const


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of matching rows of two (N, D) arrays; NaN where a row is constant."""
    undefined = _constant(x) | _constant(y)
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    undefined |= den == 0
    r = (xc * yc).sum(axis=1) / np.where(undefined, 1.0, den)
    return np.where(undefined, np.nan, np.clip(r, -1.0, 1.0))
