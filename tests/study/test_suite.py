"""study.common.Suite and PairScores: the pairs each kind of contrast uses (cross-seed for the
twins, all pairs across architectures on ImageNet) and the seed gap against a hand computation."""

import numpy as np
import pandas as pd
import pytest

from bnn_saliency.study.common import PairScores, Suite

TWINS = Suite({"fp": {0: "fp0", 1: "fp1"}, "bnn": {0: "bnn0", 1: "bnn1"},
               "control": {0: "c0"}})


def _table(scores: dict[tuple[str, str], list[float]], metric="m") -> pd.DataFrame:
    return pd.DataFrame([{"metric": metric, "pair": f"{a} vs {b}", "image": i, "score": v}
                         for (a, b), values in scores.items() for i, v in enumerate(values)])


def test_twin_pairs_are_cross_seed_and_imagenet_pairs_are_all_combinations():
    assert TWINS.cross_pairs() == [("fp0", "bnn1"), ("fp1", "bnn0")]
    assert TWINS.same_seed_pairs() == [("fp0", "bnn0"), ("fp1", "bnn1")]
    assert TWINS.seed_pairs("fp") == [("fp0", "fp1")] and TWINS.seed_pairs("control") == []
    assert TWINS.cross_pairs("control", "bnn") == [("c0", "bnn1")]
    nets = Suite({"fp": {0: "A", 1: "B"}, "bnn": {0: "X", 1: "Y"}, "control": {}},
                 shared_labels=False)
    assert nets.cross_pairs() == [("A", "X"), ("A", "Y"), ("B", "X"), ("B", "Y")]
    assert nets.same_seed_pairs() == [] and nets.seed_pairs("bnn") == [("X", "Y")]


def test_pair_scores_look_up_either_order_and_name_a_missing_pair():
    scores = PairScores(_table({("fp0", "bnn1"): [0.1, 0.2]}), "m")
    assert scores("bnn1", "fp0").tolist() == [0.1, 0.2]
    assert scores.mean([]) is None
    # an undefined score (a constant map) is left out of the per-image mean, not propagated
    sparse = PairScores(_table({("a", "b"): [0.2, np.nan, np.nan], ("a", "c"): [0.4, 0.6, np.nan]}),
                        "m")
    np.testing.assert_allclose(sparse.mean([("a", "b"), ("a", "c")]), [0.3, 0.6, np.nan])
    with pytest.raises(KeyError, match="fp0 vs bnn0"):
        scores("fp0", "bnn0")
    with pytest.raises(KeyError, match="no 'other' scores"):
        PairScores(_table({("a", "b"): [0.0]}), "other")


def test_seed_gap_matches_the_hand_computation_and_reports_what_cannot_be_formed():
    table = _table({("fp0", "fp1"): [0.9, 0.7], ("bnn0", "bnn1"): [0.5, 0.3],
                    ("fp0", "bnn1"): [0.2, 0.4], ("fp1", "bnn0"): [0.6, 0.0],
                    ("c0", "bnn1"): [0.1, 0.1]})
    scores = PairScores(table, "m")
    gap = TWINS.seed_gap(scores)(TWINS.seeds)
    # seed pairs mean (0.7, 0.5) minus cross-seed mean (0.4, 0.2)
    np.testing.assert_allclose(gap, [0.3, 0.3], atol=1e-12)
    ci, replicates = TWINS.bootstrap(TWINS.seed_gap(scores), 2)
    assert ci.point == pytest.approx(0.3) and len(replicates) == 2000
    # the control has one seed: its seed term has only the BNN pair, cross only c0 vs bnn1
    matched = TWINS.seed_gap(scores, "control")(TWINS.seeds)
    np.testing.assert_allclose(matched, [0.5 - 0.1, 0.3 - 0.1], atol=1e-12)
    lonely = Suite({"fp": {0: "fp0"}, "bnn": {0: "bnn0"}, "control": {}})
    assert "too few seeds" in lonely.bootstrap(lonely.seed_gap(scores), 2)


def test_pair_groups_name_every_contrast_of_the_protocol():
    groups = TWINS.pair_groups()
    assert list(groups) == ["FP vs BNN (cross-seed)", "FP vs BNN (same seed)", "seed baseline",
                            "control vs BNN (cross-seed)", "control seed baseline"]
    assert groups["seed baseline"] == [("fp0", "fp1"), ("bnn0", "bnn1")]
    assert groups["control seed baseline"] == []


def test_bootstrap_statistic_of_a_mean_equals_the_per_image_bootstrap():
    values = {"fp0": np.array([1.0, 2.0, 4.0]), "fp1": np.array([0.0, 1.0, 1.0]),
              "bnn0": np.array([3.0, 3.0, 0.0]), "bnn1": np.array([5.0, 1.0, 2.0])}

    def per_image(drawn):
        pairs = TWINS.cross_pairs(drawn=drawn)
        return np.mean([values[b] - values[a] for a, b in pairs], axis=0) if pairs else None

    def prepare(drawn):
        v = per_image(drawn)
        return None if v is None else (lambda idx: float(np.mean(v[idx])))

    (ci_a, boots_a), (ci_b, boots_b) = (TWINS.bootstrap(per_image, 3),
                                        TWINS.bootstrap_statistic(prepare, 3))
    np.testing.assert_allclose(boots_a, boots_b, atol=1e-12)  # same draws, same statistic
    assert ci_a.point == ci_b.point == pytest.approx(np.mean(per_image(TWINS.seeds)))
    one_kind = TWINS.bootstrap(lambda drawn: values["fp0"], 3, kinds=("fp",))
    assert one_kind[0].point == pytest.approx(7 / 3)
    assert "too few seeds" in TWINS.bootstrap_statistic(lambda drawn: None, 3)


def test_a_broken_statistic_raises_instead_of_passing_for_missing_seeds():
    with pytest.raises(ValueError, match="must return 2 values"):
        TWINS.bootstrap(lambda drawn: np.zeros(3), 2)


def test_kinds_of_names_the_controls_and_ci_text_passes_reasons_through():
    from bnn_saliency.stats import CI
    from bnn_saliency.study import common

    suite = Suite({"fp": {0: "v2:vgg-fp-s0"}, "bnn": {0: "v2:vgg-bnn-s0"},
                   "control": {0: "v2:vgg-fp-s0-at-bnn-acc"}})
    names = ["v2:vgg-fp-s0", "v2:vgg-fp-s0-at-bnn-acc", "v2:vgg-bnn-s0", "vgg-binw-s0"]
    assert common.kinds_of(names, suite) == {
        "v2:vgg-fp-s0": "FP", "v2:vgg-fp-s0-at-bnn-acc": "FP control", "v2:vgg-bnn-s0": "BNN",
        "vgg-binw-s0": "binary weights"}
    assert common.ci_text("too few seeds") == "too few seeds"
    assert common.ci_text((CI(0.5, 0.25, 0.75), None), 2, 100, "%") == "50.00% [25.00%, 75.00%]"
