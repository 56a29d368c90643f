"""A rule's text is a complete, literal statement of its decision: interpreting the text alone
gives the verdict the rule returns, for every interval."""

import operator
import re

import numpy as np
import pytest

from bnn_saliency.verdicts import Rule

OPS = {">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le}


def interpret(text: str, low: float, high: float) -> str:
    """Verdict from the rule's words only (first clause that applies wins)."""
    for clause in text.split("; "):
        label, _, cond = clause.partition(" if CI ")
        if clause.endswith(" otherwise"):
            return clause.removesuffix(" otherwise")
        if m := re.fullmatch(r"(low|high) (>=|<=|>|<) (?:[a-z ]+ )?(-?[\d.e+-]+)\D*", cond):
            end = low if m.group(1) == "low" else high
            if OPS[m.group(2)](end, float(m.group(3))):
                return label
        elif m := re.fullmatch(r"inside \((-?[\d.e+-]+), (-?[\d.e+-]+)\)\D*", cond):
            if float(m.group(1)) < low and high < float(m.group(2)):
                return label
        elif cond == "entirely outside":
            lo, hi = (float(x) for x in re.findall(r"inside \((-?[\d.e+-]+), (-?[\d.e+-]+)\)",
                                                     text)[0])
            if high <= lo or low >= hi:
                return label
        else:
            raise AssertionError(f"cannot read clause {clause!r}")
    raise AssertionError(f"no clause of {text!r} applies to [{low}, {high}]")


RULES = [Rule.above(0.0), Rule.above(5.0, unit=" pp"), Rule.below(0.1), Rule.above(0.5, partial=0.2),
         Rule.below(10.0, partial=20.0), Rule.inside(0.015, 0.08), Rule.within(0.05),
         Rule.goal(5.0, "above"), Rule.goal(1.2, "below"), Rule.above(0.0123, name="seed bound")]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.text)
def test_text_decides_like_the_rule(rule):
    rng = np.random.default_rng(0)
    ref = rule.lo if rule.hi is None else rule.hi
    grid = np.r_[rule.lo, ref, -rule.lo, rule.lo + rng.normal(0, 1 + abs(rule.lo), 300)]
    for _ in range(2000):
        low, high = np.sort(rng.choice(grid, 2))
        assert interpret(rule.text, low, high) == rule.verdict(low, high), (rule.text, low, high)


def test_hand_checked_verdicts():
    assert Rule.above(0.0).verdict(0.1, 0.3) == "reproduced"
    assert Rule.above(0.0).verdict(-0.1, 0.3) == "partly"
    assert Rule.above(0.0).verdict(-0.3, 0.0) == "not reproduced"
    assert Rule.below(0.1).verdict(0.0, 0.05) == "reproduced"
    assert Rule.inside(0.015, 0.08).verdict(0.02, 0.1) == "partly"
    assert Rule.inside(0.015, 0.08).verdict(0.09, 0.1) == "not reproduced"
    assert Rule.within(0.05).verdict(-0.01, 0.04) == "reproduced"
    assert Rule.within(0.05).verdict(0.05, 0.2) == "not reproduced"
    assert Rule.goal(5.0, "above").verdict(5.0, 6.0) == "met"
    assert Rule.goal(5.0, "above").verdict(4.0, 6.0) == "borderline"
    assert Rule.goal(1.2, "below").verdict(1.3, 1.5) == "not met"
    assert Rule.within(0.1).verdict(-0.2, 0.2) == "partly"


def test_bad_rules_are_refused():
    with pytest.raises(ValueError, match="lo < hi"):
        Rule.inside(1.0, 0.0)
    with pytest.raises(ValueError, match="positive"):
        Rule.within(0.0)
    with pytest.raises(ValueError, match="must not exceed"):
        Rule.above(0.0).verdict(1.0, 0.0)
