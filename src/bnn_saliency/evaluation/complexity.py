"""Complexity metrics ``metric(maps) -> (N,)``: entropy, Gini, total variation."""

from __future__ import annotations

import numpy as np
from scipy import special

from .registry import COMPLEXITY, _check_maps, _flat, _register


def _abs_l1(maps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = np.abs(_flat(_check_maps(maps)))
    total = m.sum(axis=1)
    zero = total == 0
    return m, total, zero


@_register(COMPLEXITY, "complexity", "lower")
def entropy(maps) -> np.ndarray:
    """Shannon entropy (nats) of the absolute map normalized to a probability distribution.

    ``p = |a| / sum|a|`` over all pixels (and channels), ``H = -sum p log p`` with ``0 log 0 = 0``.
    Ranges from 0 (one pixel holds everything) to ``log(n)`` (uniform map). Same definition as
    ``quantus.Complexity`` (Bhatt et al. 2020) with ``abs=True, normalise=False``; lower is less
    complex.

    Returns:
        (N,) float64; NaN for an all-zero map (no distribution).

    References:
        Bhatt, Weller, Moura (2020), arXiv:2005.00631.
    """
    m, total, zero = _abs_l1(maps)
    p = m / np.where(zero, 1.0, total)[:, None]
    return np.where(zero, np.nan, special.entr(p).sum(axis=1))


@_register(COMPLEXITY, "complexity", "higher")
def gini(maps) -> np.ndarray:
    """Gini index (sparseness) of the absolute map (Chalasani et al. 2020; ``quantus.Sparseness``).

    With the n absolute values sorted ascending, ``G = sum_i (2i - n - 1) a_(i) / (n sum a)``
    (i = 1..n), equivalently Hurley & Rickard's ``1 - 2 sum_k (a_(k)/||a||_1)(n - k + 1/2)/n``.
    0 for a uniform map, ``(n - 1)/n`` for a map with a single non-zero pixel. Higher is sparser.
    Unlike Quantus we do not add 1e-7 to every value (which biases G towards 0 for tiny maps).

    Returns:
        (N,) float64 in [0, (n-1)/n]; NaN for an all-zero map.

    References:
        Chalasani et al. (2020), arXiv:1810.06583. Hurley, Rickard (2009), Comparing measures of
        sparsity, IEEE Trans. Inf. Theory 55(10).
    """
    m, total, zero = _abs_l1(maps)
    n = m.shape[1]
    m = np.sort(m, axis=1)
    weights = 2.0 * np.arange(1, n + 1) - n - 1
    g = (m * weights).sum(axis=1) / (n * np.where(zero, 1.0, total))
    return np.where(zero, np.nan, g)


@_register(COMPLEXITY, "complexity", "lower")
def total_variation(maps) -> np.ndarray:
    """Normalized anisotropic total variation of the absolute map: a noise / roughness score.

    The absolute map is divided by its per-sample maximum (values in [0, 1]); the score is the mean
    absolute difference between horizontally and vertically adjacent pixels, averaged over all
    neighbour pairs and channels::

        TV = (sum |m[i+1,j]-m[i,j]| + sum |m[i,j+1]-m[i,j]|) / (C * ((H-1)W + H(W-1)))

    so it is scale-free, resolution-comparable and in [0, 1]: 0 for a constant map, 1 for a 0/1
    checkerboard. Lower is smoother.

    Returns:
        (N,) float64; NaN for an all-zero map (or a 1x1 map, which has no neighbours).
    """
    m = np.abs(_check_maps(maps))
    if m.ndim == 3:
        m = m[..., None]
    n, h, w, c = m.shape
    peak = _flat(m).max(axis=1)
    zero = peak == 0
    m = m / np.where(zero, 1.0, peak)[:, None, None, None]
    pairs = c * ((h - 1) * w + h * (w - 1))
    if pairs == 0:
        return np.full(n, np.nan)
    tv = np.abs(np.diff(m, axis=1)).sum(axis=(1, 2, 3)) + np.abs(np.diff(m, axis=2)).sum(axis=(1, 2, 3))
    return np.where(zero, np.nan, tv / pairs)
