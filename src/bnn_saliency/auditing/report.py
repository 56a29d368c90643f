"""The audit's report card: a one-screen summary (which methods to trust on this model, with
which settings, and which not), then every check with its number, 95% interval, rule and
verdict. ``to_json`` holds every number; ``to_html`` is one self-contained file."""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .battery import CheckResult
from .figures import VERDICT_COLORS, check_figure


def _number(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.3g}"


@dataclass
class AuditReport:
    """What :func:`bnn_saliency.auditing.audit` found on one model."""

    model_name: str
    n_images: int
    explained: str  # "true labels" or "predicted classes"
    notes: list[str]
    checks: list[CheckResult]
    settings: dict = field(default_factory=dict)

    @property
    def verdicts(self) -> pd.DataFrame:
        """One row per check: verdict first, then the question, the measurement and its
        interval, the rule, and what it means."""
        rows = [{"verdict": c.verdict, "check": c.check, "question": c.question,
                 "value [95% CI]": f"{_number(c.value)} [{_number(c.low)}, {_number(c.high)}]",
                 "measure": c.measure, "rule": c.rule.text if c.rule else "",
                 "advice": c.advice} for c in self.checks]
        return pd.DataFrame(rows)

    def check(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.check == name:
                return c
        raise KeyError(f"no check {name!r}; checks: {[c.check for c in self.checks]}")

    def summary(self) -> dict[str, list[str]]:
        """``{"trust": [...], "caution": [...], "do not trust": [...]}``: one line per check,
        in words."""
        groups = {"trust": [], "caution": [], "do not trust": []}
        where = {"pass": "trust", "inconclusive": "caution", "fail": "do not trust",
                 "info": "caution"}
        for c in self.checks:
            groups[where[c.verdict]].append(c.advice)
        return groups

    def to_dict(self) -> dict:
        return {"model": self.model_name, "images": self.n_images,
                "explained": self.explained, "notes": self.notes, "settings": self.settings,
                "summary": self.summary(), "checks": [c.to_dict() for c in self.checks]}

    def to_json(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)

        def plain(o):
            if isinstance(o, np.integer):
                return int(o)
            if isinstance(o, np.bool_):
                return bool(o)
            raise TypeError(f"cannot write {type(o).__name__} to JSON")

        text = json.dumps(_nan_to_none(self.to_dict()), indent=1, default=plain,
                          allow_nan=False)
        path.write_text(text + "\n")
        return path

    def to_html(self, path) -> Path:
        """One self-contained HTML file (figures embedded as PNG)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        esc = html.escape
        parts = [f"<h1>Saliency audit: {esc(self.model_name)}</h1>",
                 f"<p>{self.n_images} images; explained class: {esc(self.explained)}.</p>"]
        parts += [f"<p class='note'>{esc(n)}</p>" for n in self.notes]
        parts.append("<h2>Summary</h2>")
        for group, lines in self.summary().items():
            if lines:
                parts.append(f"<h3>{esc(group)}</h3><ul>"
                             + "".join(f"<li>{esc(x)}</li>" for x in lines) + "</ul>")
        parts.append("<h2>Checks</h2>")
        for c in self.checks:
            color = VERDICT_COLORS[c.verdict]
            parts.append(
                f"<h3>{esc(c.question)}</h3><p><span class='badge' style='background:{color}'>"
                f"{esc(c.verdict)}</span> {esc(c.measure)}: <b>{_number(c.value)}</b> "
                f"[{_number(c.low)}, {_number(c.high)}] (95% bootstrap interval over images)"
                + (f"; rule: {esc(c.rule.text)}" if c.rule else "") + f"</p><p>{esc(c.advice)}</p>")
            if c.table is not None:
                parts.append(c.table.to_html(classes="table", border=0))
            parts.append(_embedded_png(check_figure(c), c.check))
        style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
                 ".badge{color:#fff;padding:0.1em 0.5em;border-radius:0.4em;font-weight:bold}"
                 "table{border-collapse:collapse}td,th{padding:0.2em 0.6em;"
                 "border-bottom:1px solid #ddd}.note{color:#57606a}")
        path.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'>"
                        f"<title>Saliency audit: {esc(self.model_name)}</title>"
                        f"<style>{style}</style></head><body>" + "".join(parts)
                        + "</body></html>\n")
        return path


def _embedded_png(fig, alt: str) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def _nan_to_none(obj):
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj
