"""Guided backpropagation on random shallow networks: exact maps, closed form, binarized variants.

Nie et al. (2018) explain why guided backpropagation (GBP) produces crisp, class-insensitive maps:
on a network with random weights it performs (partial) *image recovery*. Their analysis uses two
three-layer networks that this module implements exactly in NumPy, so that GBP and the plain
gradient are computed in closed form (no autodiff) for arbitrarily many filters or hidden units:

* :class:`RandomConvNet`: input image ``x`` (H, W, C) -> ``N`` filters ``w_i`` of size k x k x C,
  stride 1, no padding ("valid"), so ``z_ij = w_i . y_j`` with patch ``y_j = D_j x`` -> activation
  (ReLU, or sign with a straight-through estimator) -> fully connected logits
  ``f_k = sum_ij V[k, i, j] a_ij``.
* :class:`RandomFCNet`: ``x`` flattened to ``R^d`` -> ``N_h`` hidden ReLU units -> logits.

Notation (used by the book chapter): ``D_j`` is the 0/1 matrix (p x d, p = k*k*C) that extracts
the j-th k x k patch (row-major over the (H-k+1)(W-k+1) valid positions, each patch flattened in
(row, column, channel) order); ``D_j^T`` puts a patch back into an otherwise zero image, so
``sum_j D_j^T y_j`` is the overlap-add of patches (:func:`fold_patches`).

Backward rules, for logit k (the backward signal reaching unit (i, j) is ``V[k, i, j]``):

* gradient: ``s = sum_ij V[k,i,j] act'(z_ij) D_j^T w_i``
* GBP (Springenberg et al. 2014): ``s = sum_ij relu(V[k,i,j]) act'(z_ij) D_j^T w_i``
  (the backward signal is rectified at every ReLU).
* ReLU: ``act'(z) = 1(z > 0)`` (as TensorFlow). Sign with STE (larq ``ste_sign``):
  ``act'(z) = 1(|z| <= t)``, ``t = 1`` by default; GBP on a sign unit rectifies the backward
  signal the same way ("guided STE").

Weights are generated on demand from ``numpy.random.default_rng`` streams keyed by
``(seed, block)``: explaining logit k uses only the k-th slice of the dense layer, which is never
materialized for all logits, and a network with ``N`` filters is the prefix of the one with
``2N`` (same seed), which lets one pass produce a whole sweep over ``N``.

Closed form (expectation over the weights, Gaussian case, exact): with ``w ~ N(0, c^2 I)`` and
``V ~ N(0, c_v^2)`` independent, ``E[w 1(w.y > 0)] = c y / (sqrt(2 pi) ||y||)`` and
``E[relu(V)] = c_v / sqrt(2 pi)``, so

    E[s_GBP] = N * c * c_v / (2 pi) * sum_j D_j^T y_j / ||y_j||

(:func:`closed_form_gbp` is the unit-scale sum, :func:`expected_gbp` the scaled expectation)

while ``E[s_gradient] = 0`` (``E[V] = 0``). For Rademacher weights ``w = c * eps`` the per-patch
factor ``E[eps 1(eps.y > 0)]`` is not exactly proportional to ``y`` (see
:func:`rademacher_halfspace_mean_exact`); for sign activations ``act'`` is even in ``w``, so
``E[w 1(|w.y| <= t)] = 0`` and GBP loses its image term.

The chapter's experiments (untrained VGG16 and twins, sweeps over filters, hidden units and
binarized variants, the Rademacher factor on natural patches) are the functions of the last
section, from :func:`untrained_logit_maps` to :func:`untrained_twin_table`.

References:
    Nie, W., Zhang, Y., Patel, A. (2018). A Theoretical Explanation for Perplexing Behaviors of
        Backpropagation-based Visualizations. ICML. arXiv:1805.07039.
    Springenberg, J. T., Dosovitskiy, A., Brox, T., Riedmiller, M. (2014). Striving for
        Simplicity: The All Convolutional Net. arXiv:1412.6806.
    Courbariaux, M., Hubara, I., Soudry, D., El-Yaniv, R., Bengio, Y. (2016). Binarized Neural
        Networks. arXiv:1602.02830 (sign activations, straight-through estimator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from scipy import special

from .memo import cached

WEIGHT_LAWS = ("gaussian", "rademacher")
ACTIVATIONS = ("relu", "sign")
METHODS = ("gbp", "gradient")
_SMALL_SEGMENT = 4  # conv_sweep folds segments of <= 4 filters directly in image space

#: Random-network variants named like the CIFAR twins (the dense classifier stays Gaussian).
VARIANTS = {
    "fp": dict(weights="gaussian", activation="relu"),
    "binw": dict(weights="rademacher", activation="relu"),
    "bina": dict(weights="gaussian", activation="sign"),
    "bnn": dict(weights="rademacher", activation="sign"),
}


# ------------------------------------------------------------------------------ patches
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


# ------------------------------------------------------------------------------ expectations
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


# ------------------------------------------------------------------------------ conv net
@dataclass(frozen=True)
class RandomConvNet:
    """Random three-layer conv net: k x k x C conv (N filters, stride 1, valid) -> act -> dense.

    Attributes:
        n_filters: N.
        kernel: k (default 7, as Nie et al.).
        channels: C (default 3).
        weights: conv kernel law, ``"gaussian"`` (``N(0, c^2)``) or ``"rademacher"`` (``+-c``).
        activation: ``"relu"`` or ``"sign"`` (forward ``sign(z)`` with sign(0) = +1, backward
            straight-through ``1(|z| <= ste_window)``, as larq's ``ste_sign``).
        dense: law of the dense (classifier) weights, default ``"gaussian"`` ``N(0, c_v^2)``.
        c: conv weight scale; default ``1/sqrt(k*k*C)`` (fan-in) when None.
        c_v: dense weight scale, default 1.
        ste_window: t of the STE, default 1.
        seed: network seed. Filters come in blocks of :attr:`BLOCK` from the stream
            ``(seed, 0, block)``, dense weights of logit k from ``(seed, 1, k, block)``.
        dtype: generation and compute dtype (default float64; float32 halves the cost, and
            draws different numbers for the same seed). Maps are accumulated in float64.
    """

    n_filters: int
    kernel: int = 7
    channels: int = 3
    weights: str = "gaussian"
    activation: str = "relu"
    dense: str = "gaussian"
    c: float | None = None
    c_v: float = 1.0
    ste_window: float = 1.0
    seed: int = 0
    dtype: str = "float64"

    BLOCK: ClassVar[int] = 64

    def __post_init__(self):
        if not (isinstance(self.n_filters, (int, np.integer)) and self.n_filters >= 1):
            raise ValueError(f"n_filters must be a positive int, got {self.n_filters!r}")
        _check_law(self.weights)
        _check_law(self.dense)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.c is None:
            object.__setattr__(self, "c", 1.0 / math.sqrt(self.kernel ** 2 * self.channels))

    @classmethod
    def variant(cls, name: str, n_filters: int, seed: int = 0, **kw) -> "RandomConvNet":
        """A named variant of :data:`VARIANTS` (``fp``, ``binw``, ``bina``, ``bnn``)."""
        if name not in VARIANTS:
            raise KeyError(f"unknown variant {name!r}; choose one of {sorted(VARIANTS)}")
        return cls(n_filters=n_filters, seed=seed, **VARIANTS[name], **kw)

    @property
    def patch_dim(self) -> int:
        return self.kernel * self.kernel * self.channels

    def n_blocks(self, n: int | None = None) -> int:
        return -(-(self.n_filters if n is None else n) // self.BLOCK)

    def filters(self, block: int, n: int | None = None) -> np.ndarray:
        """The first ``n`` (default BLOCK) filters of block ``block`` as columns, (k*k*C, n).

        Drawn filter by filter from the block's stream, so fewer filters are a prefix.
        """
        rng = np.random.default_rng([self.seed, 0, block])
        n = self.BLOCK if n is None else n
        return _draw(rng, self.weights, (n, self.patch_dim), self.c, self.dtype).T

    def dense_weights(self, target: int, block: int, n_positions: int, n: int | None = None
                      ) -> np.ndarray:
        """Dense weights from the first ``n`` filters of block ``block`` to logit ``target``,
        (J, n); drawn filter by filter (prefix property as :meth:`filters`)."""
        rng = np.random.default_rng([self.seed, 1, int(target), block])
        n = self.BLOCK if n is None else n
        return _draw(rng, self.dense, (n, n_positions), self.c_v, self.dtype).T

    def kernel_tensor(self) -> np.ndarray:
        """All filters as a TensorFlow conv kernel (k, k, C, N) (for tests / autodiff oracles)."""
        w = np.concatenate([self.filters(b) for b in range(self.n_blocks())], axis=1)
        return w[:, :self.n_filters].reshape(self.kernel, self.kernel, self.channels, -1)

    def dense_tensor(self, target: int, out_hw: tuple[int, int]) -> np.ndarray:
        """Dense weights of logit ``target`` as an (H', W', N) array (for tests)."""
        j = out_hw[0] * out_hw[1]
        v = np.concatenate([self.dense_weights(target, b, j) for b in range(self.n_blocks())], 1)
        return v[:, :self.n_filters].reshape(out_hw[0], out_hw[1], -1)

    def _act(self, z):
        return np.maximum(z, 0) if self.activation == "relu" else np.where(z >= 0, 1.0, -1.0)

    def _mask(self, z):
        return z > 0 if self.activation == "relu" else np.abs(z) <= self.ste_window


def _check_batch(images, targets) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C), got shape {x.shape}")
    t = np.asarray(targets)
    if t.ndim == 0:
        t = np.full(len(x), int(t))
    if t.shape != (len(x),) or not np.issubdtype(t.dtype, np.integer) or (t < 0).any():
        raise ValueError(f"targets must be non-negative ints, one per image ({len(x)}), got {targets!r}")
    return x, t


def _sizes(sizes, n_max: int) -> list[int]:
    s = sorted({int(v) for v in ([n_max] if sizes is None else sizes)})
    if s[0] < 1 or s[-1] > n_max:
        raise ValueError(f"sizes must be in 1..{n_max}, got {sizes}")
    return s


def conv_sweep(net: RandomConvNet, image, target: int, sizes=None, patches=None
               ) -> dict[str, np.ndarray]:
    """GBP and gradient maps of the prefix networks with ``sizes`` filters, in one pass.

    Args:
        net: the network (its ``n_filters`` bounds ``sizes``).
        image: (H, W, C) array.
        target: logit index k (any non-negative int; logits are never enumerated).
        sizes: filter counts, default ``[net.n_filters]``.
        patches: optional precomputed ``extract_patches(image, net.kernel)`` (to reuse it
            across many networks).

    Returns:
        ``{"sizes": (S,), "gbp": (S, H, W, C), "gradient": (S, H, W, C)}``.
    """
    x = _check_image(image)
    if x.shape[-1] != net.channels:
        raise ValueError(f"image has {x.shape[-1]} channels, the net expects {net.channels}")
    sizes = _sizes(sizes, net.n_filters)
    y = extract_patches(x, net.kernel) if patches is None else np.asarray(patches)
    y = y.astype(net.dtype, copy=False)  # compute in the net's dtype
    j = len(y)
    hh, ww = x.shape[0] - net.kernel + 1, x.shape[1] - net.kernel + 1
    acc = None  # patch-space sums (2, J, p) for large segments
    direct = np.zeros((2,) + x.shape)  # image-space sums for small segments
    out = {m: [] for m in METHODS}
    done = 0
    for b in range(net.n_blocks(sizes[-1])):
        start = b * net.BLOCK
        used = min(net.BLOCK, sizes[-1] - start)
        w_all = net.filters(b, used)
        v_all = net.dense_weights(target, b, j, used)
        stops = [s - start for s in sizes if start < s <= start + net.BLOCK]
        if not stops or stops[-1] != min(net.BLOCK, sizes[-1] - start):
            stops.append(min(net.BLOCK, sizes[-1] - start))
        lo = 0
        for hi in stops:
            w, v = w_all[:, lo:hi], v_all[:, lo:hi]
            mask = net._mask(y @ w)
            signal = np.stack([np.maximum(v, 0) * mask, v * mask])  # (2, J, n)
            if hi - lo <= _SMALL_SEGMENT:  # transposed convolution, filter by filter
                sig = signal.reshape(2, hh, ww, hi - lo)
                ker = w.reshape(net.kernel, net.kernel, net.channels, hi - lo)
                for di in range(net.kernel):
                    for dj in range(net.kernel):
                        direct[:, di:di + hh, dj:dj + ww] += sig @ ker[di, dj].T
            else:  # one GEMM into patch space, folded at the checkpoints
                if acc is None:
                    acc = np.zeros((2, j, net.patch_dim))
                acc += signal @ w.T  # accumulated in float64
            lo = hi
            if start + hi in sizes and start + hi > done:
                done = start + hi
                folded = direct.copy()
                if acc is not None:
                    folded += fold_patches(acc, x.shape, net.kernel)  # both methods at once
                for i, m in enumerate(METHODS):
                    out[m].append(folded[i])
    return {"sizes": np.array(sizes), **{m: np.stack(v) for m, v in out.items()}}


def conv_logits(net: RandomConvNet, images, targets) -> np.ndarray:
    """Logits ``f_k(x)`` of the requested ``targets`` (one per image)."""
    x, t = _check_batch(images, targets)
    out = np.zeros(len(x))
    for n, (img, k) in enumerate(zip(x, t)):
        y = extract_patches(img, net.kernel)
        for b in range(net.n_blocks()):
            hi = min(net.BLOCK, net.n_filters - b * net.BLOCK)
            a = net._act(y @ net.filters(b)[:, :hi])
            out[n] += (net.dense_weights(k, b, len(y))[:, :hi] * a).sum()
    return out


# ------------------------------------------------------------------------------ FC net
@dataclass(frozen=True)
class RandomFCNet:
    """Random three-layer fully connected net: ``R^d -> N_h`` ReLU units -> logits.

    Attributes:
        n_hidden: N_h.
        c, c_v: scales of the Gaussian first-layer and dense weights (default 1).
        seed: rows ``block*BLOCK ...`` of the first layer come from the stream
            ``(seed, 0, block)``, the dense weights of logit k from ``(seed, 1, k, block)``.
        dtype: generation/compute dtype, default float32 (first-layer blocks are BLOCK x d).
    """

    n_hidden: int
    c: float = 1.0
    c_v: float = 1.0
    seed: int = 0
    dtype: str = "float32"

    BLOCK: ClassVar[int] = 1024

    def __post_init__(self):
        if not (isinstance(self.n_hidden, (int, np.integer)) and self.n_hidden >= 1):
            raise ValueError(f"n_hidden must be a positive int, got {self.n_hidden!r}")

    def n_blocks(self, n: int | None = None) -> int:
        return -(-(self.n_hidden if n is None else n) // self.BLOCK)

    def first_layer(self, block: int, d: int, n: int | None = None) -> np.ndarray:
        """The first ``n`` (default BLOCK) rows of the first layer in block ``block``: (n, d)."""
        rng = np.random.default_rng([self.seed, 0, block])
        return _draw(rng, "gaussian", (self.BLOCK if n is None else n, d), self.c, self.dtype)

    def dense_weights(self, target: int, block: int, n: int | None = None) -> np.ndarray:
        """Dense weights from the first ``n`` hidden units of block ``block`` to logit ``target``."""
        rng = np.random.default_rng([self.seed, 1, int(target), block])
        return _draw(rng, "gaussian", (self.BLOCK if n is None else n,), self.c_v, self.dtype)


def fc_sweep(net: RandomFCNet, image, target: int, sizes=None) -> dict[str, np.ndarray]:
    """GBP and gradient of the prefix FC networks with ``sizes`` hidden units, chunked.

    Memory is one block of the first layer (BLOCK x d) at a time. Returns the same dict layout
    as :func:`conv_sweep`.
    """
    x = _check_image(image)
    sizes = _sizes(sizes, net.n_hidden)
    flat = x.ravel().astype(net.dtype)
    acc = np.zeros((2, flat.size))
    out = {m: [] for m in METHODS}
    for b in range(net.n_blocks(sizes[-1])):
        start = b * net.BLOCK
        used = min(net.BLOCK, sizes[-1] - start)
        w_all = net.first_layer(b, flat.size, used)
        v_all = net.dense_weights(target, b, used)
        stops = [s - start for s in sizes if start < s <= start + net.BLOCK]
        if not stops or stops[-1] != min(net.BLOCK, sizes[-1] - start):
            stops.append(min(net.BLOCK, sizes[-1] - start))
        lo = 0
        for hi in stops:
            w, v = w_all[lo:hi], v_all[lo:hi]
            mask = (w @ flat) > 0
            signal = np.stack([np.maximum(v, 0) * mask, v * mask]).astype(net.dtype)
            acc += (signal @ w).astype(np.float64)
            lo = hi
            if start + hi in sizes:
                for i, m in enumerate(METHODS):
                    out[m].append(acc[i].reshape(x.shape).copy())
    return {"sizes": np.array(sizes), **{m: np.stack(v) for m, v in out.items()}}


def fc_sweep_in_law(image, sizes, seed: int = 0, c: float = 1.0, c_v: float = 1.0
                    ) -> dict[str, np.ndarray]:
    """Maps with the exact joint law of :func:`fc_sweep`'s (over Gaussian weights), in O(N_h + d).

    With ``u = x/||x||`` write each first-layer row ``w_i = a_i u + P w_i`` (``P`` projects
    orthogonally to ``u``); ``a_i ~ N(0, c^2)`` is independent of ``P w_i ~ N(0, c^2 P)``. The
    backward weights ``b_i`` (``relu(v_i) 1(a_i > 0)`` for GBP, ``v_i 1(a_i > 0)`` for the
    gradient) depend on ``(a_i, v_i)`` only, so ``sum_i b_i w_i = u sum_i b_i a_i + ||b|| P g``
    with ``g ~ N(0, c^2 I)``; increments between successive sizes are independent. This samples
    the same distribution of maps as an explicit network (not the same network as a given seed
    of :class:`RandomFCNet`), which makes N_h = 10^6 cheap.
    """
    x = _check_image(image)
    sizes = _sizes(sizes, max(int(s) for s in sizes))
    flat = x.ravel()
    u = flat / np.linalg.norm(flat)
    rng = np.random.default_rng([seed, 2])
    out = {m: [] for m in METHODS}
    along = np.zeros(2)
    perp = np.zeros((2, flat.size))
    prev = 0
    for s in sizes:
        n = s - prev
        a = c * rng.standard_normal(n)
        v = c_v * rng.standard_normal(n)
        on = a > 0
        for i, b in enumerate((np.maximum(v, 0) * on, v * on)):
            along[i] += (b * a).sum()
            g = c * rng.standard_normal(flat.size)
            perp[i] += math.sqrt((b * b).sum()) * (g - (g @ u) * u)
        for i, m in enumerate(METHODS):
            out[m].append((along[i] * u + perp[i]).reshape(x.shape))
        prev = s
    return {"sizes": np.array(sizes), **{m: np.stack(v) for m, v in out.items()}}


def fc_predicted_correlation(image, n_hidden) -> np.ndarray:
    """Large-N_h prediction of the Pearson correlation between the FC net's GBP map and ``x``.

    From :func:`fc_sweep_in_law`: signal ``A = sum b_i a_i ~ N_h c c_v / (2 pi)``, noise power
    ``sum b_i^2 ~ N_h c_v^2 / 4`` per unit of ``c^2`` and per dimension, hence
    ``r ~ 1 / sqrt(1 + pi^2 d / (N_h rho^2))`` with ``rho = ||x - mean(x)|| / ||x||``.
    """
    flat = _check_image(image).ravel()
    rho = np.linalg.norm(flat - flat.mean()) / np.linalg.norm(flat)
    n = np.asarray(n_hidden, dtype=np.float64)
    return 1.0 / np.sqrt(1.0 + math.pi ** 2 * flat.size / (n * rho ** 2))


# ------------------------------------------------------------------------------ analysis
def relative_error(maps, reference) -> np.ndarray:
    """``||m - ref|| / ||ref||`` per map (maps (S, ...) against one reference)."""
    m = np.asarray(maps, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    diff = (m - r).reshape(len(m), -1)
    return np.linalg.norm(diff, axis=1) / np.linalg.norm(r)


def rms_slope_ci(blocks, n_boot: int = 2000, ci: float = 0.95, seed: int = 0
                 ) -> tuple[float, float, float]:
    """Log-log slope of the root-mean-square error against ``n``, with a bootstrap CI.

    The theory predicts ``E[err^2] = C / n`` exactly (i.i.d. filters), i.e. slope -1/2 for
    ``sqrt(mean err^2)``. The squared errors are pooled over units first (the mean of
    per-network slopes of ``log err`` is biased towards 0 at small ``n``, since
    ``E log err < log sqrt(E err^2)`` when ``err`` varies); images carry different constants
    ``C``, which a common slope absorbs.

    Args:
        blocks: list of ``(sizes, errors)``; ``errors`` is (S_b, I, K_b): S_b network seeds,
            the same I images in every block, K_b = len(sizes). Blocks hold independent
            networks (e.g. many single-filter nets for n = 1 and a nested sweep for large n);
            sizes must not repeat across blocks.
        n_boot, ci, seed: bootstrap replicates, coverage and generator seed. Each replicate
            resamples the seeds of every block independently and the images once for all
            blocks (crossed design).

    Returns:
        (slope, low, high).
    """
    sizes, tables = [], []
    for n, err in blocks:
        e2 = np.asarray(err, dtype=np.float64) ** 2
        if e2.ndim != 3 or e2.shape[2] != len(n):
            raise ValueError(f"errors must be (seeds, images, len(sizes)), got {e2.shape}")
        sizes.extend(int(v) for v in n)
        tables.append(e2)
    if len(set(sizes)) != len(sizes) or len({t.shape[1] for t in tables}) != 1:
        raise ValueError("sizes must not repeat across blocks, and every block needs the same images")
    logn = np.log(np.asarray(sizes, dtype=np.float64))

    def slope(picks_s, pick_i):
        ms = [t[ps][:, pick_i].mean(axis=(0, 1)) for t, ps in zip(tables, picks_s)]
        return np.polyfit(logn, 0.5 * np.log(np.concatenate(ms)), 1)[0]

    n_img = tables[0].shape[1]
    point = slope([np.arange(len(t)) for t in tables], np.arange(n_img))
    rng = np.random.default_rng(seed)
    boots = [slope([rng.integers(0, len(t), len(t)) for t in tables], rng.integers(0, n_img, n_img))
             for _ in range(n_boot)]
    alpha = (1 - ci) / 2
    low, high = np.quantile(boots, [alpha, 1 - alpha])
    return float(point), float(low), float(high)


def mean_pairwise_correlation(maps) -> float:
    """Mean Pearson correlation over all pairs of maps (L, ...) of one image (class invariance).

    NaN pairs (a constant map) are skipped; NaN if there is no defined pair.
    """
    m = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
    if len(m) < 2:
        raise ValueError("need at least two maps (e.g. of two logits) to correlate")
    m = m - m.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(m, axis=1)
    vals = [m[i] @ m[j] / (norm[i] * norm[j]) for i in range(len(m)) for j in range(i + 1, len(m))
            if norm[i] > 0 and norm[j] > 0]
    return float(np.mean(vals)) if vals else float("nan")


def display_rgb(maps, spread: float = 3.0) -> np.ndarray:
    """Signed RGB maps as displayable images: ``0.5 + (m - mean) / (2 * spread * std)``, clipped.

    Per map (over pixels and channels); for figures only (a linear, sign-preserving rendering).
    """
    m = np.asarray(maps, dtype=np.float64)
    axes = tuple(range(m.ndim - 3, m.ndim))
    mu = m.mean(axis=axes, keepdims=True)
    sd = m.std(axis=axes, keepdims=True)
    return np.clip(0.5 + (m - mu) / (2 * spread * np.where(sd > 0, sd, 1.0)), 0.0, 1.0)


def demo_images(n: int, size: int = 64, seed: int = 0, first: str = "tabby"
                ) -> tuple[np.ndarray, list[str], str]:
    """``n`` natural images as float64 in [0, 1], (n, size, size, 3), with names and source.

    From the offline ImageNet sample mirror when ``BNN_SALIENCY_DATA`` is set (``first``, then
    seeded random other classes), else from package-shipped photos (chelsea, a tabby cat, first).
    """
    from . import data

    if data.data_dir(required=False) is not None:
        samples = data.imagenet_samples()
        rest = sorted((s for s in samples if s.name != first), key=lambda s: s.index)
        pick = np.random.default_rng(seed).choice(len(rest), size=n - 1, replace=False)
        chosen = [first] + [rest[i].name for i in sorted(pick)]
        imgs = [data.load_imagenet_sample(name, size=size)[0] / 255.0 for name in chosen]
        return np.stack(imgs).astype(np.float64), chosen, "ImageNet samples (offline mirror)"
    from PIL import Image

    names = ["chelsea", "coffee", "astronaut", "rocket", "china", "flower"][:n]
    if len(names) < n:
        raise ValueError(f"without the data mirror only 6 package photos exist, asked for {n}")
    imgs = []
    for name in names:
        im = Image.fromarray(data.package_photo(name))
        s = min(im.size)
        left, top = (im.width - s) // 2, (im.height - s) // 2
        im = im.crop((left, top, left + s, top + s)).resize((size, size), Image.BILINEAR)
        imgs.append(np.asarray(im, dtype=np.float64) / 255.0)
    return np.stack(imgs), names, "package photos (no data mirror)"


# ------------------------------------------------------------------------------ experiments
# The chapter "Guided backprop on untrained convnets" runs the functions below; each returns
# a tidy table (one row per network seed x image x setting) that the chapter summarizes.

def seeds_images_ci(table, value: str, seed: int = 0):
    """Mean of ``table[value]`` over network seeds x images, with a crossed two-level bootstrap.

    Args:
        table: long DataFrame with columns ``seed``, ``image`` and ``value``; each (seed, image)
            pair at most once (select one setting first).
        value: column to summarize.
        seed: bootstrap seed.

    Returns:
        :class:`bnn_saliency.stats.CI` from :func:`bnn_saliency.stats.bootstrap_ci_2level`.
    """
    from . import stats

    missing = [c for c in ("seed", "image", value) if c not in table.columns]
    if missing:
        raise KeyError(f"table lacks columns {missing}; it has {list(table.columns)}")
    if table.duplicated(["seed", "image"]).any():
        raise ValueError("repeated (seed, image) pairs: select one setting (e.g. one N) first")
    wide = table.pivot(index="seed", columns="image", values=value).to_numpy()
    return stats.bootstrap_ci_2level(wide, seed=seed)


def group_cis(table, columns, by: str, seed: int = 0):
    """Per group of ``by`` (in order of appearance), the bootstrap CI of the mean of each column.

    Returns a DataFrame indexed by group, one :class:`~bnn_saliency.stats.CI` per cell.
    """
    import pandas as pd

    from . import stats

    return pd.DataFrame({col: {g: stats.bootstrap_ci(t[col].to_numpy(dtype=float), seed=seed)
                               for g, t in table.groupby(by, sort=False)}
                         for col in columns})


def random_logit_targets(logits, n_logits: int, seed: int) -> np.ndarray:
    """Per image: the largest logit, then ``n_logits - 1`` distinct other logits drawn at random.

    Args:
        logits: (N, K) array.
        n_logits: targets per image (1..K).
        seed: seed of ``numpy.random.default_rng``, one generator for all images in order.

    Returns:
        (N, n_logits) int array; column 0 is the arg-max.
    """
    z = np.asarray(logits)
    if z.ndim != 2:
        raise ValueError(f"logits must be (N, K), got shape {z.shape}")
    if not 1 <= n_logits <= z.shape[1]:
        raise ValueError(f"n_logits must be in 1..{z.shape[1]}, got {n_logits}")
    rng = np.random.default_rng(seed)
    everything = np.arange(z.shape[1])
    return np.stack([np.r_[row.argmax(), rng.choice(np.delete(everything, row.argmax()),
                                                    n_logits - 1, replace=False)]
                     for row in z])


@cached
def untrained_logit_maps(build, inputs, seeds=(0, 1), n_logits: int = 4, batch_size: int = 4
                         ) -> dict[int, dict[str, np.ndarray]]:
    """GBP and gradient maps of untrained Keras networks for several logits of each input.

    The model is built once with ``build(seeds[0])``; for every further seed its weights are
    replaced by those of ``build(seed)`` (same architecture, no re-tracing of the saliency
    functions). Targets are :func:`random_logit_targets` with the network seed.

    Args:
        build: ``build(seed) -> keras.Model`` returning logits, or the name of a registered
            model (:func:`bnn_saliency.models.build`), which also makes the call memoizable.
        inputs: (N, H, W, C) model inputs (already preprocessed).
        seeds: network seeds.
        n_logits: logits explained per input (the largest, then random ones).
        batch_size: passed to the saliency methods.

    Returns:
        ``{seed: {"targets": (N, L), "gbp": (N, L, H, W, C), "gradient": (N, L, H, W, C)}}``.
    """
    import gc

    from . import saliency

    x = np.asarray(inputs)
    if x.ndim != 4:
        raise ValueError(f"inputs must be (N, H, W, C), got shape {x.shape}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("give at least one network seed")
    if isinstance(build, str):
        from . import models

        name = build
        build = lambda seed: models.build(name, seed=seed)  # noqa: E731
    out = {}
    model = build(seeds[0])
    for seed in seeds:
        if seed != seeds[0]:
            model.set_weights(build(seed).get_weights())
            gc.collect()
        logits = np.asarray(model(x, training=False))
        targets = random_logit_targets(logits, n_logits, seed)
        xs, ts = np.repeat(x, n_logits, axis=0), targets.ravel()
        shape = (len(x), n_logits) + x.shape[1:]
        out[seed] = {"targets": targets,
                     "gbp": saliency.guided_backprop(model, xs, ts, batch_size=batch_size
                                                     ).reshape(shape),
                     "gradient": saliency.gradient(model, xs, ts, batch_size=batch_size
                                                   ).reshape(shape)}
    del model
    gc.collect()
    return out


def invariance_table(results: dict, inputs):
    """Class invariance and image resemblance of :func:`untrained_logit_maps` results.

    Per (seed, image): ``invariance <m>``, the :func:`mean_pairwise_correlation` of method m's
    maps over the logits, and ``corr(image) <m>``, the Pearson correlation of the first
    (largest) logit's map with the input, for m in gbp, gradient.
    """
    import pandas as pd

    from . import metrics

    x = np.asarray(inputs)
    rows = []
    for seed, res in results.items():
        for i in range(len(x)):
            rows.append({"seed": seed, "image": i,
                         **{f"invariance {m}": mean_pairwise_correlation(res[m][i]) for m in METHODS},
                         **{f"corr(image) {m}": metrics.pearson(res[m][i, :1], x[i:i + 1])[0]
                            for m in METHODS}})
    return pd.DataFrame(rows)


def unit_expectations(images, kernel: int = 7) -> dict[str, np.ndarray]:
    """:func:`closed_form_gbp` of every image for each weight law: law -> (N, H, W, C)."""
    return {law: np.stack([closed_form_gbp(x, kernel, law) for x in images])
            for law in WEIGHT_LAWS}


@dataclass
class ConvExperiment:
    """Result of :func:`conv_experiment`.

    Attributes:
        table: one row per (variant, seed, image, N): correlations ``gbp~eq5``, ``gbp~image``,
            ``grad~eq5``, ``grad~image`` and ``rel. error`` (GBP against its expectation,
            NaN for sign activations).
        invariance: one row per (variant, seed, image): ``gbp`` and ``gradient``, the
            correlation of the maps of logits 0 and 1 at ``invariance_n`` filters.
        maps: ``(variant, image) -> conv_sweep`` output of network seed ``seeds[0]``.
        sizes: variant -> the filter counts swept.
    """

    table: object
    invariance: object
    maps: dict
    sizes: dict


@cached
def conv_experiment(images, seeds, sizes, *, variants=tuple(VARIANTS), sign_max: int = 256,
                    invariance_n: int = 256, unit=None, patches=None, dtype: str = "float32"
                    ) -> ConvExperiment:
    """Sweep the number of filters of random conv nets over seeds, images and variants.

    For every variant, network seed and image one :func:`conv_sweep` of logit 0 gives the
    prefix networks with ``sizes`` filters (sign-activation variants stop at ``sign_max``: the
    image term is zero for them, so there is no N-trend to measure); the GBP error is measured
    against :func:`expected_gbp` rescaled to each N. A second network of ``invariance_n``
    filters and the same seed explains logit 1, for the class invariance.

    Args:
        images: (I, H, W, C) images.
        seeds: network seeds.
        sizes: increasing filter counts; ``invariance_n`` must be among the swept sizes.
        variants: names in :data:`VARIANTS`.
        sign_max: largest N for sign-activation variants.
        invariance_n: N of the two-logit class-invariance comparison.
        unit: optional :func:`unit_expectations` of the images (computed if None).
        patches: optional list of :func:`extract_patches` per image.
        dtype: the networks' compute dtype.
    """
    import pandas as pd

    from . import metrics

    images = np.asarray(images)
    unit = unit_expectations(images) if unit is None else unit
    patches = [extract_patches(x) for x in images] if patches is None else patches
    refs = unit["gaussian"]
    rows, inv_rows, keep, swept = [], [], {}, {}
    for variant in variants:
        relu = VARIANTS[variant]["activation"] == "relu"
        var_sizes = [int(n) for n in sizes if relu or n <= sign_max]
        if invariance_n not in var_sizes:
            raise ValueError(f"invariance_n={invariance_n} is not among the sizes {var_sizes} "
                             f"swept for {variant!r}")
        k_inv = var_sizes.index(invariance_n)
        swept[variant] = var_sizes
        for seed in seeds:
            for i, x in enumerate(images):
                net = RandomConvNet.variant(variant, var_sizes[-1], seed=seed, dtype=dtype)
                sw = conv_sweep(net, x, 0, var_sizes, patches=patches[i])
                expected = expected_gbp(net, x, unit[net.weights][i]) if relu else None
                for n, gbp, grad in zip(var_sizes, sw["gbp"], sw["gradient"]):
                    err = (relative_error(gbp[None] * var_sizes[-1] / n, expected)[0]
                           if relu else np.nan)
                    rows.append({"variant": variant, "seed": seed, "image": i, "N": n,
                                 "gbp~eq5": metrics.pearson(gbp[None], refs[i:i + 1])[0],
                                 "gbp~image": metrics.pearson(gbp[None], x[None])[0],
                                 "grad~eq5": metrics.pearson(grad[None], refs[i:i + 1])[0],
                                 "grad~image": metrics.pearson(grad[None], x[None])[0],
                                 "rel. error": err})
                if seed == seeds[0]:
                    keep[variant, i] = sw
                other = conv_sweep(RandomConvNet.variant(variant, invariance_n, seed=seed,
                                                         dtype=dtype),
                                   x, 1, patches=patches[i])
                inv_rows.append({"variant": variant, "seed": seed, "image": i,
                                 "gbp": mean_pairwise_correlation([sw["gbp"][k_inv],
                                                                   other["gbp"][0]]),
                                 "gradient": mean_pairwise_correlation(
                                     [sw["gradient"][k_inv], other["gradient"][0]])})
    return ConvExperiment(pd.DataFrame(rows), pd.DataFrame(inv_rows), keep, swept)


@cached
def independent_errors(variant: str, images, seeds_per_size: dict[int, int], *, unit=None,
                       patches=None, seed_base: int = 1000, dtype: str = "float32"
                       ) -> dict[int, np.ndarray]:
    """Relative GBP errors of independent (not nested) networks with few filters.

    With nested networks the N = 1 point rests on one filter per seed; here every network of
    size n is drawn afresh, with seeds ``seed_base * n + s`` for ``s < seeds_per_size[n]``.

    Returns:
        ``{n: (seeds_per_size[n], I, 1) errors}``, the layout of :func:`rms_slope_ci` blocks.
    """
    images = np.asarray(images)
    if VARIANTS[variant]["activation"] != "relu":
        raise ValueError(f"variant {variant!r} has sign activations: its expected GBP is 0, "
                         "so a relative error is undefined; use a ReLU variant (fp, binw)")
    unit = unit_expectations(images) if unit is None else unit
    patches = [extract_patches(x) for x in images] if patches is None else patches
    out = {}
    for n, n_seeds in seeds_per_size.items():
        errs = np.empty((n_seeds, len(images), 1))
        for s in range(n_seeds):
            net = RandomConvNet.variant(variant, n, seed=seed_base * n + s, dtype=dtype)
            for i, x in enumerate(images):
                gbp = conv_sweep(net, x, 0, patches=patches[i])["gbp"]
                errs[s, i, 0] = relative_error(gbp, expected_gbp(net, x, unit[net.weights][i]))[0]
        out[n] = errs
    return out


def error_blocks(table, variant: str, independent: dict[int, np.ndarray]) -> list:
    """:func:`rms_slope_ci` blocks: the independent small networks, then the nested sweep.

    Args:
        table: :attr:`ConvExperiment.table`.
        variant: which variant's errors.
        independent: :func:`independent_errors` output; its sizes are dropped from the nested
            sweep (sizes must not repeat across blocks).
    """
    t = table[table["variant"] == variant]
    if t.empty:
        raise KeyError(f"no rows for variant {variant!r} in the table")
    wide = t.pivot_table(index=["seed", "image"], columns="N", values="rel. error")
    nested = wide.to_numpy().reshape(t["seed"].nunique(), t["image"].nunique(), wide.shape[1])
    keep = [k for k, n in enumerate(wide.columns) if n not in independent]
    return ([([n], errs) for n, errs in independent.items()]
            + [([int(wide.columns[k]) for k in keep], nested[..., keep])])


def rms_by_size(blocks) -> tuple[np.ndarray, np.ndarray]:
    """``(sizes, sqrt(mean err^2))`` over seeds and images, per size, in block order."""
    sizes = np.concatenate([np.asarray(n, dtype=int) for n, _ in blocks])
    rms = np.concatenate([np.sqrt((np.asarray(e, dtype=np.float64) ** 2).mean(axis=(0, 1)))
                          for _, e in blocks])
    return sizes, rms


def fc_law_table(images, sizes, seeds):
    """Correlation of the FC net's GBP and gradient with the image, from the exact law.

    One row per (seed, image, N_h) with ``gbp~image`` and ``grad~image``, sampled with
    :func:`fc_sweep_in_law`.
    """
    import pandas as pd

    from . import metrics

    rows = []
    for seed in seeds:
        for i, x in enumerate(images):
            law = fc_sweep_in_law(x, sizes, seed=seed)
            for n, gbp, grad in zip(law["sizes"], law["gbp"], law["gradient"]):
                rows.append({"seed": seed, "image": i, "N_h": int(n),
                             "gbp~image": metrics.pearson(gbp[None], x[None])[0],
                             "grad~image": metrics.pearson(grad[None], x[None])[0]})
    return pd.DataFrame(rows)


def fc_width_for_correlation(image, r: float) -> float:
    """Hidden units N_h at which :func:`fc_predicted_correlation` reaches ``r`` (0 < r < 1).

    Inverts ``r = 1 / sqrt(1 + pi^2 d / (N_h rho^2))``:
    ``N_h = pi^2 d / (rho^2 (1/r^2 - 1))``, with ``rho^2 = var(x) / mean(x^2)``.
    """
    if not 0 < r < 1:
        raise ValueError(f"r must be in (0, 1), got {r}")
    x = _check_image(image)
    rho2 = np.var(x) / np.mean(x ** 2)
    if not rho2 > 0:
        raise ValueError("a constant image has no image term to correlate with")
    return float(np.pi ** 2 * x.size / (rho2 * (1 / r ** 2 - 1)))


@cached
def rademacher_patch_deviations(images, per_image: int = 4, seed: int = 0, kernel: int = 7):
    """How far Rademacher's exact ``E[eps 1(eps.y > 0)]`` is from the Gaussian form on patches.

    Per image, ``per_image`` random 8-bit patches (``round(255 x)``, one generator for all
    images in order). Columns: ``exact vs Gaussian`` and ``exact vs CLT``, relative l2 distances
    of :func:`rademacher_halfspace_mean_exact` from :func:`gaussian_halfspace_mean` and from
    :func:`rademacher_halfspace_mean_clt`, both divided by the Gaussian vector's norm.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for i, x in enumerate(images):
        patches = np.round(extract_patches(np.asarray(x) * 255.0, kernel)).astype(np.int64)
        if per_image > len(patches):
            raise ValueError(f"image {i} has {len(patches)} patches, asked for {per_image}")
        for j in rng.choice(len(patches), size=per_image, replace=False):
            y = patches[j]
            exact = rademacher_halfspace_mean_exact(y)
            gauss, clt = gaussian_halfspace_mean(y), rademacher_halfspace_mean_clt(y)
            rows.append({"image": i,
                         "exact vs Gaussian": np.linalg.norm(exact - gauss) / np.linalg.norm(gauss),
                         "exact vs CLT": np.linalg.norm(exact - clt) / np.linalg.norm(gauss)})
    return pd.DataFrame(rows)


def variant_summary(table, invariance, n: int = 256):
    """Per variant at ``n`` filters: the weight law and activation, and crossed-bootstrap CIs of
    ``gbp~eq5``, ``gbp~image``, ``grad~image`` and the two-logit invariance of GBP and gradient.
    """
    import pandas as pd

    at_n = table[table["N"] == n]
    rows = []
    for variant in dict.fromkeys(table["variant"]):
        t = at_n[at_n["variant"] == variant]
        u = invariance[invariance["variant"] == variant]
        if t.empty:
            raise ValueError(f"variant {variant!r} was not swept at N = {n}")
        rows.append({"variant": variant, **VARIANTS[variant],
                     **{col: seeds_images_ci(t, col) for col in ("gbp~eq5", "gbp~image", "grad~image")},
                     "GBP invariance (2 logits)": seeds_images_ci(u, "gbp"),
                     "gradient invariance": seeds_images_ci(u, "gradient")})
    return pd.DataFrame(rows).set_index("variant")


@cached
def untrained_twin_table(images, n_logits: int = 4, seed: int = 0, family: str = "vgg"):
    """GBP and gradient of the untrained CIFAR twins (every variant) for logits 0..L-1.

    Each twin is built with ``keras.utils.set_random_seed(seed)`` just before. Per (variant,
    image): ``GBP invariance`` and ``gradient invariance`` (:func:`mean_pairwise_correlation`
    over the logits) and ``gbp~image`` (Pearson correlation of logit 0's GBP map with the image).
    """
    import pandas as pd
    import tensorflow as tf

    from . import metrics, saliency, twins

    x = np.asarray(images, dtype=np.float32)
    xs, ts = np.repeat(x, n_logits, axis=0), np.tile(np.arange(n_logits), len(x))
    rows = []
    for variant in twins.VARIANTS:
        tf.keras.utils.set_random_seed(seed)
        model = twins.build_twin(family, variant)
        maps = {m: f(model, xs, ts).reshape((len(x), n_logits) + x.shape[1:])
                for m, f in (("gbp", saliency.guided_backprop), ("gradient", saliency.gradient))}
        for i in range(len(x)):
            rows.append({"variant": variant, "image": i,
                         "GBP invariance": mean_pairwise_correlation(maps["gbp"][i]),
                         "gradient invariance": mean_pairwise_correlation(maps["gradient"][i]),
                         "gbp~image": metrics.pearson(maps["gbp"][i, :1], x[i:i + 1])[0]})
    return pd.DataFrame(rows)


def mean_pool(image, factor: int = 2) -> np.ndarray:
    """``factor x factor`` mean pooling of an (H, W, C) image (H, W divisible by ``factor``)."""
    img = np.asarray(image)
    h, w, c = img.shape
    if h % factor or w % factor:
        raise ValueError(f"image of {h}x{w} is not divisible by the pooling factor {factor}")
    return img.reshape(h // factor, factor, w // factor, factor, c).mean(axis=(1, 3))
