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


# Claims the study must test, as (chapter, source regex, claim regex), matched
# case-insensitively with re.search against the saved claims of that chapter. The ledger
# page lists the ones no chapter has saved yet; tests/test_beyond.py fails on any of them.
REQUIRED_CLAIMS: dict[str, tuple[str, str, str]] = {
    # the core paper (Widdicombe & Julier 2020), chapters 01-03
    "W&J: gradient maps alike": ("01_gradient", r"widdicombe", r"gradient maps .*look alike"),
    "W&J: SmoothGrad noisier on BNNs at 20%": (
        "02_smoothgrad", r"widdicombe", r"20% .*BNN SmoothGrad maps are noisier"),
    "W&J: optimal noise 2-6% for BNNs": ("02_smoothgrad", r"widdicombe", r"BNNs is about 2-6%"),
    "W&J: optimal noise 10-20% for FPNNs": ("02_smoothgrad", r"widdicombe", r"FPNNs is about 10-20%"),
    "W&J: BNN maps random by 50% noise": (
        "02_smoothgrad", r"widdicombe", r"BNN SmoothGrad maps .*random by 50%"),
    "W&J: Grad-CAM blank on BNNs": ("03_gradcam", r"widdicombe", r"Grad-CAM on BNNs .*blank"),
    "W&J: Grad-CAM highlights other regions (background) on BNNs": (
        "03_gradcam", r"widdicombe", r"Grad-CAM on BNNs highlights"),
    "W&J: no ReLU + inversion helps": (
        "03_gradcam", r"widdicombe", r"(removing the ReLU and inverting|no ReLU \+ inversion)"),
    # Adebayo et al. 2018, chapter 04
    "Adebayo: gradient passes model randomization": (
        "04_sanity_checks", r"adebayo", r"^(?!.*guided)(?!.*grad-?cam).*\bgradient.*\bpass"),
    "Adebayo: Grad-CAM passes model randomization": (
        "04_sanity_checks", r"adebayo", r"^(?!.*guided).*grad-?cam.*\bpass"),
    "Adebayo: guided backprop fails model randomization": (
        "04_sanity_checks", r"adebayo", r"(guided back-?prop|\bGBP\b).*\bfail"),
    # Nie et al. 2018, chapter 05
    "Nie: GBP recovers the input in random convnets": (
        "05_gbp_untrained", r"nie", r"GBP of a random convnet recovers the input"),
    "Nie: plain gradient of a random convnet is noise": (
        "05_gbp_untrained", r"nie", r"gradient of a random convnet is noise"),
    "Nie: FC nets need a huge number of hidden units": (
        "05_gbp_untrained", r"nie", r"fully connected nets need a huge"),
    "Nie: more filters give cleaner GBP maps": (
        "05_gbp_untrained", r"nie", r"more filters give cleaner"),
    "Nie: GBP is class-invariant": ("05_gbp_untrained", r"nie", r"GBP is class-invariant"),
    # the method comparison (IG, DeepLIFT, Grad-CAM), chapter 06
    "DeepLIFT and IG give similar attributions": (
        "06_beyond_gradients", r"ancona", r"DeepLIFT .*IG give similar attributions"),
    "DeepLIFT is cheaper than IG": ("06_beyond_gradients", r"shrikumar|ancona",
                                    r"DeepLIFT is cheaper than IG"),
    "IG satisfies completeness": ("06_beyond_gradients", r"sundararajan",
                                  r"IG satisfies completeness"),
    "Grad-CAM is class-discriminative": ("06_beyond_gradients", r"selvaraju",
                                         r"Grad-CAM is class-discriminative"),
    "Grad-CAM is coarse": ("06_beyond_gradients", r"selvaraju", r"Grad-CAM is coarse"),
    "DeepLIFT beats gradients on BNNs": (
        "06_beyond_gradients", r"this study", r"DeepLIFT is more faithful than the gradient on BNNs"),
}


def missing_claims(results_dir: Path = claims.RESULTS_DIR) -> list[str]:
    """Keys of :data:`REQUIRED_CLAIMS` that no saved claim of the right chapter matches."""
    import re

    saved = claims.load_all(results_dir)
    missing = []
    for key, (chapter, source, claim) in REQUIRED_CLAIMS.items():
        if not any(c["chapter"] == chapter and re.search(source, c["source"], re.I)
                   and re.search(claim, c["claim"], re.I) for c in saved):
            missing.append(key)
    return missing
