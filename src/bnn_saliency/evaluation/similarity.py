"""Similarity metrics ``metric(maps_a, maps_b) -> (N,)`` and the Sobel edge map used as a
model-independent reference."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy import stats as sps

from .. import checks
from .registry import SIMILARITY, _check_pair, _flat, _minmax, _register, _rowwise_pearson, _to_2d


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
    checks.images(x)
    gx = ndimage.correlate1d(ndimage.correlate1d(x, _SOBEL_DIFF, axis=2, mode="reflect"),
                             _SOBEL_SMOOTH, axis=1, mode="reflect")
    gy = ndimage.correlate1d(ndimage.correlate1d(x, _SOBEL_DIFF, axis=1, mode="reflect"),
                             _SOBEL_SMOOTH, axis=2, mode="reflect")
    return np.sqrt(gx ** 2 + gy ** 2).mean(axis=-1)


def agreement(maps_a, maps_b, metrics=None, size: tuple[int, int] | None = None,
              prepare=None) -> dict[str, np.ndarray]:
    """Per-image agreement of two batches of maps of the same images: metric name -> (N,).

    The one "do two explanations agree" of the study. ``prepare`` (e.g.
    :func:`bnn_saliency.postprocess.tfkerasvis_style`) is applied to both batches first;
    ``size`` then upsamples both bilinearly (:func:`bnn_saliency.postprocess.upsample`), so maps
    of different resolution can be compared. ``metrics`` defaults to the signed Spearman rank
    correlation. NaN where a map is constant (e.g. a blank Grad-CAM).
    """
    from ..postprocess import upsample

    a, b = maps_a, maps_b
    if prepare is not None:
        a, b = prepare(a), prepare(b)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if size is not None:
        a, b = upsample(a, size, np.float64), upsample(b, size, np.float64)
    metrics = {"Spearman signed": spearman_signed} if metrics is None else metrics
    return {name: fn(a, b) for name, fn in metrics.items()}
