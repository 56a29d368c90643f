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
    assert loaded[0]["chapter"] == "01_x" and loaded[0]["value"] == 0.5123
    assert claims.table([row]).shape == (1, 7)
