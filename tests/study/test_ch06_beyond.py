"""Tests of bnn_saliency.study.ch06_beyond (and DeepLIFT's exact max-pool rule) against independent oracles.

Oracles: closed forms (linear models, the two-ReLU toy of the IG paper, a one-pixel model's
deletion curve), axioms (summation-to-delta through max pooling), an independent run of
``models.randomize_layers`` for the cascade, hand-made tables for the ranking logic, and the
list of claims the claims ledger must contain.
"""
from __future__ import annotations

import json

import larq as lq
import numpy as np
import pandas as pd
import pytest
from conftest import float64, jitter_biases_and_bn
from scipy.special import expit
from tensorflow import keras

from bnn_saliency import methods, models, verdicts
from bnn_saliency.methods import _core
from bnn_saliency.results import RESULTS_DIR
from bnn_saliency.study import ch06_beyond, ledger


def _linear_model(kernel, bias, in_shape):
    """float64 linear model: logits = flatten(x) @ kernel + bias."""
    with float64():
        inp = keras.Input(in_shape)
        out = keras.layers.Dense(np.shape(kernel)[1], name="logits")(keras.layers.Flatten()(inp))
        model = keras.Model(inp, out)
    model.get_layer("logits").set_weights([np.asarray(kernel, float), np.asarray(bias, float)])
    return model


def _pool_net64(sign: bool, seed: int = 11):
    """float64 conv net with max pooling between conv and BN (as in the VGG twins)."""
    with float64():
        keras.utils.set_random_seed(seed)
        act = (lambda: keras.layers.Activation(lq.quantizers.SteSign())) if sign else \
            (lambda: keras.layers.Activation("relu"))
        inp = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(4, 3, padding="same")(inp)
        x = keras.layers.MaxPool2D(2)(x)
        x = keras.layers.BatchNormalization()(x)
        x = act()(x)
        x = keras.layers.Conv2D(6, 3, padding="same")(x)
        x = keras.layers.MaxPool2D(2)(x)
        x = act()(x)
        x = keras.layers.Flatten()(x)
        out = keras.layers.Dense(4)(x)
        model = keras.Model(inp, out)
    return jitter_biases_and_bn(model, seed)


# ------------------------------------------------------------ DeepLIFT through max pooling
@pytest.mark.parametrize("sign", [False, True], ids=["relu", "sign"])
def test_deeplift_maxpool_rescale_sums_to_delta(sign):
    model = _pool_net64(sign)
    rng = np.random.default_rng(12)
    x = rng.normal(size=(6, 8, 8, 3))
    ref = rng.normal(size=(6, 8, 8, 3))
    logits = model(x).numpy() - model(ref).numpy()
    t = np.abs(logits).argmax(axis=1)
    fdiff = logits[np.arange(6), t]
    exact = methods.deeplift_rescale(model, x, t, baseline=ref, maxpool="rescale").astype(np.float64)
    total = exact.reshape(6, -1).sum(axis=1)
    # the attributions are float32: compare with float32 rounding of the sum
    np.testing.assert_allclose(total, fdiff, rtol=1e-5, atol=1e-4)
    # with the gradient rule at max pooling the sum is off: the axiom can fail
    grad_rule = methods.deeplift_rescale(model, x, t, baseline=ref).reshape(6, -1).sum(axis=1)
    assert np.max(np.abs(grad_rule - fdiff)) > 1e-2


def test_deeplift_maxpool_rule_is_validated():
    model = _pool_net64(False)
    with pytest.raises(ValueError, match="maxpool must be one of"):
        methods.deeplift_rescale(model, np.zeros((1, 8, 8, 3)), 0, maxpool="max")


def test_deeplift_on_linear_model_is_exact():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(2 * 2 * 3, 5))
    model = _linear_model(kernel, rng.normal(size=5), (2, 2, 3))
    x = rng.random((4, 2, 2, 3))
    t = np.array([0, 4, 2, 1])
    for maxpool in ("gradient", "rescale"):
        attr = methods.deeplift_rescale(model, x, t, maxpool=maxpool)
        want = x.reshape(4, -1) * kernel[:, t].T  # w_t * (x - 0), elementwise
        # float64 model: the one float32 step rounds each entry (relative error <= 2**-24)
        np.testing.assert_allclose(attr.reshape(4, -1), want, rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------- completeness
def _two_relu_toy():
    # f(x1, x2) = ReLU(x1 - 1) - ReLU(x2) (Sundararajan et al. 2017's example)
    with float64():
        inp = keras.Input((1, 1, 2))
        h = keras.layers.Dense(2, activation="relu", name="h")(keras.layers.Flatten()(inp))
        out = keras.layers.Dense(1, name="out")(h)
        model = keras.Model(inp, out)
    model.get_layer("h").set_weights([np.eye(2), np.array([-1.0, 0.0])])
    model.get_layer("out").set_weights([np.array([[1.0], [-1.0]]), np.zeros(1)])
    return model


def test_relative_completeness_error_closed_form():
    model = _two_relu_toy()
    x = np.array([3.0, 1.0]).reshape(1, 1, 1, 2)
    # one midpoint step: the gradient at (1.5, 0.5) is (1, -1), attr = (3, -1), sum 2, while
    # f(x) - f(0) = 2 - 1 = 1: relative error |2 - 1| / 1 = 1.
    coarse = methods.integrated_gradients(model, x, 0, steps=1)
    assert methods.relative_completeness_error(model, x, 0, coarse)[0] == pytest.approx(1.0)
    fine = methods.integrated_gradients(model, x, 0, steps=96)
    assert methods.relative_completeness_error(model, x, 0, fine)[0] == pytest.approx(0.0, abs=1e-9)
    # nothing to explain (x = baseline): NaN, not a division by zero
    assert np.isnan(methods.relative_completeness_error(model, np.zeros_like(x), 0, np.zeros_like(x))[0])


def test_completeness_table_closed_form():
    model = _two_relu_toy()
    x = np.array([3.0, 1.0]).reshape(1, 1, 1, 2)
    attr = {"one step": {"m": methods.integrated_gradients(model, x, 0, steps=1)},
            "exact": {"m": np.array([2.0, -1.0]).reshape(1, 1, 1, 2)}}  # IG's closed form
    table = ch06_beyond.completeness_table({"m": model}, x, np.array([0]), attr).set_index("method")
    assert list(table.columns) == ["model", "image", "rel_error"]
    assert table.loc["one step", "rel_error"] == pytest.approx(1.0)
    assert table.loc["exact", "rel_error"] == pytest.approx(0.0, abs=1e-12)


def test_ig_convergence_linear_model_is_exact_at_every_step_count():
    rng = np.random.default_rng(1)
    model = _linear_model(rng.normal(size=(12, 3)), rng.normal(size=3), (2, 2, 3))
    x = rng.random((3, 2, 2, 3))
    table = ch06_beyond.ig_convergence(model, x, np.array([0, 1, 2]), [1, 4], baselines=("black",))
    assert list(table.columns) == ["baseline", "steps", "image", "rel_error"]
    assert len(table) == 6 and set(table["steps"]) == {1, 4}
    assert np.nanmax(table["rel_error"]) < 1e-6
    with pytest.raises(ValueError, match="positive integers"):
        ch06_beyond.ig_convergence(model, x, 0, [0])


# ------------------------------------------------------------------------------ timing
def test_time_per_map_with_a_fake_clock():
    ticks = iter(np.arange(0.0, 100.0, 0.5))
    calls = []

    def method(model, images, targets, **kw):
        calls.append(kw)

    out = ch06_beyond.time_per_map(method, None, np.zeros((4, 2, 2, 1)), 0, repeats=3,
                              clock=lambda: next(ticks), flag=1)
    np.testing.assert_allclose(out, [0.5 / 4] * 3)
    assert len(calls) == 4 and calls[0] == {"flag": 1}  # one warm-up call, untimed
    with pytest.raises(ValueError, match="repeats"):
        ch06_beyond.time_per_map(method, None, np.zeros((1, 2, 2, 1)), 0, repeats=0)


def test_time_per_map_real_clock_is_positive():
    model = _two_relu_toy()
    x = np.array([3.0, 1.0]).reshape(1, 1, 1, 2)
    out = ch06_beyond.time_per_map(methods.integrated_gradients, model, x, 0, repeats=2, steps=8)
    assert out.shape == (2,) and np.all(out > 0)


# --------------------------------------------------------------------- maps and scores
def test_ranking_map_and_random_maps():
    m = np.array([[[[1.0, -3.0], [2.0, 0.5]]]])  # (1, 1, 2, 2): 2 pixels, 2 channels
    np.testing.assert_array_equal(ch06_beyond.ranking_map(m), [[[3.0, 2.0]]])
    np.testing.assert_array_equal(ch06_beyond.ranking_map(m, signed=True), [[[-2.0, 2.5]]])
    cam = np.ones((2, 3, 3))
    assert ch06_beyond.ranking_map(cam) is not None and ch06_beyond.ranking_map(cam).shape == (2, 3, 3)
    with pytest.raises(ValueError, match="shape"):
        ch06_beyond.ranking_map(np.ones((2, 3)))
    r = ch06_beyond.random_maps(5, (4, 4), seed=3)
    assert r.shape == (5, 4, 4) and r.min() >= 0 and r.max() < 1
    np.testing.assert_array_equal(r, ch06_beyond.random_maps(5, (4, 4), seed=3))
    assert not np.array_equal(r, ch06_beyond.random_maps(5, (4, 4), seed=4))


def test_perturbation_scores_one_pixel_model_closed_form():
    # logits = (a * x[0, 0, 0], 0); the map points at that pixel. Deletion with a black
    # baseline: p = sigmoid(a) at 0 pixels, 1/2 once the pixel is gone (4 steps of 1 pixel).
    a = 3.0
    kernel = np.zeros((4, 2))
    kernel[0, 0] = a
    model = _linear_model(kernel, np.zeros(2), (2, 2, 1))
    x = np.ones((1, 2, 2, 1))
    good = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    bad = np.array([[[0.0, 1.0], [1.0, 1.0]]])  # the pixel comes last (ties broken at random)
    scores = ch06_beyond.perturbation_scores(model, x, np.array([0]), {"good": good, "bad": bad},
                                        n_steps=4, insertion_baseline="black").set_index("method")
    p = expit(a)
    want_del_good = 0.25 * (p + 0.5) / 2 + 0.75 * 0.5
    want_del_bad = 0.75 * p + 0.25 * (p + 0.5) / 2
    assert scores.loc["good", "deletion"] == pytest.approx(want_del_good)
    assert scores.loc["bad", "deletion"] == pytest.approx(want_del_bad)
    # insertion from black: 1/2 until the pixel arrives, then sigmoid(a)
    assert scores.loc["good", "insertion"] == pytest.approx(0.25 * (0.5 + p) / 2 + 0.75 * p)
    assert scores.loc["good", "ins_minus_del"] == pytest.approx(
        scores.loc["good", "insertion"] - scores.loc["good", "deletion"])
    with pytest.raises(ValueError, match="ranking_map"):
        ch06_beyond.perturbation_scores(model, x, np.array([0]), {"m": np.ones((1, 2, 2, 1))})


# ----------------------------------------------------------------------- ranking logic
def _hand_table():
    # model A: m1 > m2 > m3; model B: m2 > m1 = m3; model C: m3 > m2 > m1
    rows = [("A", "m1", 0.9), ("A", "m2", 0.5), ("A", "m3", 0.1),
            ("B", "m1", 0.2), ("B", "m2", 0.8), ("B", "m3", 0.2),
            ("C", "m1", 0.0), ("C", "m2", 0.3), ("C", "m3", 0.6)]
    return pd.DataFrame(rows, columns=["model", "method", "mean"])


def test_rank_methods_hand_made_table():
    table = _hand_table()
    table["rank"] = ch06_beyond.rank_methods(table)
    got = table.set_index(["model", "method"])["rank"].to_dict()
    assert got == {("A", "m1"): 1, ("A", "m2"): 2, ("A", "m3"): 3,
                   ("B", "m1"): 2, ("B", "m2"): 1, ("B", "m3"): 2,
                   ("C", "m1"): 3, ("C", "m2"): 2, ("C", "m3"): 1}
    lower = ch06_beyond.rank_methods(table, higher_is_better=False)
    assert lower.tolist() == [3, 2, 1, 1, 3, 1, 1, 2, 3]  # B: 0.2 = 0.2 < 0.8
    nan = table.assign(mean=[np.nan, 0.5, 0.1, 0.2, 0.8, 0.2, 0.0, 0.3, 0.6])
    assert ch06_beyond.rank_methods(nan).tolist()[:3] == [3, 1, 2]  # NaN ranks last
    with pytest.raises(KeyError, match="score"):
        ch06_beyond.rank_methods(table, value="score")


def test_ranking_table_hand_made_table():
    wide = ch06_beyond.ranking_table(_hand_table(), {"A": "FP", "B": "FP", "C": "BNN"})
    assert list(wide.columns) == ["A", "B", "C", "mean rank FP", "mean rank BNN"]
    # FP mean ranks: m1 (1+2)/2 = 1.5, m2 (2+1)/2 = 1.5, m3 (3+2)/2 = 2.5; the m1/m2 tie is
    # broken by the next kind's mean rank (BNN: m2 2, m1 3)
    assert list(wide.index) == ["m2", "m1", "m3"]
    assert wide.loc["m2", "mean rank FP"] == 1.5 and wide.loc["m3", "mean rank BNN"] == 1
    only_c = ch06_beyond.ranking_table(_hand_table(), {"C": "BNN"})
    assert list(only_c.index) == ["m3", "m2", "m1"]
    with pytest.raises(ValueError, match="no model"):
        ch06_beyond.ranking_table(_hand_table(), {"D": "FP"})


def test_excess_over_random_hand_made():
    scores = pd.DataFrame({
        "model": ["A"] * 4 + ["B"] * 4,
        "method": ["m", "m", "random", "random"] * 2,
        "image": [0, 1, 0, 1] * 2,
        "ins_minus_del": [0.5, 0.2, 0.1, 0.3, 0.9, 0.9, 0.0, 1.0]})
    out = ch06_beyond.excess_over(scores, by=["model"]).set_index(["model", "image"])["excess"]
    np.testing.assert_allclose(out.loc[("A", 0)], 0.4)
    np.testing.assert_allclose(out.loc[("A", 1)], -0.1)
    np.testing.assert_allclose(out.loc[("B", 1)], -0.1)
    assert len(out) == 4
    with pytest.raises(KeyError, match="reference"):
        ch06_beyond.excess_over(scores, reference="edge", by=["model"])


def test_runner_up_matches_numpy():
    rng = np.random.default_rng(5)
    kernel = rng.normal(size=(12, 6))
    model = _linear_model(kernel, np.zeros(6), (2, 2, 3))
    x = rng.random((20, 2, 2, 3))
    t = rng.integers(0, 6, 20)
    logits = x.reshape(20, -1) @ kernel
    order = np.argsort(-logits, axis=1)
    want = np.where(order[:, 0] == t, order[:, 1], order[:, 0])
    np.testing.assert_array_equal(ch06_beyond.runner_up(model, x, t), want)


# ------------------------------------------------------------------------------ sanity
def test_layer_block_key_pairs_conv_and_bn():
    assert [ch06_beyond.layer_block_key(n) for n in ["logits", "bn6", "conv6", "bn1", "conv1"]] == \
        ["logits", "6", "6", "1", "1"]
    assert [ch06_beyond.layer_block_key(n) for n in ["s3b2_bn", "s3b2_conv", "s3b1_down_bn",
                                                 "stem_conv"]] == ["s3b2", "s3b2", "s3b1", "stem"]


def test_cascading_table_matches_independent_randomization():
    from scipy.stats import spearmanr


    with float64():
        keras.utils.set_random_seed(0)
        inp = keras.Input((4, 4, 2))
        h = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv1")(inp)
        h = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv2")(h)
        out = keras.layers.Dense(3, name="logits")(keras.layers.Flatten()(h))
        model = keras.Model(inp, out)
    x = np.random.default_rng(0).random((5, 4, 4, 2))
    t = np.array([0, 1, 2, 0, 1])

    table = ch06_beyond.cascading_table({"toy": model}, x, t, {"gradient": (methods.gradient, {})})
    assert sorted(table["step"].unique()) == [1, 2, 3]
    assert table.groupby("step")["block"].first().tolist() == ["logits", "conv2", "conv1"]
    # step k's score is the Spearman correlation (max |.| over channels) of the original map
    # with that of an independently randomized copy of the top k blocks
    def view(g):
        return np.abs(g).max(axis=-1).reshape(len(g), -1)

    original = view(methods.gradient(model, x, t))
    for k, layers in enumerate([["logits"], ["logits", "conv2"], ["logits", "conv2", "conv1"]], 1):
        rand = view(methods.gradient(models.randomize_layers(model, layers, seed=0,
                                                       reset_batchnorm=True), x, t))
        want = [spearmanr(a, b)[0] for a, b in zip(original, rand)]
        np.testing.assert_allclose(table[table["step"] == k]["score"].to_numpy(), want,
                                   rtol=1e-5, atol=1e-6)
    assert (table["score"] < 1).all()  # randomizing changes the gradient


# ------------------------------------------------------------------------ claims ledger
def _write(tmp_path, chapter, rows):
    verdicts.save(chapter, [verdicts.Claim(c, s, "m", 0.5, 0.4, 0.6, "t", "partly", "sec-x")
                          for c, s in rows], tmp_path)


def test_missing_claims_hand_made_results(tmp_path):
    _write(tmp_path, "01_gradient", [("Vanilla gradient maps of BNNs and FPNNs look alike",
                                      "Widdicombe & Julier 2020")])
    missing = ledger.missing_claims(tmp_path)
    assert "W&J: gradient maps alike" not in missing
    assert "W&J: optimal noise 2-6% for BNNs" in missing
    assert len(missing) == len(ledger.REQUIRED_CLAIMS) - 1
    # a matching claim text in the wrong chapter does not count
    _write(tmp_path, "02_smoothgrad", [("Vanilla gradient maps of BNNs and FPNNs look alike",
                                        "Widdicombe & Julier 2020")])
    assert len(ledger.missing_claims(tmp_path)) == len(ledger.REQUIRED_CLAIMS) - 1


def test_required_claim_patterns_are_distinct():
    keys = list(ledger.REQUIRED_CLAIMS)
    assert len(keys) == len(set(keys))
    for key, (chapter, source, claim) in ledger.REQUIRED_CLAIMS.items():
        assert chapter in ledger.CHAPTER_DOCS, key


def test_ledger_covers_every_required_claim():
    """Fails, naming the claims, until every chapter has executed and saved its claims."""
    missing = ledger.missing_claims()
    found = sorted(p.stem for p in RESULTS_DIR.glob("*.json"))
    assert not missing, (f"the claims ledger lacks {len(missing)} required claims: {missing}; "
                         f"result files present: {found}")


def test_results_files_are_valid_json():
    """verdicts.load_all reads every book/results/*.json: each must be a chapter's claims file."""
    for path in RESULTS_DIR.glob("*.json"):
        record = json.loads(path.read_text())
        assert isinstance(record, dict) and record.get("chapter") == path.stem \
            and record.get("claims"), (
            f"{path.name} is not a chapter claims file ({{'chapter': {path.stem!r}, 'claims': "
            f"[...]}}); verdicts.load_all and the ledger page would fail on it. Store other "
            "results outside book/results/.")


# ------------------------------------------------------------- loops over many models
def _one_pixel_model(a=3.0):
    kernel = np.zeros((4, 2))
    kernel[0, 0] = a
    return _linear_model(kernel, np.zeros(2), (2, 2, 1))


def test_faithfulness_scores_adds_random_and_matches_closed_form():
    model = _one_pixel_model()
    x = np.ones((1, 2, 2, 1))
    good = np.zeros((1, 2, 2, 1))
    good[0, 0, 0, 0] = -5.0  # a pixel map: abs-max ranks this pixel first
    table = ch06_beyond.faithfulness_scores({"m": model}, x, np.array([0]), {"m": {"good": good}},
                                       n_steps=4, baseline="black")
    assert list(table.columns) == ["model", "method", "image", "deletion", "insertion",
                                   "ins_minus_del"]
    assert set(table["method"]) == {"good", "random"} and set(table["model"]) == {"m"}
    p = expit(3.0)
    got = table.set_index("method").loc["good", "deletion"]
    assert got == pytest.approx(0.25 * (p + 0.5) / 2 + 0.75 * 0.5)


def test_cam_scores_closed_form():
    # O = Y when the map keeps the one pixel the model reads; O = 1/2 when it zeroes it
    a = 2.0
    model = _one_pixel_model(a)
    x = np.ones((2, 2, 2, 1))
    keep = np.array([[1.0, 0.0], [0.0, 0.0]])
    drop = np.array([[0.0, 1.0], [1.0, 1.0]])
    maps = {"m": {"cam": np.stack([keep, drop])}}
    table = ch06_beyond.cam_scores({"m": model}, x, np.array([0, 0]), maps, cams=("cam",))
    cam = table[table["method"] == "cam"].set_index("image")
    y = expit(a)
    assert cam.loc[0, "average_drop"] == pytest.approx(0.0)
    assert cam.loc[1, "average_drop"] == pytest.approx(100 * (y - 0.5) / y)
    assert cam.loc[1, "average_increase"] == 0 and cam.loc[1, "average_gain"] == 0
    assert set(table["method"]) == {"cam", "random"}


def test_agreement_identical_and_roughness_oracles():
    rng = np.random.default_rng(2)
    m = rng.normal(size=(3, 8, 8, 3))
    table = ch06_beyond.agreement({"a": m}, {"a": m.copy()})
    np.testing.assert_allclose(table["score"], 1.0)
    assert set(table["metric"]) == {"Spearman", "SSIM"} and len(table) == 6
    # a constant CAM upsampled stays constant: no variation; a 0/1 checkerboard: 1
    np.testing.assert_allclose(ch06_beyond.roughness(np.full((2, 2, 2), 3.0), (8, 8)), 0.0)
    board = (np.indices((8, 8)).sum(axis=0) % 2).astype(float)
    checker = np.repeat(board[None, :, :, None], 3, axis=-1) * np.array([1.0, -1.0, 0.5])
    np.testing.assert_allclose(ch06_beyond.roughness(checker, (8, 8)), 1.0)
    assert np.isnan(ch06_beyond.roughness(np.zeros((1, 2, 2)), (8, 8))[0])  # blank map


def test_class_sensitivity_gradcam_matches_numpy():
    from scipy.stats import spearmanr

    with float64():
        keras.utils.set_random_seed(3)
        inp = keras.Input((6, 6, 2))
        feat = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
        out = keras.layers.Dense(5, name="logits")(keras.layers.Flatten()(feat))
        model = keras.Model(inp, out)
    x = np.random.default_rng(3).random((4, 6, 6, 2))
    t, o = np.array([0, 1, 2, 3]), np.array([4, 4, 0, 1])
    table = ch06_beyond.class_sensitivity(model, x, t, o, "conv").set_index(["method", "image"])
    acts = keras.Model(inp, feat)(x).numpy()                        # (4, 6, 6, 4)
    w = model.get_layer("logits").get_weights()[0].reshape(6, 6, 4, 5)
    for i in range(4):
        maps = [np.einsum("hwk,k->hw", acts[i], w[..., c].mean(axis=(0, 1))) for c in (t[i], o[i])]
        want = spearmanr(maps[0].ravel(), maps[1].ravel())[0]
        assert table.loc[("gradcam", i), "score"] == pytest.approx(want, abs=1e-6)
    assert set(table.index.get_level_values(0)) == {"gradcam", "guided_backprop", "gradient"}
    same = ch06_beyond.class_sensitivity(model, x, t, t, "conv")
    np.testing.assert_allclose(same["score"], 1.0)  # the same class: identical maps


def test_maps_by_model_uses_precomputed_and_checks_length():
    model = _two_relu_toy()
    x = np.array([3.0, 1.0]).reshape(1, 1, 1, 2)
    sentinel = np.full((1, 1, 1, 2), 7.0)
    methods = {"gradient": {}, "integrated_gradients": {"steps": 8}}
    out = ch06_beyond.maps_by_model({"m": model}, x, np.array([0]), {"m": None}, methods,
                               precomputed={"m": {"integrated_gradients": sentinel}})
    assert out["m"]["integrated_gradients"] is sentinel
    np.testing.assert_allclose(out["m"]["gradient"].ravel(), [1.0, -1.0])  # f = relu(x1-1) - relu(x2)
    with pytest.raises(ValueError, match="precomputed"):
        ch06_beyond.maps_by_model({"m": model}, x, np.array([0]), {"m": None}, methods,
                             precomputed={"m": {"gradient": np.zeros((2, 1, 1, 2))}})


def test_per_image_mean_pools_models():
    table = pd.DataFrame({"model": ["a", "a", "b", "b", "c"], "method": ["g"] * 5,
                          "image": [1, 0, 0, 1, 0], "score": [2.0, 1.0, 3.0, 4.0, 100.0]})
    np.testing.assert_allclose(ch06_beyond.per_image_mean(table, ["a", "b"], method="g"), [2.0, 3.0])
    with pytest.raises(KeyError, match="no rows"):
        ch06_beyond.per_image_mean(table, ["z"])


def test_faithfulness_blur_reference_is_igs_blurred_baseline():
    # the blurred reference of the curves is the image IG's "blur" baseline uses (5 px)
    rng = np.random.default_rng(8)
    kernel = rng.normal(size=(16 * 16 * 3, 3))
    model = _linear_model(kernel, np.zeros(3), (16, 16, 3))
    x = rng.random((2, 16, 16, 3))
    maps = {"m": {"g": rng.random((2, 16, 16))}}
    blur = ch06_beyond.faithfulness_scores({"m": model}, x, np.array([0, 1]), maps, n_steps=4)
    ref = methods.baseline_images(x, "blur", 5.0)
    explicit = ch06_beyond.faithfulness_scores({"m": model}, x, np.array([0, 1]), maps, n_steps=4,
                                          baseline=ref)
    pd.testing.assert_frame_equal(blur, explicit)
