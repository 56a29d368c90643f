"""Gradient saliency on FP vs BNN twins: per-image pair scores, seed gaps, sentences, figure."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..stats import CI, bootstrap_ci, paired_bootstrap_diff
from ..verdicts import Claim, format_ci, registered
from .common import V1_ABLATIONS, V1_RESNET, V1_SEED_PAIRS, PairScores, Suite

#: The chapter's main measure: Spearman rank correlation of the absolute maps.
MAIN_METRIC = "Spearman |map|"


def pair_labels(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """The ``"a vs b"`` labels of model pairs, as in the ``pair`` column of the score tables."""
    return [f"{a} vs {b}" for a, b in pairs]


def pair_scores(table: pd.DataFrame, pairs: Sequence[str],
                metric: str = MAIN_METRIC) -> np.ndarray:
    """Per image (sorted by image), the mean ``score`` of the pairs labelled ``pairs``.

    Args:
        table: long table with columns metric, pair, image, score
            (:func:`bnn_saliency.evaluation.pairwise_similarity`).
        pairs: pair labels (:func:`pair_labels`); every one must have a score per image.
        metric: the measure to average (default :data:`MAIN_METRIC`).
    """
    pairs = list(pairs)
    sel = table[(table["metric"] == metric) & table["pair"].isin(pairs)]
    wide = sel.pivot(index="image", columns="pair", values="score")
    return wide[pairs].mean(axis=1).to_numpy()


def mean_ci(table: pd.DataFrame, pairs: Sequence[str], metric: str = MAIN_METRIC) -> CI:
    """Bootstrap interval (over images) of the mean similarity of ``pairs``."""
    return bootstrap_ci(pair_scores(table, pairs, metric))


def gap_ci(table: pd.DataFrame, pairs_a: Sequence[str], pairs_b: Sequence[str],
           metric: str = MAIN_METRIC) -> CI:
    """Paired bootstrap interval of the per-image similarity of ``pairs_a`` minus that of
    ``pairs_b`` (e.g. seed pairs minus FP-vs-BNN pairs: the seed gap)."""
    return paired_bootstrap_diff(pair_scores(table, pairs_a, metric),
                                 pair_scores(table, pairs_b, metric))


def summary_mean(summary: pd.DataFrame, pair: str, metric: str = MAIN_METRIC) -> float:
    """The ``mean`` of one pair and metric in a :func:`bnn_saliency.stats.summarize` table,
    NaN if the pair is not there (e.g. a twin that is not shipped)."""
    row = summary[(summary["metric"] == metric) & (summary["pair"] == pair)]
    return float(row["mean"].iloc[0]) if len(row) else float("nan")


def by_correctness(table: pd.DataFrame, pair: str, correct: np.ndarray,
                   metric: str = MAIN_METRIC) -> pd.DataFrame:
    """One pair's per-image scores with a ``both correct`` column (``"yes"``/``"no"``).

    Args:
        correct: boolean per statistics image, indexed by the table's ``image`` column.
    """
    split = table[(table["metric"] == metric) & (table["pair"] == pair)].copy()
    split["both correct"] = np.where(np.asarray(correct)[split["image"].to_numpy()],
                                     "yes", "no")
    return split


def resnet_sentence(sim: CI | None, gap: CI | None) -> str:
    """The sentence on the ResNet twins: their similarity and their gap to the VGG seed
    baseline (both ``None`` if the ResNet twins are not shipped)."""
    if sim is None or gap is None:
        return "the ResNet twins are not shipped, so this check is skipped"
    return (f"the ResNet FP and BNN twins' maps have a Spearman correlation of "
            f"{format_ci(sim, 3)}, a gap of {format_ci(gap, 3)} to the VGG seed baseline")


def ablation_sentence(binw: float, bina: float) -> str:
    """Which ablation twin (weights-only ``binw`` or activations-only ``bina``, their mean
    Spearman similarity to the FP twin) is closer to the FP twin's maps."""
    if not (np.isfinite(binw) and np.isfinite(bina)):
        return "the ablation twins are not shipped, so this comparison is skipped"
    closer = "weights-only" if binw > bina else "activations-only"
    return (f"the {closer} twin's maps are closer to the FP twin's "
            f"(Spearman {max(binw, bina):.3f} vs {min(binw, bina):.3f})")


def similarity_figure(summary: pd.DataFrame):
    """One panel per metric: each pair's mean similarity with its 95% interval, coloured by
    group (a :func:`bnn_saliency.stats.summarize` table by metric, group and pair)."""
    import matplotlib.pyplot as plt

    from ..plotting import ci_bars

    height = 0.35 * summary["pair"].nunique() + 1.5
    fig, axes = plt.subplots(1, 3, figsize=(12, height), sharey=True)
    for ax, (metric, rows) in zip(axes, summary.groupby("metric", sort=False)):
        ci_bars(rows, x="pair", hue="group", ax=ax)
        ax.set_title(metric)
        ax.axvline(0, color="grey", lw=0.5)
    fig.tight_layout()
    return fig



def v2_pairs(suite: Suite) -> dict[str, list[tuple[str, str]]]:
    """The chapter's pairs: the twins-v2 groups (:meth:`Suite.pair_groups`), and from the v1
    suite the ResNet pair with its borrowed seed baseline and the ablations (v2 trains no
    counterparts yet), then the edge-map baseline."""
    resnet = [n for pair in V1_RESNET for n in pair]
    return {**suite.pair_groups(), "ResNet FP vs BNN (v1)": V1_RESNET,
            "v1 seed baseline": V1_SEED_PAIRS, "ablation (v1)": V1_ABLATIONS,
            "edge baseline": [(n, "edge") for n in suite.names() + resnet]}


def v2_claims(suite: Suite, sims: pd.DataFrame, signed: pd.DataFrame,
              n_images: int) -> tuple[list[Claim], dict]:
    """The chapter's four registered claims (``ch01.*`` in book/claims.yaml) and the
    intervals behind them (name -> CI, or a string saying why it cannot be formed):
    ``cross`` and ``seed`` (the mean similarity of the cross-seed FP-vs-BNN pairs and of the
    seed pairs), ``gap``, ``edge_margin``, ``signed_gap`` and ``resnet_gap``.

    FP-vs-BNN statistics use cross-seed pairs and the seeds>images bootstrap; each is repeated
    with the accuracy-matched controls in place of the FP twins (``<name>_matched``). The
    ResNet claim keeps v1's design (one seed, borrowed v1 VGG seed baseline, image bootstrap).
    """
    abs_scores = PairScores(sims, MAIN_METRIC)
    signed_scores = PairScores(signed, "Spearman signed")
    def mean_of(pairs):
        return lambda a: (lambda d: abs_scores.mean(pairs(a, d)))
    statistics = {
        "cross": mean_of(lambda a, d: suite.cross_pairs(a, "bnn", d)),
        "seed": mean_of(lambda a, d: suite.seed_pairs(a, d) + suite.seed_pairs("bnn", d)),
        "gap": lambda a: suite.seed_gap(abs_scores, a),
        "edge_margin": lambda a: suite.cross_margin(abs_scores,
                                                    lambda n: abs_scores(n, "edge"), a),
        "signed_gap": lambda a: suite.seed_gap(signed_scores, a),
    }
    cis, replicates = {}, {}
    for key, statistic in statistics.items():
        for suffix, a in (("", "fp"), ("_matched", "control")):
            result = suite.bootstrap(statistic(a), n_images, a=a)
            if isinstance(result, str):
                cis[key + suffix] = result
            else:
                cis[key + suffix], replicates[key + suffix] = result
    if isinstance(cis["gap"], str):
        raise RuntimeError(f"the primary contrast cannot be formed: {cis['gap']}")
    resnet = pair_labels(V1_RESNET)
    if set(resnet) <= set(sims["pair"]):
        cis["resnet_gap"] = gap_ci(sims, pair_labels(V1_SEED_PAIRS), resnet)
    rows = [
        registered("ch01.gradient_alike", "seed gap: Spearman(|map|) of seed pairs minus "
                   "cross-seed FP-vs-BNN pairs", cis["gap"], interval="seeds>images",
                   replicates=replicates["gap"], matched=cis["gap_matched"]),
        registered("ch01.gradient_beyond_edges", "cross-seed FP-vs-BNN Spearman(|map|) minus "
                   "map-vs-edge-map Spearman", cis["edge_margin"], interval="seeds>images",
                   matched=cis["edge_margin_matched"]),
        registered("ch01.gradient_alike_signed", "seed gap of signed Spearman (cross-seed)",
                   cis["signed_gap"], interval="seeds>images", matched=cis["signed_gap_matched"]),
    ]
    if "resnet_gap" in cis:
        rows.append(registered(
            "ch01.gradient_alike_resnet", "v1 VGG seed-pair Spearman(|map|) minus ResNet "
            "FP-vs-BNN Spearman(|map|)", cis["resnet_gap"], interval="images"))
    return rows, cis
