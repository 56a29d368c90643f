"""Metrics for saliency maps: similarity, complexity (noise) and faithfulness.

Three families, each with a uniform call shape:

* **Similarity** ``metric(maps_a, maps_b) -> (N,)``: one score per pair of maps, as used by the
  model- and data-randomization sanity checks of Adebayo et al. (2018).
* **Complexity** ``metric(maps) -> (N,)``: how concentrated / noisy a map is.
* **Faithfulness** ``metric(model, images, targets, maps, **kw) -> (N,)``: how the model's softmax
  probability of the target class reacts when the input is perturbed according to the map.

Maps are numpy arrays ``(N, H, W)`` or ``(N, H, W, C)``. Every function validates its input
(empty batches, NaN/inf values, shape mismatches raise ``ValueError``) and is pure: nothing is
cached or modified in place.

**Undefined scores are NaN.** A correlation with a constant map, the SSIM/HOG of a map that cannot
be min-max normalized (constant), or the entropy/Gini/total variation of an all-zero map is
undefined; these functions return ``nan`` for that sample (never an arbitrary 0) so that
aggregates must use ``np.nanmean`` and the number of undefined samples can be reported.
:func:`bnn_saliency.stats.bootstrap_ci` uses ``np.nanmean`` by default.

Every public metric carries two attributes, like Quantus metrics: ``category`` (``"similarity"``,
``"complexity"``, ``"faithfulness"``) and ``score_direction`` (``"higher"`` or ``"lower"`` is
better). For similarity functions ``"higher"`` means *more similar*; in a randomization sanity
check the desirable outcome is the opposite (low similarity to the original map). They are
collected in the registries :data:`SIMILARITY`, :data:`COMPLEXITY` and :data:`FAITHFULNESS`.

References:
    Adebayo, J., Gilmer, J., Muelly, M., Goodfellow, I., Hardt, M., Kim, B. (2018). Sanity Checks
        for Saliency Maps. NeurIPS. arXiv:1810.03292.
    Petsiuk, V., Das, A., Saenko, K. (2018). RISE: Randomized Input Sampling for Explanation of
        Black-box Models. BMVC. arXiv:1806.07421.
    Chattopadhay, A., Sarkar, A., Howlader, P., Balasubramanian, V. N. (2018). Grad-CAM++:
        Generalized Gradient-based Visual Explanations for Deep Convolutional Networks. WACV.
        arXiv:1710.11063.
    Zhang, H., Torres, F., Sicre, R., Avrithis, Y., Ayache, S. (2023). Opti-CAM: Optimizing
        saliency maps for interpretability. arXiv:2301.07002.
    Torres Figueroa, F., Zhang, H., Sicre, R., Avrithis, Y., Ayache, S. (2024). A Learning Paradigm
        for Interpretable Gradients. arXiv:2404.15024.
    Chalasani, P., Chen, J., Chowdhury, A. R., Jha, S., Wu, X. (2020). Concise Explanations of
        Neural Networks using Adversarial Training. ICML. arXiv:1810.06583.
    Bhatt, U., Weller, A., Moura, J. M. F. (2020). Evaluating and Aggregating Feature-based Model
        Explanations. IJCAI. arXiv:2005.00631.
    Hedström, A. et al. (2023). Quantus: An Explainable AI Toolkit for Responsible Evaluation of
        Neural Network Explanations and Beyond. JMLR 24(34). arXiv:2202.06861.
"""

from __future__ import annotations

import sys
from typing import Callable

import numpy as np
from scipy import ndimage, special
from scipy import stats as sps

SIMILARITY: dict[str, Callable] = {}
COMPLEXITY: dict[str, Callable] = {}
FAITHFULNESS: dict[str, Callable] = {}

#: Channel reductions accepted by the ``reduce`` argument (``(N,H,W,C) -> (N,H,W)``).
REDUCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sum": lambda m: m.sum(-1),
    "mean": lambda m: m.mean(-1),
    "abs_sum": lambda m: np.abs(m).sum(-1),
    "abs_mean": lambda m: np.abs(m).mean(-1),
    "abs_max": lambda m: np.abs(m).max(-1),
}


def _register(registry: dict, category: str, direction: str):
    def deco(func):
        func.category = category
        func.score_direction = direction
        registry[func.__name__] = func
        return func
    return deco


# --------------------------------------------------------------------------- validation helpers

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
        out = REDUCTIONS[reduce](maps)
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


# --------------------------------------------------------------------------------- similarity

@_register(SIMILARITY, "similarity", "higher")
def spearman_abs(maps_a, maps_b) -> np.ndarray:
    """Spearman rank correlation of the absolute values of two batches of maps.

    The maps of each sample are flattened (all pixels and channels) and ranked with average ranks
    for ties, as :func:`scipy.stats.spearmanr` does. This is the main similarity of Adebayo et
    al. (2018), who compare absolute-value maps because sign is often unstable.

    Args:
        maps_a, maps_b: arrays of identical shape (N,H,W) or (N,H,W,C).

    Returns:
        (N,) float64 correlations in [-1, 1]; NaN where either map is constant (in absolute value).

    References:
        Adebayo et al. (2018), Sanity Checks for Saliency Maps, arXiv:1810.03292.
    """
    a, b = _check_pair(maps_a, maps_b)
    ra = sps.rankdata(np.abs(_flat(a)), axis=1)
    rb = sps.rankdata(np.abs(_flat(b)), axis=1)
    return _rowwise_pearson(ra, rb)


@_register(SIMILARITY, "similarity", "higher")
def spearman_signed(maps_a, maps_b) -> np.ndarray:
    """Spearman rank correlation of the signed maps (Adebayo et al. 2018, "without absolute value").

    Same as :func:`spearman_abs` but ranks the raw values. NaN where either map is constant.
    """
    a, b = _check_pair(maps_a, maps_b)
    return _rowwise_pearson(sps.rankdata(_flat(a), axis=1), sps.rankdata(_flat(b), axis=1))


@_register(SIMILARITY, "similarity", "higher")
def pearson(maps_a, maps_b) -> np.ndarray:
    """Pearson correlation of the flattened raw maps, per sample. NaN where either map is constant."""
    a, b = _check_pair(maps_a, maps_b)
    return _rowwise_pearson(_flat(a), _flat(b))


@_register(SIMILARITY, "similarity", "higher")
def ssim(maps_a, maps_b, reduce=None, win_size: int | None = None,
         gaussian_weights: bool = False) -> np.ndarray:
    """Structural similarity (SSIM) of per-sample min-max normalized 2-D maps.

    Each map is scaled to [0, 1] on its own (as in Adebayo et al. 2018, which normalizes
    visualizations before comparing them), then :func:`skimage.metrics.structural_similarity` is
    applied with ``data_range=1``. Pass absolute-value maps to compare magnitudes only.

    Args:
        maps_a, maps_b: (N,H,W), (N,H,W,1), or (N,H,W,C) with ``reduce`` given.
        reduce: channel reduction for C>1 (a name in :data:`REDUCTIONS` or a callable); default None
            raises for C>1 so that the reduction is an explicit choice of the caller.
        win_size: SSIM window (odd, <= min(H, W)); default None is skimage's 7.
        gaussian_weights: skimage option, default False (uniform window, skimage's default).

    Returns:
        (N,) float64 SSIM in [-1, 1]; NaN where either map is constant (cannot be normalized).

    References:
        Wang, Bovik, Sheikh, Simoncelli (2004), Image quality assessment: from error visibility to
        structural similarity, IEEE TIP 13(4). Adebayo et al. (2018), arXiv:1810.03292.
    """
    from skimage.metrics import structural_similarity

    a, b = _check_pair(maps_a, maps_b)
    a, ca = _minmax(_to_2d(a, reduce, "maps_a"))
    b, cb = _minmax(_to_2d(b, reduce, "maps_b"))
    out = np.empty(a.shape[0])
    for i in range(a.shape[0]):
        out[i] = structural_similarity(a[i], b[i], win_size=win_size, data_range=1.0,
                                       gaussian_weights=gaussian_weights)
    out[ca | cb] = np.nan
    return out


def default_pixels_per_cell(shape: tuple[int, int]) -> tuple[int, int]:
    """HOG cell size used by :func:`hog_pearson` when none is given.

    4x4 pixels for maps up to 64 px on a side (CIFAR 32x32 -> 8x8 cells; 8x8 CAMs -> 2x2 cells),
    16x16 for larger ones (ImageNet 224x224 -> 14x14 cells), so that both resolutions get a grid
    of roughly 8-14 cells per side.
    """
    side = 4 if min(shape) <= 64 else 16
    return (side, side)


@_register(SIMILARITY, "similarity", "higher")
def hog_pearson(maps_a, maps_b, reduce=None, pixels_per_cell: tuple[int, int] | None = None,
                cells_per_block: tuple[int, int] = (2, 2), orientations: int = 9) -> np.ndarray:
    """Pearson correlation of the HOG descriptors of two batches of 2-D maps.

    Adebayo et al. (2018) report the similarity of histograms of oriented gradients as a
    structure-sensitive complement to rank correlation. Maps are min-max normalized per sample,
    described with :func:`skimage.feature.hog` (L2-Hys block normalization) and the two feature
    vectors are correlated.

    Args:
        maps_a, maps_b: (N,H,W), (N,H,W,1), or (N,H,W,C) with ``reduce`` given.
        reduce: channel reduction for C>1, as in :func:`ssim`.
        pixels_per_cell: default None -> :func:`default_pixels_per_cell` ((4,4) up to 64 px,
            (16,16) above: 8x8 cells on CIFAR, 14x14 on 224x224 ImageNet).
        cells_per_block: default (2, 2) (skimage's (3, 3) does not fit an 8x8 CAM).
        orientations: default 9.

    Returns:
        (N,) float64 correlations; NaN where either map is constant.

    References:
        Dalal, Triggs (2005), Histograms of Oriented Gradients for Human Detection, CVPR.
        Adebayo et al. (2018), arXiv:1810.03292.
    """
    from skimage.feature import hog

    a, b = _check_pair(maps_a, maps_b)
    a, ca = _minmax(_to_2d(a, reduce, "maps_a"))
    b, cb = _minmax(_to_2d(b, reduce, "maps_b"))
    ppc = tuple(pixels_per_cell) if pixels_per_cell is not None else default_pixels_per_cell(a.shape[1:])
    cells = (a.shape[1] // ppc[0], a.shape[2] // ppc[1])
    if cells[0] < cells_per_block[0] or cells[1] < cells_per_block[1]:
        raise ValueError(
            f"maps of size {a.shape[1:]} give only {cells} HOG cells of {ppc} px, fewer than "
            f"cells_per_block={cells_per_block}; use smaller pixels_per_cell"
        )

    def describe(m):
        return np.stack([hog(x, orientations=orientations, pixels_per_cell=ppc,
                             cells_per_block=cells_per_block, feature_vector=True) for x in m])

    out = _rowwise_pearson(describe(a), describe(b))
    out[ca | cb] = np.nan
    return out


# --------------------------------------------------------------------------------- complexity

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


# ------------------------------------------------------------------------ model-facing helpers

def _check_images(images) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N,H,W,C), got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("images is an empty batch (N=0); pass at least one image")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"images must be floating point in [0, 1] (see data.to_float), got {x.dtype}")
    if not np.isfinite(x).all():
        raise ValueError("images contain NaN or inf")
    return x


def _check_targets(targets, n: int) -> np.ndarray:
    t = np.asarray(targets)
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"targets must be integer class indices, got dtype {t.dtype}")
    if t.ndim == 0:
        t = np.full(n, int(t))
    if t.shape != (n,):
        raise ValueError(f"targets must be a scalar or shape ({n},), got {t.shape}")
    return t.astype(np.int64)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict_proba(model, images, batch_size: int = 256, softmax: bool = True) -> np.ndarray:
    """Class probabilities (N, K) as float64, computed in batches.

    Args:
        model: a Keras model (called with ``training=False``) or any callable ``f(x) -> (N, K)``.
        images: (N,H,W,C) float array.
        batch_size: images per forward pass; default 256.
        softmax: default True applies a softmax to the outputs (the twins output logits); pass
            False if the model already outputs probabilities.
    """
    x = np.asarray(images)
    outs = []
    keras_model = _is_keras(model)
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size]
        out = model(xb, training=False) if keras_model else model(xb)
        outs.append(np.asarray(out, dtype=np.float64))
    out = np.concatenate(outs, axis=0)
    if out.ndim != 2 or out.shape[0] != x.shape[0]:
        raise ValueError(f"model must return (N, classes) outputs, got {out.shape}")
    return _softmax(out) if softmax else out


def _is_keras(model) -> bool:
    if "tensorflow" not in sys.modules:  # a Keras model implies TF is already imported
        return False
    from tensorflow import keras

    return isinstance(model, keras.Model)


def _target_proba(model, images, targets, batch_size, softmax) -> np.ndarray:
    p = predict_proba(model, images, batch_size, softmax)
    if targets.max() >= p.shape[1] or targets.min() < 0:
        raise ValueError(f"targets must be in [0, {p.shape[1] - 1}], got {targets.min()}..{targets.max()}")
    return p[np.arange(len(targets)), targets]


def resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinearly resize 2-D maps (N,h,w) to (N, *size) with OpenCV (half-pixel centers).

    ``cv2.resize(..., INTER_LINEAR)`` is what common Grad-CAM code uses to upsample CAMs.
    Maps already at ``size`` are returned unchanged (as float64).
    """
    import cv2

    maps = np.asarray(maps, dtype=np.float64)
    if maps.shape[1:] == tuple(size):
        return maps
    return np.stack([cv2.resize(m, (size[1], size[0]), interpolation=cv2.INTER_LINEAR) for m in maps])


def _maps_for(images: np.ndarray, maps, reduce) -> np.ndarray:
    m = _check_maps(maps)
    if m.shape[0] != images.shape[0]:
        raise ValueError(f"got {m.shape[0]} maps for {images.shape[0]} images")
    return resize_maps(_to_2d(m, reduce), images.shape[1:3])


def _baseline(x: np.ndarray, baseline, blur_sigma: float | None) -> np.ndarray:
    if isinstance(baseline, str):
        if baseline == "black":
            return np.zeros_like(x)
        if baseline == "mean":
            return np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape).copy()
        if baseline == "blur":
            sigma = blur_sigma if blur_sigma is not None else max(1.0, 5.0 * min(x.shape[1:3]) / 224)
            return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="reflect")
        raise ValueError(f"unknown baseline {baseline!r}; use 'black', 'blur', 'mean', a number or an array")
    b = np.asarray(baseline, dtype=x.dtype)
    try:
        return np.broadcast_to(b, x.shape).copy()
    except ValueError:
        raise ValueError(f"baseline of shape {b.shape} does not broadcast to images {x.shape}") from None


# ------------------------------------------------------------------------------- faithfulness

def perturbation_curves(model, images, targets, maps, mode: str = "deletion",
                        n_steps: int | None = None, baseline="black",
                        blur_sigma: float | None = None, reduce=None, batch_size: int = 256,
                        softmax: bool = True, seed: int = 0):
    """Deletion or insertion curves of Petsiuk et al. (2018), all steps batched through the model.

    Pixels are ordered by decreasing map value (ties broken by a fixed random permutation drawn
    with ``seed``, so a constant map gives a random order, not a raster scan). At step k of
    ``n_steps``, the first ``round(k * H*W / n_steps)`` pixels (all channels) are replaced by the
    baseline (``mode="deletion"``, starting from the image) or copied from the image onto the
    baseline (``mode="insertion"``). Each of the N*(n_steps+1) perturbed images is scored by the
    softmax probability of the target class.

    Args:
        model, images, targets: see :func:`predict_proba`; targets (N,) ints or a scalar.
        maps: (N,h,w), (N,h,w,1) or (N,h,w,C) with ``reduce``; upsampled bilinearly to the image
            size if needed. Higher value = more important.
        mode: ``"deletion"`` or ``"insertion"``.
        n_steps: default None -> H (RISE uses 224 steps of 224 pixels on 224x224 images; on CIFAR
            this gives 32 steps of 32 pixels).
        baseline: ``"black"`` (zeros), ``"blur"`` (Gaussian blur of the image), ``"mean"``
            (per-image channel mean), a number, or an array broadcastable to the images.
        blur_sigma: for ``baseline="blur"``; default None -> ``max(1, 5 * min(H, W) / 224)``
            (RISE's sigma 5 at 224 px, scaled with resolution, at least 1 px).
        reduce: channel reduction for (N,h,w,C>1) maps (see :data:`REDUCTIONS`).
        batch_size: perturbed images per forward pass, default 256.
        softmax: apply softmax to model outputs, default True (twins output logits).
        seed: seed of the tie-breaking permutation, default 0.

    Returns:
        ``(curves, fractions)``: curves (N, n_steps+1) of target probabilities, and fractions
        (n_steps+1,) of pixels perturbed at each step (0 ... 1).
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    x = _check_images(images)
    n, h, w, _ = x.shape
    t = _check_targets(targets, n)
    s = _flat(_maps_for(x, maps, reduce))
    hw = h * w
    n_steps = h if n_steps is None else int(n_steps)
    if not 1 <= n_steps <= hw:
        raise ValueError(f"n_steps must be in 1..{hw} (pixels per image), got {n_steps}")
    base = _baseline(x, baseline, blur_sigma)

    tie = np.random.default_rng(seed).random(s.shape)
    order = np.lexsort((tie, -s), axis=-1)          # primary key: -s (last in the tuple)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(hw), s.shape), axis=1)
    rank = rank.reshape(n, h, w)
    counts = np.round(np.linspace(0, hw, n_steps + 1)).astype(np.int64)
    k1 = n_steps + 1

    total = n * k1
    probs = np.empty(total)
    n_classes = None
    keras_model = _is_keras(model)
    for start in range(0, total, batch_size):
        idx = np.arange(start, min(total, start + batch_size))
        si, ki = idx // k1, idx % k1
        changed = (rank[si] < counts[ki][:, None, None])[..., None]
        if mode == "deletion":
            xb = np.where(changed, base[si], x[si])
        else:
            xb = np.where(changed, x[si], base[si])
        out = model(xb, training=False) if keras_model else model(xb)
        out = np.asarray(out, dtype=np.float64)
        if n_classes is None:
            n_classes = out.shape[1]
            if t.max() >= n_classes or t.min() < 0:
                raise ValueError(f"targets must be in [0, {n_classes - 1}]")
        p = _softmax(out) if softmax else out
        probs[idx] = p[np.arange(len(idx)), t[si]]
    return probs.reshape(n, k1), counts / hw


@_register(FAITHFULNESS, "faithfulness", "lower")
def deletion_auc(model, images, targets, maps, n_steps: int | None = None, baseline="black",
                 **kw) -> np.ndarray:
    """Deletion metric (Petsiuk et al. 2018): area under the target-probability curve while the
    most salient pixels are removed first. Lower is better (a faithful map destroys the class fast).

    AUC is the trapezoid rule over the fraction of pixels removed (x from 0 to 1). Defaults:
    ``baseline="black"`` (RISE), ``n_steps=H``; other keywords go to :func:`perturbation_curves`.

    Returns:
        (N,) float64 in [0, 1].

    References:
        Petsiuk, Das, Saenko (2018), RISE, arXiv:1806.07421.
    """
    curves, frac = perturbation_curves(model, images, targets, maps, "deletion", n_steps, baseline, **kw)
    return np.trapz(curves, frac, axis=1)


@_register(FAITHFULNESS, "faithfulness", "higher")
def insertion_auc(model, images, targets, maps, n_steps: int | None = None, baseline="blur",
                  **kw) -> np.ndarray:
    """Insertion metric (Petsiuk et al. 2018): area under the target-probability curve while the
    most salient pixels are inserted first into a baseline. Higher is better.

    Defaults: ``baseline="blur"`` (RISE inserts into a blurred copy), ``n_steps=H``; other
    keywords go to :func:`perturbation_curves`.

    Returns:
        (N,) float64 in [0, 1].

    References:
        Petsiuk, Das, Saenko (2018), RISE, arXiv:1806.07421.
    """
    curves, frac = perturbation_curves(model, images, targets, maps, "insertion", n_steps, baseline, **kw)
    return np.trapz(curves, frac, axis=1)


def explanation_images(images, maps, reduce=None, constant: str = "zero") -> np.ndarray:
    """The "explanation map" ``E = image * M`` of Chattopadhay et al. (2018).

    ``M`` is the map upsampled bilinearly to the image size and min-max normalized per sample to
    [0, 1], broadcast over the image channels.

    Args:
        images: (N,H,W,C) floats.
        maps: (N,h,w), (N,h,w,1), or (N,h,w,C) with ``reduce``.
        reduce: channel reduction for C>1.
        constant: what a constant map (which cannot be min-max normalized, e.g. an all-zero
            Grad-CAM after the ReLU) becomes: ``"zero"`` (default; same as the common
            ``(m - min) / (max - min + eps)`` implementations, i.e. a black image), ``"one"`` (the
            unmasked image) or ``"nan"`` (flag it; the scores of that sample become NaN).
    """
    x = _check_images(images)
    m, const = _minmax(_maps_for(x, maps, reduce))
    if constant == "one":
        m[const] = 1.0
    elif constant == "nan":
        m[const] = np.nan
    elif constant != "zero":
        raise ValueError(f"constant must be 'zero', 'one' or 'nan', got {constant!r}")
    return x * m[..., None].astype(x.dtype)


def _y_and_o(model, images, targets, maps, reduce=None, constant="zero", batch_size=256,
             softmax=True):
    x = _check_images(images)
    t = _check_targets(targets, x.shape[0])
    e = explanation_images(x, maps, reduce, constant)
    undefined = ~np.isfinite(e.reshape(len(e), -1)).all(axis=1)
    y = _target_proba(model, x, t, batch_size, softmax)
    o = np.full_like(y, np.nan)
    if (~undefined).any():
        o[~undefined] = _target_proba(model, e[~undefined], t[~undefined], batch_size, softmax)
    return y, o


def _drop(y, o):
    # 0/0 (Y = 0 exactly, float underflow) is defined as no drop.
    with np.errstate(invalid="ignore", divide="ignore"):
        d = 100.0 * np.maximum(0.0, y - o) / y
    return np.where((y == 0) & np.isfinite(o), 0.0, d)


def _increase(y, o):
    return np.where(np.isfinite(o), 100.0 * (y < o), np.nan)


def _gain(y, o):
    # 0/0 (Y = 1 exactly, so O cannot exceed it) is defined as no gain.
    with np.errstate(invalid="ignore", divide="ignore"):
        g = 100.0 * np.maximum(0.0, o - y) / (1.0 - y)
    return np.where((y == 1) & np.isfinite(o), 0.0, g)


_ADI_DOC = """

    Y is the softmax probability of the target class on the image, O the same on the explanation
    image ``image * M`` (M = map upsampled and min-max normalized; see :func:`explanation_images`).
    Keywords: ``reduce``, ``constant`` ("zero" default / "one" / "nan"), ``batch_size`` (256),
    ``softmax`` (True: model outputs logits).

    Returns:
        (N,) float64 per-sample values in percent; their mean is the paper's aggregate.
"""


@_register(FAITHFULNESS, "faithfulness", "lower")
def average_drop(model, images, targets, maps, **kw) -> np.ndarray:
    """Per-sample Average Drop ``100 * max(0, Y - O) / Y`` (Chattopadhay et al. 2018, arXiv:1710.11063).

    Lower is better. ``Y = 0`` exactly gives 0."""
    return _drop(*_y_and_o(model, images, targets, maps, **kw))


@_register(FAITHFULNESS, "faithfulness", "higher")
def increase_in_confidence(model, images, targets, maps, **kw) -> np.ndarray:
    """Per-sample Increase in Confidence ``100 * 1[Y < O]`` (Chattopadhay et al. 2018).

    Higher is better; the mean is the percentage of images whose confidence increased."""
    return _increase(*_y_and_o(model, images, targets, maps, **kw))


@_register(FAITHFULNESS, "faithfulness", "higher")
def average_gain(model, images, targets, maps, **kw) -> np.ndarray:
    """Per-sample Average Gain ``100 * max(0, O - Y) / (1 - Y)`` (Zhang et al. 2023, Opti-CAM,
    arXiv:2301.07002). Higher is better. ``Y = 1`` exactly gives 0."""
    return _gain(*_y_and_o(model, images, targets, maps, **kw))


for _f in (average_drop, increase_in_confidence, average_gain):
    _f.__doc__ += _ADI_DOC


def average_drop_increase_gain(model, images, targets, cams, per_sample: bool = False,
                               **kw) -> dict:
    """Average Drop, Average Increase and Average Gain in one pass (two forward passes in total).

    Implements eqs. 15-17 of the interpretable-gradients paper (Torres Figueroa et al. 2024),
    with Y the target softmax probability on the image and O on ``image * M`` (M the upsampled,
    min-max normalized CAM)::

        AD = 100/N sum_i max(0, Y_i - O_i) / Y_i          (Chattopadhay et al. 2018)
        AI = 100/N sum_i 1[Y_i < O_i]                     (Chattopadhay et al. 2018, "increase
                                                            in confidence")
        AG = 100/N sum_i max(0, O_i - Y_i) / (1 - Y_i)    (Zhang et al. 2023, Opti-CAM)

    Args:
        model: Keras model or callable returning logits (or probabilities with ``softmax=False``).
        images: (N,H,W,C) floats in [0, 1].
        targets: (N,) class indices or a scalar.
        cams: (N,h,w) maps (any resolution; upsampled bilinearly), or (N,h,w,C) with ``reduce``.
        per_sample: default False returns the three means (NaN samples ignored); True returns the
            three (N,) arrays plus ``"y"`` and ``"o"``.
        **kw: ``reduce``, ``constant``, ``batch_size``, ``softmax`` (see :func:`explanation_images`,
            :func:`predict_proba`).

    Returns:
        dict with keys ``"average_drop"``, ``"average_increase"``, ``"average_gain"`` (percent).

    References:
        Chattopadhay et al. (2018), Grad-CAM++, arXiv:1710.11063. Zhang et al. (2023), Opti-CAM,
        arXiv:2301.07002. Torres Figueroa et al. (2024), A Learning Paradigm for Interpretable
        Gradients, arXiv:2404.15024.
    """
    y, o = _y_and_o(model, images, targets, cams, **kw)
    out = {"average_drop": _drop(y, o), "average_increase": _increase(y, o),
           "average_gain": _gain(y, o)}
    if per_sample:
        return {**out, "y": y, "o": o}
    if np.isnan(o).all():
        return {k: float("nan") for k in out}
    return {k: float(np.nanmean(v)) for k, v in out.items()}


# ------------------------------------------------------------------------------ edge baseline

_SOBEL_SMOOTH = np.array([1.0, 2.0, 1.0])
_SOBEL_DIFF = np.array([-1.0, 0.0, 1.0])


def edge_map(images) -> np.ndarray:
    """Sobel edge magnitude of each image, averaged over channels: the model-free baseline that
    Adebayo et al. (2018) compare saliency maps with.

    Per channel, ``gx`` = derivative [-1, 0, 1] along W smoothed by [1, 2, 1] along H (and ``gy``
    the transpose), borders by reflection; the map is ``mean_c sqrt(gx^2 + gy^2)``. This equals
    ``4 * sqrt(2) * skimage.filters.sobel`` of each channel (skimage scales its kernels by 1/4 and
    the magnitude by 1/sqrt(2)).

    Args:
        images: (N,H,W,C) or (N,H,W) floats.

    Returns:
        (N,H,W) float64, non-negative.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x = x[..., None]
    _check_images(x)
    gx = ndimage.correlate1d(ndimage.correlate1d(x, _SOBEL_DIFF, axis=2, mode="reflect"),
                             _SOBEL_SMOOTH, axis=1, mode="reflect")
    gy = ndimage.correlate1d(ndimage.correlate1d(x, _SOBEL_DIFF, axis=1, mode="reflect"),
                             _SOBEL_SMOOTH, axis=2, mode="reflect")
    return np.sqrt(gx ** 2 + gy ** 2).mean(axis=-1)


__all__ = [
    "SIMILARITY", "COMPLEXITY", "FAITHFULNESS", "REDUCTIONS",
    "spearman_abs", "spearman_signed", "pearson", "ssim", "hog_pearson", "default_pixels_per_cell",
    "entropy", "gini", "total_variation",
    "predict_proba", "resize_maps", "perturbation_curves", "deletion_auc", "insertion_auc",
    "explanation_images", "average_drop", "increase_in_confidence", "average_gain",
    "average_drop_increase_gain", "edge_map",
]
