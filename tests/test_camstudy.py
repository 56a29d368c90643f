"""Tests of bnn_saliency.camstudy against independent oracles.

Oracles: a closed form (Grad-CAM of the layer feeding a linear head: alpha = mean of the
reshaped dense weights), a second implementation (saliency.gradcam layer by layer,
metrics.average_drop_increase_gain, scipy.stats.spearmanr), identities (the offset of L equals
its spatial mean; inversion negates) and hand-built maps.
"""

from __future__ import annotations


import numpy as np
import pytest
import scipy.stats as sps
from tensorflow import keras

from bnn_saliency import camstudy as C
from bnn_saliency import metrics as M
from bnn_saliency import saliency as S
from conftest import float64
from bnn_saliency import stats
from bnn_saliency.twins import build_twin


def _images(n, shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).random((n,) + shape).astype(dtype)


@pytest.fixture(scope="module")
def tiny64():
    """float64 conv -> ReLU ("act") -> conv ("feat") -> flatten -> dense (4 logits)."""
    with float64():
        keras.utils.set_random_seed(3)
        inp = keras.Input((6, 6, 2))
        h = keras.layers.Conv2D(3, 3, padding="same", name="c1")(inp)
        h = keras.layers.Activation("relu", name="act")(h)
        h = keras.layers.Conv2D(5, 3, padding="same", name="feat")(h)
        out = keras.layers.Dense(4, name="logits")(keras.layers.Flatten()(h))
        model = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def bnn_twin():
    keras.utils.set_random_seed(1)
    model = build_twin("vgg", "bnn", width=8)
    rng = np.random.default_rng(1)
    for layer in model.layers:  # non-trivial BN statistics so the STE window matters
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, mm, mv = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape), rng.normal(0, 0.3, b.shape),
                               rng.normal(0, 0.3, mm.shape), rng.uniform(0.5, 1.5, mv.shape)])
    return model


# ------------------------------------------------------------------------- gradcam_layers
def test_gradcam_layers_closed_form_for_linear_head(tiny64):
    x = _images(3, (6, 6, 2), seed=1, dtype=np.float64) - 0.5
    t = np.array([0, 3, 2])
    parts = C.gradcam_layers(tiny64, x, t, ["feat"])["feat"]
    acts = keras.Model(tiny64.inputs, tiny64.get_layer("feat").output)(x).numpy()
    w = tiny64.get_layer("logits").get_weights()[0]           # (6*6*5, 4)
    grad = w[:, t].T.reshape(3, 6, 6, 5)                     # d logit_t / d feat
    alpha = grad.mean(axis=(1, 2))
    want = np.einsum("nhwk,nk->nhw", acts, alpha)
    assert np.any(want > 0) and np.any(want < 0)
    np.testing.assert_allclose(parts.alpha, alpha, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(parts.signed, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(parts.act_mean, acts.mean(axis=(1, 2)), rtol=1e-5, atol=1e-8)


def test_gradcam_layers_equals_per_layer_gradcam_on_bnn_twin(bnn_twin):
    x = _images(5, (32, 32, 3), seed=2)
    t = np.array([0, 1, 2, 3, 9])
    layers = ["conv2", "bn4", "act4", "conv6", "act6"]
    parts = C.gradcam_layers(bnn_twin, x, t, layers, batch_size=2)
    for name in layers:
        want = S.gradcam(bnn_twin, x, t, layer=name, relu=False)
        scale = np.abs(want).max()
        np.testing.assert_allclose(parts[name].signed, want, rtol=1e-4, atol=1e-5 * scale)
        np.testing.assert_allclose(parts[name].alpha, S.gradcam_weights(bnn_twin, x, t, name),
                                   rtol=1e-4, atol=1e-7)
        inv = S.gradcam(bnn_twin, x, t, layer=name, invert=True)
        np.testing.assert_allclose(C.cam_variants(parts[name].signed)["inverted+ReLU"], inv,
                                   rtol=1e-4, atol=1e-5 * scale)


def test_gradcam_layers_rejects_bad_input(tiny64):
    x = _images(2, (6, 6, 2), dtype=np.float64)
    with pytest.raises(KeyError, match="no layer"):
        C.gradcam_layers(tiny64, x, 0, ["nope"])
    with pytest.raises(ValueError, match="rank-2"):
        C.gradcam_layers(tiny64, x, 0, ["logits"])
    with pytest.raises(ValueError, match="non-empty list"):
        C.gradcam_layers(tiny64, x, 0, "feat")
    with pytest.raises(ValueError, match="targets"):
        C.gradcam_layers(tiny64, x, 7, ["feat"])
    with pytest.raises(TypeError, match="float"):
        C.gradcam_layers(tiny64, (x * 255).astype(np.uint8), 0, ["feat"])


# ------------------------------------------------------------------- variants, blank maps
def test_cam_variants_are_the_stated_transforms():
    L = np.random.default_rng(0).normal(size=(3, 4, 4)).astype(np.float32)
    v = C.cam_variants(L)
    assert list(v) == list(C.VARIANTS)
    np.testing.assert_array_equal(v["Grad-CAM"], np.where(L > 0, L, 0))
    np.testing.assert_array_equal(v["no ReLU"], L)
    np.testing.assert_array_equal(v["inverted"], -L)
    np.testing.assert_array_equal(v["inverted+ReLU"], np.where(L < 0, -L, 0))
    with pytest.raises(ValueError):
        C.cam_variants(L[0])


def test_blank_maps_hand_built():
    maps = np.zeros((5, 2, 2))
    maps[0] = -1.0                         # all negative: blank
    # maps[1] all zero: blank
    maps[2] = [[-1.0, 0.005], [0, 0]]      # tiny positive, 0.5% of max|L|: blank at tol 1%
    maps[3] = [[-1.0, 0.02], [0, 0]]       # 2%: not blank
    maps[4] = [[1.0, 2.0], [3.0, 4.0]]
    np.testing.assert_array_equal(C.blank_maps(maps), [True, True, True, False, False])
    np.testing.assert_array_equal(C.blank_maps(maps, tol=0), [True, True, False, False, False])
    with pytest.raises(ValueError):
        C.blank_maps(maps, tol=1.0)


def test_sign_structure_identities(bnn_twin):
    x = _images(4, (32, 32, 3), seed=4)
    parts = C.gradcam_layers(bnn_twin, x, np.arange(4), ["conv6"])["conv6"]
    df = C.sign_structure(parts)
    L = parts.signed.astype(np.float64)
    # mean_ij sum_k alpha_k A_k = sum_k alpha_k mean_ij A_k
    np.testing.assert_allclose(df["offset"], L.mean(axis=(1, 2)), rtol=1e-4,
                               atol=1e-5 * np.abs(L).max())
    np.testing.assert_allclose(df["offset_pos"] + df["offset_neg"], df["offset"], rtol=1e-12)
    np.testing.assert_allclose(df["frac_pos_pixels"], (L > 0).mean(axis=(1, 2)))
    np.testing.assert_allclose(df["frac_neg_alpha"], (parts.alpha < 0).mean(axis=1))
    np.testing.assert_allclose(df["spread"], L.max(axis=(1, 2)) - L.min(axis=(1, 2)), rtol=1e-12)


# ---------------------------------------------------------------------------- faithfulness
def test_fast_logits_matches_model(bnn_twin):
    x = _images(3, (32, 32, 3), seed=5)
    np.testing.assert_allclose(C.fast_logits(bnn_twin)(x), bnn_twin(x, training=False).numpy(),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("constant", ["zero", "one", "nan"])
def test_faithfulness_matches_metrics(bnn_twin, constant):
    x = _images(6, (32, 32, 3), seed=6)
    t = np.array([0, 1, 2, 3, 4, 5])
    rng = np.random.default_rng(0)
    cams = {"a": rng.random((6, 8, 8)), "b": rng.normal(size=(6, 4, 4))}
    cams["a"][2] = 0.0                                          # a blank map
    df = C.faithfulness(bnn_twin, x, t, cams, constant=constant)
    for name, cam in cams.items():
        want = M.average_drop_increase_gain(bnn_twin, x, t, cam, per_sample=True, constant=constant)
        got = df[df["variant"] == name]
        for key in ("average_drop", "average_increase", "average_gain", "y", "o"):
            np.testing.assert_allclose(got[key].to_numpy(), want[key], rtol=1e-4, atol=1e-4,
                                       equal_nan=True)
    assert np.isnan(df.loc[(df.variant == "a") & (df.image == 2), "o"].item()) == (constant == "nan")


def test_top_fraction_mask_hand_built():
    m = np.arange(16, dtype=float).reshape(1, 4, 4)
    mask = C.top_fraction_mask(m, (4, 4), 0.25)
    np.testing.assert_array_equal(mask[0], (m[0] >= 12).astype(np.float32))
    const = C.top_fraction_mask(np.zeros((2, 4, 4)), (8, 8), 0.5, seed=3)
    assert const.shape == (2, 8, 8) and (const.reshape(2, -1).sum(axis=1) == 32).all()
    np.testing.assert_array_equal(const, C.top_fraction_mask(np.zeros((2, 4, 4)), (8, 8), 0.5, seed=3))
    up = M.resize_maps(np.random.default_rng(1).normal(size=(3, 4, 4)), (16, 16)).reshape(3, -1)
    mk = C.top_fraction_mask(up.reshape(3, 16, 16), (16, 16), 0.5).reshape(3, -1).astype(bool)
    for i in range(3):  # every kept pixel ranks at least as high as every dropped one
        assert up[i][mk[i]].min() >= up[i][~mk[i]].max()
    with pytest.raises(ValueError):
        C.top_fraction_mask(m, (4, 4), 0.0)


def test_faithfulness_top_fraction_equals_metrics_on_the_mask(bnn_twin):
    x = _images(4, (32, 32, 3), seed=7)
    t = np.array([1, 2, 3, 4])
    cam = np.random.default_rng(2).normal(size=(4, 8, 8))
    df = C.faithfulness(bnn_twin, x, t, {"m": cam}, top_fraction=0.5)
    mask = C.top_fraction_mask(cam, (32, 32), 0.5)   # binary: min-max leaves it unchanged
    want = M.average_drop_increase_gain(bnn_twin, x, t, mask, per_sample=True)
    np.testing.assert_allclose(df["average_drop"], want["average_drop"], rtol=1e-4, atol=1e-4)
    full = C.faithfulness(bnn_twin, x, t, {"m": cam}, top_fraction=1.0)  # keeps the image
    np.testing.assert_allclose(full["o"], full["y"], rtol=1e-5)


# ------------------------------------------------------------------------------ agreement
def test_agreement_is_spearman_of_upsampled_maps():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(3, 4, 4)), rng.normal(size=(3, 8, 8))
    got = C.agreement(a, b, (16, 16))
    ua, ub = M.resize_maps(a, (16, 16)), M.resize_maps(b, (16, 16))
    for i in range(3):
        assert got[i] == pytest.approx(sps.spearmanr(ua[i].ravel(), ub[i].ravel())[0], abs=1e-12)
    assert np.isnan(C.agreement(np.zeros((1, 4, 4)), a[:1])[0])


# ----------------------------------------------------------------------------- statistics
def test_excess_over_baseline_point_and_reduction():
    rng = np.random.default_rng(4)
    cross = rng.normal(2.0, 1.0, size=(200, 2))
    base = np.stack([rng.normal(0.5, 1.0, 200), rng.normal(-1.0, 1.0, 200)], axis=1)
    got = C.excess_over_baseline(cross, base)
    want = cross.mean() - max(abs(base[:, 0].mean()), abs(base[:, 1].mean()))
    assert got.point == pytest.approx(want, abs=1e-12)
    assert got.low < got.point < got.high
    only = C.excess_over_baseline(cross[:, 0])
    ref = stats.bootstrap_ci(cross[:, 0])
    assert only == pytest.approx(tuple(ref), abs=1e-12)
    with pytest.raises(ValueError):
        C.excess_over_baseline(cross, base[:10])


# ---------------------------------------------------------------------------- bookkeeping
def test_pair_differences_hand_table():
    import pandas as pd

    rows = []
    for model, base in (("a", 1.0), ("b", 5.0), ("c", -2.0)):
        for variant, shift in (("Grad-CAM", 0.0), ("inverted", 10.0)):
            for image in range(3):
                rows.append({"model": model, "variant": variant, "measure": "AD",
                             "image": image, "value": base + shift + image ** 2})
    df = pd.DataFrame(rows)
    got = C.pair_differences(df, [("a", "b"), ("a", "c")], "AD")
    np.testing.assert_allclose(got, [[4.0, -3.0]] * 3)
    got = C.pair_differences(df, [("b", "b")], "AD", "Grad-CAM", "inverted")
    np.testing.assert_allclose(got, [[10.0]] * 3)
    with pytest.raises(KeyError):
        C.pair_differences(df, [("a", "zzz")], "AD")



def test_stratified_subset_balances_sorted_labels():
    labels = np.repeat(np.arange(10), 50)          # sorted by class, as in the CIFAR mirror
    idx = C.stratified_subset(labels, 50, seed=0)
    assert len(idx) == 50 and len(np.unique(idx)) == 50 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(np.bincount(labels[idx], minlength=10), [5] * 10)
    np.testing.assert_array_equal(idx, C.stratified_subset(labels, 50, seed=0))
    odd = C.stratified_subset(labels, 23, seed=1)   # 2 per class + 3 extra, no repeats
    assert len(odd) == 23 and len(np.unique(odd)) == 23
    assert np.bincount(labels[odd], minlength=10).min() >= 2
    few = C.stratified_subset(np.arange(7), 3)      # more classes than items wanted
    assert len(few) == 3 and len(np.unique(few)) == 3
    assert len(C.stratified_subset(labels[:4], 10)) == 4
    with pytest.raises(ValueError):
        C.stratified_subset(labels, 0)


def test_kind_of_registered_names():
    assert C.kind_of("vgg-fp-s7") == "FP"
    assert C.kind_of("resnet-bnn-s0") == "BNN"
    assert C.kind_of("vgg-binw-s0") == "binary weights"
    assert C.kind_of("vgg-bina-s0") == "binary activations"
    assert C.kind_of("QuickNet") == "BNN" and C.kind_of("VGG16") == "FP"
    with pytest.raises(KeyError):
        C.kind_of("alexnet")
