"""Closed forms for guided backpropagation on random networks (Nie et al. 2018): patch
extraction and the half-space means of Gaussian and Rademacher weights."""

from __future__ import annotations

from typing import TYPE_CHECKING

import math

import numpy as np
from scipy import special

if TYPE_CHECKING:
    from .random_nets import RandomConvNet

WEIGHT_LAWS = ("gaussian", "rademacher")


def _check_image(image) -> np.ndarray:
    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"image must be (H, W, C), got shape {x.shape}; pass one image, not a batch")
    if not np.isfinite(x).all():
        raise ValueError("image contains NaN or inf")
    return x


def extract_patches(image, kernel: int = 7) -> np.ndarray:
    """All valid stride-1 patches ``y_j = D_j x`` as rows of a (J, k*k*C) array.

    Rows are ordered row-major over the (H-k+1) x (W-k+1) positions; each patch is flattened in
    (row, column, channel) order, the layout of a TensorFlow kernel ``(k, k, C, N)`` reshaped to
    ``(k*k*C, N)``.
    """
    x = _check_image(image)
    h, w, c = x.shape
    if not 1 <= kernel <= min(h, w):
        raise ValueError(f"kernel must be in 1..{min(h, w)} for a {h}x{w} image, got {kernel}")
    win = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(0, 1))
    # (H', W', C, k, k) -> (H', W', k, k, C)
    return np.ascontiguousarray(win.transpose(0, 1, 3, 4, 2)).reshape(-1, kernel * kernel * c)


def fold_patches(patches, shape, kernel: int = 7) -> np.ndarray:
    """Overlap-add ``sum_j D_j^T y_j``: the adjoint of :func:`extract_patches`.

    Args:
        patches: (..., J, k*k*C) array, rows in the order of :func:`extract_patches`; leading
            axes are folded independently.
        shape: (H, W, C) of the image.
        kernel: k.

    Returns:
        (..., H, W, C) float64 array.
    """
    h, w, c = shape
    hh, ww = h - kernel + 1, w - kernel + 1
    p = np.asarray(patches, dtype=np.float64)
    if p.shape[-2:] != (hh * ww, kernel * kernel * c):
        raise ValueError(f"patches must be (..., {hh * ww}, {kernel * kernel * c}) for shape "
                         f"{shape} and kernel {kernel}, got {p.shape}")
    lead = p.shape[:-2]
    p = p.reshape(lead + (hh, ww, kernel, kernel, c))
    # (k, k, ..., H', W', C): each offset's slab is contiguous
    p = np.ascontiguousarray(np.moveaxis(p, (-3, -2), (0, 1)))
    out = np.zeros(lead + (h, w, c))
    for di in range(kernel):
        for dj in range(kernel):
            out[..., di:di + hh, dj:dj + ww, :] += p[di, dj]
    return out


def gaussian_halfspace_mean(y, c: float = 1.0) -> np.ndarray:
    """``E[w 1(w.y > 0)]`` for ``w ~ N(0, c^2 I)``: exactly ``c y / (sqrt(2 pi) ||y||)``.

    Rotation invariance: write ``w = (w.u) u + w_perp`` with ``u = y/||y||``; ``w_perp`` is
    independent of ``w.u ~ N(0, c^2)`` and has mean 0, and ``E[g 1(g > 0)] = c / sqrt(2 pi)``.
    Zero for ``y = 0`` (the indicator is then 0).
    """
    y = np.asarray(y, dtype=np.float64)
    norm = np.linalg.norm(y, axis=-1, keepdims=True)
    return c * np.divide(y, math.sqrt(2 * math.pi) * norm, out=np.zeros_like(y), where=norm > 0)


def rademacher_halfspace_mean_clt(y, c: float = 1.0) -> np.ndarray:
    """Central-limit approximation of ``E[w 1(w.y > 0)]`` for Rademacher ``w = c * eps``.

    Exactly, ``E[eps_m 1(eps.y > 0)] = 1/2 sign(y_m) P(-|y_m| < S_m <= |y_m|)`` with
    ``S_m = sum_{l != m} eps_l y_l`` (condition on ``eps_m``; ``S_m`` is symmetric). Replacing
    ``S_m`` by ``N(0, sigma_m^2)``, ``sigma_m^2 = ||y||^2 - y_m^2``, gives
    ``c/2 sign(y_m) erf(|y_m| / (sqrt(2) sigma_m))``; to first order in ``|y_m|/sigma_m`` this is
    the Gaussian value ``c y_m / (sqrt(2 pi) ||y||)``. It is an approximation (lattice effects,
    higher cumulants); :func:`rademacher_halfspace_mean_exact` is exact for integer patches.
    """
    y = np.asarray(y, dtype=np.float64)
    sq = (y * y).sum(axis=-1, keepdims=True)
    sigma = np.sqrt(np.maximum(sq - y * y, 0.0))
    a = np.abs(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(sigma > 0, a / (math.sqrt(2) * np.where(sigma > 0, sigma, 1.0)), np.inf)
    ratio = np.where(a > 0, ratio, 0.0)
    return 0.5 * c * np.sign(y) * special.erf(ratio)


def rademacher_halfspace_mean_exact(y, c: float = 1.0) -> np.ndarray:
    """Exact ``E[w 1(w.y > 0)]`` for Rademacher ``w = c * eps`` and an integer-valued vector ``y``.

    Uses ``E[eps_m 1(eps.y > 0)] = 1/2 sign(y_m) P(-|y_m| < S_m <= |y_m|)`` and the exact law of
    the integer random variable ``S_m = sum_{l != m} eps_l y_l``, obtained from its
    characteristic function ``prod_{l != m} cos(t y_l)`` on a DFT grid of length
    ``M = 2 sum|y| + 1`` (no aliasing). Prefix/suffix products give every leave-one-out product
    without division. Exact up to floating-point rounding (~1e-12); cost O(p * sum|y| log).

    Args:
        y: 1-D array of integers (e.g. an 8-bit image patch); floats must be integral.
        c: weight magnitude.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D patch vector, got shape {y.shape}")
    if not np.all(np.isfinite(y)) or not np.array_equal(y, np.round(y)):
        raise ValueError("the exact formula needs integer-valued y (e.g. uint8 pixels); "
                         "use rademacher_halfspace_mean_clt for real-valued patches")
    yi = np.round(y).astype(np.int64)
    a = np.abs(yi)
    total = int(a.sum())
    if total == 0:
        return np.zeros(len(yi))
    m_len = 2 * total + 1
    k = np.arange(m_len // 2 + 1)
    phi = np.cos(2 * np.pi * np.outer(a, k) / m_len)  # (p, M//2+1), real and even in k
    p = len(yi)
    pre = np.ones((p + 1, len(k)))
    suf = np.ones((p + 1, len(k)))
    for m in range(p):
        pre[m + 1] = pre[m] * phi[m]
        suf[p - 1 - m] = suf[p - m] * phi[p - 1 - m]
    out = np.zeros(p)
    # Equal |y_m| share the law of S_m: compute once per distinct value.
    values, first = np.unique(a, return_index=True)
    for val, m in zip(values, first):
        if val == 0:
            continue
        q = np.fft.irfft(pre[m] * suf[m + 1], n=m_len)  # law of S_m at s mod M
        q = np.roll(q, total)  # index s + total
        cdf = np.cumsum(q)
        prob = cdf[total + val] - cdf[total - val]  # P(-val < S_m <= val)
        out[a == val] = 0.5 * prob
    return c * np.sign(yi) * out


def dense_positive_mean(law: str = "gaussian", c_v: float = 1.0) -> float:
    """``E[relu(v)]``: ``c_v / sqrt(2 pi)`` for ``N(0, c_v^2)``, ``c_v / 2`` for ``+-c_v``."""
    _check_law(law)
    return c_v / math.sqrt(2 * math.pi) if law == "gaussian" else c_v / 2


def closed_form_gbp(image, kernel: int = 7, law: str = "gaussian") -> np.ndarray:
    """Unit-scale expected GBP map of a random conv net, ``sum_j D_j^T E[w 1(w.y_j>0)]`` (c = 1).

    With ``law="gaussian"`` this is ``(1/sqrt(2 pi)) sum_j D_j^T y_j / ||y_j||`` and
    ``E[GBP] = N * c * E[relu(V)] * closed_form_gbp(x)`` exactly (Nie et al. 2018, eq. 5 up to
    the constant). ``law="rademacher"`` uses the central-limit per-patch factor of
    :func:`rademacher_halfspace_mean_clt` (an approximation). Zero patches contribute 0.
    """
    x = _check_image(image)
    _check_law(law)
    y = extract_patches(x, kernel)
    e = gaussian_halfspace_mean(y) if law == "gaussian" else rademacher_halfspace_mean_clt(y)
    return fold_patches(e, x.shape, kernel)


def expected_gbp(net: "RandomConvNet", image, unit=None) -> np.ndarray:
    """``E[GBP]`` of ``net``'s architecture over its weight law (Gaussian exact; Rademacher CLT).

    Zero for sign activations (the STE window is even in ``w``). ``unit`` may pass a
    precomputed ``closed_form_gbp(image, net.kernel, net.weights)``.
    """
    x = _check_image(image)
    if net.activation == "sign":
        return np.zeros_like(x)
    scale = net.n_filters * net.c * dense_positive_mean(net.dense, net.c_v)
    if unit is None:
        unit = closed_form_gbp(x, net.kernel, net.weights)
    return scale * np.asarray(unit, dtype=np.float64)


def _check_law(law: str) -> None:
    if law not in WEIGHT_LAWS:
        raise ValueError(f"unknown weight law {law!r}; choose one of {WEIGHT_LAWS}")


def _draw(rng: np.random.Generator, law: str, shape, scale: float, dtype) -> np.ndarray:
    if law == "gaussian":
        return scale * rng.standard_normal(shape, dtype=dtype)
    return (scale * (2.0 * rng.integers(0, 2, size=shape, dtype=np.int8) - 1.0)).astype(dtype)
