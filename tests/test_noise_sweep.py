"""Tests of bnn_saliency.noise_sweep against independent oracles.

Oracles: closed forms (SmoothGrad of a quadratic: the folded-normal mean of |2(x + e)|;
a linear model's constant |gradient|), hand-computed post-processing, the normal
approximation of the bootstrap distribution of an arg-max and of a ratio of means.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats as sps
from tensorflow import keras

from bnn_saliency import noise_sweep as NS


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
    out = NS.smoothgrad_halves(model, x, 0, noises, n_per_half=20000, seeds=(1, 2))
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
        NS.smoothgrad_halves(model, x, 0, [0.1], 2, seeds=(1, 1))
    with pytest.raises(ValueError, match="noises"):
        NS.smoothgrad_halves(model, x, 0, [-0.1], 2)
    with pytest.raises(ValueError, match="n_per_half"):
        NS.smoothgrad_halves(model, x, 0, [0.1], 0)


def test_display_by_hand():
    m = np.zeros((2, 1, 1, 2, 2), np.float32)  # leading axes (2, 1), maps 1x2 with 2 channels
    m[0, 0, 0, 0] = [-3.0, 1.0]
    m[0, 0, 0, 1] = [0.5, 2.0]
    m[1, 0, 0, 0] = [1.0, 1.0]
    m[1, 0, 0, 1] = [4.0, -5.0]
    got = NS.display(m)
    assert got.shape == (2, 1, 1, 2)
    # abs -> channel max: [3, 2] -> minmax [1, 0]; [1, 5] -> [0, 1]
    np.testing.assert_allclose(got[0, 0, 0], [1.0, 0.0])
    np.testing.assert_allclose(got[1, 0, 0], [0.0, 1.0])
    with pytest.raises(ValueError):
        NS.display(np.zeros((2, 2)))


def test_argmax_bootstrap_clear_peaks_and_paired_difference():
    grid = [0.0, 0.02, 0.1, 0.5]
    rng = np.random.default_rng(0)
    a = np.tile([0.1, 0.9, 0.3, 0.0], (50, 1)) + rng.normal(scale=0.01, size=(50, 4))
    b = np.tile([0.1, 0.2, 0.8, 0.0], (50, 1)) + rng.normal(scale=0.01, size=(50, 4))
    res = NS.argmax_bootstrap({"a": a, "b": b}, grid, n_boot=300)
    assert tuple(res.interval("a")) == (0.02, 0.02, 0.02)
    assert tuple(res.interval("b")) == (0.1, 0.1, 0.1)
    assert res.difference("a", "b") == pytest.approx((-0.08, -0.08, -0.08))
    low = NS.argmax_bootstrap({"a": -a}, grid, direction="lower", n_boot=50)
    assert low.points["a"] == 0.02
    probs = res.probabilities()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert probs.loc["a", 0.02] == 1.0


def test_argmax_bootstrap_distribution_matches_normal_approximation():
    # two grid values; level 1 wins a replicate iff the resampled mean of d = s1 - s0 > 0
    n, mu, sd = 400, 0.05, 1.0          # mean / standard error = 1
    d = np.random.default_rng(1).normal(size=n)
    d = (d - d.mean()) / d.std() * sd + mu
    curves = np.stack([np.zeros(n), d], axis=1)
    res = NS.argmax_bootstrap({"m": curves}, [0.0, 1.0], n_boot=4000, seed=3)
    p_boot = float(np.mean(res.boots[:, 0] == 1.0))
    assert p_boot == pytest.approx(sps.norm.cdf(mu / (sd / np.sqrt(n))), abs=0.03)
    assert res.points["m"] == 1.0


def test_argmax_bootstrap_ties_nan_and_errors():
    grid = [1.0, 2.0, 3.0]
    tie = np.tile([0.5, 0.5, 0.1], (10, 1))
    assert NS.argmax_bootstrap({"t": tie}, grid, n_boot=20).points["t"] == 1.0
    nan = np.tile([np.nan, 0.2, 0.1], (10, 1))
    assert NS.argmax_bootstrap({"n": nan}, grid, n_boot=20).points["n"] == 2.0
    with pytest.raises(ValueError, match="shape"):
        NS.argmax_bootstrap({"a": tie, "b": tie[:5]}, grid)
    with pytest.raises(ValueError, match="direction"):
        NS.argmax_bootstrap({"a": tie}, grid, direction="max")


def test_ratio_ci_normal_approximation():
    rng = np.random.default_rng(2)
    n = 2000
    a, b = rng.normal(2.0, 1.0, n), rng.normal(4.0, 1.0, n)
    point, low, high = NS.ratio_ci(a, b, n_boot=3000)
    assert point == pytest.approx(a.mean() / b.mean())
    se = np.sqrt(1 / 16 + 4 / 256) / np.sqrt(n)   # delta method
    assert (high - low) / 2 == pytest.approx(1.96 * se, rel=0.15)
    a[:10] = np.nan
    p2, _, _ = NS.ratio_ci(a, b, n_boot=10)
    assert p2 == pytest.approx(np.mean(a[10:]) / np.mean(b[10:]))


@pytest.mark.parametrize("low, high, verdict", [
    (0.02, 0.06, "reproduced"), (0.01, 0.04, "partly"), (0.04, 0.1, "partly"),
    (0.0, 0.01, "not reproduced"), (0.1, 0.2, "not reproduced"), (0.0, 0.5, "partly")])
def test_range_verdict(low, high, verdict):
    assert NS.range_verdict(low, high, 0.015, 0.08) == verdict


def test_compiled_forward_matches_keras_and_metrics():
    from bnn_saliency import metrics
    from bnn_saliency.twins import build_twin

    keras.utils.set_random_seed(0)
    model = build_twin("vgg", "bnn", width=4)
    x = np.random.default_rng(0).random((5, 32, 32, 3)).astype(np.float32)
    f = NS.compiled_forward(model)
    np.testing.assert_allclose(f(x), model(x, training=False).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f(x.astype(np.float64)[:2]), f(x)[:2], rtol=1e-6)
    maps = np.random.default_rng(1).random((5, 32, 32))
    kw = dict(n_steps=4, baseline="mean")
    np.testing.assert_allclose(metrics.insertion_auc(f, x, 1, maps, **kw),
                               metrics.insertion_auc(model, x, 1, maps, **kw), rtol=1e-5)
