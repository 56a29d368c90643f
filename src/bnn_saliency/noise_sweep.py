"""SmoothGrad noise sweeps: maps over a grid of noise levels and the best noise level.

* :func:`smoothgrad_halves`: tf-keras-vis-style SmoothGrad (average of ``|gradient|``) at
  each noise level, computed as independent halves (separate noise seeds). The mean of
  the halves is the SmoothGrad map with all samples; the agreement of two halves measures
  how reproducible the map is under a fresh draw of the noise.
* :func:`display`: tf-keras-vis's displayed map (max over channels, min-max) for arrays
  with any number of leading axes.
* :func:`argmax_bootstrap`: the noise level that optimizes a per-image score, with a
  bootstrap over images of the arg-max (paired across models: every replicate resamples
  the same images for all models).
* :func:`ratio_ci`: bootstrap interval of a ratio of two means over the same images.
* :func:`range_verdict`: a claims verdict for "the interval lies inside [lo, hi]".
* :func:`compiled_forward`: a compiled numpy-in, numpy-out forward pass, for the metrics
  that accept any callable model (faster than calling a Keras model eagerly).

References:
    Smilkov et al. 2017, "SmoothGrad: removing noise by adding noise", arXiv:1706.03825.
    Efron & Tibshirani 1993, An Introduction to the Bootstrap (percentile intervals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from . import claims, postprocess, saliency, stats

__all__ = ["smoothgrad_halves", "display", "ArgmaxBootstrap", "argmax_bootstrap", "ratio_ci",
           "range_verdict", "compiled_forward"]


def smoothgrad_halves(model, images, targets, noises: Sequence[float], n_per_half: int,
                      seeds: Sequence[int] = (1, 2), batch_size: int = 256) -> np.ndarray:
    """Absolute-value SmoothGrad at each noise level, one array per independent half.

    For half ``h`` and level ``noises[k]`` this is ``saliency.smoothgrad(model, images,
    targets, noise=noises[k], n_samples=n_per_half, seed=seeds[h], magnitude="abs")``: the
    mean of ``|d logit / d x|`` over ``n_per_half`` Gaussian noisy copies (what tf-keras-vis
    averages). A noise level of 0 is the plain ``|gradient|``, computed once and shared by
    all halves (they would be identical). The same seed at every level gives common random
    numbers: the same standard-normal draws, scaled.

    Args:
        model, images, targets: as for :func:`bnn_saliency.saliency.smoothgrad`.
        noises: noise levels (fractions of each image's value range), >= 0.
        n_per_half: noisy copies per half (>= 1); the combined map uses
            ``len(seeds) * n_per_half`` samples.
        seeds: one noise seed per half (default (1, 2)); must be distinct.
        batch_size: gradients per compiled call (default 256).

    Returns:
        float32 array ``(len(seeds), len(noises), N, H, W, C)`` of raw (unnormalized)
        averages of ``|gradient|``. Combine halves with ``.mean(axis=0)``.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and non-empty, got {seeds}")
    noises = [float(v) for v in noises]
    if not noises or any(not np.isfinite(v) or v < 0 for v in noises):
        raise ValueError(f"noises must be a non-empty list of numbers >= 0, got {noises}")
    if isinstance(n_per_half, bool) or not isinstance(n_per_half, (int, np.integer)) or n_per_half < 1:
        raise ValueError(f"n_per_half must be a positive integer, got {n_per_half!r}")
    out = None
    plain = None
    for k, noise in enumerate(noises):
        for h, seed in enumerate(seeds):
            if noise == 0:
                if plain is None:
                    plain = np.abs(saliency.gradient(model, images, targets, batch_size=batch_size))
                m = plain
            else:
                m = saliency.smoothgrad(model, images, targets, noise=noise,
                                        n_samples=int(n_per_half), seed=seed, magnitude="abs",
                                        batch_size=batch_size)
            if out is None:
                out = np.empty((len(seeds), len(noises)) + m.shape, dtype=np.float32)
            out[h, k] = m
    return out


def display(maps) -> np.ndarray:
    """tf-keras-vis's displayed map for raw maps ``(..., H, W, C)``: abs, max over
    channels, per-map min-max (:func:`bnn_saliency.postprocess.tfkerasvis_style`).

    Returns:
        float32 ``(..., H, W)`` in [0, 1].
    """
    arr = np.asarray(maps)
    if arr.ndim < 4:
        raise ValueError(f"maps must be (..., H, W, C) with a batch axis, got shape {arr.shape}")
    flat = arr.reshape((-1,) + arr.shape[-3:])
    return postprocess.tfkerasvis_style(flat).reshape(arr.shape[:-1])


@dataclass
class ArgmaxBootstrap:
    """Best noise level per model, with its bootstrap distribution.

    Attributes:
        grid: the noise levels (S,).
        names: model names, in the order of the columns of ``boots``.
        points: name -> best level of the mean curve over all images.
        boots: (n_boot, M) best level of each bootstrap replicate (same images per row).
        ci: coverage of the intervals.
    """

    grid: np.ndarray
    names: list[str]
    points: dict[str, float]
    boots: np.ndarray
    ci: float

    def _q(self, values: np.ndarray) -> tuple[float, float]:
        alpha = (1.0 - self.ci) / 2.0
        ok = values[np.isfinite(values)]
        if ok.size == 0:
            return float("nan"), float("nan")
        low, high = np.quantile(ok, [alpha, 1.0 - alpha], method="inverted_cdf")
        return float(low), float(high)

    def interval(self, name: str) -> stats.CI:
        """(point, low, high) of the best level of ``name`` (percentile interval)."""
        j = self.names.index(name)
        return stats.CI(self.points[name], *self._q(self.boots[:, j]))

    def difference(self, a: str, b: str) -> stats.CI:
        """Paired bootstrap (point, low, high) of best(a) - best(b)."""
        ja, jb = self.names.index(a), self.names.index(b)
        return stats.CI(self.points[a] - self.points[b],
                        *self._q(self.boots[:, ja] - self.boots[:, jb]))

    def probabilities(self):
        """DataFrame: bootstrap probability that each level is the best, per model."""
        import pandas as pd

        rows = {name: [float(np.mean(self.boots[:, j] == g)) for g in self.grid]
                for j, name in enumerate(self.names)}
        return pd.DataFrame(rows, index=pd.Index(self.grid, name="noise")).T


def argmax_bootstrap(curves: Mapping[str, np.ndarray], grid: Sequence[float],
                     direction: str = "higher", n_boot: int = 2000, ci: float = 0.95,
                     seed: int = 0) -> ArgmaxBootstrap:
    """The grid value at which the mean (over images) of a per-image score is best.

    Args:
        curves: model name -> (N, S) scores of the same N images at the S grid values
            (NaN = undefined, ignored by the means).
        grid: the S grid values (e.g. noise levels).
        direction: ``"higher"`` (default) takes the arg-max of the mean curve, ``"lower"``
            the arg-min. Ties go to the first (smallest-index) grid value.
        n_boot, ci, seed: bootstrap replicates (default 2000), coverage (0.95), seed (0).
            Each replicate draws N images with replacement, the same ones for every model,
            and records each model's best grid value.

    Returns:
        :class:`ArgmaxBootstrap`.
    """
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0:
        raise ValueError(f"grid must be a non-empty 1-D sequence, got shape {grid.shape}")
    if not curves:
        raise ValueError("curves is empty")
    names = list(curves)
    arrays = [np.asarray(curves[n], dtype=np.float64) for n in names]
    n = arrays[0].shape[0]
    for name, a in zip(names, arrays):
        if a.ndim != 2 or a.shape != (n, grid.size):
            raise ValueError(f"curves[{name!r}] must have shape (N, S) = ({n}, {grid.size}), "
                             f"got {a.shape}; all models need the same images and grid")
        if np.isinf(a).any():
            raise ValueError(f"curves[{name!r}] contains inf")
    if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 1):
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    sign = 1.0 if direction == "higher" else -1.0

    def best(mean_curves: np.ndarray) -> np.ndarray:
        """mean_curves (..., S) -> best grid value (...), NaN if a curve is all NaN."""
        filled = np.where(np.isnan(mean_curves), -np.inf, sign * mean_curves)
        idx = np.argmax(filled, axis=-1)
        out = grid[idx]
        return np.where(np.isnan(mean_curves).all(axis=-1), np.nan, out)

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(int(n_boot), n))
    boots = np.empty((int(n_boot), len(names)))
    points = {}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        for j, (name, a) in enumerate(zip(names, arrays)):
            points[name] = float(best(np.nanmean(a, axis=0)))
            chunk = max(1, 2_000_000 // max(1, a.size))
            for s in range(0, int(n_boot), chunk):
                boots[s:s + chunk, j] = best(np.nanmean(a[idx[s:s + chunk]], axis=1))
    return ArgmaxBootstrap(grid, names, points, boots, ci)


def ratio_ci(num, den, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> stats.CI:
    """Bootstrap interval of ``mean(num) / mean(den)`` over paired units (images).

    Both means use the units where both values are defined (not NaN). Images are resampled
    in pairs with :func:`bnn_saliency.stats.bootstrap_ci`.

    Returns:
        :class:`bnn_saliency.stats.CI` (point, low, high).
    """
    a = np.asarray(num, dtype=np.float64)
    b = np.asarray(den, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"num and den must be 1-D arrays of equal length, got {a.shape}, {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    if not keep.any():
        raise ValueError("no unit has both num and den defined")
    pairs = np.stack([a[keep], b[keep]], axis=1)

    def stat(x, axis):
        return np.mean(x[..., 0], axis=axis) / np.mean(x[..., 1], axis=axis)

    return stats.bootstrap_ci(pairs, stat=stat, n_boot=n_boot, ci=ci, seed=seed)


def range_verdict(low: float, high: float, lo: float, hi: float) -> str:
    """Verdict for "the value lies in [lo, hi]" from an interval, via :func:`claims.judge`.

    Reproduced if the whole interval is inside ``(lo, hi)``; not reproduced if it lies
    entirely outside (wholly below ``lo`` or wholly above ``hi``); partly otherwise. For a
    discrete grid pass bounds half-way to the neighbouring grid values.
    """
    if not lo < hi:
        raise ValueError(f"need lo < hi, got [{lo}, {hi}]")
    above = claims.judge(low, high, lo, "above")
    below = claims.judge(low, high, hi, "below")
    if above == "reproduced" and below == "reproduced":
        return "reproduced"
    if above == "not reproduced" or below == "not reproduced":
        return "not reproduced"
    return "partly"


def compiled_forward(model):
    """``f(x: np.ndarray) -> np.ndarray``: the model's output in inference mode, through one
    ``tf.function`` with a variable batch axis (traced once).

    Use it where :mod:`bnn_saliency.metrics` accepts "any callable ``f(x) -> (N, K)``" (e.g.
    :func:`~bnn_saliency.metrics.insertion_auc`): the results equal those of the Keras model
    up to float rounding, computed without Keras's eager per-call overhead. Inputs are cast
    to the model's input dtype.
    """
    import tensorflow as tf

    if len(model.inputs) != 1:
        raise ValueError(f"model {model.name!r} must have one input, has {len(model.inputs)}")
    dtype = tf.as_dtype(model.inputs[0].dtype)
    spec = tf.TensorSpec((None,) + tuple(model.inputs[0].shape[1:]), dtype)
    fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])

    def forward(x):
        return fn(tf.constant(np.asarray(x, dtype=dtype.as_numpy_dtype))).numpy()

    forward.__name__ = f"compiled_{model.name}"
    return forward
