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


def image_grid(panels, *, titles=None, row_labels=None, figsize=None, cell: float = 2.0,
               title_size: float = 9, label_size: float | None = None):
    """A grid of RGB images (rows of panels), without ticks, nearest-neighbour interpolation.

    Args:
        panels: list of rows, each a list of (H, W, 3) arrays in [0, 1] (or None to leave a
            cell blank); rows may be shorter than the longest (the rest stays blank).
        titles: same nested layout of titles (str or None).
        row_labels: one y-label per row (shown on the first column), or None.
        figsize: figure size; default ``cell`` inches per column and per row (+ 0.1).
        title_size, label_size: font sizes of titles and row labels (None: matplotlib's).

    Returns:
        The figure.
    """
    n_rows, n_cols = len(panels), max((len(r) for r in panels), default=0)
    if n_rows == 0 or n_cols == 0:
        raise ValueError("panels is empty: give a list of rows of images")
    if titles is not None and (len(titles) != n_rows
                               or any(len(t) > len(r) for t, r in zip(titles, panels))):
        raise ValueError("titles must have the layout of panels (one entry per image)")
    if row_labels is not None and len(row_labels) != n_rows:
        raise ValueError(f"row_labels needs one label per row ({n_rows}), got {len(row_labels)}")
    figsize = figsize or (cell * n_cols, cell * n_rows + 0.1)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=figsize, squeeze=False)
    for r, row in enumerate(panels):
        for c, img in enumerate(row):
            if img is not None:
                axes[r, c].imshow(img, interpolation="nearest")
            if titles is not None and c < len(titles[r]) and titles[r][c]:
                axes[r, c].set_title(titles[r][c], fontsize=title_size)
        if row_labels is not None and row_labels[r]:
            axes[r, 0].set_ylabel(row_labels[r], fontsize=label_size)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def filter_sweep(thumbnails, sizes, unit_errors, rms, correlations, *,
                 styles=(("gbp~eq5", "o-"), ("gbp~image", "s-"), ("grad~image", "^--"))):
    """Three panels of a sweep over the number of filters N (guided-backprop chapter).

    Left, one thumbnail per N (two rows of three). Middle, the relative error against N on
    log-log axes: a thin line per unit (network seed x image), the root-mean-square as a thick
    line, and the slope -1/2 through its first point. Right, mean correlations against N.

    Args:
        thumbnails: one displayable (H, W, 3) image per size.
        sizes: the N values (6 of them for the 2 x 3 thumbnail block).
        unit_errors: list of (N values, errors) lines, one per unit.
        rms: root-mean-square error per size.
        correlations: DataFrame indexed by N with the columns named in ``styles``.
        styles: (column, matplotlib format) pairs for the right panel.
    """
    if len(thumbnails) != len(sizes) or len(rms) != len(sizes) or len(sizes) > 6:
        raise ValueError("need one thumbnail and one RMS value per size, at most 6 sizes")
    fig = plt.figure(figsize=(12, 3.6))
    grid = fig.add_gridspec(2, 6, width_ratios=[1, 1, 1, 2.2, 0.3, 2.2])
    for k, n in enumerate(sizes):
        ax = fig.add_subplot(grid[k // 3, k % 3])
        ax.imshow(thumbnails[k], interpolation="nearest")
        ax.set_title(f"N = {n}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    ax = fig.add_subplot(grid[:, 3])
    for n, err in unit_errors:
        ax.loglog(n, err, color="tab:blue", alpha=0.12, lw=0.8)
    ax.loglog(sizes, rms, "o-", color="tab:blue", lw=2, label="GBP (RMS)")
    ax.loglog(sizes, rms[0] * np.asarray(sizes, float) ** -0.5, "k--", lw=1, label="N^(-1/2)")
    ax.set_xlabel("filters N")
    ax.set_ylabel("relative error vs eq. 5")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(grid[:, 5])
    for col, style in styles:
        ax.semilogx(correlations.index, correlations[col], style, label=col)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("filters N")
    ax.set_ylabel("Pearson correlation")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def width_sweep(sizes, gbp, gradient, predicted, explicit=(), *, reference=None,
                reference_label: str = "reference", input_dim=None):
    """Correlation with the image against the number of hidden units (fully connected net).

    Args:
        sizes: hidden-unit counts of ``gbp``, ``gradient`` and ``predicted``.
        gbp, gradient: mean correlations of the GBP and gradient maps with the image.
        predicted: the large-width prediction at ``sizes``.
        explicit: (sizes, correlations) of explicit networks, drawn as crosses.
        reference: a horizontal reference level (e.g. the convnet's GBP), or None.
        reference_label: its legend entry.
        input_dim: the input dimension d, marked by a vertical line, or None.
    """
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.semilogx(sizes, gbp, "o-", ms=3, label="FC GBP (exact law)")
    ax.semilogx(sizes, gradient, "^-", ms=3, label="FC gradient")
    ax.semilogx(sizes, predicted, "k--", lw=1, label="prediction")
    for i, (n, r) in enumerate(explicit):
        ax.semilogx(n, r, "x", color="tab:red", label="explicit nets" if i == 0 else None)
    if reference is not None:
        ax.axhline(reference, color="tab:green", ls=":", label=reference_label)
    if input_dim is not None:
        ax.axvline(input_dim, color="grey", lw=0.5)
    ax.set_xlabel("hidden units N_h")
    ax.set_ylabel("corr(map, image)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def ci_panels(panels: dict, *, x: str, hue: str | None = None, figsize=None, sharey: bool = True,
              zero_line: bool = False):
    """Side-by-side :func:`ci_bars` charts, one per summary table, titled by the dict keys.

    Args:
        panels: title -> summary table (columns ``x``, mean, low, high and ``hue``).
        x, hue: as in :func:`ci_bars`.
        figsize: default 4 inches per panel by 0.35 per row + 1.6.
        sharey: share the category axis (the tables must list the same ``x`` in order).
        zero_line: draw a vertical line at 0.
    """
    if not panels:
        raise ValueError("panels is empty: give {title: summary table}")
    n_rows = max(len(t) for t in panels.values())
    figsize = figsize or (4 * len(panels), 0.35 * n_rows + 1.6)
    fig, axes = plt.subplots(1, len(panels), figsize=figsize, sharey=sharey, squeeze=False)
    for ax, (title, rows) in zip(axes[0], panels.items()):
        ci_bars(rows, x=x, hue=hue, ax=ax)
        ax.set_title(title)
        if zero_line:
            ax.axvline(0, color="grey", lw=0.5)
    fig.tight_layout()
    return fig


def group_histograms(table, columns, by: str, groups, *, bins: int = 30, figsize=None):
    """One density histogram panel per column, overlaying the groups ``table[by] == g``."""
    if not len(columns):
        raise ValueError("columns is empty")
    missing = [c for c in [*columns, by] if c not in table.columns]
    if missing:
        raise KeyError(f"table has no columns {missing}")
    fig, axes = plt.subplots(1, len(columns), figsize=figsize or (4 * len(columns), 3),
                             squeeze=False)
    for ax, col in zip(axes[0], columns):
        for g in groups:
            ax.hist(table.loc[table[by] == g, col], bins=bins, alpha=0.5, density=True, label=g)
        ax.set_xlabel(col)
    axes[0, 0].set_ylabel("density")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def depth_profiles(summary, measures=("AD", "blank"), *, colors=None):
    """Per measure, mean and 95% interval against block depth, one line per family, kind and
    tensor (``block`` solid, ``bn`` dashed, ``act`` dotted, slightly offset along x).

    Args:
        summary: table with columns measure, family, kind, tensor, block, mean, low, high.
        measures: one panel each.
        colors: kind -> colour (default FP blue, BNN red).
    """
    colors = colors or {"FP": "C0", "BNN": "C3"}
    styles = {"block": "-", "bn": "--", "act": ":"}
    offsets = {"block": -0.1, "bn": 0.0, "act": 0.1}
    fig, axes = plt.subplots(1, len(measures), figsize=(5.5 * len(measures), 3.6), squeeze=False)
    for ax, measure in zip(axes[0], measures):
        sel = summary[summary["measure"] == measure]
        for (family, kind, tensor), g in sel.groupby(["family", "kind", "tensor"]):
            g = g.sort_values("block")
            ax.errorbar(g["block"] + offsets[tensor], g["mean"],
                        yerr=[g["mean"] - g["low"], g["high"] - g["mean"]], ls=styles[tensor],
                        color=colors.get(kind, "grey"), marker="o", ms=3, capsize=2,
                        label=f"{family} {kind} {tensor}")
        ax.set_xlabel("block (shallow to deep)")
        ax.set_title(measure)
    axes[0, 0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def overlay_rows(images, rows: dict, *, col_titles=None, cell: float = 0.8, cmap: str = "jet"):
    """Images in the first row, then one row per entry of ``rows`` with its maps overlaid.

    Args:
        images: (N, H, W, 3) in [0, 1], one column each.
        rows: label -> (N, H, W) maps already scaled to [0, 1], drawn with ``cmap`` at alpha
            0.5 over the image.
        col_titles: one title per column (e.g. class names), or None.
    """
    n = len(images)
    if any(len(m) != n for m in rows.values()):
        raise ValueError("every entry of rows needs one map per image")
    fig, axes = plt.subplots(len(rows) + 1, n, squeeze=False,
                             figsize=(cell * n + 1.6, cell * (len(rows) + 1)))
    for j in range(n):
        axes[0, j].imshow(images[j])
        if col_titles is not None:
            axes[0, j].set_title(col_titles[j], fontsize=7)
        for i, cam in enumerate(rows.values(), start=1):
            axes[i, j].imshow(images[j])
            axes[i, j].imshow(cam[j], cmap=cmap, alpha=0.5)
    for i, label in enumerate(["image"] + list(rows)):
        axes[i, 0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(pad=0.2)
    return fig


def noise_strip(image, maps: dict, noises, *, cmap: str = "jet"):
    """One image and its maps over a noise sweep: a row per model, a column per noise level.

    Args:
        image: (H, W, 3) in [0, 1], shown in the first column of every row.
        maps: model name -> (S, H, W) displayed maps at the S ``noises``.
        noises: noise levels (fractions), used as column titles in percent.
    """
    if any(len(m) != len(noises) for m in maps.values()):
        raise ValueError("every model needs one map per noise level")
    fig, axes = plt.subplots(len(maps), len(noises) + 1, squeeze=False,
                             figsize=(1.05 * (len(noises) + 1), 1.2 * len(maps)))
    for r, (name, m) in enumerate(maps.items()):
        axes[r, 0].imshow(image)
        axes[r, 0].set_ylabel(name, fontsize=7)
        for k, s in enumerate(noises):
            axes[r, k + 1].imshow(m[k], cmap=cmap)
            if r == 0:
                axes[r, k + 1].set_title(f"{100 * s:g}%", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(pad=0.2)
    return fig


def noise_curves(summary, models, noises, measures, *, main=(), colors=None, hlines=None):
    """Per measure, the mean and 95% interval against the noise level (grid positions).

    Args:
        summary: table with columns measure, model, noise, mean, low, high.
        models: the models to draw; those in ``main`` as lines with a band, the others as
            crosses (e.g. measured at one level only).
        noises: the grid (x positions 0..S-1, labelled in percent).
        measures: one panel each.
        colors: model -> colour (default :func:`twin_style`'s).
        hlines: measure -> level of a dotted reference line (e.g. a baseline of 0).
    """
    pos = {s: i for i, s in enumerate(noises)}
    colors = colors or {n: twin_style(n)[0] for n in models}
    fig, axes = plt.subplots(1, len(measures), figsize=(13 / 3 * len(measures), 3.4),
                             squeeze=False)
    for ax, meas in zip(axes[0], measures):
        for n in models:
            rows = summary[(summary["measure"] == meas) & (summary["model"] == n)]
            xs = [pos[s] for s in rows["noise"]]
            if n in main:
                ax.plot(xs, rows["mean"], "o-", color=colors[n], label=n, ms=3)
                ax.fill_between(xs, rows["low"], rows["high"], color=colors[n], alpha=0.2)
            else:
                ax.plot(xs, rows["mean"], "x", color=colors[n], label=n, ms=6)
        ax.set_xticks(range(len(noises)), [f"{100 * s:g}" for s in noises], fontsize=7)
        ax.set_xlabel("noise level σ (% of range)")
        ax.set_title(meas)
        if hlines and meas in hlines:
            ax.axhline(hlines[meas], color="grey", ls=":", lw=1)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


#: Colour and marker per twin variant (and for the accuracy-matched FP controls).
VARIANT_STYLE = {"fp": ("tab:blue", "o"), "bnn": ("tab:red", "s"), "binw": ("tab:green", "^"),
                 "bina": ("tab:purple", "v"), "control": ("tab:grey", "D")}


def twin_style(name: str) -> tuple[str, str, str]:
    """``(colour, marker, line style)`` of a twin ``[v2:]<family>-<variant>-s<seed>[...]``:
    the variant's colour (grey for an accuracy-matched control), dashed for a ResNet, solid
    for seed 0 and dotted for the other seeds."""
    family, variant, seed = name.rpartition(":")[2].split("-")[:3]
    c, mk = VARIANT_STYLE["control" if "at-bnn-acc" in name else variant]
    return c, mk, "--" if family == "resnet" else ("-" if seed == "s0" else ":")


def propagation_panels(pre, flips, models, *, main=(), noises=(0.02, 0.20)):
    """Relative change against relative depth at two noise levels, and the flip rate.

    Args:
        pre: rows of the pre-activation layers with columns model, noise, rdepth, rel_change.
        flips: columns model, noise, flip_rate.
        models: twin names ``<family>-<variant>-s<seed>``; ResNets dashed, seed 0 solid,
            other seeds dotted.
        main: models drawn as lines in the flip-rate panel (the others as open markers).
        noises: the two levels of the first two panels.
    """
    fig, axes = plt.subplots(1, len(noises) + 1, figsize=(13, 3.6))
    for ax, s in zip(axes[:-1], noises):
        for n in models:
            c, mk, ls = twin_style(n)
            rows = pre[(pre["model"] == n) & (pre["noise"] == s)].groupby("rdepth")["rel_change"].mean()
            ax.plot(rows.index, rows.values, marker=mk, color=c, ms=3, ls=ls, label=n)
        ax.set_yscale("log")
        ax.set_xlabel("relative depth")
        ax.set_title(f"relative change at σ = {100 * s:g}%")
    axes[0].legend(fontsize=6)
    for n in models:
        c, mk, _ = twin_style(n)
        fr = flips[flips["model"] == n].groupby("noise")["flip_rate"].mean()
        is_main = n in main
        axes[-1].plot([100 * v for v in fr.index], fr.values, marker=mk, color=c,
                      ms=3 if is_main else 6, ls="-" if is_main else "none",
                      mfc=None if is_main else "none", label=n)
    axes[-1].legend(fontsize=6)
    axes[-1].set_xscale("log")
    axes[-1].set_xlabel("noise level σ (%)")
    axes[-1].set_title("prediction flip rate")
    fig.tight_layout()
    return fig
