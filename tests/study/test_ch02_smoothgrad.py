"""Tests of bnn_saliency.study.ch02_smoothgrad against independent oracles.

Oracles: closed forms (SmoothGrad of a quadratic: the folded-normal mean of |2(x + e)|;
a linear model's constant |gradient|), hand-computed post-processing, the normal
approximation of the bootstrap distribution of an arg-max and of a ratio of means.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from float_tolerance import assert_float32_close, float32_tolerance
from scipy import stats as sps
from tensorflow import keras

from bnn_saliency import evaluation, methods, models, stats, verdicts
from bnn_saliency.study import ch02_smoothgrad


def quadratic_model():
    """logit0 = x0^2 on images of shape (1, 2, 1); logit1 = 0."""
    inp = keras.Input((1, 2, 1))
    sq = keras.layers.Lambda(lambda t: tf.square(t))(inp)
    out = keras.layers.Dense(2, use_bias=False, name="logits")(keras.layers.Flatten()(sq))
    model = keras.Model(inp, out)
    model.get_layer("logits").set_weights([np.array([[1.0, 0.0], [0.0, 0.0]], np.float32)])
    return model


def test_smoothgrad_halves_quadratic_closed_form():
    model = quadratic_model()
    x0 = 0.2
    x = np.array([[[[x0], [x0 + 1.0]]]], np.float32)  # value range 1 -> sigma = noise
    noises = [0.0, 0.1, 0.4]
    out = ch02_smoothgrad.smoothgrad_halves(model, x, 0, noises, n_per_half=20000, seeds=(1, 2))
    assert out.shape == (2, 3, 1, 1, 2, 1)
    for k, s in enumerate(noises):
        if s == 0:
            want = 2 * x0
        else:  # E|2(x0 + e)|, e ~ N(0, s^2): folded normal mean
            want = 2 * (s * np.sqrt(2 / np.pi) * np.exp(-x0 ** 2 / (2 * s ** 2))
                        + x0 * (1 - 2 * sps.norm.cdf(-x0 / s)))
        for h in range(2):
            assert out[h, k, 0, 0, 0, 0] == pytest.approx(want, rel=0.02)
            assert out[h, k, 0, 0, 1, 0] == 0.0
    assert not np.array_equal(out[0, 1], out[1, 1])  # independent halves
    np.testing.assert_array_equal(out[0, 0], out[1, 0])  # noise 0 shared


def test_smoothgrad_halves_bad_arguments():
    model = quadratic_model()
    x = np.array([[[[0.2], [1.2]]]], np.float32)
    with pytest.raises(ValueError, match="distinct"):
        ch02_smoothgrad.smoothgrad_halves(model, x, 0, [0.1], 2, seeds=(1, 1))
    with pytest.raises(ValueError, match="noises"):
        ch02_smoothgrad.smoothgrad_halves(model, x, 0, [-0.1], 2)
    with pytest.raises(ValueError, match="n_per_half"):
        ch02_smoothgrad.smoothgrad_halves(model, x, 0, [0.1], 0)


def test_display_by_hand():
    m = np.zeros((2, 1, 1, 2, 2), np.float32)  # leading axes (2, 1), maps 1x2 with 2 channels
    m[0, 0, 0, 0] = [-3.0, 1.0]
    m[0, 0, 0, 1] = [0.5, 2.0]
    m[1, 0, 0, 0] = [1.0, 1.0]
    m[1, 0, 0, 1] = [4.0, -5.0]
    got = ch02_smoothgrad.display(m)
    assert got.shape == (2, 1, 1, 2)
    # abs -> channel max: [3, 2] -> minmax [1, 0]; [1, 5] -> [0, 1]
    np.testing.assert_allclose(got[0, 0, 0], [1.0, 0.0])
    np.testing.assert_allclose(got[1, 0, 0], [0.0, 1.0])
    with pytest.raises(ValueError):
        ch02_smoothgrad.display(np.zeros((2, 2)))





def test_ratio_ci_normal_approximation():
    rng = np.random.default_rng(2)
    n = 2000
    a, b = rng.normal(2.0, 1.0, n), rng.normal(4.0, 1.0, n)
    point, low, high = stats.ratio_ci(a, b, n_boot=3000)
    assert point == pytest.approx(a.mean() / b.mean())
    se = np.sqrt(1 / 16 + 4 / 256) / np.sqrt(n)   # delta method
    assert (high - low) / 2 == pytest.approx(1.96 * se, rel=0.15)
    a[:10] = np.nan
    p2, _, _ = stats.ratio_ci(a, b, n_boot=10)
    assert p2 == pytest.approx(np.mean(a[10:]) / np.mean(b[10:]))


@pytest.mark.parametrize("low, high, verdict", [
    (0.02, 0.06, "reproduced"), (0.01, 0.04, "partly"), (0.04, 0.1, "partly"),
    (0.0, 0.01, "not reproduced"), (0.1, 0.2, "not reproduced"), (0.0, 0.5, "partly")])
def test_range_verdict(low, high, verdict):
    assert verdicts.Rule.inside(0.015, 0.08).verdict(low, high) == verdict


def test_forward_matches_keras_and_metrics():
    from bnn_saliency.models.twins import build_twin

    keras.utils.set_random_seed(0)
    model = build_twin("vgg", "bnn", width=4)
    x = np.random.default_rng(0).random((5, 32, 32, 3)).astype(np.float32)
    f = methods.forward(model)
    logits = model(x, training=False).numpy()
    # two float32 paths (tf.function vs eager; batches of 2 and 5): 6 convs + the dense layer
    assert_float32_close(f(x), logits, depth=7)
    assert_float32_close(f(x.astype(np.float64)[:2]), f(x)[:2], depth=7)
    maps = np.random.default_rng(1).random((5, 32, 32))
    kw = dict(n_steps=4, baseline="mean")
    _, dlogit = float32_tolerance(logits, depth=7)  # bound on a logit's float32 error
    np.testing.assert_allclose(evaluation.insertion_auc(f, x, 1, maps, **kw),  # |dp / p| <= 2 dlogit
                               evaluation.insertion_auc(model, x, 1, maps, **kw), rtol=2 * dlogit)


# ------------------------------------------------------------------- the chapter's tables


def linear_model(seed=0, shape=(32, 32, 3), n_out=10):
    """logits = W^T vec(x): its gradient is W[:, target] whatever the input."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape)
    out = keras.layers.Dense(n_out, use_bias=False, name="logits")(keras.layers.Flatten()(inp))
    return keras.Model(inp, out)


def test_smoothgrad_maps_plain_gradient_of_the_quadratic():
    model = quadratic_model()
    x = np.array([[[[0.5], [0.2]]], [[[-0.3], [0.9]]]], np.float32)  # (2, 1, 2, 1)
    out = ch02_smoothgrad.smoothgrad_maps(model, x, np.zeros(2, int), [0, 1], [0.0])
    # |d x0^2 / dx| = (|2 x0|, 0): after min-max every map is (1, 0)
    np.testing.assert_allclose(out, [[[[1.0, 0.0]], [[1.0, 0.0]]]])



def test_quality_table_against_direct_metric_calls():
    model = linear_model()
    rng = np.random.default_rng(1)
    x = rng.random((3, 32, 32, 3)).astype(np.float32)
    y = np.array([1, 4, 7])
    maps = rng.random((2, 3, 32, 32))
    half = rng.random((2, 2, 3, 32, 32))
    random_maps = rng.random((3, 32, 32))
    f = methods.forward(model)
    kw = dict(n_steps=4, baseline="mean")
    table = ch02_smoothgrad.quality_table("m", model, f, x, y, maps, half, [0.0, 0.1],
                                          random_maps=random_maps, insertion=kw,
                                          requantized=ch02_smoothgrad.keyed_requantize(x, [0, 1, 2]))
    assert list(table.columns) == ["model", "noise", "image", "gini", "insertion",
                                   "insertion gain", "stability"]
    rand_auc = evaluation.insertion_auc(f, x, y, random_maps, **kw)
    # the table's forward passes are other batches: float32 logits, sums of 3072 terms x_i w_ik
    # with |x_i| <= 1, and softmax probabilities with |dp / p| <= 2 dlogit
    w_sum = np.abs(model.get_layer("logits").get_weights()[0]).sum(axis=0).max()
    _, dlogit = float32_tolerance(None, depth=1, scale=w_sum)
    for k, level in enumerate([0.0, 0.1]):
        rows = table[table["noise"] == level]
        auc = evaluation.insertion_auc(f, x, y, maps[k], **kw)
        np.testing.assert_allclose(rows["insertion"], auc, rtol=2 * dlogit)
        np.testing.assert_allclose(rows["insertion gain"], auc - rand_auc,
                                   atol=2 * dlogit * np.max(auc + rand_auc))
        np.testing.assert_allclose(rows["gini"], evaluation.gini(maps[k]))
    # level > 0: Spearman of the two half maps
    want = [sps.spearmanr(half[0, 1, i].ravel(), half[1, 1, i].ravel())[0] for i in range(3)]
    np.testing.assert_allclose(table[table["noise"] == 0.1]["stability"], want, atol=1e-12)
    # level 0: a linear model's gradient ignores the re-quantization -> Spearman of the plain
    # map (here the given maps[0]) with |W| displayed
    w = np.abs(model.get_layer("logits").get_weights()[0]).reshape(32, 32, 3, 10)
    for i in range(3):
        disp = w[..., y[i]].max(axis=-1)
        want = sps.spearmanr(maps[0, i].ravel(), disp.ravel())[0]
        assert table[table["noise"] == 0.0]["stability"].iloc[i] == pytest.approx(want, abs=1e-6)
    with pytest.raises(ValueError, match="len\\(levels\\)"):
        ch02_smoothgrad.quality_table("m", model, f, x, y, maps, half, [0.0], random_maps=random_maps,
                                      requantized=x, insertion=kw)






def test_propagation_tables_and_relative_depth():
    from bnn_saliency.models.twins import build_twin

    keras.utils.set_random_seed(2)
    model = build_twin("vgg", "bnn", width=4)
    x = np.random.default_rng(3).random((3, 32, 32, 3)).astype(np.float32)
    rel, flips = ch02_smoothgrad.propagation_tables({"vgg-bnn-s0": model}, x, {"vgg-bnn-s0": [0.02, 0.2]})
    want, want_flips = evaluation.propagation(model, x, [0.02, 0.2],
                                                layers=evaluation.depth_layers(model, "both"))
    np.testing.assert_allclose(rel["rel_change"], want["rel_change"])
    np.testing.assert_allclose(flips["flip_rate"], want_flips["flip_rate"])
    assert set(rel.loc[rel["layer"].str.startswith("act"), "kind"]) == {"act"}
    assert set(rel.loc[rel["layer"].str.startswith("bn"), "kind"]) == {"pre"}
    deep = ch02_smoothgrad.relative_depth(rel)
    assert deep["rdepth"].max() == 1.0 and deep["rdepth"].min() == 0.0


def test_sign_flip_fraction_closed_form():
    a = np.ones(100)
    b = a.copy()
    b[:9] = -1                                   # 9% of the +-1 entries flip
    rel = np.linalg.norm(b - a) / np.linalg.norm(a)
    assert ch02_smoothgrad.sign_flip_fraction([rel, rel]) == pytest.approx(0.09)
    with pytest.raises(ValueError):
        ch02_smoothgrad.sign_flip_fraction([])


def test_randomization_table_self_similarity():
    from bnn_saliency.models.twins import build_twin

    keras.utils.set_random_seed(4)
    model = build_twin("vgg", "fp", width=4)
    rng = np.random.default_rng(5)
    x = rng.random((3, 32, 32, 3)).astype(np.float32)
    y = np.array([0, 1, 2])
    a, b = rng.random((3, 32, 32)), rng.random((3, 32, 32))
    layers = models.randomization_layers_of(model)
    table = ch02_smoothgrad.randomization_table("vgg-fp-s0", model, x, y, a, b, noise=0.5, n_half=2, seed=5,
                                   layers=layers)
    np.testing.assert_allclose(table["vs itself"],
                               [sps.spearmanr(a[i].ravel(), b[i].ravel())[0] for i in range(3)])
    rnd = models.randomize_layers(model, layers, seed=0, reset_batchnorm=True)
    r = ch02_smoothgrad.display(ch02_smoothgrad.smoothgrad_halves(rnd, x, y, [0.5], 2, seeds=(5,)))[0, 0]
    np.testing.assert_allclose(table["vs randomized"],
                               [sps.spearmanr(a[i].ravel(), r[i].ravel())[0] for i in range(3)],
                               atol=1e-6)


def test_start_probabilities_of_an_input_blind_model():
    """A model that ignores its input predicts softmax(bias) on every start image."""
    inp = keras.Input((8, 8, 3))
    dense = keras.layers.Dense(3, kernel_initializer="zeros", name="logits")
    model = keras.Model(inp, dense(keras.layers.Flatten()(inp)))
    bias = np.array([0.5, -1.0, 2.0], np.float32)
    dense.set_weights([np.zeros((192, 3), np.float32), bias])
    x = np.random.default_rng(6).random((4, 8, 8, 3)).astype(np.float32)
    y = np.array([0, 2, 2, 1])
    p = np.exp(bias) / np.exp(bias).sum()
    out = ch02_smoothgrad.start_probabilities(methods.forward(model), x, y, np.random.default_rng(7).random((4, 8, 8)))
    for key in ("blur", "mean", "clean"):
        assert out[key] == pytest.approx(p[y].mean(), rel=1e-5)
