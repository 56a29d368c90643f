"""Bootstrap confidence intervals and the per-group summaries behind the chapters' tables.

All intervals are percentile bootstrap intervals (Efron & Tibshirani 1993, ch. 13) with a fixed
seed, computed with vectorized resampling. The default statistic is ``np.nanmean`` so that
per-sample scores that are undefined (NaN, see :mod:`bnn_saliency.metrics`) are ignored; report
how many there were (``summarize`` has an ``n_nan`` column).

* :func:`bootstrap_ci`: resample units (images) along the first axis.
* :func:`paired_bootstrap_diff`: the same on paired differences ``a - b`` (e.g. BNN vs FP scores of
  the same images).
* :func:`bootstrap_ci_2level`: ``values[seeds, images]`` with both factors resampled, so that the
  interval reflects training-seed variability as well as image variability.
* :func:`seeds_images_replicates` / :func:`seeds_images_ci`: the same two factors for a statistic
  of *pairs* of models (e.g. FP-s_i vs BNN-s_j, i != j): seed labels are drawn per kind of model,
  then images, and the statistic is recomputed on the drawn pairs (:func:`cross_pairs`,
  :func:`within_pairs`).
* :func:`summarize`: a tidy DataFrame (mean, low, high, n) per group.
* :func:`ratio_ci`: interval of a ratio of two means over the same images.
* :func:`bootstrap_pvalue` and :func:`holm`: a two-sided bootstrap p-value of a statistic
  against a threshold, and Holm's step-down adjustment of a family of them (Holm 1979).

References:
    Efron, B., Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman & Hall.
    Owen, A. B. (2007). The pigeonhole bootstrap. Annals of Applied Statistics 1(2), 386-411.
        arXiv:0710.2224.
    Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scandinavian
        Journal of Statistics 6(2), 65-70.
    Davison, A. C., Hinkley, D. V. (1997). Bootstrap Methods and their Application, sec. 3.8
        (multi-level / nested data). Cambridge University Press.
"""

from __future__ import annotations

import warnings
from typing import Callable, NamedTuple, Sequence

import numpy as np


def ratio_ci(num, den, n_boot: int = 2000, ci: float = 0.95, seed: int = 0, *,
             paired: bool = True) -> CI:
    """Bootstrap interval of a ratio of two samples' statistics.

    ``paired=True`` (default): ``mean(num) / mean(den)`` over paired units (images), using the
    units where both values are defined (not NaN) and resampling them in pairs with
    :func:`bootstrap_ci`. ``paired=False``: ``median(num) / median(den)`` of two independent
    samples of positive timings, each resampled on its own (the benchmark's speed-ups).

    Returns:
        :class:`CI` (point, low, high).
    """
    a = np.asarray(num, dtype=np.float64)
    b = np.asarray(den, dtype=np.float64)
    if not paired:
        for name, v in (("numerator", a), ("denominator", b)):
            if v.ndim != 1 or len(v) == 0:
                raise ValueError(f"{name} must be a non-empty 1-D sequence of timings, "
                                 f"got shape {v.shape}")
            if not np.all(np.isfinite(v)) or np.any(v <= 0):
                raise ValueError(f"{name} must hold finite positive timings, got {v.tolist()}")
        _check_common(n_boot, ci)
        rng = np.random.default_rng(seed)
        ma = np.median(a[rng.integers(0, len(a), (n_boot, len(a)))], axis=1)
        mb = np.median(b[rng.integers(0, len(b), (n_boot, len(b)))], axis=1)
        alpha = (1 - ci) / 2
        low, high = np.quantile(ma / mb, [alpha, 1 - alpha])
        return CI(float(np.median(a) / np.median(b)), float(low), float(high))
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"num and den must be 1-D arrays of equal length, got {a.shape}, {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    if not keep.any():
        raise ValueError("no unit has both num and den defined")
    pairs = np.stack([a[keep], b[keep]], axis=1)

    def stat(x, axis):
        return np.mean(x[..., 0], axis=axis) / np.mean(x[..., 1], axis=axis)

    return bootstrap_ci(pairs, stat=stat, n_boot=n_boot, ci=ci, seed=seed)


#: Upper bound on the number of resampled values held in memory at once.
_MAX_ELEMENTS = 20_000_000


class TooFewSeeds(ValueError):
    """The shipped seeds cannot form a statistic's pairs (e.g. one seed for a seed term)."""


class CI(NamedTuple):
    """A point estimate and its bootstrap interval; unpacks as ``point, low, high``."""

    point: float | np.ndarray
    low: float | np.ndarray
    high: float | np.ndarray


def _check_common(n_boot: int, ci: float) -> None:
    if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 1):
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), e.g. 0.95, got {ci!r}")


def _as_values(values, name: str = "values") -> np.ndarray:
    v = np.asarray(values)
    if v.dtype == object or not (np.issubdtype(v.dtype, np.number) or v.dtype == bool):
        raise TypeError(f"{name} must be numeric, got dtype {v.dtype}")
    v = v.astype(np.float64)
    if v.ndim == 0:
        raise ValueError(f"{name} must have at least one axis (samples), got a scalar")
    if v.shape[0] == 0:
        raise ValueError(f"{name} is empty; nothing to bootstrap")
    if np.isinf(v).any():
        raise ValueError(f"{name} contains inf; drop or fix those entries")
    if np.isnan(v).all():
        raise ValueError(f"{name} is all NaN; no defined sample to estimate from")
    return v


def _scalar(x):
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


def percentile_interval(point, replicates, ci: float = 0.95) -> CI:
    """The percentile interval of bootstrap ``replicates`` around ``point`` (NaNs ignored)."""
    return _interval(point, np.asarray(replicates, dtype=np.float64), ci)


def _interval(point, boots: np.ndarray, ci: float) -> CI:
    alpha = (1.0 - ci) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(boots, [alpha, 1.0 - alpha], axis=0)
    return CI(_scalar(point), _scalar(low), _scalar(high))


def bootstrap_ci(values, stat: Callable = np.nanmean, n_boot: int = 2000, ci: float = 0.95,
                 seed: int = 0) -> CI:
    """Percentile bootstrap interval of ``stat`` over the first axis (the units, e.g. images).

    Args:
        values: array (n, ...) of per-unit values; extra axes are carried along (one interval per
            entry, resampling whole rows).
        stat: reducer called as ``stat(x, axis=...)``; default ``np.nanmean`` (NaNs ignored).
        n_boot: bootstrap replicates, default 2000.
        ci: coverage of the interval, default 0.95.
        seed: seed of ``numpy.random.default_rng``, default 0 (same seed -> same interval).

    Returns:
        :class:`CI` ``(point, low, high)``: ``point = stat(values)``; ``low``/``high`` are the
        ``(1-ci)/2`` and ``(1+ci)/2`` quantiles of the bootstrap distribution. Floats for 1-D input.

    Raises:
        ValueError: empty, all-NaN or infinite values, bad ``n_boot``/``ci``.
    """
    _check_common(n_boot, ci)
    v = _as_values(values)
    n = v.shape[0]
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resamples -> NaN, dropped below
        point = stat(v, axis=0)
        chunk = max(1, _MAX_ELEMENTS // max(1, v.size))
        boots = []
        for start in range(0, n_boot, chunk):
            idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
            boots.append(stat(v[idx], axis=1))
        boots = np.concatenate(boots, axis=0)
    return _interval(point, boots, ci)


def paired_bootstrap_diff(a, b, stat: Callable = np.nanmean, n_boot: int = 2000,
                          ci: float = 0.95, seed: int = 0) -> CI:
    """Bootstrap interval of ``stat(a - b)`` for paired samples (same units in ``a`` and ``b``).

    Pairs are resampled together, so unit-to-unit variation shared by ``a`` and ``b`` cancels.
    With the default ``np.nanmean`` a pair where either value is NaN is dropped, and the point
    estimate is ``mean(a) - mean(b)`` over the pairs where both are defined.

    Args:
        a, b: arrays of identical shape (n, ...).
        stat, n_boot, ci, seed: as in :func:`bootstrap_ci`.

    Returns:
        :class:`CI` of the difference.
    """
    a = _as_values(a, "a")
    b = _as_values(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"paired samples must have the same shape, got {a.shape} and {b.shape}")
    return bootstrap_ci(a - b, stat=stat, n_boot=n_boot, ci=ci, seed=seed)


def bootstrap_ci_2level(values, stat: Callable = np.nanmean, n_boot: int = 2000,
                        ci: float = 0.95, seed: int = 0, design: str = "crossed") -> CI:
    """Bootstrap interval over two random factors: training seeds (rows) and images (columns).

    Args:
        values: array (S, I), ``values[s, i]`` = score of image i under the model trained with
            seed s (NaN for missing/undefined entries).
        stat: reducer called as ``stat(x, axis=(1, 2))``; default ``np.nanmean``.
        n_boot, ci, seed: as in :func:`bootstrap_ci`.
        design: ``"crossed"`` (default; the same images are scored under every seed): seeds and
            images are resampled independently and the resampled table is
            ``values[seed_idx][:, image_idx]`` (Owen's 2007 pigeonhole bootstrap). ``"nested"``:
            images are resampled separately within each resampled seed (images nested in seeds;
            Davison & Hinkley 1997, sec. 3.8).

    Returns:
        :class:`CI` with ``point = stat(values)`` over all entries.

    Note:
        With few seeds (S = 2-5) the seed-level resampling is coarse and the interval is only a
        rough guide; it is still wider, and more honest, than treating all S*I values as
        independent.
    """
    _check_common(n_boot, ci)
    v = _as_values(values)
    if v.ndim != 2:
        raise ValueError(f"values must be a (seeds, images) matrix, got shape {v.shape}")
    if design not in ("crossed", "nested"):
        raise ValueError(f"design must be 'crossed' or 'nested', got {design!r}")
    s, i = v.shape
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        point = stat(v, axis=(0, 1))
        chunk = max(1, _MAX_ELEMENTS // v.size)
        boots = []
        for start in range(0, n_boot, chunk):
            m = min(chunk, n_boot - start)
            si = rng.integers(0, s, size=(m, s))
            if design == "crossed":
                ii = rng.integers(0, i, size=(m, 1, i))
            else:
                ii = rng.integers(0, i, size=(m, s, i))
            boots.append(stat(v[si[:, :, None], ii], axis=(1, 2)))
        boots = np.concatenate(boots)
    return _interval(point, boots, ci)


def cross_pairs(a: Sequence, b: Sequence) -> list[tuple]:
    """Every (a_i, b_j) of two drawn seed-label sequences with different labels (i != j), with
    multiplicity: the cross-seed pairs, where both models differ in initialization."""
    return [(i, j) for i in a for j in b if i != j]


def within_pairs(labels: Sequence) -> list[tuple]:
    """Every unordered pair of draws from one seed-label sequence whose labels differ, with
    multiplicity: the seed pairs of one kind of model (retraining alone)."""
    labels = list(labels)
    return [(labels[p], labels[q]) for p in range(len(labels))
            for q in range(p + 1, len(labels)) if labels[p] != labels[q]]


def seeds_images_bootstrap(prepare: Callable, seeds: dict[str, Sequence], n_images: int,
                           n_boot: int = 2000, seed: int = 0) -> tuple[float, np.ndarray]:
    """Point estimate and bootstrap replicates of any statistic over seeds, then images.

    Each replicate draws every kind's seed labels with replacement (``seeds``, e.g.
    ``{"fp": [0, 1, 2], "bnn": [0, 1, 2]}``) and calls ``prepare(drawn)``, which returns
    ``statistic(images) -> float`` on the models of the drawn labels, or None when they cannot
    form the pairs it needs (that replicate is drawn again); then it draws ``n_images`` image
    indices with replacement (the same images for every model: a crossed design) and evaluates
    the statistic on them. The point estimate uses every seed and every image. For statistics
    that are not means of per-image values (an arg-max of a mean curve, a ratio of means).

    Returns:
        ``(point, replicates)``.

    Raises:
        TooFewSeeds: the statistic cannot be formed on all the seeds, or on almost no draw.
    """
    _check_common(n_boot, 0.95)
    labels = {kind: list(v) for kind, v in seeds.items()}
    full = prepare(labels)
    if full is None:
        raise TooFewSeeds(f"the statistic cannot be formed from the seeds {labels}: it needs "
                         "more seeds of some kind (e.g. two for a seed term)")
    rng = np.random.default_rng(seed)
    cache: dict[tuple, Callable | None] = {}
    boots, redraws = [], 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        point = float(full(np.arange(n_images)))
        while len(boots) < n_boot:
            drawn = {kind: list(rng.choice(v, size=len(v))) for kind, v in labels.items()}
            key = tuple((kind, tuple(sorted(v))) for kind, v in drawn.items())
            if key not in cache:
                cache[key] = prepare(drawn)
            if cache[key] is None:
                redraws += 1
                if redraws > 50 * n_boot:
                    raise TooFewSeeds("almost no seed draw forms the statistic's pairs")
                continue
            boots.append(float(cache[key](rng.integers(0, n_images, n_images))))
    return point, np.asarray(boots)


def seeds_images_replicates(per_image: Callable, seeds: dict[str, Sequence], n_images: int,
                            n_boot: int = 2000, seed: int = 0) -> tuple[float, np.ndarray]:
    """:func:`seeds_images_bootstrap` of a mean over images: ``per_image(drawn)`` gives the
    per-image values of the statistic on the models of the drawn labels (None when they cannot
    form its pairs), and each replicate averages them over the drawn images.

    Returns:
        ``(point, replicates)``: the mean of ``per_image(seeds)`` and ``n_boot`` replicate means.
    """
    def prepare(drawn):
        values = per_image(drawn)
        if values is None:
            return None
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (n_images,):
            raise ValueError(f"per_image must return {n_images} values, got shape {values.shape}")
        return lambda idx: np.nanmean(values[idx])

    return seeds_images_bootstrap(prepare, seeds, n_images, n_boot, seed)


def seeds_images_ci(per_image: Callable, seeds: dict[str, Sequence], n_images: int,
                    n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> CI:
    """Percentile interval of :func:`seeds_images_replicates` (same arguments).

    Note:
        With two or three seeds per kind the seed level is coarse (few distinct draws): the
        interval is a rough guide, but it carries retraining variability that an image-only
        bootstrap leaves out."""
    _check_common(n_boot, ci)
    point, boots = seeds_images_replicates(per_image, seeds, n_images, n_boot, seed)
    return _interval(point, boots, ci)


def replicate_pvalue(replicates, null: float) -> float:
    """Two-sided bootstrap p-value of a statistic against ``null`` from its replicates:
    ``(1 + min(#{t* <= null}, #{t* >= null})) * 2 / (n + 1)``, capped at 1 (replicates equal
    to ``null`` count on both sides)."""
    boots = np.asarray(replicates, dtype=np.float64)
    boots = boots[np.isfinite(boots)]
    if len(boots) == 0:
        raise ValueError("no finite bootstrap replicates")
    tail = min(np.sum(boots <= null), np.sum(boots >= null))
    return float(min(1.0, 2.0 * (1 + tail) / (len(boots) + 1)))


def bootstrap_pvalue(values, null: float = 0.0, stat: Callable = np.nanmean,
                     n_boot: int = 2000, seed: int = 0) -> float:
    """Two-sided bootstrap p-value of ``stat(values)`` against ``null`` (e.g. a claim's
    threshold): ``(1 + min(#{t* <= null}, #{t* >= null})) * 2 / (n_boot + 1)``, capped at 1,
    over the bootstrap replicates ``t*`` of :func:`bootstrap_ci` (same resampling, same seed).
    It is below ``1 - ci`` exactly when the ``ci`` percentile interval excludes ``null`` (up to
    the +1 that keeps a p-value above 0)."""
    _check_common(n_boot, 0.95)
    v = _as_values(values)
    if v.ndim != 1:
        raise ValueError(f"values must be 1-D (one value per unit), got shape {v.shape}")
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        boots = stat(v[rng.integers(0, len(v), size=(n_boot, len(v)))], axis=1)
    return replicate_pvalue(boots, null)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order: the i-th smallest of m is
    multiplied by ``m - i + 1`` (i from 1), made non-decreasing along the sorted order and
    capped at 1. Rejecting where the adjusted value is <= alpha controls the family-wise error
    rate at alpha under any dependence."""
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1 or len(p) == 0:
        raise ValueError(f"pvalues must be a non-empty 1-D sequence, got shape {p.shape}")
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def summarize(df, value_col: str, by: str | Sequence[str], stat: Callable = np.nanmean,
              n_boot: int = 2000, ci: float = 0.95, seed: int = 0, seed_col: str | None = None,
              image_col: str | None = None, stat_name: str = "mean"):
    """Per-group point estimate and bootstrap interval, as a DataFrame for the chapters' tables.

    Args:
        df: long-format pandas DataFrame, one row per measurement.
        value_col: column holding the values.
        by: grouping column(s).
        stat, n_boot, ci, seed: as in :func:`bootstrap_ci` (every group uses the same ``seed``).
        seed_col, image_col: give both to use :func:`bootstrap_ci_2level` (crossed design)
            within each group, with the values pivoted to a (seeds, images) table; each
            (seed, image) pair must occur at most once per group. Default None: rows are
            resampled as independent units with :func:`bootstrap_ci`.
        stat_name: name of the point-estimate column, default ``"mean"``.

    Returns:
        DataFrame with the ``by`` columns, then ``stat_name``, ``low``, ``high``, ``n`` (number of
        non-NaN values), ``n_nan``, and ``n_seeds`` when ``seed_col`` is given. Groups with only
        NaN values get NaN estimates.
    """
    import pandas as pd

    by = [by] if isinstance(by, str) else list(by)
    if (seed_col is None) != (image_col is None):
        raise ValueError("give both seed_col and image_col for a two-level bootstrap, or neither")
    needed = [value_col, *by] + ([seed_col, image_col] if seed_col else [])
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise KeyError(f"columns {missing} not in the DataFrame (has {list(df.columns)})")
    if len(df) == 0:
        raise ValueError("df is empty; nothing to summarize")
    rows = []
    for key, group in df.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        vals = group[value_col].to_numpy(dtype=np.float64)
        row = dict(zip(by, key))
        n_ok = int(np.isfinite(vals).sum())
        if n_ok == 0:
            point = low = high = np.nan
        elif seed_col is None:
            point, low, high = bootstrap_ci(vals, stat, n_boot, ci, seed)
        else:
            if group.duplicated([seed_col, image_col]).any():
                raise ValueError(f"group {row} has repeated ({seed_col}, {image_col}) pairs; "
                                 "aggregate them first")
            table = group.pivot(index=seed_col, columns=image_col, values=value_col)
            point, low, high = bootstrap_ci_2level(table.to_numpy(dtype=np.float64), stat,
                                                   n_boot, ci, seed)
            row["n_seeds"] = int(table.shape[0])
        row.update({stat_name: point, "low": low, "high": high, "n": n_ok,
                    "n_nan": int(len(vals) - n_ok)})
        rows.append(row)
    cols = by + [stat_name, "low", "high", "n", "n_nan"] + (["n_seeds"] if seed_col else [])
    return pd.DataFrame(rows)[cols]


__all__ = ["CI", "bootstrap_ci", "paired_bootstrap_diff", "bootstrap_ci_2level", "cross_pairs",
           "within_pairs", "seeds_images_replicates", "seeds_images_ci", "replicate_pvalue",
           "percentile_interval", "bootstrap_pvalue", "holm", "summarize"]
