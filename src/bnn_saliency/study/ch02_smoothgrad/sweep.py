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
* the chapter's tables: per-image map quality over the sweep (:func:`quality_table`), best
  levels (:func:`curves`, :func:`best_table`), seed-aware FP-vs-BNN differences
  (:func:`cross_difference`, :func:`seed_bound`), the sample-size check
  (:func:`n_check_table`), the randomization index (:func:`randomization_table`) and the
  propagation of noise through depth (:func:`propagation_tables`, :func:`amplification_ci`).

References:
    Smilkov et al. 2017, "SmoothGrad: removing noise by adding noise", arXiv:1706.03825.
    Efron & Tibshirani 1993, An Introduction to the Bootstrap (percentile intervals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ... import evaluation, methods, models, postprocess
from ...memo import cached
from ...stats import CI, bootstrap_ci, paired_bootstrap_diff


@cached
def smoothgrad_halves(model, images, targets, noises: Sequence[float], n_per_half: int,
                      seeds: Sequence[int] = (1, 2), batch_size: int = 256,
                      image_ids=None) -> np.ndarray:
    """Absolute-value SmoothGrad at each noise level, one array per independent half.

    For half ``h`` and level ``noises[k]`` this is ``methods.smoothgrad(model, images,
    targets, noise=noises[k], n_samples=n_per_half, seed=seeds[h], magnitude="abs")``: the
    mean of ``|d logit / d x|`` over ``n_per_half`` Gaussian noisy copies (what tf-keras-vis
    averages). A noise level of 0 is the plain ``|gradient|``, computed once and shared by
    all halves (they would be identical). The same seed at every level gives common random
    numbers: the same standard-normal draws, scaled.

    Args:
        model, images, targets: as for :func:`bnn_saliency.methods.smoothgrad`.
        noises: noise levels (fractions of each image's value range), >= 0.
        n_per_half: noisy copies per half (>= 1); the combined map uses
            ``len(seeds) * n_per_half`` samples.
        seeds: one noise seed per half (default (1, 2)); must be distinct.
        batch_size: gradients per compiled call (default 256).
        image_ids: one non-negative integer per image keying its noise (passed to
            :func:`bnn_saliency.methods.smoothgrad`), so a subset of the images gets the
            draws it gets in the full set; default None (one generator for all images).

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
                    plain = np.abs(methods.gradient(model, images, targets, batch_size=batch_size))
                m = plain
            else:
                m = methods.smoothgrad(model, images, targets, noise=noise,
                                        n_samples=int(n_per_half), seed=seed, magnitude="abs",
                                        image_ids=image_ids, batch_size=batch_size)
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

    def interval(self, name: str) -> CI:
        """(point, low, high) of the best level of ``name`` (percentile interval)."""
        j = self.names.index(name)
        return CI(self.points[name], *self._q(self.boots[:, j]))

    def difference(self, a: str, b: str) -> CI:
        """Paired bootstrap (point, low, high) of best(a) - best(b)."""
        ja, jb = self.names.index(a), self.names.index(b)
        return CI(self.points[a] - self.points[b],
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


#: Insertion settings of the chapter: 4 steps of 25% of the pixels into a mean-colour image.
INSERTION = dict(n_steps=4, baseline="mean", batch_size=600)


def smoothgrad_display(model, images, targets, noises: Sequence[float], n_per_half: int,
                       seeds: Sequence[int] = (1, 2)) -> np.ndarray:
    """Displayed SmoothGrad maps with all samples: :func:`display` of the mean of the
    :func:`smoothgrad_halves`; float32 ``(len(noises), N, H, W)``."""
    halves = smoothgrad_halves(model, images, targets, noises, n_per_half, seeds=seeds)
    return display(halves.mean(axis=0))


def requantize(images, rng: np.random.Generator, levels: int = 255) -> np.ndarray:
    """Each value moved by one grey level, up or down at random (``+-1/levels``), clipped to
    [0, 1]: the smallest change of an 8-bit image. float32, same shape."""
    x = np.asarray(images)
    return np.clip(x + rng.choice([-1.0, 1.0], x.shape) / levels, 0, 1).astype(np.float32)


@cached
def quality_table(name: str, model, forward, images, labels, maps, half_maps,
                  levels: Sequence[float], *, random_maps, requantized=None,
                  plain_stability=None, insertion: dict | None = None):
    """Per image and noise level: complexity, faithfulness and stability of a model's maps.

    Columns ``gini`` (:func:`bnn_saliency.evaluation.gini` of the displayed map), ``insertion``
    (:func:`bnn_saliency.evaluation.insertion_auc`, settings ``insertion``, default
    :data:`INSERTION`), ``insertion gain`` (minus the AUC of ``random_maps``) and
    ``stability``: for a level > 0 the Spearman correlation of the two half maps; at level 0
    (the plain gradient) ``plain_stability`` if given, else the Spearman correlation with the
    plain gradient of ``requantized`` (:func:`requantize`).

    Args:
        name: model name (the ``model`` column).
        model, forward: the Keras model and a fast callable of it (:func:`bnn_saliency.methods.forward`).
        images, labels: the N images and their targets.
        maps: (S, N, H, W) displayed maps at the S ``levels``.
        half_maps: (2, S, N, H, W) displayed maps of the two halves.
        random_maps: (N, H, W) uniformly random maps (the faithfulness baseline).

    Returns:
        DataFrame with columns model, noise, image, gini, insertion, insertion gain, stability.
    """
    import pandas as pd


    maps = np.asarray(maps)
    s, n = maps.shape[:2]
    if s != len(levels) or n != len(images) or len(random_maps) != n:
        raise ValueError(f"maps must be (len(levels), N, H, W) = ({len(levels)}, {len(images)}, "
                         f"...) with N random maps, got {maps.shape} and {len(random_maps)}")
    hw = maps.shape[2:]
    tiled = np.concatenate([maps.reshape((-1,) + hw), random_maps])
    auc = evaluation.insertion_auc(forward, np.tile(images, (s + 1, 1, 1, 1)),
                                np.tile(labels, s + 1), tiled,
                                **(INSERTION if insertion is None else insertion)).reshape(s + 1, -1)
    rows = []
    for k, level in enumerate(levels):
        if level != 0:
            stab = evaluation.spearman_abs(half_maps[0, k], half_maps[1, k])
        elif plain_stability is not None:
            stab = np.asarray(plain_stability)
        else:
            if requantized is None:
                raise ValueError("level 0 needs requantized images or plain_stability")
            g = methods.gradient(model, requantized, labels, batch_size=256)
            stab = evaluation.spearman_abs(maps[k], display(np.abs(g)))
        rows.append(pd.DataFrame({"model": name, "noise": level, "image": np.arange(n),
                                  "gini": evaluation.gini(maps[k]), "insertion": auc[k],
                                  "insertion gain": auc[k] - auc[-1], "stability": stab}))
    return pd.concat(rows, ignore_index=True)


def curves(table, measure: str, names: Sequence[str], noises: Sequence[float]
           ) -> dict[str, np.ndarray]:
    """name -> (N, S) per-image values of ``measure`` at ``noises`` (the input of
    :func:`argmax_bootstrap`)."""
    out = {}
    for n in names:
        wide = table[table["model"] == n].pivot(index="image", columns="noise", values=measure)
        missing = [v for v in noises if v not in wide.columns]
        if missing:
            raise KeyError(f"{n!r} has no {measure!r} values at noise levels {missing}")
        out[n] = wide[list(noises)].to_numpy()
    return out


def best_table(best: Mapping[str, ArgmaxBootstrap], names: Sequence[str]):
    """One row per measure and model: best level, its interval and bootstrap probability."""
    import pandas as pd

    rows = []
    for m, res in best.items():
        for n in names:
            point, low, high = res.interval(n)
            rows.append({"measure": m, "model": n, "best σ": point, "low": low, "high": high,
                         "P(best)": float(res.probabilities().loc[n, point])})
    return pd.DataFrame(rows)


def values_at(table, name: str, noise: float, measure: str) -> np.ndarray:
    """Per-image values (sorted by image) of one model, noise level and measure."""
    sel = table[(table["model"] == name) & (table["noise"] == noise)].sort_values("image")
    if sel.empty:
        raise KeyError(f"no rows for model {name!r} at noise {noise}")
    return sel[measure].to_numpy()


def seed_bound(table, seed_pairs, measure: str, noise: float = 0.20) -> float:
    """The largest absolute end of the paired 95% intervals of seed-0 minus seed-1 differences
    (one per seed pair); 0 without seed pairs."""
    ends = []
    for a, b in seed_pairs:
        ci = paired_bootstrap_diff(values_at(table, a, noise, measure),
                                         values_at(table, b, noise, measure))
        ends += [abs(ci.low), abs(ci.high)]
    return max(ends) if ends else 0.0


def cross_difference(table, cross_pairs, measure: str, noise: float = 0.20) -> CI:
    """Per image, ``value(a) - value(b)`` averaged over the (a, b) pairs, with a bootstrap CI."""
    if not cross_pairs:
        raise ValueError("cross_pairs is empty")
    d = np.mean([values_at(table, a, noise, measure) - values_at(table, b, noise, measure)
                 for a, b in cross_pairs], axis=0)
    return bootstrap_ci(d)


def direction_word(ci, bound: float, pos: str, neg: str,
                   neither: str = "indistinguishable from") -> str:
    """``pos`` if the interval lies above ``bound``, ``neg`` if below ``-bound``, else
    ``neither``."""
    if ci[1] > bound:
        return pos
    if ci[2] < -bound:
        return neg
    return neither


def n_check_table(scores_a, scores_b, measures: Sequence[str], noises: Sequence[float],
                  directions: Mapping[str, str], fp: str, bnn: str, *, noise: float = 0.20,
                  n_boot: int = 200, labels: tuple[str, str] = ("n=8", "n=16")):
    """Best level per model and FP-minus-BNN difference at ``noise``, under two sample sizes.

    One row per measure with the columns ``best σ FP (a)``, ``best σ FP (b)``,
    ``best σ BNN (a)``, ``best σ BNN (b)``, ``FP-BNN at 20% (a)``, ``FP-BNN at 20% (b)`` (a, b
    = ``labels``; best levels from :func:`argmax_bootstrap` with ``n_boot`` replicates).
    """
    import pandas as pd

    la, lb = labels
    at = f"{100 * noise:g}%"
    rows = []
    for m in measures:
        ba = argmax_bootstrap(curves(scores_a, m, (fp, bnn), noises), noises, directions[m],
                              n_boot=n_boot)
        bb = argmax_bootstrap(curves(scores_b, m, (fp, bnn), noises), noises, directions[m],
                              n_boot=n_boot)
        da = scores_a[scores_a["noise"] == noise].groupby("model")[m].mean()
        db = scores_b[scores_b["noise"] == noise].groupby("model")[m].mean()
        rows.append({"measure": m, f"best σ FP ({la})": ba.points[fp],
                     f"best σ FP ({lb})": bb.points[fp], f"best σ BNN ({la})": ba.points[bnn],
                     f"best σ BNN ({lb})": bb.points[bnn], f"FP-BNN at {at} ({la})": da[fp] - da[bnn],
                     f"FP-BNN at {at} ({lb})": db[fp] - db[bnn]})
    return pd.DataFrame(rows)


def n_check_counts(check, labels: tuple[str, str] = ("n=8", "n=16"), noise: float = 0.20
                   ) -> dict[str, int]:
    """From :func:`n_check_table`: how many best levels are unchanged (``same_best``, out of
    2 per measure), how many measures keep the sign of the FP-minus-BNN difference
    (``same_sign``) and the order of the two best levels (``same_order``)."""
    la, lb = labels
    at = f"{100 * noise:g}%"
    same_best = same_sign = same_order = 0
    for _, r in check.iterrows():
        same_best += int(r[f"best σ FP ({la})"] == r[f"best σ FP ({lb})"])
        same_best += int(r[f"best σ BNN ({la})"] == r[f"best σ BNN ({lb})"])
        same_sign += int(np.sign(r[f"FP-BNN at {at} ({la})"]) == np.sign(r[f"FP-BNN at {at} ({lb})"]))
        same_order += int(np.sign(r[f"best σ BNN ({la})"] - r[f"best σ FP ({la})"])
                          == np.sign(r[f"best σ BNN ({lb})"] - r[f"best σ FP ({lb})"]))
    return {"same_best": same_best, "same_sign": same_sign, "same_order": same_order}


@cached
def randomization_table(name: str, model, images, labels, maps_a, maps_b, *, noise: float = 0.5,
                        n_half: int = 4, seed: int = 5, randomization_seed: int = 0,
                        layers=None, image_ids=None):
    """Per image: Spearman of a model's map with the map of its fully re-initialized copy
    (``vs randomized``) and with an independent map of the model itself (``vs itself``).

    The copy (:func:`bnn_saliency.models.randomize_layers` of ``layers``, default the spec's
    randomization layers; batch normalization reset) is explained at ``noise`` with
    ``n_half`` samples and noise seed ``seed`` (independent of the model's own draws).
    ``maps_a`` and ``maps_b`` are two independent displayed maps of the model at ``noise``;
    ``image_ids`` keys the copy's noise per image (:func:`smoothgrad_halves`).
    """
    import pandas as pd


    layers = models.get_spec(name).randomization_layers if layers is None else layers
    rnd = models.randomize_layers(model, layers, seed=randomization_seed, reset_batchnorm=True)
    r = display(smoothgrad_halves(rnd, images, labels, [noise], n_half, seeds=(seed,),
                                  image_ids=image_ids)[0, 0])
    return pd.DataFrame({"model": name, "image": np.arange(len(images)),
                         "vs randomized": evaluation.spearman_abs(maps_a, r),
                         "vs itself": evaluation.spearman_abs(maps_a, maps_b)})


@cached
def propagation_tables(models: Mapping, images, levels: Mapping[str, Sequence[float]],
                       seed: int = 0):
    """:func:`bnn_saliency.evaluation.perturbation.propagation` of every model at its noise ``levels``,
    following the pre-activations and activations of every block (``depth_layers(..., "both")``).

    Returns:
        ``(rel, flips)`` with a ``model`` column; ``rel`` also gets ``kind``: ``"act"`` for
        activation layers (``act*``, ``head_act``), ``"pre"`` otherwise.
    """
    import pandas as pd


    rel_frames, flip_frames = [], []
    for n, model in models.items():
        rel, flips = evaluation.propagation(model, images, levels[n],
                                              layers=evaluation.depth_layers(model, "both"),
                                              seed=seed)
        rel_frames.append(rel.assign(model=n))
        flip_frames.append(flips.assign(model=n))
    rel = pd.concat(rel_frames, ignore_index=True)
    flips = pd.concat(flip_frames, ignore_index=True)
    rel["kind"] = np.where(rel["layer"].str.startswith("act") | rel["layer"].isin(["head_act"]),
                           "act", "pre")
    return rel, flips


def relative_depth(rel):
    """``rel`` with ``rdepth`` = depth / the model's largest depth (0 = input, 1 = output)."""
    out = rel.copy()
    out["rdepth"] = out.groupby("model")["depth"].transform(lambda d: d / d.max())
    return out


def logit_change(rel, name: str, noise: float) -> np.ndarray:
    """Per image (sorted), the relative change of the logits of one model at one noise level."""
    sel = rel[(rel["model"] == name) & (rel["noise"] == noise) & (rel["layer"] == "logits")]
    if sel.empty:
        raise KeyError(f"no logit rows for model {name!r} at noise {noise}")
    return sel.sort_values("image")["rel_change"].to_numpy()


def amplification_ci(rel, a: str, b: str, noise: float) -> CI:
    """Geometric mean over images of ``logit_change(a) / logit_change(b)``, with a bootstrap
    CI (computed on the log ratios and exponentiated)."""
    ci = bootstrap_ci(np.log(logit_change(rel, a, noise)) - np.log(logit_change(rel, b, noise)))
    return CI(*(float(np.exp(v)) for v in ci))


def sign_flip_fraction(rel_change) -> float:
    """Fraction of +-1 activations that flip sign, from their relative changes.

    For a vector of +-1 values, ``||a(x+e) - a(x)|| / ||a(x)|| = 2 sqrt(f)`` with ``f`` the
    fraction of flipped entries, so ``f = (rel / 2)^2``; averaged over images.
    """
    r = np.asarray(rel_change, dtype=np.float64)
    if r.size == 0:
        raise ValueError("no relative changes given")
    return float(np.mean((r / 2) ** 2))


def start_probabilities(forward, images, labels, maps, baselines: Sequence[str] = ("blur", "mean")
                        ) -> dict[str, float]:
    """Mean true-class probability on each insertion start image and on the clean image.

    One-step insertion curves (:func:`bnn_saliency.evaluation.perturbation_curves`) are
    ``[start image, full image]``; their mean over images gives the model's confidence where
    the insertion curve begins (``baseline`` name -> probability) and ends (``"clean"``).
    """

    out = {}
    for base in baselines:
        curve = evaluation.perturbation_curves(forward, images, labels, maps, "insertion", n_steps=1,
                                            baseline=base)[0].mean(axis=0)
        out[base] = float(curve[0])
        out["clean"] = float(curve[1])
    return out
