"""Chapter 4 tables, sentences and claims, built from the recorded scores."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ... import models
from ...stats import paired_bootstrap_diff, summarize
from ...verdicts import Claim, Rule
from .runs import SPEARMAN, VARIANTS, verdicts


def record_name(kind: str, name: str, twins: bool = True) -> str | None:
    """Name of the committed records ``04_sanity_checks/<kind>/<name>`` for :func:`recorded`;
    None outside the twins mode (nothing is committed: compute everything)."""
    return f"04_sanity_checks/{kind}/{name}" if twins else None



def latent_vs_binary(model, layer: str, seed: int = 0) -> dict[str, float]:
    """Trained vs re-drawn latent kernel of one (binarized) layer of ``model``: the largest
    latent |w| of both, the share of positive re-drawn signs and the share of signs equal to
    the trained ones."""
    redrawn = models.randomize_layers(model, [layer], seed=seed).get_layer(layer).kernel.numpy()
    trained = model.get_layer(layer).kernel.numpy()
    return {"latent |w| max, trained": np.abs(trained).max(),
            "latent |w| max, re-drawn": np.abs(redrawn).max(),
            "share of +1 (re-drawn)": np.mean(np.sign(redrawn) > 0),
            "signs equal to trained": np.mean(np.sign(redrawn) == np.sign(trained))}



def layer_counts_text(blocks: dict[str, Sequence[tuple[str, Sequence[str]]]]) -> str:
    """The distinct numbers of randomized layers over the models, ascending, joined by
    ``" or "`` (e.g. ``"13 or 22"``)."""
    counts = {sum(len(layers) for _, layers in b) for b in blocks.values()}
    return " or ".join(str(c) for c in sorted(counts))



def block_table(blocks: dict[str, Sequence[tuple[str, Sequence[str]]]],
                shown: Sequence[str]) -> pd.DataFrame:
    """One row per cascade step of the models ``shown``: model, step (from 1), block, layers."""
    return pd.DataFrame([{"model": n, "step": k, "block": b, "layers": ", ".join(ls)}
                         for n in shown for k, (b, ls) in enumerate(blocks[n], start=1)])



def fp_bnn_pairs(names: Sequence[str], twins: bool = True) -> list[tuple[str, str]]:
    """The (FP, BNN) twin pairs among ``names`` (VGG first, then ResNet); none outside the
    twins mode."""
    if not twins:
        return []
    return [(a, b) for a, b in [("vgg-fp-s0", "vgg-bnn-s0"), ("resnet-fp-s0", "resnet-bnn-s0")]
            if a in names and b in names]



def first_correct(preds: dict[str, np.ndarray], targets, names: Sequence[str]) -> int:
    """Index of the first image that every model of ``names`` classifies correctly."""
    both = np.ones(len(targets), bool)
    for n in names:
        both &= preds[n] == targets
    return int(np.flatnonzero(both)[0])



def score_count_line(scores: pd.DataFrame, n_models: int, n_methods: int, n_measures: int,
                     n_images: int) -> str:
    """One line stating how many scores a cascade run produced and from what."""
    return (f"{len(scores)} scores: {n_models} models x steps x {n_methods} methods "
            f"x {n_measures} measures x {n_images} images")



def family_groups(names: Sequence[str], twins: bool = True,
                  families: Sequence[str] = ("vgg", "resnet")) -> dict[str, list[str]]:
    """Models by family (rows of :func:`plot_curves`), each in :data:`VARIANTS` order; one
    group ``"ImageNet"`` with every model outside the twins mode."""
    if not twins:
        return {"ImageNet": list(names)}
    return {fam: sorted([n for n in names if n.startswith(fam)],
                        key=lambda n: VARIANTS.index(n.split("-")[1]))
            for fam in families}



def verdict_cell(row) -> str:
    """``"verdict (mean)"``, the mean to two decimals: one cell of the verdict tables."""
    return f"{row['verdict']} ({row['mean']:.2f})"



def verdict_table(tables: dict[str, pd.DataFrame], methods: Sequence[str]) -> pd.DataFrame:
    """Verdict cells (:func:`verdict_cell`), rows = (method, model) with ``methods`` in order,
    one column per :func:`verdicts` table in ``tables`` (e.g. checkpoint and full
    randomization): long rather than wide, so that it fits the page."""
    cells = {key: t.assign(v=t.apply(verdict_cell, axis=1)).set_index(["method", "model"])["v"]
             for key, t in tables.items()}
    return pd.DataFrame(cells).reindex(list(methods), level="method")



def verdict_row(table: pd.DataFrame, model: str, method: str):
    """The row of a :func:`verdicts` table for ``model`` x ``method``; None if absent."""
    row = table[(table["model"] == model) & (table["method"] == method)]
    return row.iloc[0] if len(row) else None



def interval_text(ci, missing: str = "n/a") -> str:
    """``"value [low, high]"`` to two decimals for a (value, low, high) triple; ``missing``
    for None."""
    if ci is None:
        return missing
    value, low, high = ci
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"



def ci_text(row, missing: str = "n/a") -> str:
    """``"mean [low, high]"`` of a summary row, to two decimals; ``missing`` for None."""
    return interval_text(None if row is None else (row["mean"], row["low"], row["high"]),
                         missing)



def verdict_text(row, missing: str = "n/a") -> str:
    """``"verdict, mean [low, high]"`` of a verdict row; ``missing`` for None."""
    return missing if row is None else f"{row['verdict']}, {ci_text(row)}"



def mean_text(row, missing: str = "n/a") -> str:
    """The row's mean to two decimals; ``missing`` for None."""
    return missing if row is None else f"{row['mean']:.2f}"



def blank_counts_text(table: pd.DataFrame, method: str = "gradcam") -> str:
    """``"model n_nan, ..."``: undefined (blank-map) similarities of ``method`` per model in
    a :func:`verdicts` table."""
    rows = table[table["method"] == method].set_index("model")
    return ", ".join(f"{m} {int(r['n_nan'])}" for m, r in rows.iterrows())



def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """Number of ``pass``, ``fail`` and ``inconclusive`` cells of a :func:`verdicts` table."""
    n_pass = int((table["verdict"] == "pass").sum())
    n_fail = int((table["verdict"] == "fail").sum())
    return {"pass": n_pass, "fail": n_fail, "inconclusive": len(table) - n_pass - n_fail}



def verdict_count_line(table: pd.DataFrame, where: str = "checkpoint") -> str:
    """One line with the :func:`verdict_counts` of ``table``."""
    c = verdict_counts(table)
    return (f"{where} verdicts: {c['pass']} pass, {c['fail']} fail, {c['inconclusive']} "
            "inconclusive")



def paired_gap(scores: pd.DataFrame, fp: str, bnn: str, method: str, step: int,
               metric: str = SPEARMAN):
    """Bootstrap CI of the mean per-image ``bnn`` minus ``fp`` similarity of ``method`` at
    cascade ``step`` (:func:`bnn_saliency.stats.paired_bootstrap_diff`; images paired by
    index)."""
    def values(name):
        sel = scores[(scores["model"] == name) & (scores["method"] == method)
                     & (scores["metric"] == metric) & (scores["step"] == step)]
        return sel.sort_values("image")["score"].to_numpy()

    return paired_bootstrap_diff(values(bnn), values(fp))



def gap_table(scores: pd.DataFrame, pairs: Sequence[tuple[str, str]], methods: Sequence[str],
              step: int, equiv: float, metric: str = SPEARMAN) -> pd.DataFrame:
    """:func:`paired_gap` per (FP, BNN) pair x method, judged ``reproduced`` (alike) if the
    CI lies within +-``equiv``. Columns: pair, method, BNN - FP, low, high, verdict."""
    gaps = pd.DataFrame([
        {"pair": f"{fp} vs {bnn}", "method": m,
         **dict(zip(["BNN - FP", "low", "high"], paired_gap(scores, fp, bnn, m, step, metric)))}
        for fp, bnn in pairs for m in methods],
        columns=["pair", "method", "BNN - FP", "low", "high"])
    gaps["verdict"] = [Rule.within(equiv).verdict(lo, hi) for lo, hi in zip(gaps["low"], gaps["high"])]
    return gaps



def gap_row(gaps: pd.DataFrame, pairs: Sequence[tuple[str, str]], method: str, pair: int = 0):
    """The :func:`gap_table` row of ``method`` for ``pairs[pair]``; None if absent."""
    if not pairs or pair >= len(pairs):
        return None
    fp, bnn = pairs[pair]
    sel = gaps[(gaps["pair"] == f"{fp} vs {bnn}") & (gaps["method"] == method)]
    return sel.iloc[0] if len(sel) else None



def gap_text(row, missing: str = "n/a") -> str:
    """``"BNN - FP [low, high]"`` of a :func:`gap_table` row; ``missing`` for None."""
    return interval_text(None if row is None else (row["BNN - FP"], row["low"], row["high"]),
                         missing)



def gap_direction(row) -> str:
    """How the map changes on the BNN compared with the FP twin, from a :func:`gap_table`
    row: more (CI below 0), less (CI above 0) or about as much; ``"n/a"`` for None."""
    if row is None:
        return "n/a"
    if row["high"] < 0:
        return "changes more on the BNN than on the FP twin"
    if row["low"] > 0:
        return "changes less on the BNN than on the FP twin"
    return "changes about as much on both twins"



def ablation_text(table: pd.DataFrame, method: str = "guided_backprop",
                  family: str = "vgg") -> str:
    """A clause comparing ``method``'s checkpoint similarity on the four twins of ``family``
    (:data:`VARIANTS`) and naming the ablation closer to the BNN."""
    rows = {v: verdict_row(table, f"{family}-{v}-s0", method) for v in VARIANTS}
    if any(r is None for r in rows.values()):
        return "the ablation twins are not shipped, so this comparison is skipped"
    m = {v: r["mean"] for v, r in rows.items()}
    closer = ("binary activations" if abs(m["bina"] - m["bnn"]) < abs(m["binw"] - m["bnn"])
              else "binary weights")
    return (f"its checkpoint similarity is {m['fp']:.2f} on the FP twin, "
            f"{m['binw']:.2f} with binary weights only, {m['bina']:.2f} with binary activations "
            f"only and {m['bnn']:.2f} on the BNN: the twin with {closer} only is the closer one "
            "to the BNN")



def independent_table(summary: pd.DataFrame, methods: Sequence[str],
                      metric: str = SPEARMAN) -> pd.DataFrame:
    """Mean similarity per method (rows) x (model, block) of an independent run's
    :func:`summarize_steps`."""
    return summary[summary["metric"] == metric].pivot_table(
        index="method", columns=["model", "block"], values="mean", sort=False).loc[list(methods)]



def independent_mean_text(summary: pd.DataFrame, model: str, method: str, block: str,
                          metric: str = SPEARMAN) -> str:
    """Mean similarity (two decimals) after re-initializing ``block`` alone, from
    :func:`summarize_steps` of an independent run; ``"n/a"`` if absent."""
    sel = summary[(summary["model"] == model) & (summary["method"] == method)
                  & (summary["block"] == block) & (summary["metric"] == metric)]
    return f"{sel['mean'].iloc[0]:.2f}" if len(sel) else "n/a"



def verdict_steps(scores: pd.DataFrame, threshold: float, checkpoint: int) -> pd.DataFrame:
    """:func:`verdicts` at the checkpoint and after full randomization, stacked with an
    index level ``step`` (``"checkpoint"``, ``"full"``)."""
    return pd.concat({"checkpoint": verdicts(scores, threshold, step=checkpoint),
                      "full": verdicts(scores, threshold)}, names=["step"])



def bn_table(bn_verdicts: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Verdict cells of :func:`verdict_steps` output: rows = ``methods``, columns =
    (step, model)."""
    cells = bn_verdicts.assign(v=bn_verdicts.apply(verdict_cell, axis=1)).reset_index()
    return cells.pivot_table(index="method", columns=["step", "model"], values="v",
                             aggfunc="first").loc[list(methods)]



def bn_pairs(bn_verdicts: pd.DataFrame) -> pd.DataFrame:
    """Verdicts with BN kept vs reset side by side: index (step, method), columns ``kept``
    and ``reset`` (a model whose name contains ``"reset"`` is the BN-reset run)."""
    flat = bn_verdicts.reset_index()
    flat["kind"] = np.where(flat["model"].str.contains("reset"), "reset", "kept")
    return flat.pivot_table(index=["step", "method"], columns="kind", values="verdict",
                            aggfunc="first")



def changed_text(paired: pd.DataFrame) -> str:
    """The :func:`bn_pairs` rows whose verdict changes, as a ``"; "``-separated list;
    ``"none"`` if none changes."""
    changed = paired[paired["kept"] != paired["reset"]]
    return "; ".join(f"{m} at the {s} ({r['kept']} kept, {r['reset']} reset)"
                     for (s, m), r in changed.iterrows()) or "none"



def largest_gap(scores: pd.DataFrame, a: str, b: str, methods: Sequence[str], step: int,
                metric: str = SPEARMAN) -> float:
    """Largest |mean per-image difference| between models ``b`` and ``a`` over ``methods``
    at cascade ``step`` (:func:`paired_gap` point estimates)."""
    return max(abs(paired_gap(scores, a, b, m, step, metric)[0]) for m in methods)



def bn_line(n_changed: int, n_cells: int, gap: float) -> str:
    """One line with the BN kept-vs-reset comparison."""
    return (f"verdicts that change: {n_changed} of {n_cells}; largest |mean difference| at "
            f"the checkpoint: {gap:.3f}")



def quantus_summary(check: pd.DataFrame, top_down: pd.DataFrame, top_layer: str) -> dict:
    """The Quantus cross-check in numbers: ``layers`` (randomized layers of the independent
    order), ``diff`` (largest per-image |quantus - ours|), ``ours`` and ``quantus`` (mean
    score after randomizing ``top_layer``: our loop; Quantus's top-down order).

    Args:
        check: :func:`bnn_saliency.evaluation.quantus_crosscheck` output.
        top_down: :func:`bnn_saliency.evaluation.quantus_mprt` output, top-down order.
        top_layer: the network's top layer.
    """
    return {"layers": check["layer"].nunique() - 1,
            "diff": float(np.nanmax(np.abs(check["diff"]))),
            "ours": check[check["layer"] == top_layer]["ours"].mean(),
            "quantus": top_down[top_down["layer"] == top_layer]["score"].mean()}



def quantus_lines(q: dict, n_images: int, top_layer: str) -> str:
    """Two lines with a :func:`quantus_summary`."""
    return (f"independent order, {q['layers']} layers x {n_images} images: "
            f"max |quantus - ours| = {q['diff']:.1e}\n"
            f"after randomizing {top_layer} only: our loop {q['ours']:.3f}, "
            f"quantus top_down {q['quantus']:.3f}")



def data_pairs(names: Sequence[str], shipped: set[str],
               true_models: Sequence[str] = ("vgg-fp-s0", "vgg-bnn-s0")
               ) -> list[tuple[str, str, str]]:
    """(true-label twin, other twin, label) of the data randomization test: each of
    ``true_models`` among ``names`` vs its random-label twin and its seed-1 twin, if
    ``shipped``."""
    out = []
    for true in [n for n in true_models if n in names]:
        for other, label in [(f"{true}-randlabels", "random labels"),
                             (true.replace("-s0", "-s1"), "seed 1, true labels")]:
            if other in shipped:
                out.append((true, other, label))
    return out



def random_label_row(model: str, provenance: dict) -> dict:
    """Training facts of a random-label twin from its provenance, one row of the table."""
    return {"model": model, "train images": provenance["train_images"],
            "epochs": provenance["epochs"],
            "train accuracy (random labels)": provenance["train_accuracy"],
            "test accuracy": provenance["test_accuracy"]}



def train_accuracy_text(rows: Sequence[dict], model: str) -> str:
    """Training accuracy (three decimals) on the permuted labels of ``model`` among
    :func:`random_label_row` rows; ``"n/a"`` if absent."""
    acc = [r for r in rows if r["model"] == model]
    return f"{acc[0]['train accuracy (random labels)']:.3f}" if acc else "n/a"



def summarize_data(scores: pd.DataFrame | None, threshold: float) -> pd.DataFrame:
    """Mean and bootstrap CI of the data randomization scores per model x versus x method x
    metric, with the 0.5-rule verdict (``pass`` if CI high < ``threshold``, ``fail`` if CI
    low > it, else ``inconclusive``); an empty table for None or no scores."""
    if scores is None or scores.empty:
        return pd.DataFrame(columns=["model", "versus", "method", "metric", "mean", "low",
                                     "high", "verdict"])
    out = summarize(scores, "score", by=["model", "versus", "method", "metric"])
    out["verdict"] = np.where(out["high"] < threshold, "pass",
                              np.where(out["low"] > threshold, "fail", "inconclusive"))
    return out



def data_table(summary: pd.DataFrame, methods: Sequence[str],
               metric: str = SPEARMAN) -> pd.DataFrame:
    """Mean similarity per method (rows) x (model, versus) of :func:`summarize_data`."""
    shown = summary[summary["metric"] == metric]
    return shown.pivot_table(index="method", columns=["model", "versus"], values="mean",
                             sort=False).loc[list(methods)].round(2)



def data_row(summary: pd.DataFrame, model: str, method: str, versus: str = "random labels",
             metric: str = SPEARMAN):
    """The :func:`summarize_data` row of ``model`` x ``method`` x ``versus``; None if
    absent."""
    sel = summary[(summary["model"] == model) & (summary["method"] == method)
                  & (summary["versus"] == versus) & (summary["metric"] == metric)]
    return sel.iloc[0] if len(sel) else None



def seed_minus_random(scores: pd.DataFrame | None, model: str, method: str,
                      metric: str = SPEARMAN):
    """Bootstrap CI of the mean per-image similarity to the seed-1 twin minus that to the
    random-label twin (``versus`` values ``"seed 1, true labels"`` and ``"random labels"``);
    None if either is missing."""
    if scores is None or scores.empty:
        return None
    sel = scores[(scores["model"] == model) & (scores["method"] == method)
                 & (scores["metric"] == metric)]
    wide = sel.pivot(index="image", columns="versus", values="score")
    if not {"random labels", "seed 1, true labels"} <= set(wide.columns):
        return None
    return paired_bootstrap_diff(wide["seed 1, true labels"].to_numpy(),
                                 wide["random labels"].to_numpy())



def randomization_claim(table: pd.DataFrame, text: str, model: str, method: str,
                        direction: str, threshold: float) -> Claim | None:
    """Claim of Adebayo et al. on ``model`` x ``method`` judged on a checkpoint
    :func:`verdicts` table: reproduced if the CI lies ``direction`` (``"below"`` or
    ``"above"``) ``threshold``; None if the row is missing or undefined."""
    row = verdict_row(table, model, method)
    if row is None or not np.isfinite(row["mean"]):
        return None
    return Claim.judged(f"{text} ({model})", "Adebayo et al. 2018",
                        "Spearman(|map|) to the original map, logits + last stage re-initialized",
                        (row["mean"], row["low"], row["high"]), Rule(direction, threshold),
                        "sec-sanity")



def gap_claim(row, label: str, pair: tuple[str, str], equiv: float) -> Claim:
    """Claim that ``label`` reacts alike on a (FP, BNN) ``pair``, from its :func:`gap_table`
    row (reproduced if the CI lies within +-``equiv``)."""
    return Claim.judged(
        f"{label} reacts to randomization alike on BNN and FP ({pair[0]} vs {pair[1]})",
        "this study", "BNN minus FP Spearman(|map|) at the checkpoint, paired over images",
        (row["BNN - FP"], row["low"], row["high"]), Rule.within(equiv), "sec-sanity")



def bn_claim(model: str, n_cells: int, n_changed: int) -> Claim:
    """Claim that keeping or resetting BN changes none of ``model``'s ``n_cells`` verdicts
    (a count: reproduced if ``n_changed`` is 0)."""
    n = float(n_changed)
    return Claim.judged(
        f"Keeping or resetting BN statistics does not change the verdicts ({model})",
        "this study", f"number of the {n_cells} verdicts (methods x checkpoint/full) that "
        "change (a count, no interval)", (n, n, n), Rule.below(0.5), "sec-sanity")



def data_claim(row, text: str, model: str, direction: str, threshold: float) -> Claim:
    """Data randomization claim on ``model`` vs its random-label twin from its
    :func:`data_row` (reproduced if the CI lies ``direction`` ``threshold``)."""
    return Claim.judged(
        f"{text} ({model} vs its random-label twin)", "Adebayo et al. 2018",
        "Spearman(|map|) between the true-label and random-label twins' maps",
        (row["mean"], row["low"], row["high"]), Rule(direction, threshold), "sec-sanity")



def seed_claim(ci, model: str) -> Claim:
    """Claim that random labels change Gradient maps more than retraining with another
    seed, from :func:`seed_minus_random` (reproduced if CI low > 0)."""
    return Claim.judged(
        f"Random labels change Gradient maps more than retraining with another seed "
        f"({model})", "this study",
        "Spearman(|map|) to the seed-1 twin minus to the random-label twin, paired over images",
        ci, Rule.above(0.0), "sec-sanity")



def timing_line(seconds: dict[str, float], total: float) -> str:
    """One line with the wall time of each part and of the page."""
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
    return f"{parts}; page {total:.0f} s"
