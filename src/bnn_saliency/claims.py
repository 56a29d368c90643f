"""Claims: each chapter ends with the claims it tests, our measurement, and a computed verdict.

A chapter states a threshold before computing a result, builds :class:`Claim` rows with
:func:`judge`, shows them with :func:`table` and records them with
:meth:`bnn_saliency.results.Record.claims`, which saves (or checks) them in
``book/results/<chapter>.json``; the claims ledger page reads those files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .results import RESULTS_DIR

VERDICTS = ("reproduced", "partly", "not reproduced")


@dataclass(frozen=True)
class Claim:
    """One tested claim.

    Attributes:
        claim: the claim, in the source's words or close to them.
        source: who claims it (e.g. "Widdicombe & Julier 2021").
        measure: what we measured (one line).
        value: point estimate.
        low, high: 95% interval (bootstrap unless stated).
        threshold: the rule stated before the result, e.g. "CI low > 0.5".
        verdict: one of :data:`VERDICTS`.
        section: label of the section that measured it (for links), e.g. "sec-gradient".
    """

    claim: str
    source: str
    measure: str
    value: float
    low: float
    high: float
    threshold: str
    verdict: str
    section: str

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        for name in ("value", "low", "high"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} of claim {self.claim!r} is not finite")


def judge(low: float, high: float, threshold: float, direction: str = "above",
          partial: float | None = None) -> str:
    """Verdict from a confidence interval against a threshold stated in advance.

    ``direction="above"``: reproduced if the whole interval is above ``threshold``;
    "partly" if only the interval's upper end is (or, when ``partial`` is given, if the
    interval's low end clears ``partial``); otherwise not reproduced. ``"below"`` mirrors it.
    """
    if direction not in ("above", "below"):
        raise ValueError("direction must be 'above' or 'below'")
    if direction == "below":
        flip = judge(-high, -low, -threshold, "above", None if partial is None else -partial)
        return flip
    if low > threshold:
        return "reproduced"
    if (partial is not None and low > partial) or (partial is None and high > threshold):
        return "partly"
    return "not reproduced"



def judge_inside(low: float, high: float, lo: float, hi: float) -> str:
    """Verdict for "the value lies inside [lo, hi]" from a confidence interval (low, high).

    Two one-sided :func:`judge` calls: reproduced if the whole interval is inside
    ``(lo, hi)``; not reproduced if it lies entirely outside (wholly below ``lo`` or wholly
    above ``hi``); partly otherwise. For a discrete grid pass bounds half-way to the
    neighbouring grid values.
    """
    if not lo < hi:
        raise ValueError(f"need lo < hi, got [{lo}, {hi}]")
    verdicts = {judge(low, high, lo, "above"), judge(low, high, hi, "below")}
    if verdicts == {"reproduced"}:
        return "reproduced"
    return "not reproduced" if "not reproduced" in verdicts else "partly"


def format_ci(ci, digits: int = 3, scale: float = 1.0, suffix: str = "") -> str:
    """``"value [low, high]"`` of a (value, low, high) triple for prose, e.g. ``0.123 [0.1, 0.2]``.

    ``scale`` multiplies all three (100 for percentages) and ``suffix`` follows each number.
    """
    if len(ci) != 3:
        raise ValueError(f"expected (value, low, high), got {ci!r}")
    v, lo, hi = (scale * float(c) for c in ci)
    return f"{v:.{digits}f}{suffix} [{lo:.{digits}f}{suffix}, {hi:.{digits}f}{suffix}]"

def table(claims: list[Claim]):
    """The claims as a pandas DataFrame for display at the end of a chapter."""
    import pandas as pd

    rows = [{"claim": c.claim, "source": c.source, "measure": c.measure,
             "value": f"{c.value:.3f}", "95% CI": f"[{c.low:.3f}, {c.high:.3f}]",
             "threshold": c.threshold, "verdict": c.verdict} for c in claims]
    return pd.DataFrame(rows)


def verdict_lines(claims: list[Claim]) -> str:
    """One line per claim, ``verdict: claim``: the part of a claims table that is the same on
    every machine (nbval compares it; the numbers are checked by :mod:`bnn_saliency.results`)."""
    return "\n".join(f"{c.verdict}: {c.claim}" for c in claims)


def save(chapter: str, claims: list[Claim], results_dir: Path = RESULTS_DIR) -> Path:
    """Write a chapter's claims (and nothing else) to ``<results_dir>/<chapter>.json``.
    Chapters use :class:`bnn_saliency.results.Record`, which writes the same format."""
    from .results import Record

    record = Record(chapter, results_dir)
    record.claims(claims)
    record.path.parent.mkdir(parents=True, exist_ok=True)
    record.path.write_text(json.dumps(record.payload(), indent=1) + "\n")
    return record.path


def load_all(results_dir: Path = RESULTS_DIR) -> list[dict]:
    """Every saved claim, with its chapter, in chapter-file order."""
    out = []
    for path in sorted(results_dir.glob("*.json")):
        record = json.loads(path.read_text())
        out.extend({"chapter": record["chapter"], **row} for row in record["claims"])
    return out
