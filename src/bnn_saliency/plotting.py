"""Figures shared by the chapters: saliency grids in the paper's style, CI bar charts."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def saliency_grid(images: np.ndarray, maps: dict[str, np.ndarray], *,
                  predictions: dict[str, np.ndarray] | None = None,
                  labels: np.ndarray | None = None, class_names=None,
                  cmap: str = "jet", overlay: bool = False, cell: float = 1.1,
                  signed: bool = False):
    """Rows of images, columns of models, each map titled with its prediction.

    Args:
        images: (N, H, W, 3) in [0, 1], shown in the first column.
        maps: model name -> (N, H, W) maps, already post-processed (e.g. normalized).
        predictions: model name -> (N,) predicted classes; with ``labels`` the title says
            "correct" when right, as in the paper's figures.
        signed: draw with a diverging colormap centred at 0.
    """
    names = list(maps)
    n = len(images)
    if any(len(m) != n for m in maps.values()):
        raise ValueError("every map array must have one map per image")
    fig, axes = plt.subplots(n, len(names) + 1, figsize=(cell * (len(names) + 1), cell * n),
                             squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(np.clip(images[i], 0, 1))
        if labels is not None and class_names is not None:
            axes[i, 0].set_ylabel(class_names[labels[i]], fontsize=7)
        for j, name in enumerate(names, start=1):
            ax = axes[i, j]
            m = maps[name][i]
            if overlay:
                ax.imshow(np.clip(images[i], 0, 1))
            if signed:
                lim = float(np.abs(m).max()) or 1.0
                ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
            else:
                ax.imshow(m, cmap=cmap, alpha=0.5 if overlay else 1.0)
            if predictions is not None and class_names is not None:
                p = int(predictions[name][i])
                ok = labels is not None and p == int(labels[i])
                ax.set_title(class_names[p] + (" (correct)" if ok else ""), fontsize=5.5,
                             color="black" if ok else "firebrick", pad=2)
            if i == 0:
                ax.text(0.5, 1.35, name, transform=ax.transAxes, ha="center", fontsize=7,
                        weight="bold")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(pad=0.3)
    return fig


def ci_bars(summary, *, x: str, y: str = "mean", low: str = "low", high: str = "high",
            hue: str | None = None, ax=None, palette: str = "deep"):
    """Horizontal point-and-interval chart of a summary table (one row per estimate)."""
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.35 * len(summary) + 1))
    rows = summary.reset_index(drop=True)
    colors = sns.color_palette(palette, n_colors=max(1, rows[hue].nunique()) if hue else 1)
    hue_levels = list(dict.fromkeys(rows[hue])) if hue else [None]
    for i, r in rows.iterrows():
        c = colors[hue_levels.index(r[hue])] if hue else colors[0]
        ax.errorbar(r[y], i, xerr=[[r[y] - r[low]], [r[high] - r[y]]], fmt="o", color=c,
                    capsize=3, label=r[hue] if hue else None)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows[x], fontsize=8)
    ax.invert_yaxis()
    if hue:
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        ax.legend(uniq.values(), uniq.keys(), fontsize=7, loc="best")
    return ax
