"""Random shallow networks implemented exactly in NumPy (conv and fully connected), with
guided backpropagation and plain gradients computed in closed form."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .closed_forms import _check_image, _check_law, _draw, extract_patches, fold_patches

VARIANTS = {
    "fp": dict(weights="gaussian", activation="relu"),
    "binw": dict(weights="rademacher", activation="relu"),
    "bina": dict(weights="gaussian", activation="sign"),
    "bnn": dict(weights="rademacher", activation="sign"),
}

ACTIVATIONS = ("relu", "sign")


METHODS = ("gbp", "gradient")


_SMALL_SEGMENT = 4  # conv_sweep folds segments of <= 4 filters directly in image space


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


def relative_error(maps, reference) -> np.ndarray:
    """``||m - ref|| / ||ref||`` per map (maps (S, ...) against one reference)."""
    m = np.asarray(maps, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    diff = (m - r).reshape(len(m), -1)
    return np.linalg.norm(diff, axis=1) / np.linalg.norm(r)
