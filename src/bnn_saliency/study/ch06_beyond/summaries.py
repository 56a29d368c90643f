"""Chapter 6 summaries: intervals pooled over seeds, timings, phrases, display tables,
figures and the claims."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ... import methods
from ...stats import CI, bootstrap_ci
from ...verdicts import Claim, Rule
from .experiments import ig_convergence, per_image_mean, time_per_map


def ig_sweep(nets: Mapping[str, object], images, targets, steps: Sequence[int]
             ) -> pd.DataFrame:
    """:func:`ig_convergence` of several models, with a ``model`` column."""
    return pd.concat([ig_convergence(net, images, targets, steps).assign(model=name)
                      for name, net in nets.items()], ignore_index=True)



def pooled_ci(table: pd.DataFrame, models: Sequence[str], value: str = "score",
              **filters) -> CI:
    """Bootstrap interval (over images) of the mean of :func:`per_image_mean`: ``value``
    pooled over ``models`` (e.g. both seeds of a twin) and filtered by ``filters``."""
    return bootstrap_ci(per_image_mean(table, models, value, **filters))



def median_error_ci(completeness: pd.DataFrame, models: Sequence[str], method: str) -> CI:
    """Bootstrap interval (over images) of the median relative completeness error of one
    method, per image averaged over ``models`` (a :func:`completeness_table`)."""
    values = per_image_mean(completeness, models, "rel_error", method=method)
    return bootstrap_ci(values, stat=np.nanmedian)



def agreement_values(agree: pd.DataFrame, models: Sequence[str], baseline: str = "black",
                     metric: str = "Spearman") -> np.ndarray:
    """Per image, the IG-vs-DeepLIFT agreement (:func:`agreement` rows with a ``baseline``
    column) of one baseline and metric, averaged over ``models``."""
    sel = agree[(agree["baseline"] == baseline) & (agree["metric"] == metric)]
    return per_image_mean(sel, models)



def agreement_ci(agree: pd.DataFrame, models: Sequence[str], baseline: str = "black",
                 metric: str = "Spearman") -> CI:
    """Bootstrap interval (over images) of the mean of :func:`agreement_values`."""
    return bootstrap_ci(agreement_values(agree, models, baseline, metric))



def timing_table(nets: Mapping[str, object], images, targets, ig_steps: int,
                 repeats: int = 5) -> pd.DataFrame:
    """Milliseconds per map of the gradient, DeepLIFT (exact max-pool rule) and IG
    (``ig_steps`` steps), :func:`time_per_map` per repeat, and the ratio IG / DeepLIFT.

    Returns:
        DataFrame with columns model, repeat, IG ms, DeepLIFT ms, gradient ms, IG / DeepLIFT.
    """
    frames = []
    for name, net in nets.items():
        t_ig = time_per_map(methods.integrated_gradients, net, images, targets,
                            repeats=repeats, steps=ig_steps)
        t_dl = time_per_map(methods.deeplift_rescale, net, images, targets,
                            repeats=repeats, maxpool="rescale")
        t_grad = time_per_map(methods.gradient, net, images, targets, repeats=repeats)
        frames.append(pd.DataFrame({"model": name, "repeat": np.arange(len(t_ig)),
                                    "IG ms": 1e3 * t_ig, "DeepLIFT ms": 1e3 * t_dl,
                                    "gradient ms": 1e3 * t_grad}))
    timing = pd.concat(frames, ignore_index=True)
    timing["IG / DeepLIFT"] = timing["IG ms"] / timing["DeepLIFT ms"]
    return timing



def panel_maps(nets: Mapping[str, object], images, targets, ig_steps: int
               ) -> dict[str, np.ndarray]:
    """Raw gradient, IG (black baseline, ``ig_steps`` steps) and DeepLIFT (exact max-pool
    rule) maps of each model, keyed ``"<label> gradient"``, ``"<label> IG"``,
    ``"<label> DeepLIFT"`` for each label of ``nets`` (label -> model)."""
    shown = {}
    for label, net in nets.items():
        shown[f"{label} gradient"] = methods.gradient(net, images, targets)
        shown[f"{label} IG"] = methods.integrated_gradients(net, images, targets,
                                                            steps=ig_steps)
        shown[f"{label} DeepLIFT"] = methods.deeplift_rescale(net, images, targets,
                                                              maxpool="rescale")
    return shown



def random_reference_phrase(deletion: pd.DataFrame, reference: str = "random") -> str:
    """Whether the random map has the lowest (best) deletion score of every model.

    Args:
        deletion: mean deletion AUC, one row per model, one column per method.
    """
    others = deletion.drop(columns=reference)
    if bool((deletion[reference] < others.min(axis=1)).all()):
        return "has the lowest, i.e. best, deletion score on both twins"
    return "does not have the lowest deletion score on both twins"



def excess_gap(excess: pd.DataFrame, models: Sequence[str], a: str, b: str) -> np.ndarray:
    """Per image, method ``a``'s excess over the random map minus method ``b``'s, each
    averaged over ``models`` (an :func:`excess_over` table)."""
    return (per_image_mean(excess, models, "excess", method=a)
            - per_image_mean(excess, models, "excess", method=b))



def comparison_phrase(ci: CI) -> str:
    """"more faithful than", "less faithful than" or "not distinguishable from", as the
    interval of a difference of faithfulness lies above 0, below 0, or straddles it."""
    if ci[1] > 0:
        return "more faithful than"
    if ci[2] < 0:
        return "less faithful than"
    return "not distinguishable from"



def wide_cam_scores(table: pd.DataFrame, groups: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """The Average Drop / Increase / Gain means (model x method rows) for display: one row per
    method, one column per (score, group), the mean over the group's models (e.g. ``{"FP":
    [...], "BNN": [...]}``), rounded to 0.1."""
    scores = list(table.columns)
    parts = {(score, group): table.loc[list(models), score].groupby(level="method").mean()
             for score in scores for group, models in groups.items()}
    wide = pd.DataFrame(parts).round(1)
    wide.columns = pd.MultiIndex.from_tuples(list(parts), names=[None, None])
    wide.index.name = None
    return wide


def step_cis(sanity: pd.DataFrame, models: Sequence[str], method_names: Sequence[str],
             step: int) -> dict[tuple[str, str], CI]:
    """(model, method) -> bootstrap interval of the mean similarity to the trained map after
    ``step`` randomization steps (a :func:`cascading_table`)."""
    at = sanity[sanity["step"] == step]
    return {(m, meth): bootstrap_ci(per_image_mean(at, [m], method=meth))
            for m in models for meth in method_names}



def cascade_wide(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean similarity per (model, method) row and randomized block column, blocks in
    cascade order (a :func:`bnn_saliency.stats.summarize` of :func:`cascading_table`)."""
    blocks = list(dict.fromkeys(summary.sort_values("step")["block"]))
    return summary.pivot(index=["model", "method"], columns="block", values="mean")[blocks]



def ig_convergence_figure(table: pd.DataFrame, steps: Sequence[int]):
    """Median relative completeness error against IG's steps, one line per (model,
    baseline) row of ``table`` (solid for FP models, dashed otherwise), log-log axes."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for (model, base), row in table.iterrows():
        ax.plot(row.index, row.to_numpy(), marker="o", ls="-" if "fp" in model else "--",
                label=f"{model}, {base}")
    ax.set(xscale="log", yscale="log", xlabel="IG steps", ylabel="median relative error")
    ax.set_xticks(steps, [str(s) for s in steps])
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig



def faithfulness_heatmap(faith: pd.DataFrame, order: Sequence[str], names: Sequence[str]):
    """Mean excess over random per method (rows, in ``order``) and model (columns, in
    ``names`` order), annotated; a dot marks the cells whose interval lies above 0
    (``beyond chance``). ``faith``: one row per model and method, with columns mean and
    beyond chance."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    order, names = list(order), list(names)
    grid = faith.pivot(index="method", columns="model", values="mean").loc[order, names]
    above = faith.pivot(index="method", columns="model",
                        values="beyond chance").loc[order, names]
    fig, ax = plt.subplots(figsize=(1.0 * len(names) + 2.5, 4.2))
    lim = float(np.nanmax(np.abs(grid.to_numpy())))
    sns.heatmap(grid, cmap="RdBu_r", vmin=-lim, vmax=lim, annot=grid.round(2), fmt="", ax=ax,
                cbar_kws={"label": "mean excess over random"})
    for i, method in enumerate(grid.index):
        for j, model in enumerate(grid.columns):
            if above.loc[method, model]:
                ax.plot(j + 0.85, i + 0.2, "k.", ms=5)
    ax.set(xlabel="", ylabel="")
    fig.tight_layout()
    return fig



def cascading_figure(summary: pd.DataFrame, threshold: float = 0.5):
    """Mean similarity to the trained map (with 95% intervals) against the deepest block
    randomized, one line per (model, method); DeepLIFT solid, other methods dotted."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for (model, method), rows in summary.groupby(["model", "method"], sort=False):
        rows = rows.sort_values("step")
        ax.errorbar(rows["block"], rows["mean"], yerr=[rows["mean"] - rows["low"],
                    rows["high"] - rows["mean"]], marker="o", capsize=2,
                    ls="-" if method == "deeplift_rescale" else ":", label=f"{model}, {method}")
    ax.axhline(threshold, color="grey", lw=0.5)
    ax.set(xlabel="randomized down to", ylabel="Spearman with trained map")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig



def claim(text: str, source: str, measure: str, ci: CI, rule: Rule) -> Claim:
    """A claim of this chapter (section ``sec-beyond``) measured by the interval ``ci`` and judged
    by ``rule`` (which also states the threshold)."""
    return Claim.judged(text, source, measure, ci, rule, "sec-beyond")
