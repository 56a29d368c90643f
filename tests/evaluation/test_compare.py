import numpy as np
import pandas as pd
import pytest

from bnn_saliency import evaluation, verdicts
from bnn_saliency.study import ledger


def _l1(a, b):
    return np.abs(a - b).reshape(len(a), -1).mean(axis=1)


def test_pairwise_similarity_matches_direct_computation():
    rng = np.random.default_rng(0)
    maps = {n: rng.random((6, 4, 4)) for n in "abc"}
    df = evaluation.pairwise_similarity(maps, [("a", "b"), ("a", "c")], {"l1": _l1},
                                     groups={"flag": np.arange(6) % 2 == 0})
    assert len(df) == 12 and set(df["pair"]) == {"a vs b", "a vs c"}
    got = df[df["pair"] == "a vs c"].sort_values("image")["score"].to_numpy()
    np.testing.assert_allclose(got, np.abs(maps["a"] - maps["c"]).mean(axis=(1, 2)))
    assert df["flag"].tolist()[:6] == [True, False] * 3


def test_pairwise_similarity_unknown_model():
    with pytest.raises(KeyError, match="no maps for"):
        evaluation.pairwise_similarity({"a": np.zeros((1, 2, 2))}, [("a", "z")], {"l1": _l1})


def test_paired_difference_is_mean_of_differences():
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 1.0, 400), rng.normal(0.0, 1.0, 400)
    df = pd.concat([pd.DataFrame({"pair": p, "metric": "m", "image": np.arange(400), "score": s})
                    for p, s in (("x", a), ("y", b))])
    point, low, high = evaluation.paired_difference(df, "x", "y", "m")
    assert point == pytest.approx(np.mean(a - b))
    se = np.std(a - b, ddof=1) / np.sqrt(400)
    assert low < point < high and (high - low) == pytest.approx(2 * 1.96 * se, rel=0.2)
    with pytest.raises(KeyError):
        evaluation.paired_difference(df, "x", "nope", "m")


def test_ledger_markdown_links_sections(tmp_path):

    verdicts.save("09_x", [verdicts.Claim("a | b", "s", "m", 0.5, 0.4, 0.6, "t", "partly", "sec-x")],
                tmp_path)
    text = ledger.ledger_markdown(tmp_path)
    assert "<sec-x>`" in text and r"a \| b" in text and ">partly</span>" in text
    assert ledger.ledger_markdown(tmp_path / "empty").startswith("_No chapter")
