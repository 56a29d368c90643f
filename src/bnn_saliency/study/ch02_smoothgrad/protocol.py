"""Chapter 2 on the twins-v2 suite: the per-image records of the SmoothGrad sweep, the
statistics of the registered protocol (cross-seed pairs, seeds>images bootstrap,
accuracy-matched controls) and the registered verdicts (``ch02.*`` in ``book/claims.yaml``,
version 2: n = 50 as two halves of 25, 16 insertion steps, noise keyed by image)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ... import methods
from ...stats import CI
from ...verdicts import Claim, registered
from ..common import Suite, ci_text  # noqa: F401 (re-exported)
from .sweep import display, quality_table, randomization_table, smoothgrad_halves

#: The registered noise grid (fractions of each image's value range).
NOISES = (0.0, 0.01, 0.02, 0.04, 0.06, 0.10, 0.15, 0.20, 0.30, 0.40, 0.50)
#: Noisy copies per half map; a SmoothGrad map averages both halves (n = 50).
N_HALF = 25
#: Noise seeds of the two halves, and of the re-initialized copy's 50% map.
HALF_SEEDS, RANDOMIZED_SEED = (1, 2), 5
#: Seeds of the shared uniformly random map (insertion baseline) and of the +-1 grey level
#: re-quantization (stability of the plain gradient); both keyed by image.
RANDOM_MAP_SEED, REQUANTIZE_SEED = 0, 0
#: Insertion of the registry: 16 steps of 1/16 of the pixels into the image's mean colour.
INSERTION = dict(n_steps=16, baseline="mean", batch_size=512)
#: The quality measures of the records, and the noise levels of the mechanism.
MEASURES = ("gini", "insertion gain", "stability")
AMPLIFICATION_NOISES = (0.02, 0.20)


def keyed_random_maps(image_ids, shape, seed: int = RANDOM_MAP_SEED) -> np.ndarray:
    """One uniformly random map per image from ``default_rng([seed, id])``: the same map for
    an image whichever images are computed with it. float64 ``(N,) + shape``."""
    return np.stack([np.random.default_rng([seed, int(i)]).random(shape) for i in image_ids])


def keyed_requantize(images, image_ids, seed: int = REQUANTIZE_SEED, levels: int = 255
                     ) -> np.ndarray:
    """Each value moved one grey level up or down (``+-1/levels``, clipped to [0, 1]), the
    signs drawn per image from ``default_rng([seed, id])``. float32, same shape."""
    x = np.asarray(images)
    signs = np.stack([np.random.default_rng([seed, int(i)]).choice([-1.0, 1.0], x.shape[1:])
                      for i in image_ids])
    return np.clip(x + signs / levels, 0, 1).astype(np.float32)


def smoothgrad_maps(model, images, targets, image_ids, noises=NOISES) -> np.ndarray:
    """The chapter's displayed SmoothGrad maps (n = 2 x :data:`N_HALF`, noise keyed by
    ``image_ids``, as in the records): float32 ``(len(noises), N, H, W)``."""
    halves = smoothgrad_halves(model, images, targets, [float(v) for v in noises], N_HALF,
                               seeds=HALF_SEEDS, image_ids=np.asarray(image_ids))
    return display(halves.mean(axis=0))


def sweep_records(model, images, targets, *, name: str, image_ids, noises=NOISES,
                  n_half: int = N_HALF) -> pd.DataFrame:
    """Per image and noise level, the quality of one model's SmoothGrad maps (columns
    ``noise``, ``measure``, ``image``, ``value``): ``gini``, ``insertion``, ``insertion gain``
    and ``stability`` (:func:`quality_table`, :data:`INSERTION`), and at 50% the two terms of
    the randomization index, ``vs randomized`` and ``vs itself`` (:func:`randomization_table`,
    every layer re-initialized, batch normalization reset). Every random draw is keyed by
    ``image_ids``, so the rows of an image do not depend on the other images."""
    ids = np.asarray(image_ids)
    noises = [float(v) for v in noises]
    halves = smoothgrad_halves(model, images, targets, noises, n_half, seeds=HALF_SEEDS,
                               image_ids=ids)
    maps, half_maps = display(halves.mean(axis=0)), display(halves)
    quality = quality_table(name, model, methods.forward(model), images, targets, maps,
                            half_maps, noises, random_maps=keyed_random_maps(ids, maps.shape[2:]),
                            requantized=keyed_requantize(images, ids), insertion=INSERTION)
    long = quality.melt(id_vars=["noise", "image"], value_vars=["gini", "insertion",
                                                                "insertion gain", "stability"],
                        var_name="measure")
    k50 = noises.index(0.5)
    rand = randomization_table(name, model, images, targets, half_maps[0, k50],
                               half_maps[1, k50], noise=0.5, n_half=n_half,
                               seed=RANDOMIZED_SEED, image_ids=ids)
    rand = rand.melt(id_vars=["image"], value_vars=["vs randomized", "vs itself"],
                     var_name="measure").assign(noise=0.5)
    return pd.concat([long, rand[long.columns]], ignore_index=True)


sweep_records.record_keys = ["noise", "measure", "image"]


def recorded(name: str, model, images, targets, *, twins: bool = True, sample: int = 4
             ) -> pd.DataFrame:
    """:func:`sweep_records` of one model on ``images`` (keyed by their position) through
    :func:`bnn_saliency.records.per_image`: the committed records
    ``02_smoothgrad/sweep/<name>``, with ``sample`` images recomputed live and checked (in
    ImageNet mode nothing is committed and everything is computed). The live check allows 2%
    of rows outside its tolerance: a BNN's plain gradient changes where a sign whose input is
    within float32 noise of 0 flips from one CPU to another."""
    from ... import records

    images, targets = np.asarray(images), np.asarray(targets)
    if not twins:
        return sweep_records(model, images, targets, name=name, image_ids=np.arange(len(images)))

    def compute(idx):
        return sweep_records(model, images[idx], targets[idx], name=name, image_ids=idx)

    return records.per_image(
        f"02_smoothgrad/sweep/{name.replace(':', '/')}", compute, len(images), sample=sample,
        inputs_fingerprint=records.fingerprint(sweep_records, model, images, targets,
                                               NOISES, N_HALF, HALF_SEEDS, INSERTION),
        keys=sweep_records.record_keys, value="value", atol=0.03, rtol=0.02,
        max_bad_share=0.02)


def values(records: pd.DataFrame, measure: str, noise: float) -> dict[str, np.ndarray]:
    """Model -> per-image values (sorted by image) of one measure at one noise level, from
    the records of several models (column ``model``)."""
    sel = records[(records["measure"] == measure) & np.isclose(records["noise"], noise)]
    if sel.empty:
        raise KeyError(f"no {measure!r} records at noise {noise}")
    wide = sel.pivot(index="image", columns="model", values="value")
    return {n: wide[n].to_numpy(float) for n in wide.columns}


def sweep_curves(records: pd.DataFrame, measure: str, noises=NOISES) -> dict[str, np.ndarray]:
    """Model -> ``(N, S)`` per-image values of ``measure`` at each of ``noises``."""
    per_noise = [values(records, measure, s) for s in noises]
    return {n: np.stack([v[n] for v in per_noise], axis=1) for n in per_noise[0]}


def best_noise(curve: np.ndarray, idx, noises=NOISES) -> float:
    """The noise level whose mean over the images ``idx`` of ``curve`` (N, S) is highest; a
    tie goes to the smaller level (the first on the grid)."""
    mean = np.nanmean(curve[idx], axis=0)
    return float(np.asarray(noises)[int(np.argmax(mean))])


def kind_statistic(suite: Suite, kind: str, statistic):
    """``prepare(drawn)`` (:meth:`Suite.bootstrap_statistic`) of ``statistic(names, idx)`` on
    the drawn models of one kind."""
    def prepare(drawn):
        names = [suite.name(kind, s) for s in drawn[kind]]
        return lambda idx: statistic(names, idx)
    return prepare


def best_noise_statistic(suite: Suite, curves: dict[str, np.ndarray], a: str = "fp"):
    """``prepare(drawn)``: the mean over the cross-seed pairs of best σ(a-s_i) - best σ(BNN-s_j),
    each best σ recomputed on the drawn images."""
    def prepare(drawn):
        pairs = suite.cross_pairs(a, "bnn", drawn)
        if not pairs:
            return None
        return lambda idx: float(np.mean([best_noise(curves[x], idx) - best_noise(curves[b], idx)
                                          for x, b in pairs]))
    return prepare


def randomization_index(records: pd.DataFrame):
    """``statistic(names, idx)``: the mean of ``vs randomized`` over the models ``names`` and
    images ``idx``, divided by the mean of ``vs itself`` (pooled before the ratio)."""
    rand, itself = values(records, "vs randomized", 0.5), values(records, "vs itself", 0.5)

    def statistic(names, idx):
        return (np.nanmean([rand[n][idx] for n in names])
                / np.nanmean([itself[n][idx] for n in names]))
    return statistic


def logit_changes(rel: pd.DataFrame, noise: float) -> dict[str, np.ndarray]:
    """Model -> per-image relative logit change at ``noise`` (from :func:`propagation_tables`)."""
    sel = rel[(rel["layer"] == "logits") & np.isclose(rel["noise"], noise)]
    wide = sel.pivot(index="image", columns="model", values="rel_change")
    return {n: wide[n].to_numpy(float) for n in wide.columns}


def flip_sigma(flips: pd.DataFrame, rate: float) -> dict[str, float]:
    """Model -> the noise level at which the mean flip rate first reaches ``rate`` (linear
    interpolation between grid points; NaN if it never does)."""
    out = {}
    for n, g in flips.groupby("model"):
        curve = g.groupby("noise")["flip_rate"].mean().sort_index()
        s, f = np.concatenate([[0.0], curve.index]), np.concatenate([[0.0], curve.to_numpy()])
        above = np.nonzero(f >= rate)[0]
        if not len(above):
            out[n] = float("nan")
            continue
        k = above[0]
        out[n] = float(s[k - 1] + (rate - f[k - 1]) * (s[k] - s[k - 1]) / (f[k] - f[k - 1]))
    return out


def v2_statistics(suite: Suite, records: pd.DataFrame, rel: pd.DataFrame
                  ) -> dict[str, object]:
    """Every registered statistic of the chapter ((CI, replicates), or why it cannot be
    formed; bootstrap seeds>images), FP-vs-BNN ones also with the accuracy-matched controls
    (``_matched``), and the seed bounds that are thresholds (``bound/...``)."""
    n = records["image"].nunique()
    gini20, stab20 = values(records, "gini", 0.20), values(records, "stability", 0.20)
    gini0 = values(records, "gini", 0.0)
    loss = {m: gini0[m] - gini20[m] for m in gini0}
    curves = sweep_curves(records, "insertion gain")
    out: dict[str, object] = {}
    for suffix, a in (("", "fp"), ("_matched", "control")):
        kinds = (a, "bnn")
        out["gini20" + suffix] = suite.bootstrap(suite.cross_difference(gini20, a), n, a)
        out["stab20" + suffix] = suite.bootstrap(suite.cross_difference(stab20, a), n, a)
        out["bound/gini20" + suffix] = suite.seed_bound(gini20, kinds)
        out["bound/stab20" + suffix] = suite.seed_bound(stab20, kinds)
        out["gini_loss" + suffix] = suite.bootstrap(suite.cross_difference(loss, "bnn", a), n, a)
        out["best_diff" + suffix] = suite.bootstrap_statistic(
            best_noise_statistic(suite, curves, a), n, kinds)
        for s in AMPLIFICATION_NOISES:
            logs = {m: np.log(v) for m, v in logit_changes(rel, s).items()}
            res = suite.bootstrap(suite.cross_difference(logs, "bnn", a), n, a)
            out[f"amp{100 * s:g}" + suffix] = res if isinstance(res, str) else (
                CI(*(float(np.exp(v)) for v in res[0])), np.exp(res[1]))
    for kind in ("fp", "bnn"):
        out[f"best_{kind}"] = suite.bootstrap_statistic(
            kind_statistic(suite, kind, lambda names, idx: float(np.mean(
                [best_noise(curves[m], idx) for m in names]))), n, (kind,))
        out[f"rindex_{kind}"] = suite.bootstrap_statistic(
            kind_statistic(suite, kind, randomization_index(records)), n, (kind,))
    return out


def seed_ratio(suite: Suite, rel: pd.DataFrame, noise: float) -> float:
    """The seed-to-seed logit-change ratio furthest from 1, ``exp|mean log ratio|`` over the
    same-kind seed pairs of FP and BNN twins (the amplification claims' reference)."""
    logs = {m: np.log(v) for m, v in logit_changes(rel, noise).items()}
    pairs = suite.seed_pairs("fp") + suite.seed_pairs("bnn")
    return max((float(np.exp(abs(np.mean(logs[x] - logs[y])))) for x, y in pairs),
               default=float("nan"))


def _ci(result):
    return result if isinstance(result, str) else result[0]


#: Registered claim id -> (statistic key, measure text, threshold key or None).
V2_CLAIMS = {
    "ch02.smoothgrad_noisier_at_20": ("gini20", "Gini FP - BNN at 20%, cross-seed pairs",
                                      "bound/gini20"),
    "ch02.smoothgrad_less_stable_at_20": ("stab20", "split-half Spearman FP - BNN at 20%, "
                                          "cross-seed pairs", "bound/stab20"),
    "ch02.smoothgrad_noisier_than_plain_gradient": ("gini_loss", "Gini loss 0% -> 20%, BNN - "
                                                    "FP, cross-seed pairs", None),
    "ch02.best_noise_lower_for_bnn": ("best_diff", "best σ by insertion gain, FP - BNN, "
                                      "cross-seed pairs", None),
    "ch02.best_noise_bnn_2_6": ("best_bnn", "best σ by insertion gain, mean of the BNN seeds",
                                None),
    "ch02.best_noise_fp_10_20": ("best_fp", "best σ by insertion gain, mean of the FP seeds",
                                 None),
    "ch02.bnn_random_at_50": ("rindex_bnn", "randomization index at 50%, BNN seeds pooled",
                              None),
    "ch02.fp_keeps_shape_at_50": ("rindex_fp", "randomization index at 50%, FP seeds pooled",
                                  None),
    "ch02.bnn_amplifies_noise_2": ("amp2", "relative logit change BNN / FP at 2%, geometric "
                                   "mean, cross-seed pairs", None),
    "ch02.bnn_amplifies_noise_20": ("amp20", "relative logit change BNN / FP at 20%, geometric "
                                    "mean, cross-seed pairs", None),
}


def v2_claims(statistics: dict[str, object], claim_ids: Sequence[str] | None = None
              ) -> list[Claim]:
    """The registered claims judged on :func:`v2_statistics` (interval over seeds, then
    images). A claim whose statistic cannot be formed with the shipped models raises."""
    rows = []
    for claim_id in claim_ids or V2_CLAIMS:
        key, measure, bound = V2_CLAIMS[claim_id]
        if isinstance(statistics[key], str):
            raise RuntimeError(f"{claim_id} cannot be formed: {statistics[key]}")
        matched = statistics.get(f"{key}_matched")
        rows.append(registered(
            claim_id, measure, _ci(statistics[key]), interval="seeds>images",
            threshold=None if bound is None else statistics[bound],
            matched_threshold=None if bound is None else statistics[f"{bound}_matched"],
            replicates=statistics[key][1], matched=None if matched is None else _ci(matched)))
    return rows


def best_noise_table(records: pd.DataFrame, flips: pd.DataFrame, names: Sequence[str],
                     noises=NOISES) -> pd.DataFrame:
    """Per model: the best σ of each quality measure (:func:`best_noise` on all images) and
    the flip-rate index of the noise, the σ at which 10% and 50% of noisy copies change the
    prediction (:func:`flip_sigma`)."""
    n = records["image"].nunique()
    best = {m: {k: best_noise(c, np.arange(n), noises) for k, c in sweep_curves(
        records, m, noises).items()} for m in MEASURES}
    flip10, flip50 = flip_sigma(flips, 0.10), flip_sigma(flips, 0.50)
    return pd.DataFrame([{"model": k, **{f"best σ ({m})": best[m][k] for m in MEASURES},
                          "σ at 10% flips": flip10[k], "σ at 50% flips": flip50[k]}
                         for k in names])
