"""The claims ledger: every chapter's claims and verdicts in one table and figure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..results import RESULTS_DIR
from ..stats import holm
from ..verdicts import (
    CLAIM_VERDICTS,
    PRECONDITION_ABSENT,
    REGISTRY_PATH,
    VERDICT_COLORS,
    load_all,
    precondition_text,
    registry,
)

# where each chapter lives in the book, for links from the ledger
CHAPTER_DOCS = {
    "01_gradient": "01_gradient",
    "02_smoothgrad": "02_smoothgrad",
    "03_gradcam": "03_gradcam",
    "04_sanity_checks": "04_sanity_checks",
    "05_gbp_untrained": "05_gbp_untrained",
    "06_beyond_gradients": "06_beyond_gradients",
}


def ledger(results_dir: Path = RESULTS_DIR) -> pd.DataFrame:
    """Every claim saved by a chapter, with a MyST link to the section that measured it; a
    claim whose precondition is absent says so, with the rule's verdict, in its threshold."""
    rows = []
    for c in load_all(results_dir):
        absent = precondition_text(c.get("precondition"))
        threshold = c["threshold"] + (f"; {absent}" if absent else "")
        rows.append({
            "claim": c["claim"], "source": c["source"], "measure": c["measure"],
            "value": f"{c['value']:.3f}", "95% CI": f"[{c['low']:.3f}, {c['high']:.3f}]",
            "threshold": threshold, "verdict": c["verdict"],
            "section": c["section"], "chapter": c["chapter"],
        })
    return pd.DataFrame(rows)


#: Short chapter names for the ledger's figure and links (else derived from the file name).
CHAPTER_SHORT = {
    "01_gradient": "1 gradient", "02_smoothgrad": "2 SmoothGrad", "03_gradcam": "3 Grad-CAM",
    "04_sanity_checks": "4 sanity checks", "05_gbp_untrained": "5 GBP untrained",
    "06_beyond_gradients": "6 IG, DeepLIFT", "08_audit": "8 audit",
}


# Characters that Markdown (MyST with dollarmath) could read as syntax inside a table cell:
# "|" ends the cell, the others start emphasis, code, links, HTML, entities or math.
_MD_SPECIAL = "\\|*_`<>[]$~&"


def md_escape(text) -> str:
    """``text`` as literal Markdown table-cell content: every character Markdown could read
    as syntax (:data:`_MD_SPECIAL`, the pipe above all) backslash-escaped, newlines as spaces.
    """
    out = str(text).replace("\r", " ").replace("\n", " ")
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in out)


def chapter_short(chapter: str) -> str:
    """Short display name of a chapter id (``"01_gradient"`` -> ``"1 gradient"``)."""
    if chapter in CHAPTER_SHORT:
        return CHAPTER_SHORT[chapter]
    num, _, rest = chapter.partition("_")
    return f"{int(num)} {rest.replace('_', ' ')}" if num.isdigit() else chapter.replace("_", " ")


def _chapter_link_text(chapter: str) -> str:
    """``"ch. 1"`` for ``"01_gradient"``; the chapter's short name if it is not numbered."""
    num = chapter.partition("_")[0]
    text = f"ch. {int(num)}" if num.isdigit() else chapter_short(chapter)
    return "".join(ch for ch in text if ch not in "<>`")


def verdict_badge(verdict: str) -> str:
    """The verdict as a coloured inline-HTML badge; the text itself sits between the tags, so
    an output that drops raw HTML (LaTeX) still shows the word."""
    color = VERDICT_COLORS.get(verdict, "#57606a")
    wrap = "normal" if verdict == PRECONDITION_ABSENT else "nowrap"  # the one long label
    style = (f"background:{color};color:#fff;padding:0.1em 0.4em;border-radius:0.35em;"
             f"white-space:{wrap};font-size:0.85em;font-weight:600")
    return f'<span class="ledger-verdict" style="{style}">{md_escape(verdict)}</span>'


def ledger_markdown(results_dir: Path = RESULTS_DIR) -> str:
    """The ledger as a Markdown table, what matters first: the verdict (a coloured badge); the
    claim, with what we measured under it; our value and 95% CI, with the threshold stated
    before the result under it; the source, with a link to the measuring section (its text is
    the chapter). Four columns, so the table fits the book's article at 1280 px.

    Every text cell goes through :func:`md_escape`, so a ``|`` in a claim stays a ``|``.
    """
    df = ledger(results_dir)
    if df.empty:
        return "_No chapter has saved claims yet._"
    columns = ["verdict", "claim (what we measured)", "value [95% CI] (threshold)", "source"]
    columns = [md_escape(c) for c in columns]
    # the claim is the longest text: give its column the room (a table has no widths in Markdown)
    columns[1] = f'<span style="display:inline-block;min-width:13em">{columns[1]}</span>'
    header = "| " + " | ".join(columns) + " |\n"
    header += "|---" * len(columns) + "|\n"
    lines = []
    for _, r in df.iterrows():
        cells = [
            verdict_badge(r["verdict"]),
            f"{md_escape(r['claim'])}<br><small>{md_escape(r['measure'])}</small>",
            f'{md_escape(r["value"])} <span style="white-space:nowrap">'
            f'{md_escape(r["95% CI"])}</span><br><small>{md_escape(r["threshold"])}</small>',
            f"{md_escape(r['source'])}, {{ref}}`{_chapter_link_text(r['chapter'])} "
            f"<{r['section']}>`",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return header + "\n".join(lines)


def primary_claims(results_dir: Path = RESULTS_DIR,
                   registry_path: Path = REGISTRY_PATH) -> pd.DataFrame:
    """The registry's primary family (the paper's claims 1-6), one row each: its verdict, the
    accuracy-matched verdict beside it, the unadjusted bootstrap p-value against the threshold
    and the Holm-adjusted one (alpha 0.05 over the family).

    A primary test whose saved claim carries no p-value (its chapter has not been re-run on
    the v2 protocol yet) enters the family with p = 1, as the registry prescribes."""
    entries = [e for e in registry(registry_path).values() if e["family"] == "primary"]
    saved = load_all(results_dir)
    rows = []
    for e in sorted(entries, key=lambda e: e["paper_claim"]):
        hit = [c for c in saved if c.get("claim_id") == e["id"]] or [
            c for c in saved if (c["chapter"], c["claim"]) == (e["chapter"], e["current_claim"])]
        c = hit[0] if hit else {}
        matched = c.get("matched") or {}
        rows.append({
            "paper claim": e["paper_claim"], "claim id": e["id"],
            "verdict": c.get("verdict", "not run"),
            "accuracy-matched": matched.get("verdict", "missing" if matched else "not run"),
            "p": c.get("p_value"),
            "protocol": "v2 (registered)" if "p_value" in c else "v1 (p = 1 in the family)",
        })
    table = pd.DataFrame(rows)
    table["p (Holm)"] = holm(table["p"].fillna(1.0).to_numpy())
    return table


def verdict_counts(results_dir: Path = RESULTS_DIR) -> pd.DataFrame:
    """Claims per chapter (rows, book order) and verdict (columns,
    :data:`~bnn_saliency.verdicts.CLAIM_VERDICTS`)."""
    df = ledger(results_dir)
    if df.empty:
        return pd.DataFrame(columns=list(CLAIM_VERDICTS), dtype=int)
    counts = pd.crosstab(df["chapter"], df["verdict"])
    counts = counts.reindex(columns=list(CLAIM_VERDICTS), fill_value=0)
    order = list(dict.fromkeys(df["chapter"]))  # load_all's order: chapter-file order
    counts = counts.reindex(order).astype(int)
    counts.index.name, counts.columns.name = "chapter", "verdict"
    return counts


def verdict_figure(counts: pd.DataFrame | None = None, *, ax=None):
    """Stacked horizontal bars of :func:`verdict_counts`: one bar per chapter (first chapter
    on top), green reproduced, amber partly, red not reproduced, grey precondition absent,
    each segment labelled with its count. Returns the figure."""
    import matplotlib.pyplot as plt

    counts = verdict_counts() if counts is None else counts
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 0.45 * max(len(counts), 1) + 1.1))
    labels = [chapter_short(c) for c in counts.index]
    y = list(range(len(counts)))
    left = [0] * len(counts)
    for verdict in CLAIM_VERDICTS:
        widths = counts[verdict].tolist() if verdict in counts else [0] * len(counts)
        bars = ax.barh(y, widths, left=left, color=VERDICT_COLORS[verdict], label=verdict,
                       edgecolor="white", height=0.7)
        ax.bar_label(bars, labels=[str(w) if w else "" for w in widths], label_type="center",
                     color="white", fontsize=8, fontweight="bold")
        left = [a + b for a, b in zip(left, widths)]
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("claims")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(ncol=len(CLAIM_VERDICTS), loc="lower center", bbox_to_anchor=(0.5, 1.0),
              frameon=False, fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


# Claims the study must test, as (chapter, source regex, claim regex), matched
# case-insensitively with re.search against the saved claims of that chapter. The ledger
# page lists the ones no chapter has saved yet; tests/test_beyond.py fails on any of them.
REQUIRED_CLAIMS: dict[str, tuple[str, str, str]] = {
    # the core paper (Widdicombe & Julier 2021), chapters 01-03
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


def missing_claims(results_dir: Path = RESULTS_DIR) -> list[str]:
    """Keys of :data:`REQUIRED_CLAIMS` that no saved claim of the right chapter matches."""
    import re

    saved = load_all(results_dir)
    missing = []
    for key, (chapter, source, claim) in REQUIRED_CLAIMS.items():
        if not any(c["chapter"] == chapter and re.search(source, c["source"], re.I)
                   and re.search(claim, c["claim"], re.I) for c in saved):
            missing.append(key)
    return missing
