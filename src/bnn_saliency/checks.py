"""Input checks shared by the library: a batch of images and its target classes.

Every public function that takes images and targets validates them here, so the same bad
input gets the same clear error everywhere (and says what to do).
"""

from __future__ import annotations

import numpy as np


def images(x, name: str = "images") -> np.ndarray:
    """``x`` as an array after checking it is a non-empty, finite, floating-point (N, H, W, C)
    batch. Tensors are converted."""
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point (float) array, got dtype {x.dtype}; "
                        "convert uint8 images first (e.g. bnn_saliency.data.to_float)")
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (N, H, W, C), got shape {x.shape}; "
                         f"for a single image pass {name}[None]")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (N = 0); pass at least one image")
    if not np.all(np.isfinite(x)):
        bad = int(x.size - np.count_nonzero(np.isfinite(x)))
        raise ValueError(f"{name} contain {bad} NaN or infinite values; pass finite values")
    return x


def targets(t, n: int, n_classes: int | None = None) -> np.ndarray:
    """int64 class indices, one per image: a scalar is repeated ``n`` times; with
    ``n_classes`` every index must lie in ``[0, n_classes)``."""
    if hasattr(t, "numpy") and not isinstance(t, np.ndarray):
        t = t.numpy()
    t = np.asarray(t)
    if t.dtype.kind not in "iu":
        raise TypeError(f"targets must be integer class indices, got dtype {t.dtype}")
    if t.ndim == 0:
        t = np.full(n, int(t))
    if t.shape != (n,):
        raise ValueError(f"targets must have shape ({n},) (one class per image) or be a scalar, "
                         f"got shape {t.shape}")
    if n_classes is not None:
        bad = (t < 0) | (t >= n_classes)
        if bad.any():
            raise ValueError(f"targets must be in [0, {n_classes}); got "
                             f"{sorted(set(t[bad].tolist()))[:5]}")
    return t.astype(np.int64)
