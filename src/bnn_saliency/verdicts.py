"""Verdicts: rules fixed before the results they judge, and the claims they decide.

A :class:`Rule` (``Rule.above(0.1)``, ``Rule.below(...)``, ``Rule.inside(lo, hi)``,
``Rule.within(bound)``, ``Rule.goal(...)``) decides a verdict from an interval and renders its
own text, so the threshold stated in a claims table is always the rule applied.
:meth:`Claim.judged` builds a chapter's claim from a measurement and its rule; :func:`table`
shows the claims and :meth:`bnn_saliency.results.Record.claims` records them in
``book/results/<chapter>.json``, which the claims ledger reads.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from .results import RESULTS_DIR


VERDICTS = ("reproduced", "partly", "not reproduced")
GOAL_VERDICTS = ("met", "borderline", "not met")

#: Verdict colours of every claims table, badge and figure (green, amber, red).
VERDICT_COLORS = {"reproduced": "#1a7f37", "partly": "#b35900", "not reproduced": "#cf222e",
                  "precondition absent": "#57606a"}
#: The verdict of a claim whose registered precondition does not hold (a repair of an anomaly
#: that does not occur); the rule's own verdict is kept beside it.
PRECONDITION_ABSENT = "precondition absent"
#: Every verdict a claim can carry: a rule's three, and :data:`PRECONDITION_ABSENT`.
CLAIM_VERDICTS = VERDICTS + (PRECONDITION_ABSENT,)


def _fmt(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Rule:
    """A verdict rule fixed before the result it judges: it decides the verdict from an
    interval ``(low, high)`` and renders its own text, so the two cannot drift apart.

    Build one with :meth:`above`, :meth:`below`, :meth:`inside`, :meth:`within` or
    :meth:`goal`; ``rule.verdict(low, high)`` decides, ``rule.text`` states the rule.
    """

    kind: str  # "above", "below", "inside", "within"
    lo: float
    hi: float | None = None
    partial: float | None = None
    unit: str = ""
    labels: tuple[str, str, str] = VERDICTS  # (success, in between, failure)
    name: str = ""  # what the threshold is, e.g. "seed bound" (shown before its value)
    inclusive: bool = False  # above/below: an interval end at the threshold counts (goals)

    def __post_init__(self):
        if self.kind not in ("above", "below", "inside", "within"):
            raise ValueError(f"unknown rule kind {self.kind!r}")
        if self.kind == "inside" and not self.lo < self.hi:
            raise ValueError(f"need lo < hi, got [{self.lo}, {self.hi}]")
        if self.kind == "within" and not self.lo > 0:
            raise ValueError(f"bound must be positive, got {self.lo!r}")
        if self.inclusive and (self.kind not in ("above", "below") or self.partial is not None):
            raise ValueError("inclusive applies to above/below rules without partial")

    @classmethod
    def above(cls, threshold: float, partial: float | None = None, unit: str = "",
              name: str = "") -> Rule:
        """Success if the whole interval is above ``threshold``; in between if only its
        upper end is (or, with ``partial``, if its lower end clears ``partial``)."""
        return cls("above", float(threshold), partial=partial, unit=unit, name=name)

    @classmethod
    def below(cls, threshold: float, partial: float | None = None, unit: str = "",
              name: str = "") -> Rule:
        """Mirror of :meth:`above`: success if the whole interval is below ``threshold``."""
        return cls("below", float(threshold), partial=partial, unit=unit, name=name)

    @classmethod
    def inside(cls, lo: float, hi: float, unit: str = "") -> Rule:
        """Success if the whole interval is inside ``(lo, hi)``, failure if it lies wholly
        outside. For a discrete grid pass bounds half-way to the neighbouring grid values."""
        return cls("inside", lo, hi, unit=unit)

    @classmethod
    def within(cls, bound: float, unit: str = "") -> Rule:
        """Equivalence: success if the interval of a difference lies inside ``(-bound,
        bound)``, failure if it lies entirely outside."""
        return cls("within", bound, unit=unit)

    @classmethod
    def goal(cls, goal: float, direction: str, unit: str = "") -> Rule:
        """A performance goal: ``met`` / ``borderline`` / ``not met`` (larger is better for
        ``direction="above"``). The goal itself counts as met."""
        if direction not in ("above", "below"):
            raise ValueError(f"direction must be 'above' or 'below', got {direction!r}")
        return cls(direction, goal, unit=unit, labels=GOAL_VERDICTS, inclusive=True)

    def verdict(self, low: float, high: float) -> str:
        if not low <= high:
            raise ValueError(f"low ({low}) must not exceed high ({high})")
        ok, mid, bad = self.labels
        if self.kind == "within":
            if -self.lo < low and high < self.lo:
                return ok
            return bad if (low >= self.lo or high <= -self.lo) else mid
        if self.kind == "inside":
            sides = {Rule.above(self.lo).verdict(low, high), Rule.below(self.hi).verdict(low, high)}
            if sides == {"reproduced"}:
                return ok
            return bad if "not reproduced" in sides else mid
        sign = 1.0 if self.kind == "above" else -1.0
        lo_, hi_ = (low, high) if sign > 0 else (-high, -low)
        t = sign * self.lo
        part = None if self.partial is None else sign * self.partial
        if self.inclusive:  # reaching the threshold counts
            return ok if lo_ >= t else (bad if hi_ < t else mid)
        if lo_ > t:
            return ok
        if (part is not None and lo_ > part) or (part is None and hi_ > t):
            return mid
        return bad

    @property
    def text(self) -> str:
        """The rule in words, e.g. ``"reproduced if CI low > 0; not if CI high <= 0"``."""
        ok, mid, bad = self.labels
        u = self.unit
        if self.kind == "within":
            b = _fmt(self.lo)
            return (f"{ok} if CI inside (-{b}, {b}){u}; {bad} if CI entirely outside; "
                    f"{mid} otherwise")
        if self.kind == "inside":
            lo, hi = _fmt(self.lo), _fmt(self.hi)
            return (f"{ok} if CI inside ({lo}, {hi}){u}; {bad} if CI entirely outside; "
                    f"{mid} otherwise")
        t = (f"{self.name} " if self.name else "") + _fmt(self.lo) + u
        gt, le = (">", "<=") if self.kind == "above" else ("<", ">=")
        end, other = ("low", "high") if self.kind == "above" else ("high", "low")
        if self.inclusive:
            worse = "<" if self.kind == "above" else ">"
            return f"{ok} if CI {end} {gt}= {t}; {bad} if CI {other} {worse} {t}; {mid} otherwise"
        if self.partial is not None:
            return (f"{ok} if CI {end} {gt} {t}; {mid} if CI {end} {gt} {_fmt(self.partial)}{u}; "
                    f"{bad} otherwise")
        return f"{ok} if CI {end} {gt} {t}; {bad} if CI {other} {le} {t}; {mid} otherwise"


def capped(verdict: str, at: str) -> str:
    """``verdict``, but no better than ``at`` (e.g. "reproduced" capped at "partly")."""
    order = VERDICTS if verdict in VERDICTS else GOAL_VERDICTS
    return order[max(order.index(verdict), order.index(at))]












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
        claim_id: its id in the claims registry (``book/claims.yaml``), for registered claims.
        interval: what the interval resamples (``"seeds>images"``, ``"images"``).
        p_value: two-sided bootstrap p-value against the threshold (primary claims; the
            ledger Holm-adjusts the primary family).
        matched: the same contrast with the accuracy-matched FP controls in place of the FP
            twins, judged by the same rule: ``{"value", "low", "high", "verdict"}``, or
            ``{"missing": why}`` when the shipped models cannot form it.
        precondition: for a claim with a registered precondition, ``{"claim", "holds",
            "rule_verdict"}``: the claim id it rests on, whether that claim's verdict meets it,
            and the rule's verdict (the claim's verdict is :data:`PRECONDITION_ABSENT` when it
            does not hold).

    The last five are left out of :meth:`to_dict` while unset.
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
    claim_id: str = ""
    interval: str = ""
    p_value: float | None = None
    matched: dict | None = None
    precondition: dict | None = None

    def to_dict(self) -> dict:
        """The claim as saved in ``book/results`` (unset registry fields left out)."""
        out = {k: getattr(self, k) for k in ("claim", "source", "measure", "value", "low",
                                             "high", "threshold", "verdict", "section")}
        for key, unset in (("claim_id", ""), ("interval", ""), ("p_value", None),
                           ("matched", None), ("precondition", None)):
            if getattr(self, key) != unset:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def judged(cls, claim: str, source: str, measure: str, ci, rule: Rule, section: str,
               cap: str | None = None, cap_reason: str = "") -> Claim:
        """The claim with its verdict decided by ``rule`` on ``ci = (value, low, high)`` and its
        threshold text rendered by the same rule. ``cap`` (e.g. ``"partly"``) limits the
        verdict when the design cannot support more (``cap_reason`` says why, in the text)."""
        if len(ci) != 3:
            raise ValueError(f"ci must be (value, low, high), got {ci!r}")
        value, low, high = (float(c) for c in ci)
        verdict, text = rule.verdict(low, high), rule.text
        if cap is not None:
            verdict = capped(verdict, cap)
            text += f"; at most {cap} ({cap_reason})" if cap_reason else f"; at most {cap}"
        return cls(claim, source, measure, value, low, high, text, verdict, section)

    def __post_init__(self):
        if self.verdict not in CLAIM_VERDICTS:
            raise ValueError(f"verdict must be one of {CLAIM_VERDICTS}, got {self.verdict!r}")
        for name in ("value", "low", "high"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} of claim {self.claim!r} is not finite")




#: The pre-registered claims registry: every claim's rule, fixed before its result.
REGISTRY_PATH = RESULTS_DIR.parent / "claims.yaml"


def rule_from_spec(spec: dict, threshold: float | None = None) -> Rule:
    """The :class:`Rule` a registry entry's ``rule`` mapping describes (kind, threshold, hi,
    partial, unit, name). ``threshold`` replaces a threshold the registry derives from data
    (a string such as ``seed_bound``)."""
    value = spec["threshold"] if threshold is None else threshold
    if isinstance(value, str):
        raise ValueError(f"the threshold {value!r} is derived from data: pass threshold=")
    unit = spec.get("unit", "")
    unit = f" {unit}" if unit and not unit.startswith(" ") else unit
    kind = spec["kind"]
    if kind == "inside":
        return Rule.inside(value, spec["hi"], unit=unit)
    if kind == "within":
        return Rule.within(value, unit=unit)
    return getattr(Rule, kind)(value, partial=spec.get("partial"), unit=unit,
                               name=spec.get("name", ""))


def registry(path: Path = REGISTRY_PATH) -> dict[str, dict]:
    """The registry's entries by claim id."""
    import yaml

    return {e["id"]: e for e in yaml.safe_load(Path(path).read_text())["claims"]}


def _needs_matched(entry: dict) -> bool:
    return any(c.get("name") == "accuracy_matched" and c.get("available", True)
               for c in entry.get("contrasts", []))


def registered(claim_id: str, measure: str, ci, threshold: float | None = None,
               path: Path = REGISTRY_PATH, *, interval: str = "", replicates=None,
               matched=None, matched_threshold: float | None = None,
               precondition: Claim | None = None) -> Claim:
    """The registered claim ``claim_id`` judged on ``ci = (value, low, high)``: its text,
    source, section and rule come from the registry, so the chapter cannot apply another.

    Args:
        interval: what ``ci`` resamples (``"seeds>images"``, ``"images"``), saved with it.
        replicates: the bootstrap replicates behind ``ci``; required for a primary claim,
            whose p-value against the threshold they give (:func:`stats.replicate_pvalue`).
        matched: for an entry with an ``accuracy_matched`` contrast, required: the contrast's
            ``(value, low, high)`` (judged by the same rule) or, when the shipped models cannot
            form it, a string saying why.
        matched_threshold: the matched contrast's own value of a threshold the registry
            derives from data (e.g. a seed bound from the control pairs); default ``threshold``.
        precondition: for an entry with a ``precondition``, required: the judged claim it
            names. Where that claim's verdict is not in ``holds_if``, the verdict becomes
            :data:`PRECONDITION_ABSENT` (the matched contrast's, where that claim's matched
            verdict is not); the rule's verdicts are kept.
    """
    from .stats import replicate_pvalue

    entries = registry(path)
    if claim_id not in entries:
        raise KeyError(f"{claim_id!r} is not in {path}: register the claim (and its rule) "
                       "before judging it")
    e = entries[claim_id]
    rule = rule_from_spec(e["rule"], threshold)
    claim = Claim.judged(e["current_claim"], e["source"], measure, ci, rule, e["section"])
    p_value = None
    if e.get("family") == "primary":
        if replicates is None:
            raise ValueError(f"{claim_id} is a primary claim: pass its bootstrap replicates "
                             "so that its p-value can enter the Holm family")
        if rule.kind not in ("above", "below"):
            raise ValueError(f"{claim_id}: a primary rule must be above/below, not {rule.kind}")
        p_value = replicate_pvalue(replicates, rule.lo)
    matched_record = None
    if _needs_matched(e):
        if matched is None:
            raise ValueError(f"{claim_id} registers an accuracy_matched contrast: pass its "
                             "(value, low, high), or a string saying why it cannot be formed")
        if isinstance(matched, str):
            matched_record = {"missing": matched}
        else:
            value, low, high = (float(c) for c in matched)
            matched_rule = (rule if matched_threshold is None
                            else rule_from_spec(e["rule"], matched_threshold))
            matched_record = {"value": value, "low": low, "high": high,
                              "verdict": matched_rule.verdict(low, high)}
            if matched_threshold is not None:
                matched_record["threshold"] = float(matched_threshold)
    elif matched is not None or matched_threshold is not None:
        raise ValueError(f"{claim_id} registers no accuracy_matched contrast")
    verdict, pre_record = claim.verdict, None
    if "precondition" in e:
        spec = e["precondition"]
        if precondition is None or precondition.claim_id != spec["claim"]:
            raise ValueError(f"{claim_id} registers the precondition {spec['claim']}: pass that "
                             "judged claim as precondition=")
        holds = precondition.verdict in spec["holds_if"]
        pre_record = {"claim": spec["claim"], "holds": holds, "rule_verdict": claim.verdict}
        verdict = claim.verdict if holds else PRECONDITION_ABSENT
        if matched_record and "verdict" in matched_record:
            pre_matched = (precondition.matched or {}).get("verdict")
            if pre_matched not in spec["holds_if"]:
                matched_record = {**matched_record, "rule_verdict": matched_record["verdict"],
                                  "verdict": PRECONDITION_ABSENT}
    elif precondition is not None:
        raise ValueError(f"{claim_id} registers no precondition")
    return replace(claim, claim_id=claim_id, interval=interval, p_value=p_value,
                   matched=matched_record, verdict=verdict, precondition=pre_record)


def format_ci(ci, digits: int = 3, scale: float = 1.0, suffix: str = "") -> str:
    """``"value [low, high]"`` of a (value, low, high) triple for prose, e.g. ``0.123 [0.1, 0.2]``.

    ``scale`` multiplies all three (100 for percentages) and ``suffix`` follows each number.
    """
    if len(ci) != 3:
        raise ValueError(f"expected (value, low, high), got {ci!r}")
    v, lo, hi = (scale * float(c) for c in ci)
    return f"{v:.{digits}f}{suffix} [{lo:.{digits}f}{suffix}, {hi:.{digits}f}{suffix}]"


def matched_text(matched: dict | None) -> str:
    """The accuracy-matched contrast of a claim in one cell: ``"partly: 0.120 [0.110, 0.130]"``,
    ``"missing: <why>"``, or ``""`` where the claim has none."""
    if not matched:
        return ""
    if "missing" in matched:
        return f"missing: {matched['missing']}"
    return (f"{matched['verdict']}: {matched['value']:.3f} "
            f"[{matched['low']:.3f}, {matched['high']:.3f}]")


def table(claims: list[Claim]):
    """The claims for display at the end of a chapter: the verdict first (coloured), the
    measurement as one ``value [95% CI]`` column, the rule last, no row numbers.

    Returns a pandas ``Styler``; its ``.data`` is the plain DataFrame."""
    rows = [{"verdict": c.verdict, "claim": c.claim, "source": c.source, "measure": c.measure,
             "value [95% CI]": f"{c.value:.3f} [{c.low:.3f}, {c.high:.3f}]",
             "threshold": c.threshold} for c in claims]
    for row, c in zip(rows, claims):  # registered claims: in the rule's cell, no extra columns
        extra = [precondition_text(c.precondition),
                 f"accuracy-matched: {matched_text(c.matched)}" if c.matched else "",
                 f"interval over {c.interval}" if c.interval else "",
                 f"p = {c.p_value:.3g} (unadjusted)" if c.p_value is not None else ""]
        row["threshold"] = "; ".join([row["threshold"]] + [e for e in extra if e])
    colour = (lambda v: f"background-color: {VERDICT_COLORS[v]}; color: white; "
              "font-weight: bold" if v in VERDICT_COLORS else "")
    return (pd.DataFrame(rows).style.hide(axis="index")
            .map(colour, subset=["verdict"]))


def verdict_lines(claims: list[Claim]) -> str:
    """One line per claim, ``verdict: claim``: the part of a claims table that is the same on
    every machine (nbval compares it; the numbers are checked by :mod:`bnn_saliency.results`)."""
    def matched(c):
        if not c.matched:
            return ""
        return f" (accuracy-matched: {c.matched.get('verdict', 'missing')})"
    return "\n".join(f"{c.verdict}{rule_verdict(c)}{matched(c)}: {c.claim}" for c in claims)


def precondition_text(precondition: dict | None, path: Path = REGISTRY_PATH) -> str:
    """A failed precondition for a table cell, in words that wrap: ``"precondition absent
    (claim 5 of the paper not reproduced); the rule's verdict: not reproduced"``; ``""`` where
    the claim has no precondition or it holds."""
    if not precondition or precondition["holds"]:
        return ""
    entry = registry(path).get(precondition["claim"], {})
    which = (f"claim {entry['paper_claim']} of the paper" if "paper_claim" in entry
             else "the claim it rests on")
    return (f"precondition absent ({which} not reproduced); the rule's verdict: "
            f"{precondition['rule_verdict']}")


def rule_verdict(c: Claim) -> str:
    """``" (rule: <verdict>)"`` for a claim whose precondition does not hold, else ``""``."""
    if c.precondition and not c.precondition["holds"]:
        return f" (rule: {c.precondition['rule_verdict']})"
    return ""


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
