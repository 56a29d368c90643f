"""The audit's figures, drawn from the checks' numbers: one per check (its measurement and
95% interval against the rule's threshold, or its per-layer / per-noise table), and a grid of
verdicts for comparing the reports of several models."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .. import verdicts
from .battery import AUDIT_VERDICTS, CheckResult

#: Colours of the audit's verdicts (the book's verdict colours; grey for "info").
VERDICT_COLORS = dict(zip(AUDIT_VERDICTS, verdicts.VERDICT_COLORS.values())) | {
    "info": "#57606a"}


def _threshold(ax, check: CheckResult, vertical: bool = True) -> None:
    if check.rule is not None:
        line = ax.axvline if vertical else ax.axhline
        line(check.rule.lo, color="grey", ls="--", lw=1, label=f"rule: {check.rule.text}")
        ax.legend(fontsize=7, loc="best")


def check_figure(check: CheckResult):
    """The figure of one check: SmoothGrad's flip rate and map stability per noise level,
    Grad-CAM's blank rate per layer, or else the measurement with its interval against the
    rule's threshold, coloured by verdict."""
    color = VERDICT_COLORS[check.verdict]
    table = check.table
    if check.check == "smoothgrad_noise":
        fig, ax = plt.subplots(figsize=(5, 2.6))
        x = np.arange(len(table))
        ax.errorbar(x, table["flip %"], yerr=[table["flip %"] - table["flip % low"],
                                              table["flip % high"] - table["flip %"]],
                    fmt="o-", color=color, capsize=3)
        ax.set_xticks(x, table.index)
        ax.set(xlabel="SmoothGrad noise (share of the image range)",
               ylabel="noisy copies that flip (%)")
        _threshold(ax, check, vertical=False)
        twin = ax.twinx()
        twin.plot(x, table["stability"], "s:", color="#0969da")
        twin.set_ylabel("map stability (Spearman)", color="#0969da")
    elif check.check == "gradcam_blank":
        fig, ax = plt.subplots(figsize=(5, 0.4 * len(table) + 1.2))
        y = np.arange(len(table))
        ax.errorbar(table["blank %"], y, xerr=[table["blank %"] - table["blank % low"],
                                               table["blank % high"] - table["blank %"]],
                    fmt="o", color=color, capsize=3)
        ax.set_yticks(y, table.index, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("blank Grad-CAM maps (%)")
        _threshold(ax, check)
    else:
        fig, ax = plt.subplots(figsize=(5, 1.3))
        if np.isfinite(check.value):
            ax.errorbar([check.value], [0], xerr=[[check.value - check.low],
                                                  [check.high - check.value]],
                        fmt="o", color=color, capsize=4)
        ax.set_yticks([])
        ax.set_xlabel(check.measure, fontsize=8)
        _threshold(ax, check)
    ax.set_title(f"{check.check}: {check.verdict}", fontsize=9, color=color)
    fig.tight_layout()
    return fig


def verdict_grid(reports: dict):
    """Checks (rows) by model (columns) of several :class:`AuditReport`\\ s, each cell
    coloured by its verdict and labelled with its measurement."""
    names = list(reports)
    checks = list(dict.fromkeys(c.check for r in reports.values() for c in r.checks))
    fig, ax = plt.subplots(figsize=(1.9 * len(names) + 2.4, 0.32 * len(checks) + 0.9))
    for j, name in enumerate(names):
        found = {c.check: c for c in reports[name].checks}
        for i, check in enumerate(checks):
            c = found.get(check)
            color = VERDICT_COLORS[c.verdict] if c else "#ffffff"
            ax.add_patch(plt.Rectangle((j, i), 1, 1, color=color, ec="white"))
            text = f"{c.verdict} ({c.value:.3g})" if c and np.isfinite(c.value) else (
                c.verdict if c else "not run")
            ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=7,
                    color="white" if c else "grey")
    ax.set(xlim=(0, len(names)), ylim=(len(checks), 0))
    ax.set_xticks(np.arange(len(names)) + 0.5, names, fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks(np.arange(len(checks)) + 0.5, checks, fontsize=8)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    fig.tight_layout()
    return fig
