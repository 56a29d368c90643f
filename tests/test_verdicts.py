import numpy as np
import pytest

from bnn_saliency import verdicts


@pytest.mark.parametrize("low,high,direction,expected", [
    (0.6, 0.8, "above", "reproduced"),
    (0.4, 0.8, "above", "partly"),
    (0.1, 0.4, "above", "not reproduced"),
    (0.1, 0.4, "below", "reproduced"),
    (0.4, 0.6, "below", "partly"),
    (0.6, 0.9, "below", "not reproduced"),
])
def test_judge(low, high, direction, expected):
    assert verdicts.Rule(direction, 0.5).verdict(low, high) == expected


def test_judge_with_partial_threshold():
    assert verdicts.Rule("above", 0.5, partial=0.25).verdict(0.3, 0.45) == "partly"
    assert verdicts.Rule("above", 0.5, partial=0.25).verdict(0.2, 0.45) == "not reproduced"


def test_claim_validation_and_roundtrip(tmp_path):
    with pytest.raises(ValueError, match="verdict"):
        verdicts.Claim("c", "s", "m", 0.5, 0.4, 0.6, "t", "maybe", "sec-x")
    with pytest.raises(ValueError, match="finite"):
        verdicts.Claim("c", "s", "m", float("nan"), 0.4, 0.6, "t", "partly", "sec-x")
    row = verdicts.Claim("c", "s", "m", 0.51234567, 0.4, 0.6, "CI low > 0.5", "partly", "sec-x")
    verdicts.save("01_x", [row], tmp_path)
    loaded = verdicts.load_all(tmp_path)
    assert loaded[0]["chapter"] == "01_x" and loaded[0]["value"] == 0.512346
    table = verdicts.table([row])
    assert table.data.shape == (1, 6) and table.data.columns[0] == "verdict"
    html = table.to_html()
    assert "partly" in html and verdicts.VERDICT_COLORS["partly"] in html
    assert "<th" not in html.split("<tbody>")[1]  # no row index


@pytest.mark.parametrize("low,high,expected", [
    (0.2, 0.3, "reproduced"),       # inside (0.1, 0.4)
    (0.05, 0.3, "partly"),          # straddles the lower bound
    (0.3, 0.5, "partly"),           # straddles the upper bound
    (0.0, 0.5, "partly"),           # covers the whole range
    (-0.2, 0.05, "not reproduced"),  # wholly below
    (0.45, 0.6, "not reproduced"),   # wholly above
])
def test_judge_inside(low, high, expected):
    assert verdicts.Rule.inside(0.1, 0.4).verdict(low, high) == expected


def test_judge_inside_needs_an_interval():
    with pytest.raises(ValueError, match="lo < hi"):
        verdicts.Rule.inside(0.4, 0.1).verdict(0.1, 0.2)


def test_format_ci():
    assert verdicts.format_ci((0.12345, -0.5, 1.0)) == "0.123 [-0.500, 1.000]"
    assert verdicts.format_ci((0.1, 0.05, 0.2), digits=1, scale=100, suffix="%") == "10.0% [5.0%, 20.0%]"
    with pytest.raises(ValueError, match="value, low, high"):
        verdicts.format_ci((1.0, 2.0))


def _judged(claim_id, ci, replicates, matched=None, precondition=None):
    return verdicts.registered(claim_id, "m", ci, replicates=replicates, matched=matched,
                               interval="seeds>images", precondition=precondition)


def test_precondition_absent_relabels_the_verdict_and_keeps_the_rules():
    """ch03.inversion_closer_to_fp holds only where ch03.gradcam_blank_on_bnn is reproduced
    or partly (the registry's precondition); the p-value is the rule's either way."""
    boots = np.linspace(-1, 1, 101)
    blank_no = _judged("ch03.gradcam_blank_on_bnn", (-5.0, -8.0, -2.0), boots,
                       matched=(10.0, 6.0, 12.0))  # not reproduced; matched reproduced (> 5 pp)
    blank_yes = _judged("ch03.gradcam_blank_on_bnn", (5.0, 2.0, 8.0), boots,
                        matched=(-1.0, -2.0, -0.5))  # reproduced; matched not reproduced
    absent = _judged("ch03.inversion_closer_to_fp", (-0.5, -0.6, -0.4), boots,
                     matched=(0.2, 0.1, 0.3), precondition=blank_no)
    assert absent.verdict == verdicts.PRECONDITION_ABSENT
    assert absent.precondition == {"claim": "ch03.gradcam_blank_on_bnn", "holds": False,
                                   "rule_verdict": "not reproduced"}
    assert absent.matched["verdict"] == "reproduced"  # the matched precondition holds
    assert absent.p_value == pytest.approx(verdicts.registered(
        "ch03.inversion_closer_to_fp", "m", (-0.5, -0.6, -0.4), replicates=boots,
        matched=(0.2, 0.1, 0.3), precondition=blank_yes).p_value)
    held = _judged("ch03.inversion_closer_to_fp", (-0.5, -0.6, -0.4), boots,
                   matched=(0.2, 0.1, 0.3), precondition=blank_yes)
    assert held.verdict == "not reproduced" and held.precondition["holds"]
    assert held.matched == {"value": 0.2, "low": 0.1, "high": 0.3,
                            "verdict": verdicts.PRECONDITION_ABSENT,
                            "rule_verdict": "reproduced"}
    assert "(rule: not reproduced)" in verdicts.verdict_lines([absent])
    assert "(rule:" not in verdicts.verdict_lines([held])
    with pytest.raises(ValueError, match="precondition="):
        _judged("ch03.inversion_closer_to_fp", (-0.5, -0.6, -0.4), boots,
                matched=(0.2, 0.1, 0.3))
    with pytest.raises(ValueError, match="no precondition"):
        _judged("ch03.gradcam_blank_on_bnn", (5.0, 2.0, 8.0), boots,
                matched=(10.0, 6.0, 12.0), precondition=blank_yes)
