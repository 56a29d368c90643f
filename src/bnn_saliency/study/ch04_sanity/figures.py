"""Chapter 4 figures: the Adebayo-style strip and the similarity curves."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ... import postprocess
from ...evaluation.randomization import SanityRun


def plot_strip(runs: dict[str, SanityRun], image: np.ndarray, index: int = 0,
               methods: Sequence[str] | None = None, labels: dict[str, str] | None = None,
               cell: float = 0.8, cmap: str = "gray"):
    """Adebayo-style strip: rows = methods, columns = cascade steps, one group per model.

    Args:
        runs: model label -> :class:`SanityRun` with ``kept`` maps.
        image: (H, W, 3) in [0, 1], shown in the first column.
        index: position of the image within each run's ``keep`` list.
        methods: rows (default: the methods of the first run).
        labels: method name -> row label.

    Each map is its abs view, min-max normalized on its own (as Adebayo et al. display them).
    """
    import matplotlib.pyplot as plt

    first = next(iter(runs.values()))
    methods = list(methods or first.reference)
    labels = labels or {}
    n_cols = 1 + sum(len(r.steps) for r in runs.values())
    fig, axes = plt.subplots(len(methods), n_cols,
                             figsize=(cell * n_cols, cell * len(methods) + 0.6), squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.axis("off")
    axes[0, 0].imshow(np.clip(image, 0, 1))
    axes[0, 0].axis("on")
    col = 1
    for label, run in runs.items():
        if not run.kept:
            raise ValueError(f"run {label!r} kept no maps; pass keep=[...] to cascading")
        for step, block, _ in run.steps:
            for row, method in enumerate(methods):
                m = postprocess.normalize(run.kept[(step, method)][index:index + 1])[0]
                ax = axes[row, col]
                ax.imshow(m, cmap=cmap, vmin=0, vmax=1)
                if col == 1 or (step == 0):
                    ax.axis("on")
                    ax.set_xticks([])
                    ax.set_yticks([])
                if row == 0:
                    ax.set_title(block, fontsize=6, rotation=35, ha="left", loc="left")
            if step == 0:
                axes[0, col].text(0.0, 1.9, label, transform=axes[0, col].transAxes, fontsize=8,
                                  weight="bold")
            col += 1
    for row, method in enumerate(methods):
        ax = axes[row, -1]
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.yaxis.set_label_position("right")
        ax.set_ylabel(labels.get(method, method), fontsize=6, rotation=0, ha="left",
                      va="center")
    fig.subplots_adjust(wspace=0.05, hspace=0.05, left=0.02, right=0.88, top=0.82)
    return fig



def plot_curves(summary: pd.DataFrame, methods: Sequence[str], groups: dict[str, list[str]],
                metric: str = "Spearman |map|", threshold: float | None = 0.5,
                checkpoint: int | None = 2, labels: dict[str, str] | None = None,
                mode: str = "cascading", cell: float = 1.9):
    """Similarity vs cascade step with 95% bands: rows = groups (e.g. families), columns =
    methods, one line per model. ``summary`` is :func:`summarize_steps` output."""
    import matplotlib.pyplot as plt

    labels = labels or {}
    sel = summary[(summary["metric"] == metric) & (summary["mode"] == mode)]
    groups = {g: [m for m in ms if m in set(sel["model"])] for g, ms in groups.items()}
    groups = {g: ms for g, ms in groups.items() if ms}
    if not groups:
        raise ValueError("none of the models in groups has scores in summary")
    fig, axes = plt.subplots(len(groups), len(methods), sharey=True, squeeze=False,
                             figsize=(cell * len(methods), cell * len(groups) + 0.4))
    styles = ["-", "--", ":", "-."]
    for r, (group, names) in enumerate(groups.items()):
        for c, method in enumerate(methods):
            ax = axes[r, c]
            for k, name in enumerate(names):
                rows = sel[(sel["model"] == name) & (sel["method"] == method)].sort_values("step")
                ax.plot(rows["step"], rows["mean"], styles[k % 4], marker="o", ms=2.5, lw=1.2,
                        label=name)
                ax.fill_between(rows["step"], rows["low"], rows["high"], alpha=0.2)
            rows = sel[sel["model"] == names[0]].drop_duplicates("step").sort_values("step")
            ax.set_xticks(rows["step"])
            ax.set_xticklabels(rows["block"], rotation=60, fontsize=6, ha="right")
            if threshold is not None:
                ax.axhline(threshold, color="grey", lw=0.6, ls="--")
            if checkpoint is not None:
                ax.axvline(checkpoint, color="grey", lw=0.6, ls=":")
            ax.axhline(0, color="black", lw=0.4)
            ax.tick_params(axis="y", labelsize=6)
            if r == 0:
                ax.set_title(labels.get(method, method), fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{group}\n{metric}", fontsize=7)
        axes[r, -1].legend(fontsize=5.5, loc="upper right")
    fig.tight_layout(pad=0.4)
    return fig
