import pytest

from bnn_saliency import claims


@pytest.mark.parametrize("low,high,direction,expected", [
    (0.6, 0.8, "above", "reproduced"),
    (0.4, 0.8, "above", "partly"),
    (0.1, 0.4, "above", "not reproduced"),
    (0.1, 0.4, "below", "reproduced"),
    (0.4, 0.6, "below", "partly"),
    (0.6, 0.9, "below", "not reproduced"),
])
def test_judge(low, high, direction, expected):
    assert claims.judge(low, high, 0.5, direction) == expected


def test_judge_with_partial_threshold():
    assert claims.judge(0.3, 0.45, 0.5, "above", partial=0.25) == "partly"
    assert claims.judge(0.2, 0.45, 0.5, "above", partial=0.25) == "not reproduced"


def test_claim_validation_and_roundtrip(tmp_path):
    with pytest.raises(ValueError, match="verdict"):
        claims.Claim("c", "s", "m", 0.5, 0.4, 0.6, "t", "maybe", "sec-x")
    with pytest.raises(ValueError, match="finite"):
        claims.Claim("c", "s", "m", float("nan"), 0.4, 0.6, "t", "partly", "sec-x")
    row = claims.Claim("c", "s", "m", 0.51234567, 0.4, 0.6, "CI low > 0.5", "partly", "sec-x")
    claims.save("01_x", [row], tmp_path)
    loaded = claims.load_all(tmp_path)
    assert loaded[0]["chapter"] == "01_x" and loaded[0]["value"] == 0.512346
    assert claims.table([row]).shape == (1, 7)


@pytest.mark.parametrize("low,high,expected", [
    (0.2, 0.3, "reproduced"),       # inside (0.1, 0.4)
    (0.05, 0.3, "partly"),          # straddles the lower bound
    (0.3, 0.5, "partly"),           # straddles the upper bound
    (0.0, 0.5, "partly"),           # covers the whole range
    (-0.2, 0.05, "not reproduced"),  # wholly below
    (0.45, 0.6, "not reproduced"),   # wholly above
])
def test_judge_inside(low, high, expected):
    assert claims.judge_inside(low, high, 0.1, 0.4) == expected


def test_judge_inside_needs_an_interval():
    with pytest.raises(ValueError, match="lo < hi"):
        claims.judge_inside(0.1, 0.2, 0.4, 0.1)


def test_format_ci():
    assert claims.format_ci((0.12345, -0.5, 1.0)) == "0.123 [-0.500, 1.000]"
    assert claims.format_ci((0.1, 0.05, 0.2), digits=1, scale=100, suffix="%") == "10.0% [5.0%, 20.0%]"
    with pytest.raises(ValueError, match="value, low, high"):
        claims.format_ci((1.0, 2.0))
