"""Tables and figures built from saved records: the twins' provenance and the claims ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from . import claims
from .data import PROJECT_ROOT

WEIGHTS_DIR = PROJECT_ROOT / "data"

# where each chapter lives in the book, for links from the ledger
CHAPTER_DOCS = {
    "01_gradient": "01_gradient",
    "02_smoothgrad": "02_smoothgrad",
    "03_gradcam": "03_gradcam",
    "04_sanity_checks": "04_sanity_checks",
    "05_gbp_untrained": "05_gbp_untrained",
    "06_beyond_gradients": "06_beyond_gradients",
}


def twin_records(weights_dir: Path = WEIGHTS_DIR) -> list[dict]:
    """Every shipped twin's provenance record (``data/*.json``), sorted by name."""
    records = [json.loads(p.read_text()) for p in sorted(weights_dir.glob("*.json"))]
    return [r for r in records if "weights_sha256" in r]


def twin_table(weights_dir: Path = WEIGHTS_DIR) -> pd.DataFrame:
    """One row per shipped twin: architecture, binarized parts, size, accuracy, training time."""
    rows = []
    for r in twin_records(weights_dir):
        size = (weights_dir / r["weights_file"]).stat().st_size
        rows.append({
            "twin": r["name"], "family": r["family"], "binarized": r["binarization"],
            "width": r["width"], "params": r["params"], "file MB": round(size / 1e6, 2),
            "labels": "permuted" if r["random_labels"] else "true",
            "train images": r["train_images"], "epochs": r["epochs"],
            "train acc": r["train_accuracy"], "test acc": r["test_accuracy"],
            "train min": round(r["wall_time_s"] / 60, 1),
        })
    return pd.DataFrame(rows)


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


def ledger(results_dir: Path = claims.RESULTS_DIR) -> pd.DataFrame:
    """Every claim saved by a chapter, with a MyST link to the section that measured it."""
    rows = []
    for c in claims.load_all(results_dir):
        rows.append({
            "claim": c["claim"], "source": c["source"], "measure": c["measure"],
            "value": f"{c['value']:.3f}", "95% CI": f"[{c['low']:.3f}, {c['high']:.3f}]",
            "threshold": c["threshold"], "verdict": c["verdict"],
            "section": c["section"], "chapter": c["chapter"],
        })
    return pd.DataFrame(rows)


def ledger_markdown(results_dir: Path = claims.RESULTS_DIR) -> str:
    """The ledger as a Markdown table whose last column links to each measuring section."""
    df = ledger(results_dir)
    if df.empty:
        return "_No chapter has saved claims yet._"
    header = "| claim | source | measure | value | 95% CI | threshold | verdict | where |\n"
    header += "|---|---|---|---|---|---|---|---|\n"
    lines = []
    for _, r in df.iterrows():
        cells = [r["claim"], r["source"], r["measure"], r["value"], r["95% CI"],
                 r["threshold"], f"**{r['verdict']}**", f"{{ref}}`{r['section']}`"]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return header + "\n".join(lines)
