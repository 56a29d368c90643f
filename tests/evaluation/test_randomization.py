"""Tests for bnn_saliency.evaluation.randomization against independent oracles: hand-computed maps of a linear
model, axioms of the randomization loop (nothing randomized -> similarity 1; a layer that does
not reach the output changes nothing; cascading step 1 == independent step 1), a second
implementation of the last cascade step, and quantus.MPRT."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from float_tolerance import assert_float32_close
from scipy import stats as sps
from tensorflow import keras

from bnn_saliency import evaluation, methods, models, verdicts
from bnn_saliency.models import imagenet
from bnn_saliency.models.twins import build_twin
from bnn_saliency.study import ch04_sanity

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _free_keras_state():
    yield
    keras.backend.clear_session()


def _images(n=6, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, size, size, 3)).astype(np.float32)


def _jitter_weights(model, seed):
    """Non-default BN statistics and weights, so that 'kept' and 'reset' BN differ."""
    rng = np.random.default_rng(seed)
    new = []
    for w in model.weights:
        if "moving_variance" in w.name:
            new.append(rng.uniform(0.5, 2.0, w.shape).astype(np.float32))
        elif "moving_mean" in w.name or "beta" in w.name:
            new.append(rng.normal(0, 0.2, w.shape).astype(np.float32))
        elif "gamma" in w.name:
            new.append(rng.uniform(0.5, 1.5, w.shape).astype(np.float32))
        else:
            new.append(w.numpy())
    model.set_weights(new)


@pytest.fixture(scope="module")
def twin():
    keras.utils.set_random_seed(0)
    with imagenet._float32_policy():
        net = build_twin("vgg", "bnn", width=4)
    _jitter_weights(net, 1)
    return net


def _linear_model(h=4, w=4, c=3, k=3, seed=0):
    """logits = W^T flatten(x) + b: the input gradient of class t is W[:, t] exactly."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((h, w, c))
    out = keras.layers.Dense(k, name="logits")(keras.layers.Flatten(name="flat")(inp))
    return keras.Model(inp, out)


def _fixed_randomizer(values):
    """A randomizer that sets known weights (an oracle for the loop)."""
    def randomize(model, layer_names, seed=0, reset_batchnorm=False):
        copy = models.randomize_layers(model, [], seed=0)
        for name in layer_names:
            copy.get_layer(name).set_weights(values[name])
        return copy
    return randomize


# ------------------------------------------------------------------------------ views
def test_map_views_match_numpy_and_upsample_cams():
    maps = RNG.normal(size=(3, 5, 5, 3)).astype(np.float32)
    views = evaluation.map_views(maps)
    np.testing.assert_array_equal(views["abs"], np.abs(maps).max(-1))  # abs and max are exact
    assert_float32_close(views["signed"], maps.sum(-1), depth=1)  # float64 vs float32 sums
    cam = np.tile(np.array([[-1.0, 2.0]], np.float32), (2, 2, 1))  # (2, 2, 2): columns -1, 2
    up = evaluation.map_views(cam, (4, 4))
    assert up["abs"].shape == (2, 4, 4)
    # bilinear upsampling of a constant column keeps the column values at the borders
    np.testing.assert_allclose(up["signed"][:, :, 0], -1.0, atol=1e-6)
    np.testing.assert_allclose(up["signed"][:, :, -1], 2.0, atol=1e-6)
    np.testing.assert_allclose(up["abs"], np.abs(up["signed"]))
    with pytest.raises(ValueError, match="pixel maps or"):
        evaluation.map_views(np.zeros((2, 3)))


def test_cached_hog_equals_metrics_hog_pearson():
    """The reference-descriptor cache gives evaluation.hog_pearson's values (NaN for constant maps)."""
    a = np.abs(RNG.normal(size=(5, 32, 32))).astype(np.float32)
    b = np.abs(RNG.normal(size=(5, 32, 32))).astype(np.float32)
    b[2] = 0.0  # a blank map
    ref, other = {"m": {"abs": a, "signed": a}}, {"m": {"abs": b, "signed": b}}
    hog = {"HOG corr.": evaluation.SIMILARITY_MEASURES["HOG corr."]}
    cache = {}
    for _ in range(2):  # the second call uses the cached reference descriptors
        got = evaluation.score_similarity(ref, other, hog, cache)["score"].to_numpy()
        np.testing.assert_allclose(got, evaluation.hog_pearson(a, b), atol=1e-12, equal_nan=True)
    assert np.isnan(got[2]) and len(cache) == 1


# ------------------------------------------------------------------------------ blocks
def test_cascade_blocks_group_twin_layers_by_stage():
    vgg = ["logits", "bn6", "conv6", "bn5", "conv5", "bn4", "conv4", "bn3", "conv3", "bn2",
           "conv2", "bn1", "conv1"]
    blocks = evaluation.cascade_blocks(vgg, key=ch04_sanity.twin_stage)
    assert blocks == [("logits", ["logits"]), ("stage 3", ["bn6", "conv6", "bn5", "conv5"]),
                      ("stage 2", ["bn4", "conv4", "bn3", "conv3"]),
                      ("stage 1", ["bn2", "conv2", "bn1", "conv1"])]
    with imagenet._float32_policy():
        resnet = build_twin("resnet", "bnn", width=4)
    layers = models.randomization_layers_of(resnet)
    blocks = evaluation.cascade_blocks(layers, key=ch04_sanity.twin_stage)
    assert [b for b, _ in blocks] == ["logits", "stage 3", "stage 2", "stage 1", "stem"]
    assert sorted(n for _, ls in blocks for n in ls) == sorted(layers)
    assert "s3b1_down_conv" in dict(blocks)["stage 3"]
    assert dict(blocks)["stem"] == ["stem_bn", "stem_conv"]


def test_cascade_blocks_other_groupings_and_errors():
    layers = [f"l{i}" for i in range(10)]
    assert evaluation.cascade_blocks(layers) == [(n, [n]) for n in layers]
    blocks = evaluation.cascade_blocks(layers, n_blocks=4)
    assert blocks[0] == ("l0", ["l0"])
    assert [ls for _, ls in blocks[1:]] == [["l1", "l2", "l3"], ["l4", "l5", "l6"],
                                           ["l7", "l8", "l9"]]
    assert evaluation.cascade_blocks(layers, n_blocks=1) == [("all", layers)]
    with pytest.raises(ValueError, match="not contiguous"):
        evaluation.cascade_blocks(["a1", "b1", "a2"], key=lambda n: n[0])
    with pytest.raises(ValueError, match="no layers"):
        evaluation.cascade_blocks([])
    with pytest.raises(ValueError, match="twin"):
        ch04_sanity.twin_stage("dense_7")


# ------------------------------------------------------------------------------ the loop
def test_linear_model_by_hand():
    """Randomizing the only layer of a linear model: maps are the weight columns, so the
    similarity is Spearman(|W_t|, |W'_t|) computed directly with scipy."""
    model = _linear_model()
    x = _images(5, size=4)
    t = np.array([0, 1, 2, 0, 1])
    W, b = model.get_layer("logits").get_weights()
    W2 = np.random.default_rng(3).normal(size=W.shape).astype(np.float32)
    suite = {"gradient": methods.gradient, "gradient_x_input": methods.gradient_x_input}
    spearman = {k: evaluation.SIMILARITY_MEASURES[k] for k in ("Spearman |map|", "Spearman signed")}
    run = evaluation.cascading(model, x, t, suite, [("logits", ["logits"])], metrics=spearman,
                           randomizer=_fixed_randomizer({"logits": [W2, b]}))
    got = run.scores.set_index(["step", "method", "metric", "image"])["score"]
    for i in range(5):
        g_old, g_new = W[:, t[i]].reshape(4, 4, 3), W2[:, t[i]].reshape(4, 4, 3)
        for method, (a, c) in {"gradient": (g_old, g_new),
                               "gradient_x_input": (x[i] * g_old, x[i] * g_new)}.items():
            want_abs = sps.spearmanr(np.abs(a).max(-1).ravel(), np.abs(c).max(-1).ravel())[0]
            want_signed = sps.spearmanr(a.sum(-1).ravel(), c.sum(-1).ravel())[0]
            assert got[(1, method, "Spearman |map|", i)] == pytest.approx(want_abs, abs=1e-6)
            assert got[(1, method, "Spearman signed", i)] == pytest.approx(want_signed, abs=1e-6)
            assert got[(0, method, "Spearman |map|", i)] == pytest.approx(1.0, abs=1e-12)
    # the reference maps are the weight columns
    assert_float32_close(run.reference["gradient"]["signed"][0],
                         W[:, t[0]].reshape(4, 4, 3).sum(-1), depth=1)


def test_nothing_randomized_gives_similarity_one(twin):
    x, t = _images(4), np.array([0, 1, 2, 3])
    methods = ch04_sanity.method_suite("conv6", ("gradient", "gradcam", "guided_backprop"))
    # an empty block, and a BN layer that is kept (reset_batchnorm=False): nothing changes
    run = evaluation.cascading(twin, x, t, methods, [("none", []), ("bn6 kept", ["bn6"])])
    scores = run.scores.dropna()
    assert set(scores["step"]) == {0, 1, 2}
    np.testing.assert_allclose(scores["score"], 1.0, atol=1e-6)
    for step in (1, 2):
        assert run.steps[step][2] == ([] if step == 1 else ["bn6"])


def test_layer_that_does_not_reach_the_output_changes_nothing():
    """A dense branch multiplied by zero: re-drawing it leaves every map exactly as it was;
    re-drawing the live layer does change them."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
    flat = keras.layers.Flatten(name="flat")(h)
    live = keras.layers.Dense(3, name="live")(flat)
    dead = keras.layers.Dense(3, name="dead")(flat)
    out = keras.layers.Lambda(lambda z: z[0] + 0.0 * z[1], name="mix")([live, dead])
    model = keras.Model(inp, out)
    x, t = _images(4, size=8), np.array([0, 1, 2, 0])
    methods = ch04_sanity.method_suite("conv", ("gradient", "gradcam", "integrated_gradients"),
                                  ig_steps=4)
    run = evaluation.independent(model, x, t, methods, [("dead", ["dead"]), ("live", ["live"])])
    s = run.scores.set_index("block")
    np.testing.assert_allclose(s.loc["dead", "score"], 1.0, atol=1e-6)
    live_abs = s.loc["live"]
    assert live_abs[live_abs["metric"] == "Spearman |map|"]["score"].mean() < 0.99


def test_cascading_matches_direct_computation_and_independent(twin):
    x, t = _images(5), np.array([0, 1, 2, 3, 4])
    methods = ch04_sanity.method_suite("conv6", ("gradient", "guided_gradcam"))
    layers = models.randomization_layers_of(twin)
    blocks = evaluation.cascade_blocks(layers, key=ch04_sanity.twin_stage)
    before = [w.copy() for w in twin.get_weights()]
    casc = evaluation.cascading(twin, x, t, methods, blocks, seed=3, reset_batchnorm=True, keep=[1, 4])
    ind = evaluation.independent(twin, x, t, methods, blocks, seed=3, reset_batchnorm=True)
    again = evaluation.independent(twin, x, t, methods, blocks[:2], seed=3, reset_batchnorm=True,
                               reference=casc.reference)
    expected = ind.scores[ind.scores["step"].between(1, 2)].reset_index(drop=True)
    pd.testing.assert_frame_equal(again.scores, expected)
    with pytest.raises(ValueError, match="reference must hold"):
        evaluation.independent(twin, x[:2], t[:2], methods, blocks, reference=casc.reference)
    for a, b in zip(before, twin.get_weights()):  # the caller's model is untouched
        np.testing.assert_array_equal(a, b)
    # step 1 randomizes the same block in both modes
    c1 = casc.scores[casc.scores["step"] == 1].reset_index(drop=True)
    i1 = ind.scores[ind.scores["step"] == 1].reset_index(drop=True)
    pd.testing.assert_series_equal(c1["score"], i1["score"], atol=1e-6)
    assert casc.steps[-1][2] == layers and ind.steps[-1][2] == blocks[-1][1]
    # last cascade step == maps of randomize_layers(all layers), scored directly
    rand = models.randomize_layers(twin, layers, seed=3, reset_batchnorm=True)
    for name, fn in methods.items():
        a, c = fn(twin, x, t), fn(rand, x, t)
        want = evaluation.spearman_abs(np.abs(a).max(-1), np.abs(c).max(-1))
        got = casc.scores.query("step == 4 and method == @name and metric == 'Spearman |map|'")
        np.testing.assert_allclose(got["score"].to_numpy(), want, atol=1e-5)
        assert_float32_close(casc.kept[(4, name)], np.abs(c).max(-1)[[1, 4]], depth=7)
    assert set(casc.scores.columns) == set(evaluation.COLUMNS)
    assert len(casc.scores) == 5 * 2 * 4 * 5  # steps x methods x metrics x images


def test_loop_rejects_bad_input(twin):
    x, t = _images(2), np.array([0, 1])
    suite = {"gradient": methods.gradient}
    with pytest.raises(ValueError, match="methods is empty"):
        evaluation.cascading(twin, x, t, {}, [("logits", ["logits"])])
    with pytest.raises(ValueError, match="blocks is empty"):
        evaluation.cascading(twin, x, t, suite, [])
    with pytest.raises(ValueError, match="more than one block"):
        evaluation.cascading(twin, x, t, suite, [("a", ["logits"]), ("b", ["logits"])])
    with pytest.raises(ValueError, match="keep indices"):
        evaluation.cascading(twin, x, t, suite, [("a", ["logits"])], keep=[5])
    with pytest.raises(KeyError, match="conv9"):
        evaluation.cascading(twin, x, t, suite, [("a", ["conv9"])])
    with pytest.raises(KeyError, match="different methods"):
        evaluation.score_similarity({"a": {}}, {"b": {}})


# ------------------------------------------------------------------------------ summaries
def _synthetic_scores():
    rng = np.random.default_rng(0)
    rows = []
    for method, level in {"low": 0.1, "high": 0.9, "mid": 0.5}.items():
        for step in (0, 1, 2):
            score = 1.0 if step == 0 else level + rng.normal(0, 0.2 if method == "mid" else 0.01, 100)
            rows.append(pd.DataFrame({"model": "m", "mode": "cascading", "step": step,
                                      "block": f"b{step}", "method": method,
                                      "metric": "Spearman |map|", "image": np.arange(100),
                                      "score": score}))
    return pd.concat(rows, ignore_index=True)


def test_verdicts_follow_the_stated_rule():
    scores = _synthetic_scores()
    v = ch04_sanity.verdicts(scores, threshold=0.5).set_index("method")
    assert v.loc["low", "verdict"] == "pass" and v.loc["low", "high"] < 0.5
    assert v.loc["high", "verdict"] == "fail" and v.loc["high", "low"] > 0.5
    assert v.loc["mid", "verdict"] == "inconclusive"
    # an explicit step: step 0 (nothing randomized, similarity 1) always fails
    v0 = ch04_sanity.verdicts(scores, threshold=0.5, step=0).set_index("method")
    assert (v0["verdict"] == "fail").all()
    summary = ch04_sanity.summarize_steps(scores)
    assert len(summary) == 9 and set(summary["block"]) == {"b0", "b1", "b2"}
    with pytest.raises(ValueError, match="no cascading scores"):
        ch04_sanity.verdicts(scores, metric="SSIM")


def test_judge_within():
    assert verdicts.Rule.within(0.1).verdict(-0.05, 0.08) == "reproduced"
    assert verdicts.Rule.within(0.1).verdict(0.02, 0.2) == "partly"
    assert verdicts.Rule.within(0.1).verdict(0.12, 0.3) == "not reproduced"
    assert verdicts.Rule.within(0.1).verdict(-0.4, -0.2) == "not reproduced"
    with pytest.raises(ValueError):
        verdicts.Rule.within(0.0).verdict(0.0, 0.1)
    with pytest.raises(ValueError):
        verdicts.Rule.within(0.1).verdict(0.2, 0.1)


# ------------------------------------------------------------------------------ Quantus
def _small_convnet():
    keras.utils.set_random_seed(2)
    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(inp)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Activation("relu", name="act")(h)
    out = keras.layers.Dense(3, name="logits")(keras.layers.Flatten(name="flat")(h))
    model = keras.Model(inp, out)
    _jitter_weights(model, 3)
    return model


def test_quantus_mprt_agrees_with_our_loop():
    """quantus.MPRT (independent order) equals our independent loop with quantus' permutation."""
    model = _small_convnet()
    x, t = _images(6, size=8), np.array([0, 1, 2, 0, 1, 2])
    table = evaluation.quantus_crosscheck(model, x, t, methods.gradient)
    assert list(dict.fromkeys(table["layer"])) == ["original", "conv", "bn", "logits"]
    assert table[["quantus", "ours"]].notna().all().all()
    np.testing.assert_allclose(table["quantus"], table["ours"], atol=1e-6)
    np.testing.assert_allclose(table.loc[table["layer"] == "original", "ours"], 1.0, atol=1e-9)
    # and the permutation is what quantus does: a first-axis shuffle seeded with seed + 1
    perm = evaluation.quantus_permutation(model, ["logits"], seed=42)
    np.random.seed(43)
    want = np.random.permutation(model.get_layer("logits").get_weights()[0])
    np.testing.assert_array_equal(perm.get_layer("logits").get_weights()[0], want)
    with pytest.raises(ValueError, match="reset_batchnorm"):
        evaluation.quantus_permutation(model, ["bn"], reset_batchnorm=True)


def test_quantus_explain_func_accepts_channel_first():
    model = _small_convnet()
    x, t = _images(3, size=8), np.array([0, 1, 2])
    explain = evaluation.quantus_explain_func(methods.gradient)
    last = explain(model, x, t)
    first = explain(model, np.transpose(x, (0, 3, 1, 2)), t)
    np.testing.assert_array_equal(last, first)
    np.testing.assert_allclose(last, np.abs(methods.gradient(model, x, t)).max(-1))
