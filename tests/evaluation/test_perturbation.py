"""Tests of bnn_saliency.evaluation.perturbation against independent oracles.

Oracles: closed forms (a linear layer's relative change ||W e|| / ||W x|| and its expected
RMS sigma ||W||_F / ||W x||; a sign layer's 2 sqrt(k / n) for k flipped units; the flip
probability Phi(-c / sigma) of a one-feature classifier), an identity layer (amplification
exactly 1) and methods.smoothgrad's own noisy inputs (recorded through a callable method).
"""
from __future__ import annotations

import larq as lq
import numpy as np
import pytest
from float_tolerance import assert_float32_close
from scipy import stats as sps
from tensorflow import keras

from bnn_saliency import evaluation, methods
from bnn_saliency.models.twins import build_twin


def linear_model(seed=0, shape=(4, 4, 2), units=3):
    inp = keras.Input(shape)
    flat = keras.layers.Flatten(name="flat")(inp)
    out = keras.layers.Dense(units, use_bias=False, name="lin")(flat)
    model = keras.Model(inp, out)
    w = np.random.default_rng(seed).normal(size=(int(np.prod(shape)), units)).astype(np.float32)
    model.get_layer("lin").set_weights([w])
    return model, w.astype(np.float64)


def sign_model(n=8):
    inp = keras.Input((1, 1, n))
    s = keras.layers.Activation(lq.quantizers.SteSign(), name="sign")(inp)
    out = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(s))
    return keras.Model(inp, out)


def images(n, shape=(4, 4, 2), seed=0):
    return np.random.default_rng(seed).random((n,) + shape).astype(np.float32)


# ---------------------------------------------------------------- depth_layers
def test_depth_layers_vgg_and_resnet_twins():
    vgg = build_twin("vgg", "bnn", width=4)
    assert evaluation.depth_layers(vgg) == [f"act{i}" for i in range(1, 7)] + ["logits"]
    assert evaluation.depth_layers(vgg, "bn") == [f"bn{i}" for i in range(1, 7)] + ["logits"]
    assert evaluation.depth_layers(vgg, "both") == [f"{k}{i}" for i in range(1, 7)
                                           for k in ("bn", "act")] + ["logits"]
    res = build_twin("resnet", "fp", width=4)
    names = evaluation.depth_layers(res)
    assert names[0] == "stem_bn" and names[-2:] == ["head_act", "logits"]
    assert names[1:-2] == ["s1b1_add", "s1b2_add", "s2b1_add", "s2b2_add", "s3b1_add", "s3b2_add"]


def test_depth_layers_rejects_other_models():
    model, _ = linear_model()
    with pytest.raises(ValueError, match="pass the layer names"):
        evaluation.depth_layers(model)
    with pytest.raises(ValueError, match="which"):
        evaluation.depth_layers(build_twin("vgg", "fp", width=4), "conv")


# ---------------------------------------------------------------- noisy copies
class Recorder:
    """A saliency 'method' that records the inputs smoothgrad sends it."""

    def __init__(self):
        self.seen = []

    def __call__(self, model, imgs, targets, batch_size=64):
        self.seen.append(np.array(imgs))
        return np.zeros_like(imgs)


@pytest.mark.parametrize("value_range", [None, (0.0, 2.0)])
def test_noisy_copies_are_the_inputs_smoothgrad_uses(value_range):
    inp = keras.Input((4, 4, 3))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(inp)))
    x = images(5, (4, 4, 3), seed=3)
    rec = Recorder()
    methods.smoothgrad(model, x, 0, method=rec, noise=0.15, n_samples=7, seed=11,
                        value_range=value_range)
    seen = np.concatenate(rec.seen).reshape(5, 7, 4, 4, 3)
    mine = evaluation.noisy_copies(x, 0.15, 7, seed=11, value_range=value_range)
    np.testing.assert_array_equal(mine, seen)


def test_noisy_copies_scale_and_common_random_numbers():
    x = images(3, seed=1)
    a = evaluation.noisy_copies(x, 0.1, 2000, seed=4, value_range=(0.0, 1.0))
    assert np.std(a - x[:, None]) == pytest.approx(0.1, rel=0.02)
    b = evaluation.noisy_copies(x, 0.3, 2000, seed=4, value_range=(0.0, 1.0))
    np.testing.assert_allclose(b - x[:, None], 3 * (a - x[:, None]), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(evaluation.noisy_copies(x, 0.0, 2, seed=0), np.repeat(x[:, None], 2, 1))
    with pytest.raises(ValueError, match="noise"):
        evaluation.noisy_copies(x, -0.1, 2)
    with pytest.raises(ValueError, match="n_draws"):
        evaluation.noisy_copies(x, 0.1, 0)
    with pytest.raises(TypeError, match="float"):
        evaluation.noisy_copies(x.astype(np.uint8), 0.1, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value_range", [None, (0, 255)])
def test_noisy_copies_bit_for_bit_the_documented_draws(dtype, value_range):
    """Oracle: the draws written out as a loop over images and copies (one float32 image of
    standard normals per copy from default_rng(seed), scaled by float32(noise * spread))."""
    x = images(4, (3, 5, 2), seed=8).astype(dtype) * np.array([1, 3, 0.5, 2], dtype)[:, None, None, None]
    got = evaluation.noisy_copies(x, 0.07, 3, seed=21, value_range=value_range)
    rng = np.random.default_rng(21)
    assert got.dtype == dtype and got.shape == (4, 3, 3, 5, 2)
    for i, img in enumerate(x):
        spread = float(value_range[1] - value_range[0]) if value_range else float(img.max() - img.min())
        for d in range(3):
            eps = rng.standard_normal(img.shape, dtype=np.float32)
            np.testing.assert_array_equal(got[i, d], img + np.float32(0.07 * spread) * eps)
    # blocks drawn one after the other from one generator continue the same stream
    gen = np.random.default_rng(21)
    parts = [methods.draw_noisy_copies(x[s], 0.07, 3, gen, value_range) for s in (slice(0, 1), slice(1, 4))]
    np.testing.assert_array_equal(np.concatenate(parts), got)


# ---------------------------------------------------------------- relative change
def test_relative_change_linear_layer_exact():
    model, w = linear_model(seed=2)
    x = images(4, seed=5)
    e = np.random.default_rng(6).normal(scale=0.05, size=(4, 3, 4, 4, 2)).astype(np.float32)
    rel = evaluation.relative_change(model, x, x[:, None] + e, ["flat", "lin"], batch_size=5)
    xf = x.reshape(4, -1).astype(np.float64)
    ef = (x[:, None] + e).reshape(4, 3, -1).astype(np.float64) - xf[:, None]
    want_lin = np.linalg.norm(ef @ w, axis=2) / np.linalg.norm(xf @ w, axis=1)[:, None]
    want_in = np.linalg.norm(ef, axis=2) / np.linalg.norm(xf, axis=1)[:, None]
    assert rel.shape == (4, 3, 2)
    np.testing.assert_allclose(rel[:, :, 1], want_lin, rtol=1e-4)
    np.testing.assert_allclose(rel[:, :, 0], want_in, rtol=1e-4)


def test_propagation_linear_layer_rms_closed_form():
    model, w = linear_model(seed=7)
    x = images(2, seed=8)
    noise = 0.1  # value_range (0, 1): sigma = noise
    rel, flips = evaluation.propagation(model, x, [noise], layers=["lin"], n_draws=4000, seed=0,
                               value_range=(0.0, 1.0))
    xf = x.reshape(2, -1).astype(np.float64)
    want_lin = noise * np.linalg.norm(w) / np.linalg.norm(xf @ w, axis=1)
    want_in = noise * np.sqrt(xf.shape[1]) / np.linalg.norm(xf, axis=1)
    got = rel.pivot(index="image", columns="layer", values="rel_change")
    np.testing.assert_allclose(got["lin"].to_numpy(), want_lin, rtol=0.04)
    np.testing.assert_allclose(got["input"].to_numpy(), want_in, rtol=0.02)
    assert list(rel[rel["image"] == 0]["depth"]) == [0, 1]
    assert set(flips.columns) == {"image", "noise", "flip_rate"}


@pytest.mark.parametrize("k", [0, 1, 3, 8])
def test_sign_layer_relative_change_counts_flips(k):
    n = 8
    model = sign_model(n)
    x = np.array([0.5, -0.5, 0.25, -0.75, 1.0, -1.0, 0.1, -0.1], np.float32).reshape(1, 1, 1, n)
    pert = x.copy()
    pert[..., :k] = -pert[..., :k] * 3          # these k units change sign
    pert[..., k:] = pert[..., k:] * 1.5         # the others move but keep their sign
    rel = evaluation.relative_change(model, x, pert[:, None], ["sign"])
    assert rel[0, 0, 0] == pytest.approx(2 * np.sqrt(k / n), abs=1e-7)


def test_identity_layer_has_amplification_one():
    inp = keras.Input((4, 4, 2))
    ident = keras.layers.Activation("linear", name="ident")(inp)
    out = keras.layers.Dense(3, name="logits")(keras.layers.Flatten()(ident))
    model = keras.Model(inp, out)
    x = images(3, seed=9)
    rel, _ = evaluation.propagation(model, x, [0.05, 0.2], layers=["ident"], n_draws=3, seed=1)
    amp = evaluation.amplification(rel)
    np.testing.assert_allclose(amp[amp["layer"] == "ident"]["amplification"], 1.0, rtol=1e-5)
    np.testing.assert_allclose(amp[amp["layer"] == "input"]["amplification"], 1.0)
    # 4x the noise -> 4x the relative change (same standard-normal draws)
    r = rel[rel["layer"] == "ident"].pivot(index="image", columns="noise", values="rel_change")
    np.testing.assert_allclose(r[0.2] / r[0.05], 4.0, rtol=1e-4)


def test_relative_change_is_nan_for_silent_layer():
    inp = keras.Input((2, 2, 1))
    relu = keras.layers.Activation("relu", name="relu")(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(relu)))
    x = -np.ones((1, 2, 2, 1), np.float32)
    rel = evaluation.relative_change(model, x, (x + 0.1)[:, None], ["relu"])
    assert np.isnan(rel[0, 0, 0])


def test_flip_rate_matches_gaussian_tail():
    inp = keras.Input((1, 1, 1))
    out = keras.layers.Dense(2, use_bias=False, name="logits")(keras.layers.Flatten()(inp))
    model = keras.Model(inp, out)
    model.get_layer("logits").set_weights([np.array([[1.0, -1.0]], np.float32)])
    c, sigma, draws = 0.3, 0.3, 20000
    x = np.full((1, 1, 1, 1), c, np.float32)
    _, flips = evaluation.propagation(model, x, [sigma], layers=["logits"], n_draws=draws, seed=2,
                             value_range=(0.0, 1.0), batch_size=4096)
    p = sps.norm.cdf(-c / sigma)
    assert flips["flip_rate"].iloc[0] == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / draws))


def test_grouped_noise_levels_equal_separate_calls():
    model = build_twin("vgg", "fp", width=4)
    x = images(3, (32, 32, 3), seed=6)
    joint, fj = evaluation.propagation(model, x, [0.05, 0.3], n_draws=2, seed=1)
    parts = [evaluation.propagation(model, x, [v], n_draws=2, seed=1) for v in (0.05, 0.3)]
    # other batches (15 vs 9 inputs): float32 activations through up to 7 layers; the relative
    # change is normalized by ||a_l(x)||, so its rounding error is relative to 1 (scale=1)
    assert_float32_close(joint["rel_change"],
                         np.concatenate([p[0]["rel_change"] for p in parts]), depth=7, scale=1.0)
    np.testing.assert_array_equal(fj["flip_rate"],
                                  np.concatenate([p[1]["flip_rate"] for p in parts]))


def test_batch_size_does_not_change_results():
    model = build_twin("vgg", "bnn", width=4)
    x = images(5, (32, 32, 3), seed=4)
    a, fa = evaluation.propagation(model, x, [0.02, 0.2], n_draws=3, seed=5, batch_size=4)
    b, fb = evaluation.propagation(model, x, [0.02, 0.2], n_draws=3, seed=5, batch_size=256)
    assert_float32_close(a["rel_change"], b["rel_change"], depth=7, scale=1.0)  # as above
    np.testing.assert_array_equal(fa["flip_rate"], fb["flip_rate"])


def test_bad_inputs_raise():
    model, _ = linear_model()
    x = images(2)
    with pytest.raises(KeyError, match="no layer"):
        evaluation.relative_change(model, x, x[:, None], ["nope"])
    with pytest.raises(ValueError, match="perturbed"):
        evaluation.relative_change(model, x, x, ["lin"])
    with pytest.raises(ValueError, match="noises"):
        evaluation.propagation(model, x, [], layers=["lin"])
    with pytest.raises(ValueError, match="non-empty"):
        evaluation.relative_change(model, x, x[:, None], [])
    with pytest.raises(KeyError, match="columns"):
        import pandas as pd
        evaluation.amplification(pd.DataFrame({"image": [0]}))
