"""The performance appendix: the benchmark's tables, figure and sentences; chapter times."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..bench import GOALS
from ..stats import ratio_ci
from ..data import PROJECT_ROOT
from ..verdicts import Rule

PLUMBING = re.compile(r"^(#|%|:|t0 = |watch = |glue\(|import |from )")


def chapter_times(book_dir: Path | None = None, top: int = 2):
    """Execution time of each stored chapter notebook, from the per-cell timestamps that
    nbclient writes when ``make notebooks`` executes it (computation, not cache reads: that
    target sets ``BNN_SALIENCY_RECOMPUTE=1``).

    Returns:
        DataFrame, one row per notebook: ``chapter``, ``seconds`` (sum over code cells),
        ``cells``, and ``costliest`` (the ``top`` slowest cells as ``"cell k (s s): first
        line"``), sorted by chapter.
    """
    from datetime import datetime

    import nbformat
    import pandas as pd

    def stamp(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    rows = []
    for path in sorted(Path(book_dir or PROJECT_ROOT / "book").glob("*.ipynb")):
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        times = []
        for k, cell in enumerate(cells):
            run = cell.get("metadata", {}).get("execution", {})
            if "iopub.execute_input" in run and "shell.execute_reply" in run:
                seconds = (stamp(run["shell.execute_reply"])
                           - stamp(run["iopub.execute_input"])).total_seconds()
                first = next((ln for ln in cell.source.splitlines()
                              if ln.strip() and not PLUMBING.match(ln)), "")
                times.append((seconds, k, first[:48]))
        if not times:
            continue
        slow = sorted(times, reverse=True)[:top]
        rows.append({"chapter": path.stem, "seconds": round(sum(t[0] for t in times), 1),
                     "cells": len(cells),
                     "costliest": "; ".join(f"cell {k} ({t:.0f} s): {line}"
                                            for t, k, line in slow)})
    return pd.DataFrame(rows)


def summary(results: dict) -> "tuple":
    """Tables of a bench JSON for the appendix.

    Returns:
        ``(goals, methods, training)`` DataFrames: ``goals`` has one row per model and goal
        (``value``, ``low``, ``high``, ``target``, ``direction``, ``verdict``; for the speed-up,
        ``ceiling`` = tf-keras-vis's time per map over the lower bound, the largest speed-up any
        implementation of the same gradients could reach); ``methods`` maps/s
        per model and method (SmoothGrad ours and tf-keras-vis included); ``training``
        images/s per twin and precision, with the bf16 / float32 speed-up.
    """
    import pandas as pd

    goal_rows, method_rows = [], []
    for case in results["smoothgrad"]:
        name, n_img = case["model"], case["images"]
        ours = np.asarray(case["ours_s"]) / n_img                    # s per map
        fb = np.asarray(case["per_image_pass_s"][str(case["best_batch"])])
        bound = case["n_samples"] * fb                               # s per map, lower bound
        if case.get("tfkerasvis_s"):
            theirs = np.asarray(case["tfkerasvis_s"]) / n_img
            sp = ratio_ci(theirs, ours, paired=False)
            goal_rows.append({"model": name, "goal": "SmoothGrad speed-up vs tf-keras-vis",
                              "value": sp[0], "low": sp[1], "high": sp[2],
                              "target": GOALS["smoothgrad_speedup"], "direction": "above",
                              "ceiling": float(np.median(theirs) / np.median(bound))})
            method_rows.append({"model": name, "method": "SmoothGrad (tf-keras-vis)",
                                "maps_per_s": 1 / float(np.median(theirs))})
        rb = ratio_ci(ours, bound, paired=False)
        goal_rows.append({"model": name, "goal": "SmoothGrad time / lower bound",
                          "value": rb[0], "low": rb[1], "high": rb[2],
                          "target": GOALS["smoothgrad_bound_ratio"], "direction": "below"})
        method_rows.append({"model": name, "method": "SmoothGrad (ours)",
                            "maps_per_s": 1 / float(np.median(ours))})
    for row in results.get("methods", []):
        label = {"gradcam": "Grad-CAM", "integrated_gradients": f"IG ({row['params'].get('steps')} steps)",
                 "scorecam": "Score-CAM"}[row["method"]]
        if row["method"] == "scorecam" and row["params"].get("max_n"):
            label += f" (max_n={row['params']['max_n']})"
        method_rows.append({"model": row["model"], "method": label,
                            "maps_per_s": row["images"] / float(np.median(row["seconds"]))})
    goals = pd.DataFrame(goal_rows)
    if len(goals):
        goals["verdict"] = [Rule.goal(r.target, r.direction).verdict(r.low, r.high)
                            for r in goals.itertuples()]
    train_rows = [{"model": r["model"], "precision": r["precision"],
                   "images_per_s": r["images"] / float(np.median(r["seconds"]))}
                  for r in results.get("training", [])]
    training = pd.DataFrame(train_rows)
    if len(training):
        f32 = training[training["precision"] == "float32"].set_index("model")["images_per_s"]
        training["vs_float32"] = [r.images_per_s / f32.get(r.model, np.nan)
                                  for r in training.itertuples()]
    return goals, pd.DataFrame(method_rows), training


def run_line(results: dict) -> str:
    """When the benchmark ran and on what: CPU, cores, TensorFlow and larq versions."""
    m = results["machine"]
    return (f"benchmark of {results['created']}: {m['cpu']}, {m['cores']} cores, "
            f"TensorFlow {m['tensorflow']}, larq {m['larq']}")


def machine_table(results: dict):
    """The benchmark machine and run, one ``value`` per row (CPU, cores, memory, versions,
    the 1-minute load average before / after, the benchmark's wall time)."""
    import pandas as pd

    m = results["machine"]
    load_before, load_after = m["load_average"][0], m["load_average_after"][0]
    values = [m["cpu"], m["cores"], m["memory_gb"], m["platform"], m["python"],
              m["tensorflow"], m["larq"], m["numpy"], f"{load_before:.2f} / {load_after:.2f}",
              results["bench_seconds"]]
    index = ["CPU", "cores", "memory (GB)", "platform", "Python", "TensorFlow", "larq", "NumPy",
             "1-min load average before / after", "benchmark wall time (s)"]
    return pd.DataFrame({"value": values}, index=index)


def machine_text(machine: dict) -> str:
    """``"<cpu> with <n> cores"``."""
    return f"{machine['cpu']} with {machine['cores']} cores"


def load_note(machine: dict) -> str:
    """The sentence on the machine's load during the run: busy if the larger 1-minute load
    average (before or after) exceeds half the cores."""
    load = max(machine["load_average"][0], machine["load_average_after"][0])
    cores = machine["cores"]
    if load > 0.5 * cores:
        return (f"The machine was busy during this run (1-minute load average {load:.1f} on "
                f"{cores} cores), so the timings are noisy: read the ratios, whose intervals "
                "widen accordingly, rather than the absolute rates.")
    return (f"The machine was quiet during this run (1-minute load average at most "
            f"{load:.1f} on {cores} cores).")


def smoothgrad_cases(results: dict):
    """One row per SmoothGrad benchmark case: model, input, weights, images, n, noise,
    batch size and repetitions."""
    import pandas as pd

    return pd.DataFrame([{"model": c["model"], "input": c["input"], "weights": c["weights"],
                          "images": c["images"], "n": c["n_samples"], "noise": c["noise"],
                          "batch size": c["batch_size"], "repetitions": len(c["ours_s"])}
                         for c in results["smoothgrad"]])


def goals_table(goals):
    """The goals of :func:`summary` for display: value, 95% CI and goal as text, verdict."""
    import pandas as pd

    return pd.DataFrame({
        "model": goals["model"], "measure": goals["goal"], "value": goals["value"].round(2),
        "95% CI": [f"[{lo:.2f}, {hi:.2f}]" for lo, hi in zip(goals["low"], goals["high"])],
        "goal": [f"{'>=' if d == 'above' else '<='} {t:g}"
                 for d, t in zip(goals["direction"], goals["target"])],
        "verdict": goals["verdict"]})


VERDICT_COLORS = {"met": "tab:green", "borderline": "tab:orange", "not met": "tab:red"}


def goals_figure(goals):
    """One panel per goal: each model's ratio with its 95% interval, coloured by verdict,
    the goal as a dashed line and, where known, the ceiling (tf-keras-vis / lower bound) as
    a bar. Sets seaborn's whitegrid theme."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    measures = list(dict.fromkeys(goals["goal"]))
    fig, axes = plt.subplots(1, len(measures), figsize=(5.5 * len(measures), 3.2),
                             squeeze=False)
    for ax, measure in zip(axes[0], measures):
        rows = goals[goals["goal"] == measure].reset_index(drop=True)
        ax.errorbar(rows["value"], rows.index, xerr=[rows["value"] - rows["low"],
                                                     rows["high"] - rows["value"]],
                    fmt="none", ecolor="grey", capsize=3, zorder=2)
        sns.scatterplot(x=rows["value"], y=rows.index, hue=rows["verdict"],
                        palette=VERDICT_COLORS, s=60, ax=ax, zorder=3, legend=False)
        if "ceiling" in rows and rows["ceiling"].notna().any():
            ax.scatter(rows["ceiling"], rows.index, marker="|", s=200, color="black",
                       zorder=3)
        ax.axvline(rows["target"].iloc[0], color="black", ls="--", lw=1)
        ax.set_yticks(rows.index, rows["model"])
        ax.invert_yaxis()
        ax.set_title(measure, fontsize=10)
        ax.set_xlabel("ratio")
        ax.set_ylabel("")
        ax.set_xlim(left=0)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=v)
               for v, c in VERDICT_COLORS.items()]
    handles.append(plt.Line2D([], [], marker="|", ms=12, ls="", color="black",
                              label="ceiling (tf-keras-vis / lower bound)"))
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def goal_sentence(goals, measure: str) -> str:
    """Every model's value of one goal with its interval and verdict, ``"; "``-separated:
    ``"<model> <value> [<low>, <high>] (<verdict>); ..."``, two decimals."""
    rows = goals[goals["goal"] == measure]
    return "; ".join(f"{r.model} {r.value:.2f} [{r.low:.2f}, {r.high:.2f}] ({r.verdict})"
                     for r in rows.itertuples())


def met_count(rows) -> str:
    """``"k of n"``: how many of the goal rows have the verdict "met"."""
    return f"{int((rows['verdict'] == 'met').sum())} of {len(rows)}"


def ceilings_text(rows) -> str:
    """Each model's ceiling (largest possible speed-up), ``"; "``-separated."""
    return "; ".join(f"{r.model} {r.ceiling:.1f}" for r in rows.itertuples())


def rates_table(methods):
    """Maps per second, one row per method and one column per model (in benchmark order),
    as text with 3 significant digits (``"-"`` where not measured)."""
    rates = methods.pivot_table(index="method", columns="model", values="maps_per_s",
                                sort=False)
    rates = rates[list(dict.fromkeys(methods["model"]))]
    return rates.apply(lambda col: col.map(lambda v: f"{v:.3g}" if np.isfinite(v) else "-"))


def training_table(training):
    """Training throughput for display: images/s (3 significant digits) and the speed-up
    over float32 (2 decimals), as text."""
    shown = training.assign(
        images_per_s=training["images_per_s"].map(lambda v: f"{v:.3g}"),
        vs_float32=training["vs_float32"].map(lambda v: f"{v:.2f}"))
    return shown.rename(columns={"images_per_s": "images/s",
                                 "vs_float32": "speed-up vs float32"})


def bf16_text(training) -> str:
    """Each model's bf16 mixed-precision speed-up over float32, ``"<model> <ratio>x, ..."``."""
    bf16 = training[training["precision"] == "mixed_bfloat16"]
    return ", ".join(f"{r.model} {r.vs_float32:.2f}x" for r in bf16.itertuples())


def train_setup_text(config: dict) -> str:
    """The training benchmark's batch size and steps, in words."""
    return f"batches of {config['train_batch']}, {config['train_steps']} steps per repetition"


def build_text(builds: dict, kind: str) -> str:
    """The recorded wall time of a ``"cold"`` or ``"warm"`` book build, in minutes, with when
    it finished (``builds``: the bench JSON's ``book_build``)."""
    record = builds.get(kind)
    if not record:
        return "not recorded in this run"
    return f"{record['seconds'] / 60:.1f} min (finished {record['finished']})"
