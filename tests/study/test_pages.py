"""The helpers the thin chapter pages call (chapter 1, chapter 6, the performance appendix),
checked against values computed by hand."""

import numpy as np
import pandas as pd
import pytest

from bnn_saliency import verdicts
from bnn_saliency.study import appendix_performance, ch01_gradient, ch06_beyond


# --- chapter 1 ---------------------------------------------------------------------------


def _sims():
    """Two images, three pairs, two metrics (rows deliberately out of image order)."""
    rows = [
        ("Spearman |map|", "a vs b", 1, 0.6), ("Spearman |map|", "a vs b", 0, 0.8),
        ("Spearman |map|", "c vs d", 0, 0.4), ("Spearman |map|", "c vs d", 1, 0.2),
        ("Spearman |map|", "a vs edge", 0, 0.1), ("Spearman |map|", "a vs edge", 1, 0.3),
        ("SSIM", "a vs b", 0, 0.9), ("SSIM", "a vs b", 1, 0.5),
    ]
    return pd.DataFrame(rows, columns=["metric", "pair", "image", "score"])


def test_pair_labels():
    assert ch01_gradient.pair_labels([("a", "b"), ("c", "d")]) == ["a vs b", "c vs d"]
    assert ch01_gradient.pair_labels([]) == []


def test_pair_scores_averages_pairs_per_image_in_image_order():
    sims = _sims()
    np.testing.assert_allclose(ch01_gradient.pair_scores(sims, ["a vs b"]), [0.8, 0.6])
    # image 0: (0.8 + 0.4) / 2, image 1: (0.6 + 0.2) / 2
    np.testing.assert_allclose(ch01_gradient.pair_scores(sims, ["a vs b", "c vs d"]),
                               [0.6, 0.4])
    np.testing.assert_allclose(ch01_gradient.pair_scores(sims, ["a vs b"], "SSIM"),
                               [0.9, 0.5])


def test_mean_and_gap_point_estimates():
    sims = _sims()
    assert ch01_gradient.mean_ci(sims, ["a vs b"])[0] == pytest.approx(0.7)
    # per image (0.8 - 0.4, 0.6 - 0.2): mean 0.4
    gap = ch01_gradient.gap_ci(sims, ["a vs b"], ["c vs d"])
    assert gap[0] == pytest.approx(0.4)
    assert gap[1] <= gap[0] <= gap[2]
    # against the edge pair: (0.8 - 0.1, 0.6 - 0.3) -> 0.5
    assert ch01_gradient.gap_ci(sims, ["a vs b"], ["a vs edge"])[0] == pytest.approx(0.5)


def test_summary_mean_and_missing_pair():
    summary = pd.DataFrame({"metric": ["Spearman |map|", "SSIM"], "pair": ["a vs b"] * 2,
                            "mean": [0.25, 0.75]})
    assert ch01_gradient.summary_mean(summary, "a vs b") == 0.25
    assert ch01_gradient.summary_mean(summary, "a vs b", "SSIM") == 0.75
    assert np.isnan(ch01_gradient.summary_mean(summary, "x vs y"))


def test_by_correctness_labels_each_image():
    split = ch01_gradient.by_correctness(_sims(), "a vs b", np.array([False, True]))
    assert dict(zip(split["image"], split["both correct"])) == {0: "no", 1: "yes"}
    assert list(split["metric"].unique()) == ["Spearman |map|"]


def test_ablation_sentence():
    assert ch01_gradient.ablation_sentence(0.5, 0.25) == (
        "the weights-only twin's maps are closer to the FP twin's (Spearman 0.500 vs 0.250)")
    assert ch01_gradient.ablation_sentence(0.1, 0.2) == (
        "the activations-only twin's maps are closer to the FP twin's "
        "(Spearman 0.200 vs 0.100)")
    assert "not shipped" in ch01_gradient.ablation_sentence(float("nan"), 0.2)


def test_resnet_sentence():
    assert ch01_gradient.resnet_sentence((0.5, 0.25, 0.75), (0.125, 0.0, 0.25)) == (
        "the ResNet FP and BNN twins' maps have a Spearman correlation of 0.500 "
        "[0.250, 0.750], a gap of 0.125 [0.000, 0.250] to the VGG seed baseline")
    assert ch01_gradient.resnet_sentence(None, None) == (
        "the ResNet twins are not shipped, so this check is skipped")


def test_v2_claims_are_registered_cross_seed_and_carry_the_matched_control():
    from bnn_saliency.study.common import Suite

    suite = Suite({"fp": {0: "fp0", 1: "fp1"}, "bnn": {0: "bnn0", 1: "bnn1"},
                   "control": {0: "c0", 1: "c1"}})
    same_kind = {("fp0", "fp1"): 0.9, ("bnn0", "bnn1"): 0.7, ("c0", "c1"): 0.8}
    cross = {("fp0", "bnn1"): 0.6, ("fp1", "bnn0"): 0.4, ("c0", "bnn1"): 0.3, ("c1", "bnn0"): 0.3}
    edges = {(n, "edge"): 0.1 for n in suite.names()}
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, 40)
    def table(metric, pairs):
        return pd.DataFrame([{"metric": metric, "pair": f"{a} vs {b}", "image": i,
                              "score": v + noise[i]} for (a, b), v in pairs.items()
                             for i in range(40)])
    sims = table(ch01_gradient.MAIN_METRIC, {**same_kind, **cross, **edges})
    signed = table("Spearman signed", {**same_kind, **cross})
    rows, cis = ch01_gradient.v2_claims(suite, sims, signed, 40)
    assert [r.claim_id for r in rows] == ["ch01.gradient_alike", "ch01.gradient_beyond_edges",
                                          "ch01.gradient_alike_signed"]   # no ResNet pair
    # seed pairs (0.9 + 0.7) / 2 minus cross-seed pairs (0.6 + 0.4) / 2
    assert cis["gap"].point == pytest.approx(0.3, abs=1e-9)
    # with two seeds a replicate's seed draw gives a gap of 0.1 (FP [0, 0], BNN [0, 1]),
    # 0.3 or 0.5 (FP [0, 1], BNN [0, 0]): the interval spans the seed level, not just images
    assert cis["gap"].low == pytest.approx(0.1, abs=0.01)
    assert cis["gap"].high == pytest.approx(0.5, abs=0.01) and rows[0].verdict == "partly"
    assert rows[0].interval == "seeds>images" and 0 < rows[0].p_value <= 1
    # controls: seed pairs (0.8 + 0.7) / 2 minus control-vs-BNN 0.3
    assert cis["gap_matched"].point == pytest.approx(0.45, abs=1e-9)
    assert rows[0].matched["value"] == pytest.approx(0.45, abs=1e-9)
    assert cis["edge_margin"].point == pytest.approx(0.5 - 0.1, abs=1e-9)


# --- chapter 6 ---------------------------------------------------------------------------


def test_median_error_ci_pools_models_then_takes_the_median():
    table = pd.DataFrame({"model": ["f0"] * 3 + ["f1"] * 3 + ["b0"] * 3,
                          "method": "IG", "image": [0, 1, 2] * 3,
                          "rel_error": [0.1, 0.2, 0.9, 0.3, 0.4, 0.1, 5, 5, 5]})
    # per image over f0, f1: 0.2, 0.3, 0.5 -> median 0.3
    assert ch06_beyond.median_error_ci(table, ["f0", "f1"], "IG")[0] == pytest.approx(0.3)


def _agree():
    rows = []
    for baseline, base_score in (("black", 0.5), ("blur", 0.1)):
        for metric, offset in (("Spearman", 0.0), ("SSIM", 0.2)):
            for model, m_off in (("fp", 0.0), ("bnn", -0.25)):
                for image in (0, 1):
                    rows.append({"baseline": baseline, "metric": metric, "model": model,
                                 "image": image,
                                 "score": base_score + offset + m_off + 0.1 * image})
    return pd.DataFrame(rows)


def test_agreement_values_and_ci():
    agree = _agree()
    np.testing.assert_allclose(ch06_beyond.agreement_values(agree, ["fp"]), [0.5, 0.6])
    np.testing.assert_allclose(ch06_beyond.agreement_values(agree, ["fp", "bnn"]),
                               [0.375, 0.475])
    np.testing.assert_allclose(ch06_beyond.agreement_values(agree, ["bnn"], "blur", "SSIM"),
                               [0.05, 0.15])
    assert ch06_beyond.agreement_ci(agree, ["fp"])[0] == pytest.approx(0.55)


def test_pooled_ci_and_excess_gap():
    excess = pd.DataFrame({"model": ["b0", "b0", "b1", "b1"] * 2,
                           "method": ["dl"] * 4 + ["grad"] * 4,
                           "image": [0, 1] * 4,
                           "excess": [0.4, 0.2, 0.6, 0.0, 0.1, 0.1, 0.3, -0.1]})
    # dl per image: 0.5, 0.1; grad per image: 0.2, 0.0
    np.testing.assert_allclose(ch06_beyond.excess_gap(excess, ["b0", "b1"], "dl", "grad"),
                               [0.3, 0.1])
    assert ch06_beyond.pooled_ci(excess, ["b0", "b1"], "excess", method="dl")[0] == (
        pytest.approx(0.3))


def test_comparison_phrase():
    assert ch06_beyond.comparison_phrase((0.2, 0.1, 0.3)) == "more faithful than"
    assert ch06_beyond.comparison_phrase((-0.2, -0.3, -0.1)) == "less faithful than"
    assert ch06_beyond.comparison_phrase((0.0, -0.1, 0.1)) == "not distinguishable from"


def test_random_reference_phrase():
    best = pd.DataFrame({"gradient": [0.3, 0.4], "gradcam": [0.2, 0.5],
                         "random": [0.1, 0.3]}, index=["fp", "bnn"])
    assert ch06_beyond.random_reference_phrase(best).startswith("has the lowest")
    best.loc["bnn", "random"] = 0.45  # the gradient is lower on the BNN
    assert ch06_beyond.random_reference_phrase(best).startswith("does not have")


def test_step_cis_selects_the_step():
    sanity = pd.DataFrame({"model": "m", "method": ["g"] * 4, "step": [1, 1, 2, 2],
                           "block": ["x", "x", "y", "y"], "image": [0, 1, 0, 1],
                           "score": [0.9, 0.7, 0.2, 0.0]})
    cis = ch06_beyond.step_cis(sanity, ["m"], ["g"], step=1)
    assert list(cis) == [("m", "g")]
    assert cis[("m", "g")][0] == pytest.approx(0.8)
    assert ch06_beyond.step_cis(sanity, ["m"], ["g"], step=2)[("m", "g")][0] == (
        pytest.approx(0.1))


def test_cascade_wide_orders_blocks_by_step():
    summary = pd.DataFrame({"model": "m", "method": "g", "step": [2, 1, 3],
                            "block": ["b", "z", "a"], "mean": [0.5, 0.9, 0.1]})
    wide = ch06_beyond.cascade_wide(summary)
    assert list(wide.columns) == ["z", "b", "a"]
    np.testing.assert_allclose(wide.loc[("m", "g")].to_numpy(), [0.9, 0.5, 0.1])


def test_wide_cam_scores():
    index = pd.MultiIndex.from_tuples([("m1", "gradcam"), ("m1", "random"),
                                       ("m2", "gradcam"), ("m2", "random"),
                                       ("m3", "gradcam"), ("m3", "random")],
                                      names=["model", "method"])
    table = pd.DataFrame({"average_drop": [10.04, 20.0, 30.0, 40.0, 5.0, 6.0],
                          "average_gain": [1.0, 2.0, 3.0, 4.0, 7.0, 8.0]}, index=index)
    wide = ch06_beyond.wide_cam_scores(table, {"FP": ["m1", "m2"], "BNN": ["m3"]})
    assert list(wide.index) == ["gradcam", "random"]
    assert wide.loc["gradcam", ("average_drop", "FP")] == 20.0  # mean of 10.04 and 30, rounded
    assert wide.loc["random", ("average_gain", "BNN")] == 8.0
    assert list(wide.columns) == [("average_drop", "FP"), ("average_drop", "BNN"),
                                  ("average_gain", "FP"), ("average_gain", "BNN")]


def test_chapter_six_claim():
    c = ch06_beyond.claim("c", "s", "m", (3.0, 2.0, 4.0), verdicts.Rule.above(3.0))
    assert (c.value, c.low, c.high, c.section) == (3.0, 2.0, 4.0, "sec-beyond")
    assert (c.verdict, c.threshold) == ("partly", verdicts.Rule.above(3.0).text)


# --- the performance appendix ------------------------------------------------------------


def _goals():
    return pd.DataFrame({
        "model": ["fp", "bnn", "fp", "bnn"],
        "goal": ["SmoothGrad speed-up vs tf-keras-vis"] * 2
        + ["SmoothGrad time / lower bound"] * 2,
        "value": [6.0, 2.5, 1.1, 1.3], "low": [5.5, 2.0, 1.0, 1.25],
        "high": [6.5, 3.0, 1.15, 1.4], "target": [5.0, 5.0, 1.2, 1.2],
        "direction": ["above", "above", "below", "below"],
        "ceiling": [8.0, 3.24, np.nan, np.nan],
        "verdict": ["met", "not met", "met", "not met"]})


def test_goal_sentence_met_count_and_ceilings():
    goals = _goals()
    assert appendix_performance.goal_sentence(goals, "SmoothGrad speed-up vs tf-keras-vis") \
        == "fp 6.00 [5.50, 6.50] (met); bnn 2.50 [2.00, 3.00] (not met)"
    speed = goals[goals["goal"].str.contains("speed-up")]
    assert appendix_performance.met_count(speed) == "1 of 2"
    assert appendix_performance.ceilings_text(speed) == "fp 8.0; bnn 3.2"


def test_goals_table_texts():
    table = appendix_performance.goals_table(_goals())
    assert list(table["95% CI"]) == ["[5.50, 6.50]", "[2.00, 3.00]", "[1.00, 1.15]",
                                     "[1.25, 1.40]"]
    assert list(table["goal"]) == [">= 5", ">= 5", "<= 1.2", "<= 1.2"]


def _machine(load_before, load_after):
    return {"cpu": "Test CPU", "cores": 4, "memory_gb": 8, "platform": "linux",
            "python": "3.11", "tensorflow": "2.15", "larq": "0.13", "numpy": "1.26",
            "load_average": [load_before, 0, 0], "load_average_after": [load_after, 0, 0]}


def test_machine_texts_and_load_note():
    quiet = _machine(0.5, 1.26)
    assert appendix_performance.machine_text(quiet) == "Test CPU with 4 cores"
    assert appendix_performance.load_note(quiet) == (
        "The machine was quiet during this run (1-minute load average at most 1.3 on 4 "
        "cores).")
    busy = appendix_performance.load_note(_machine(2.5, 1.0))  # 2.5 > 4 / 2
    assert busy.startswith("The machine was busy during this run (1-minute load average "
                           "2.5 on 4 cores), so the timings are noisy")
    results = {"machine": quiet, "bench_seconds": 12.5, "created": "today"}
    table = appendix_performance.machine_table(results)
    assert table.loc["1-min load average before / after", "value"] == "0.50 / 1.26"
    assert table.loc["cores", "value"] == 4
    assert appendix_performance.run_line(results) == (
        "benchmark of today: Test CPU, 4 cores, TensorFlow 2.15, larq 0.13")


def test_build_and_training_texts():
    builds = {"cold": {"seconds": 90.0, "finished": "noon"}}
    assert appendix_performance.build_text(builds, "cold") == "1.5 min (finished noon)"
    assert appendix_performance.build_text(builds, "warm") == "not recorded in this run"
    assert appendix_performance.train_setup_text({"train_batch": 64, "train_steps": 3}) == (
        "batches of 64, 3 steps per repetition")
    training = pd.DataFrame({"model": ["fp", "fp", "bnn"],
                             "precision": ["float32", "mixed_bfloat16", "mixed_bfloat16"],
                             "images_per_s": [1000.0, 1500.0, 123456.0],
                             "vs_float32": [1.0, 1.5, 2.0]})
    assert appendix_performance.bf16_text(training) == "fp 1.50x, bnn 2.00x"
    shown = appendix_performance.training_table(training)
    assert list(shown["images/s"]) == ["1e+03", "1.5e+03", "1.23e+05"]
    assert list(shown["speed-up vs float32"]) == ["1.00", "1.50", "2.00"]


def test_rates_table_keeps_benchmark_order_and_marks_gaps():
    methods = pd.DataFrame({"model": ["zeta", "alpha", "zeta"],
                            "method": ["Grad-CAM", "Grad-CAM", "IG"],
                            "maps_per_s": [1234.5, 2.0, 0.5]})
    rates = appendix_performance.rates_table(methods)
    assert list(rates.columns) == ["zeta", "alpha"]
    assert rates.loc["Grad-CAM", "zeta"] == "1.23e+03"
    assert rates.loc["IG", "zeta"] == "0.5"
    assert rates.loc["IG", "alpha"] == "-"


def test_smoothgrad_cases():
    results = {"smoothgrad": [{"model": "fp", "input": "32x32", "weights": "shipped",
                               "images": 16, "n_samples": 20, "noise": 0.2, "batch_size": 256,
                               "ours_s": [1.0, 1.1, 0.9]}]}
    cases = appendix_performance.smoothgrad_cases(results)
    assert cases.iloc[0].to_dict() == {"model": "fp", "input": "32x32", "weights": "shipped",
                                       "images": 16, "n": 20, "noise": 0.2,
                                       "batch size": 256, "repetitions": 3}
