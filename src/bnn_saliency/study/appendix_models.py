"""The models appendix: the twins' provenance, training curves and the recipe pilot."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..data import PROJECT_ROOT

WEIGHTS_DIR = PROJECT_ROOT / "data"


V2_DIR = WEIGHTS_DIR / "v2"  # the twins-v2 suite (in training; chapter 1 uses it)


PILOT_FILE = V2_DIR / "pilot.json"


V2_TARGETS = {"fp": 0.90, "bnn": 0.80}  # twins-v2 targets, CIFAR-10 test accuracy (issue #18)


def twin_records(weights_dir: Path = WEIGHTS_DIR) -> list[dict]:
    """Every shipped twin's provenance record (``data/*.json``), sorted by name."""
    records = [json.loads(p.read_text()) for p in sorted(weights_dir.glob("*.json"))]
    return [r for r in records if "weights_sha256" in r]


def twin_table(weights_dir: Path = WEIGHTS_DIR) -> pd.DataFrame:
    """One row per shipped twin, indexed by its name, accuracy first: test and train accuracy,
    the variant (``fp``/``binw``/``bina``/``bnn``, what is binarized; the family is in the
    name), labels (true or permuted), training images, epochs, base width, training minutes.

    Parameter counts, file sizes and the rest stay in the provenance records
    (:func:`twin_records`). The index is the twin's name, unnamed, and the columns' axis is
    named "twin" instead, so that the table renders with one header row whose first cell
    says "twin" (and no 0..n-1 row numbers).
    """
    rows = {}
    for r in twin_records(weights_dir):
        rows[r["name"]] = {
            "test acc": r["test_accuracy"], "train acc": r["train_accuracy"],
            "variant": r["variant"], "labels": "permuted" if r["random_labels"] else "true",
            "train images": r["train_images"], "epochs": r["epochs"], "width": r["width"],
            "train min": round(r["wall_time_s"] / 60, 1),
        }
        if "matched_to" in r:
            rows[r["name"]]["control for"] = r["matched_to"]
    columns = ["test acc", "train acc", "variant", "labels", "train images", "epochs", "width",
               "train min"]
    if any("control for" in row for row in rows.values()):
        columns.insert(2, "control for")
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns).fillna("")
    return table.rename_axis(index=None, columns="twin")


def training_curves(weights_dir: Path = WEIGHTS_DIR) -> pd.DataFrame:
    """Long-format per-epoch log of every twin (from the provenance records)."""
    rows = []
    for r in twin_records(weights_dir):
        for entry in r["log"]:
            rows.append({"twin": r["name"], "epoch": int(entry["epoch"]),
                         "test acc": float(entry["test_acc"]),
                         "train acc (augmented)": float(entry["train_acc_augmented"]),
                         "loss": float(entry["loss"])})
    return pd.DataFrame(rows)


def pilot_table(path: Path = PILOT_FILE) -> pd.DataFrame:
    """The twins-v2 recipe pilot (``python -m bnn_saliency.models.training --pilot-summary``): one row
    per candidate run, accuracy first (the full recipe text is in :data:`PILOT_FILE`)."""
    rows = json.loads(Path(path).read_text())
    table = pd.DataFrame.from_dict({r["run"]: {
        "test acc": r["test_accuracy"], "width": r["width"], "epochs": r["epochs"],
        "batch": r["batch_size"], "s / epoch": r["seconds_per_epoch"],
        "max load": r["max_load_avg"]} for r in rows}, orient="index")
    return table.rename_axis(index=None, columns="pilot run")  # no 0..n-1 index


def pilot_recipes(path: Path = PILOT_FILE) -> dict[str, str]:
    """Pilot run name -> its recipe, in words."""
    return {r["run"]: r["recipe"] for r in json.loads(Path(path).read_text())}


def pilot_curves(path: Path = PILOT_FILE) -> pd.DataFrame:
    """Long-format test accuracy per epoch of every pilot run."""
    rows = json.loads(Path(path).read_text())
    return pd.DataFrame([{"run": r["run"], "epoch": e, "test acc": a}
                         for r in rows for e, a in enumerate(r["test_acc_by_epoch"], start=1)])


def target_summary(weights_dir: Path = V2_DIR, targets: dict = V2_TARGETS) -> str:
    """One clause per trained twin (true labels, not a control): its test accuracy against
    the target for its variant, e.g. "vgg-bnn-s0 78.6% (target 80%, missed by 1.4 points)"."""
    parts = []
    for r in twin_records(weights_dir):
        if r["random_labels"] or "matched_to" in r or r["variant"] not in targets:
            continue
        acc, goal = r["test_accuracy"], targets[r["variant"]]
        outcome = "met" if acc >= goal else f"missed by {100 * (goal - acc):.1f} points"
        parts.append(f"{r['name']} {acc:.1%} (target {goal:.0%}, {outcome})")
    return "; ".join(parts) or "none trained yet"


def matched_controls(weights_dir: Path = V2_DIR) -> pd.DataFrame:
    """One row per accuracy-matched FP control: its BNN, both float32 test accuracies, the gap
    in points and how the control was made (an epoch checkpoint of the FP twin, or a narrower
    FP network trained to convergence)."""
    by_name = {r["name"]: r for r in twin_records(weights_dir)}
    rows = {}
    for name, r in by_name.items():
        if "matched_to" not in r:
            continue
        bnn = by_name[r["matched_to"]]
        how = (f"{r['source_twin']} after epoch {r['checkpoint_epoch']} of {r['recipe']['epochs']}"
               if "checkpoint_epoch" in r else f"width {r['width']}, trained to the end")
        rows[name] = {"BNN": bnn["name"], "BNN acc": bnn["float32_test_accuracy"],
                      "control acc": r["float32_test_accuracy"],
                      "gap (points)": round(100 * (r["float32_test_accuracy"]
                                                   - bnn["float32_test_accuracy"]), 2),
                      "made as": how}
    table = pd.DataFrame.from_dict(rows, orient="index",
                                   columns=["BNN", "BNN acc", "control acc", "gap (points)",
                                            "made as"])
    return table.rename_axis(index=None, columns="control")
