"""Chapter 4's helpers (bnn_saliency.study.ch04_sanity), on small tables whose answers are
worked out by hand in the comments."""

import math

import numpy as np
import pandas as pd
import pytest

from bnn_saliency.verdicts import Rule
from bnn_saliency.study import ch04_sanity as ch4

SP = "Spearman |map|"


def _scores(values: dict[str, list[float]], method="gradient", step=2, metric=SP):
    """Long score table: model -> per-image scores (image i = position i)."""
    return pd.DataFrame([{"model": m, "method": method, "metric": metric, "step": step,
                          "image": i, "score": s}
                         for m, vals in values.items() for i, s in enumerate(vals)])


def _verdicts(rows):
    """A :func:`ch4.verdicts`-like table from (model, method, mean, low, high, verdict)."""
    return pd.DataFrame(rows, columns=["model", "method", "mean", "low", "high", "verdict"])


# -- names and layout -----------------------------------------------------------------------


def test_record_name():
    assert ch4.record_name("cascading", "vgg-fp-s0") == "04_sanity_checks/cascading/vgg-fp-s0"
    assert ch4.record_name("data", "a-vs-b", twins=True) == "04_sanity_checks/data/a-vs-b"
    assert ch4.record_name("cascading", "vgg-fp-s0", twins=False) is None


def test_layer_counts_text_sorts_numerically():
    # 3 layers and 13 layers (twice): "3 or 13"; a string sort would give "13 or 3"
    blocks = {"a": [("logits", ["logits"]), ("stage 1", ["conv1", "bn1"])],
              "b": [("all", [f"l{i}" for i in range(13)])],
              "c": [("x", [f"l{i}" for i in range(6)]), ("y", [f"k{i}" for i in range(7)])]}
    assert ch4.layer_counts_text(blocks) == "3 or 13"
    assert ch4.layer_counts_text({"a": blocks["a"]}) == "3"


def test_block_table():
    blocks = {"m": [("logits", ["logits"]), ("stage 1", ["conv1", "bn1"])],
              "other": [("logits", ["fc"])]}
    table = ch4.block_table(blocks, ["m"])
    assert table.to_dict("records") == [
        {"model": "m", "step": 1, "block": "logits", "layers": "logits"},
        {"model": "m", "step": 2, "block": "stage 1", "layers": "conv1, bn1"}]


def test_fp_bnn_pairs():
    names = ["vgg-fp-s0", "vgg-binw-s0", "vgg-bnn-s0", "resnet-fp-s0"]
    assert ch4.fp_bnn_pairs(names) == [("vgg-fp-s0", "vgg-bnn-s0")]  # no resnet BNN
    both = names + ["resnet-bnn-s0"]
    assert ch4.fp_bnn_pairs(both) == [("vgg-fp-s0", "vgg-bnn-s0"),
                                      ("resnet-fp-s0", "resnet-bnn-s0")]
    assert ch4.fp_bnn_pairs(both, twins=False) == []


def test_first_correct():
    targets = np.array([0, 1, 2, 3])
    preds = {"a": np.array([1, 0, 2, 3]),   # right on images 2, 3
             "b": np.array([1, 1, 2, 0])}   # right on images 1, 2
    assert ch4.first_correct(preds, targets, ["a", "b"]) == 2
    assert ch4.first_correct(preds, targets, ["b"]) == 1


def test_family_groups_orders_variants():
    names = ["vgg-bnn-s0", "resnet-bnn-s0", "vgg-fp-s0", "vgg-bina-s0", "resnet-fp-s0",
             "vgg-binw-s0"]
    assert ch4.family_groups(names) == {
        "vgg": ["vgg-fp-s0", "vgg-binw-s0", "vgg-bina-s0", "vgg-bnn-s0"],
        "resnet": ["resnet-fp-s0", "resnet-bnn-s0"]}
    assert ch4.family_groups(["resnet50", "vgg16"], twins=False) == {
        "ImageNet": ["resnet50", "vgg16"]}


def test_labels_follow_method_order():
    assert tuple(ch4.LABELS) == ch4.METHOD_NAMES


# -- texts ----------------------------------------------------------------------------------


def test_texts():
    row = pd.Series({"verdict": "pass", "mean": 0.1234, "low": 0.0561, "high": 0.2049})
    assert ch4.verdict_cell(row) == "pass (0.12)"
    assert ch4.ci_text(row) == "0.12 [0.06, 0.20]"
    assert ch4.verdict_text(row) == "pass, 0.12 [0.06, 0.20]"
    assert ch4.mean_text(row) == "0.12"
    assert ch4.interval_text((-0.354, -0.4, -0.2)) == "-0.35 [-0.40, -0.20]"
    for fn in (ch4.ci_text, ch4.verdict_text, ch4.mean_text, ch4.interval_text,
               ch4.gap_text):
        assert fn(None) == "n/a"
        assert fn(None, missing="none here") == "none here"
    gap = pd.Series({"BNN - FP": 0.031, "low": -0.0449, "high": 0.1})
    assert ch4.gap_text(gap) == "0.03 [-0.04, 0.10]"


def test_gap_direction():
    assert ch4.gap_direction(pd.Series({"low": -0.3, "high": -0.1})) == (
        "changes more on the BNN than on the FP twin")
    assert ch4.gap_direction(pd.Series({"low": 0.1, "high": 0.3})) == (
        "changes less on the BNN than on the FP twin")
    assert ch4.gap_direction(pd.Series({"low": -0.1, "high": 0.1})) == (
        "changes about as much on both twins")
    assert ch4.gap_direction(None) == "n/a"


def test_line_texts():
    scores = pd.DataFrame({"score": np.zeros(6)})
    assert ch4.score_count_line(scores, 2, 7, 4, 100) == (
        "6 scores: 2 models x steps x 7 methods x 4 measures x 100 images")
    assert ch4.bn_line(1, 14, 0.12345) == (
        "verdicts that change: 1 of 14; largest |mean difference| at the checkpoint: 0.123")
    assert ch4.timing_line({"cascading": 51.4, "data": 27.6}, 114.2) == (
        "cascading 51 s, data 28 s; page 114 s")


# -- verdict tables -------------------------------------------------------------------------


def test_verdict_row_counts_and_blanks():
    table = _verdicts([("a", "gradient", 0.2, 0.1, 0.3, "pass"),
                       ("a", "gradcam", 0.3, 0.1, 0.6, "inconclusive"),
                       ("b", "gradient", 0.7, 0.6, 0.8, "fail"),
                       ("b", "gradcam", 0.1, 0.0, 0.2, "pass")])
    table["n_nan"] = [0, 3, 0, 12]
    assert ch4.verdict_row(table, "b", "gradient")["mean"] == 0.7
    assert ch4.verdict_row(table, "c", "gradient") is None
    assert ch4.verdict_counts(table) == {"pass": 2, "fail": 1, "inconclusive": 1}
    assert ch4.verdict_count_line(table) == (
        "checkpoint verdicts: 2 pass, 1 fail, 1 inconclusive")
    assert ch4.blank_counts_text(table, "gradcam") == "a 3, b 12"


def test_verdict_table_layout():
    check = _verdicts([("a", "gradient", 0.2, 0.1, 0.3, "pass"),
                       ("a", "gradcam", 0.7, 0.6, 0.8, "fail")])
    full = _verdicts([("a", "gradient", 0.05, 0.0, 0.1, "pass"),
                      ("a", "gradcam", 0.4, 0.3, 0.6, "inconclusive")])
    table = ch4.verdict_table({"checkpoint": check, "full": full}, ["gradient", "gradcam"])
    assert list(table.index) == [("gradient", "a"), ("gradcam", "a")]
    assert list(table.columns) == ["checkpoint", "full"]
    assert table.loc[("gradcam", "a"), "checkpoint"] == "fail (0.70)"
    assert table.loc[("gradient", "a"), "full"] == "pass (0.05)"
    assert table.loc[("gradcam", "a"), "full"] == "inconclusive (0.40)"


def test_verdict_steps_match_rule():
    # step 1 scores 0.9 (fail: CI above 0.5), step 2 scores 0.1 (pass), last step = step 2
    scores = pd.concat([_scores({"m": [0.9] * 5}, step=1), _scores({"m": [0.1] * 5}, step=2)],
                       ignore_index=True).assign(mode="cascading")
    scores["block"] = np.where(scores["step"] == 1, "logits", "stage 3")
    out = ch4.verdict_steps(scores, 0.5, checkpoint=1)
    assert out.loc["checkpoint", "verdict"].tolist() == ["fail"]
    assert out.loc["full", "verdict"].tolist() == ["pass"]
    assert out.loc["checkpoint", "mean"].iloc[0] == pytest.approx(0.9)


# -- paired differences ---------------------------------------------------------------------


def test_paired_gap_pairs_by_image():
    # per image: bnn - fp = -0.4, -0.2, -0.4, -0.4: mean -0.35; rows shuffled on purpose
    scores = _scores({"fp": [0.9, 0.8, 0.7, 0.6], "bnn": [0.5, 0.6, 0.3, 0.2]})
    scores = scores.sample(frac=1.0, random_state=1)
    gap = ch4.paired_gap(scores, "fp", "bnn", "gradient", step=2)
    assert gap[0] == pytest.approx(-0.35)
    assert -0.4 - 1e-12 <= gap[1] <= gap[0] <= gap[2] <= -0.2 + 1e-12


def test_gap_table_and_rows():
    # pair 1: bnn - fp = +0.05 on every image (inside +-0.1): reproduced
    # pair 2: bnn - fp = -0.30 on every image (entirely outside): not reproduced
    scores = _scores({"f1": [0.5, 0.6, 0.7], "b1": [0.55, 0.65, 0.75],
                      "f2": [0.8, 0.9, 0.7], "b2": [0.5, 0.6, 0.4]})
    pairs = [("f1", "b1"), ("f2", "b2")]
    gaps = ch4.gap_table(scores, pairs, ["gradient"], step=2, equiv=0.1)
    assert list(gaps.columns) == ["pair", "method", "BNN - FP", "low", "high", "verdict"]
    assert gaps["pair"].tolist() == ["f1 vs b1", "f2 vs b2"]
    assert gaps["BNN - FP"].tolist() == pytest.approx([0.05, -0.30])
    assert gaps["low"].tolist() == pytest.approx([0.05, -0.30])
    assert gaps["verdict"].tolist() == ["reproduced", "not reproduced"]
    assert ch4.gap_row(gaps, pairs, "gradient", pair=1)["BNN - FP"] == pytest.approx(-0.3)
    assert ch4.gap_row(gaps, pairs, "gradcam") is None
    assert ch4.gap_row(gaps, pairs, "gradient", pair=2) is None
    assert ch4.gap_row(gaps, [], "gradient") is None


def test_largest_gap():
    # gradient: b - a = -0.3 on every image, gradcam: +0.1: the largest |difference| is 0.3
    scores = pd.concat([_scores({"a": [0.8, 0.6], "b": [0.5, 0.3]}, method="gradient"),
                        _scores({"a": [0.2, 0.4], "b": [0.3, 0.5]}, method="gradcam")])
    assert ch4.largest_gap(scores, "a", "b", ["gradient", "gradcam"], step=2) == (
        pytest.approx(0.3))
    assert ch4.largest_gap(scores, "a", "b", ["gradcam"], step=2) == pytest.approx(0.1)


def test_ablation_text_names_the_closer_twin():
    # |bina - bnn| = 0.1 < |binw - bnn| = 0.5: binary activations are closer to the BNN
    means = {"fp": 0.9, "binw": 0.8, "bina": 0.4, "bnn": 0.3}
    table = _verdicts([(f"vgg-{v}-s0", "guided_backprop", m, m - 0.1, m + 0.1, "fail")
                       for v, m in means.items()])
    assert ch4.ablation_text(table) == (
        "its checkpoint similarity is 0.90 on the FP twin, 0.80 with binary weights only, "
        "0.40 with binary activations only and 0.30 on the BNN: the twin with binary "
        "activations only is the closer one to the BNN")
    means["binw"] = 0.35  # now |binw - bnn| = 0.05 < 0.1
    table = _verdicts([(f"vgg-{v}-s0", "guided_backprop", m, m - 0.1, m + 0.1, "fail")
                       for v, m in means.items()])
    assert ch4.ablation_text(table).endswith(
        "the twin with binary weights only is the closer one to the BNN")
    assert ch4.ablation_text(table[table["model"] != "vgg-bina-s0"]) == (
        "the ablation twins are not shipped, so this comparison is skipped")


# -- independent randomization and BN -------------------------------------------------------


def test_independent_mean_text_and_table():
    summary = pd.DataFrame([
        {"model": "m", "method": "gradient", "block": "logits", "metric": SP, "mean": 0.123},
        {"model": "m", "method": "gradient", "block": "stage 1", "metric": SP, "mean": 0.9},
        {"model": "m", "method": "gradient", "block": "logits", "metric": "SSIM", "mean": 0.5},
        {"model": "m", "method": "gradcam", "block": "logits", "metric": SP, "mean": 0.456}])
    assert ch4.independent_mean_text(summary, "m", "gradient", "logits") == "0.12"
    assert ch4.independent_mean_text(summary, "m", "gradcam", "stage 1") == "n/a"
    table = ch4.independent_table(summary, ["gradcam", "gradient"])
    assert list(table.index) == ["gradcam", "gradient"]
    assert table.loc["gradient", ("m", "stage 1")] == pytest.approx(0.9)
    assert table.loc["gradcam", ("m", "logits")] == pytest.approx(0.456)


def _bn_verdicts():
    rows = []
    for step, kept, reset in [("checkpoint", ["pass", "fail"], ["pass", "inconclusive"]),
                              ("full", ["pass", "pass"], ["pass", "pass"])]:
        for model, verdict in [("m", kept), ("m (BN reset)", reset)]:
            for method, v in zip(["gradient", "guided_backprop"], verdict):
                rows.append({"step": step, "model": model, "method": method, "mean": 0.25,
                             "verdict": v})
    return pd.DataFrame(rows).set_index("step")


def test_bn_pairs_and_changes():
    # only guided backprop at the checkpoint changes: fail (kept) -> inconclusive (reset)
    paired = ch4.bn_pairs(_bn_verdicts())
    assert len(paired) == 4
    assert paired.loc[("checkpoint", "guided_backprop"), "kept"] == "fail"
    assert paired.loc[("checkpoint", "guided_backprop"), "reset"] == "inconclusive"
    assert int((paired["kept"] != paired["reset"]).sum()) == 1
    assert ch4.changed_text(paired) == (
        "guided_backprop at the checkpoint (fail kept, inconclusive reset)")
    same = paired.assign(reset=paired["kept"])
    assert ch4.changed_text(same) == "none"


def test_bn_table_layout():
    table = ch4.bn_table(_bn_verdicts(), ["guided_backprop", "gradient"])
    assert list(table.index) == ["guided_backprop", "gradient"]
    assert table.loc["guided_backprop", ("checkpoint", "m (BN reset)")] == (
        "inconclusive (0.25)")


# -- Quantus cross-check --------------------------------------------------------------------


def test_quantus_summary_and_lines():
    check = pd.DataFrame({"layer": ["original", "original", "logits", "logits"],
                          "diff": [0.0, 0.001, -0.003, np.nan],
                          "ours": [1.0, 1.0, 0.2, 0.4]})
    top_down = pd.DataFrame({"layer": ["logits", "logits", "conv1"],
                             "score": [0.9, 0.7, 0.1]})
    q = ch4.quantus_summary(check, top_down, "logits")
    # 2 layer labels, one of them the unrandomized reference; max |diff| 0.003 (NaN skipped)
    assert q["layers"] == 1
    assert q["diff"] == pytest.approx(0.003)
    assert q["ours"] == pytest.approx(0.3)
    assert q["quantus"] == pytest.approx(0.8)
    assert ch4.quantus_lines(q, 20, "logits") == (
        "independent order, 1 layers x 20 images: max |quantus - ours| = 3.0e-03\n"
        "after randomizing logits only: our loop 0.300, quantus top_down 0.800")


# -- data randomization ---------------------------------------------------------------------


def test_data_pairs():
    names = ["vgg-fp-s0", "vgg-bnn-s0", "vgg-bina-s0"]
    shipped = {"vgg-fp-s0-randlabels", "vgg-fp-s1", "vgg-bnn-s1"}
    assert ch4.data_pairs(names, shipped) == [
        ("vgg-fp-s0", "vgg-fp-s0-randlabels", "random labels"),
        ("vgg-fp-s0", "vgg-fp-s1", "seed 1, true labels"),
        ("vgg-bnn-s0", "vgg-bnn-s1", "seed 1, true labels")]
    assert ch4.data_pairs(["vgg-fp-s0"], set()) == []


def test_random_label_rows():
    prov = {"train_images": 10000, "epochs": 60, "train_accuracy": 0.98765,
            "test_accuracy": 0.1, "other": "ignored"}
    row = ch4.random_label_row("vgg-fp-s0-randlabels", prov)
    assert row == {"model": "vgg-fp-s0-randlabels", "train images": 10000, "epochs": 60,
                   "train accuracy (random labels)": 0.98765, "test accuracy": 0.1}
    assert ch4.train_accuracy_text([row], "vgg-fp-s0-randlabels") == "0.988"
    assert ch4.train_accuracy_text([row], "vgg-bnn-s0-randlabels") == "n/a"


def _data_scores():
    """model m: 0.2 on every image vs random labels, 0.6/0.7/0.8 vs the seed-1 twin."""
    rows = [{"model": "m", "method": "gradient", "metric": SP, "image": i,
             "versus": versus, "score": s}
            for versus, vals in [("random labels", [0.2, 0.2, 0.2]),
                                 ("seed 1, true labels", [0.6, 0.7, 0.8])]
            for i, s in enumerate(vals)]
    rows += [{"model": "m", "method": "guided_backprop", "metric": SP, "image": i,
              "versus": "random labels", "score": s} for i, s in enumerate([0.9, 0.8, 0.85])]
    rows += [{"model": "m", "method": "gradcam", "metric": SP, "image": i,
              "versus": "random labels", "score": s} for i, s in enumerate([0.0, 1.0, 0.5])]
    return pd.DataFrame(rows)


def test_summarize_data_verdicts():
    summary = ch4.summarize_data(_data_scores(), threshold=0.5)
    got = {(r["method"], r["versus"]): (r["mean"], r["verdict"])
           for _, r in summary.iterrows()}
    # constant 0.2: CI [0.2, 0.2] below 0.5; 0.85 mean with every value > 0.5: above;
    # 0 / 1 / 0.5: the mean is 0.5 and the CI straddles it
    assert got[("gradient", "random labels")] == (pytest.approx(0.2), "pass")
    assert got[("guided_backprop", "random labels")] == (pytest.approx(0.85), "fail")
    assert got[("gradcam", "random labels")] == (pytest.approx(0.5), "inconclusive")
    assert got[("gradient", "seed 1, true labels")] == (pytest.approx(0.7), "fail")
    row = ch4.data_row(summary, "m", "gradient")
    assert row["versus"] == "random labels" and row["mean"] == pytest.approx(0.2)
    seed = ch4.data_row(summary, "m", "gradient", versus="seed 1, true labels")
    assert seed["mean"] == pytest.approx(0.7)
    assert ch4.data_row(summary, "m", "gradient", metric="SSIM") is None
    shown = ch4.data_table(summary, ["guided_backprop", "gradient"])
    assert list(shown.index) == ["guided_backprop", "gradient"]
    assert shown.loc["gradient", ("m", "seed 1, true labels")] == pytest.approx(0.7)


def test_summarize_data_empty():
    for empty in (None, pd.DataFrame()):
        out = ch4.summarize_data(empty, 0.5)
        assert out.empty
        assert list(out.columns) == ["model", "versus", "method", "metric", "mean", "low",
                                     "high", "verdict"]
        assert ch4.data_row(out, "m", "gradient") is None


def test_seed_minus_random():
    # per image: 0.6 - 0.2, 0.7 - 0.2, 0.8 - 0.2 = 0.4, 0.5, 0.6: mean 0.5
    ci = ch4.seed_minus_random(_data_scores(), "m", "gradient")
    assert ci[0] == pytest.approx(0.5)
    assert 0.4 - 1e-12 <= ci[1] <= ci[0] <= ci[2] <= 0.6 + 1e-12
    assert ch4.seed_minus_random(_data_scores(), "m", "guided_backprop") is None  # no seed-1
    assert ch4.seed_minus_random(None, "m", "gradient") is None


# -- claims ---------------------------------------------------------------------------------


def test_randomization_claim():
    table = _verdicts([("a", "gradient", 0.3, 0.2, 0.4, "pass"),
                       ("a", "guided_backprop", 0.8, 0.7, 0.9, "fail"),
                       ("a", "gradcam", math.nan, math.nan, math.nan, "inconclusive")])
    c = ch4.randomization_claim(table, "Gradient passes", "a", "gradient", "below", 0.5)
    assert (c.claim, c.threshold, c.verdict) == (
        "Gradient passes (a)", Rule.below(0.5).text, "reproduced")
    assert (c.value, c.low, c.high) == (0.3, 0.2, 0.4)
    c = ch4.randomization_claim(table, "Gradient passes", "a", "guided_backprop", "below",
                                0.5)
    assert c.verdict == "not reproduced"  # CI [0.7, 0.9] lies above 0.5
    c = ch4.randomization_claim(table, "GBP fails", "a", "guided_backprop", "above", 0.5)
    assert (c.threshold, c.verdict) == (Rule.above(0.5).text, "reproduced")
    assert ch4.randomization_claim(table, "x", "a", "gradcam", "below", 0.5) is None
    assert ch4.randomization_claim(table, "x", "b", "gradient", "below", 0.5) is None


def test_gap_and_bn_claims():
    row = pd.Series({"BNN - FP": 0.02, "low": -0.05, "high": 0.08, "verdict": "reproduced"})
    c = ch4.gap_claim(row, "Gradient", ("vgg-fp-s0", "vgg-bnn-s0"), 0.1)
    assert c.claim == (
        "Gradient reacts to randomization alike on BNN and FP (vgg-fp-s0 vs vgg-bnn-s0)")
    assert (c.threshold, c.verdict) == (Rule.within(0.1).text, "reproduced")
    c = ch4.bn_claim("vgg-bnn-s0", 14, 0)
    assert (c.value, c.low, c.high, c.verdict) == (0.0, 0.0, 0.0, "reproduced")
    assert c.measure.startswith("number of the 14 verdicts")
    assert ch4.bn_claim("vgg-bnn-s0", 14, 2).verdict == "not reproduced"


def test_data_and_seed_claims():
    row = pd.Series({"mean": 0.2, "low": 0.1, "high": 0.3})
    c = ch4.data_claim(row, "Gradient maps depend on the labels", "vgg-fp-s0", "below", 0.5)
    assert c.claim == "Gradient maps depend on the labels (vgg-fp-s0 vs its random-label twin)"
    assert (c.threshold, c.verdict) == (Rule.below(0.5).text, "reproduced")
    c = ch4.data_claim(row, "GBP does not depend", "vgg-fp-s0", "above", 0.5)
    assert (c.threshold, c.verdict) == (Rule.above(0.5).text, "not reproduced")
    assert ch4.seed_claim((0.5, 0.4, 0.6), "vgg-fp-s0").verdict == "reproduced"
    assert ch4.seed_claim((0.05, -0.1, 0.2), "vgg-fp-s0").verdict == "partly"
    assert ch4.seed_claim((-0.3, -0.4, -0.2), "vgg-fp-s0").verdict == "not reproduced"


# -- re-drawn latent weights ----------------------------------------------------------------


def test_latent_vs_binary_on_a_dense_layer():
    from tensorflow import keras

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs))
    model.get_layer("dense").set_weights([np.array([[0.5, -0.25], [0.75, -1.0]]),
                                          np.zeros(2)])
    out = ch4.latent_vs_binary(model, "dense")
    assert out["latent |w| max, trained"] == pytest.approx(1.0)
    # Glorot-uniform for fan_in = fan_out = 2 draws from [-sqrt(6 / 4), sqrt(6 / 4)]
    assert 0 < out["latent |w| max, re-drawn"] <= math.sqrt(1.5)
    for key in ("share of +1 (re-drawn)", "signs equal to trained"):
        assert out[key] * 4 == pytest.approx(round(out[key] * 4))  # a multiple of 1/4
    # the layer of the original model is untouched
    assert model.get_layer("dense").get_weights()[0][1, 1] == pytest.approx(-1.0)
