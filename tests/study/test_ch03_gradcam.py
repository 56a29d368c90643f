"""Tests of bnn_saliency.study.ch03_gradcam against independent oracles.

Oracles: a closed form (Grad-CAM of the layer feeding a linear head: alpha = mean of the
reshaped dense weights), a second implementation (saliency.gradcam layer by layer,
metrics.average_drop_increase_gain, scipy.stats.spearmanr), identities (the offset of L equals
its spatial mean; inversion negates) and hand-built maps.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as sps
from conftest import float64
from float_tolerance import assert_float32_close
from tensorflow import keras

from bnn_saliency import evaluation, methods, postprocess, stats
from bnn_saliency.models.twins import build_twin
from bnn_saliency.study import ch03_gradcam, common


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
    parts = methods.gradcam_layers(tiny64, x, t, ["feat"])["feat"]
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
    parts = methods.gradcam_layers(bnn_twin, x, t, layers, batch_size=2)
    for name in layers:
        want = methods.gradcam(bnn_twin, x, t, layer=name, relu=False)
        scale = np.abs(want).max()
        np.testing.assert_allclose(parts[name].signed, want, rtol=1e-4, atol=1e-5 * scale)
        # batches of 2 vs 5: float32 gradients back through up to 5 layers, a spatial mean
        assert_float32_close(parts[name].alpha, methods.gradcam_weights(bnn_twin, x, t, name), depth=6)
        inv = methods.gradcam(bnn_twin, x, t, layer=name, invert=True)
        np.testing.assert_allclose(methods.cam_variants(parts[name].signed)["inverted+ReLU"], inv,
                                   rtol=1e-4, atol=1e-5 * scale)


def test_gradcam_layers_rejects_bad_input(tiny64):
    x = _images(2, (6, 6, 2), dtype=np.float64)
    with pytest.raises(KeyError, match="no layer"):
        methods.gradcam_layers(tiny64, x, 0, ["nope"])
    with pytest.raises(ValueError, match="rank-2"):
        methods.gradcam_layers(tiny64, x, 0, ["logits"])
    with pytest.raises(ValueError, match="non-empty list"):
        methods.gradcam_layers(tiny64, x, 0, "feat")
    with pytest.raises(ValueError, match="targets"):
        methods.gradcam_layers(tiny64, x, 7, ["feat"])
    with pytest.raises(TypeError, match="float"):
        methods.gradcam_layers(tiny64, (x * 255).astype(np.uint8), 0, ["feat"])


# ------------------------------------------------------------------- variants, blank maps
def test_cam_variants_are_the_stated_transforms():
    L = np.random.default_rng(0).normal(size=(3, 4, 4)).astype(np.float32)
    v = methods.cam_variants(L)
    assert list(v) == list(methods.CAM_VARIANTS)
    np.testing.assert_array_equal(v["Grad-CAM"], np.where(L > 0, L, 0))
    np.testing.assert_array_equal(v["no ReLU"], L)
    np.testing.assert_array_equal(v["inverted"], -L)
    np.testing.assert_array_equal(v["inverted+ReLU"], np.where(L < 0, -L, 0))
    with pytest.raises(ValueError):
        methods.cam_variants(L[0])


def test_blank_maps_hand_built():
    maps = np.zeros((5, 2, 2))
    maps[0] = -1.0                         # all negative: blank
    # maps[1] all zero: blank
    maps[2] = [[-1.0, 0.005], [0, 0]]      # tiny positive, 0.5% of max|L|: blank at tol 1%
    maps[3] = [[-1.0, 0.02], [0, 0]]       # 2%: not blank
    maps[4] = [[1.0, 2.0], [3.0, 4.0]]
    np.testing.assert_array_equal(methods.blank_maps(maps), [True, True, True, False, False])
    np.testing.assert_array_equal(methods.blank_maps(maps, tol=0), [True, True, False, False, False])
    with pytest.raises(ValueError):
        methods.blank_maps(maps, tol=1.0)


def test_sign_structure_identities(bnn_twin):
    x = _images(4, (32, 32, 3), seed=4)
    parts = methods.gradcam_layers(bnn_twin, x, np.arange(4), ["conv6"])["conv6"]
    df = methods.sign_structure(parts)
    L = parts.signed.astype(np.float64)
    # mean_ij sum_k alpha_k A_k = sum_k alpha_k mean_ij A_k
    np.testing.assert_allclose(df["offset"], L.mean(axis=(1, 2)), rtol=1e-4,
                               atol=1e-5 * np.abs(L).max())
    np.testing.assert_allclose(df["offset_pos"] + df["offset_neg"], df["offset"], rtol=1e-12)
    np.testing.assert_allclose(df["frac_pos_pixels"], (L > 0).mean(axis=(1, 2)))
    np.testing.assert_allclose(df["frac_neg_alpha"], (parts.alpha < 0).mean(axis=1))
    np.testing.assert_allclose(df["spread"], L.max(axis=(1, 2)) - L.min(axis=(1, 2)), rtol=1e-12)


# ---------------------------------------------------------------------------- faithfulness
def test_forward_matches_model(bnn_twin):
    x = _images(3, (32, 32, 3), seed=5)
    assert_float32_close(methods.forward(bnn_twin)(x), bnn_twin(x, training=False).numpy(), depth=7)


@pytest.mark.parametrize("constant", ["zero", "one", "nan"])
def test_faithfulness_matches_metrics(bnn_twin, constant):
    x = _images(6, (32, 32, 3), seed=6)
    t = np.array([0, 1, 2, 3, 4, 5])
    rng = np.random.default_rng(0)
    cams = {"a": rng.random((6, 8, 8)), "b": rng.normal(size=(6, 4, 4))}
    cams["a"][2] = 0.0                                          # a blank map
    df = evaluation.cam_faithfulness(bnn_twin, x, t, cams, constant=constant)
    for name, cam in cams.items():
        want = evaluation.average_drop_increase_gain(bnn_twin, x, t, cam, per_sample=True, constant=constant)
        got = df[df["variant"] == name]
        for key in ("average_drop", "average_increase", "average_gain", "y", "o"):
            np.testing.assert_allclose(got[key].to_numpy(), want[key], rtol=1e-4, atol=1e-4,
                                       equal_nan=True)
    assert np.isnan(df.loc[(df.variant == "a") & (df.image == 2), "o"].item()) == (constant == "nan")


def test_top_fraction_mask_hand_built():
    m = np.arange(16, dtype=float).reshape(1, 4, 4)
    mask = evaluation.top_fraction_mask(m, (4, 4), 0.25)
    np.testing.assert_array_equal(mask[0], (m[0] >= 12).astype(np.float32))
    const = evaluation.top_fraction_mask(np.zeros((2, 4, 4)), (8, 8), 0.5, seed=3)
    assert const.shape == (2, 8, 8) and (const.reshape(2, -1).sum(axis=1) == 32).all()
    np.testing.assert_array_equal(const, evaluation.top_fraction_mask(np.zeros((2, 4, 4)), (8, 8), 0.5, seed=3))
    # a map's mask does not depend on the other maps of the batch (live records recompute
    # a sample of images on their own)
    np.testing.assert_array_equal(const[1], evaluation.top_fraction_mask(np.zeros((1, 4, 4)), (8, 8), 0.5, seed=3)[0])
    up = postprocess.upsample(np.random.default_rng(1).normal(size=(3, 4, 4)), (16, 16), np.float64).reshape(3, -1)
    mk = evaluation.top_fraction_mask(up.reshape(3, 16, 16), (16, 16), 0.5).reshape(3, -1).astype(bool)
    for i in range(3):  # every kept pixel ranks at least as high as every dropped one
        assert up[i][mk[i]].min() >= up[i][~mk[i]].max()
    with pytest.raises(ValueError):
        evaluation.top_fraction_mask(m, (4, 4), 0.0)


def test_faithfulness_top_fraction_equals_metrics_on_the_mask(bnn_twin):
    x = _images(4, (32, 32, 3), seed=7)
    t = np.array([1, 2, 3, 4])
    cam = np.random.default_rng(2).normal(size=(4, 8, 8))
    df = evaluation.cam_faithfulness(bnn_twin, x, t, {"m": cam}, top_fraction=0.5)
    mask = evaluation.top_fraction_mask(cam, (32, 32), 0.5)   # binary: min-max leaves it unchanged
    want = evaluation.average_drop_increase_gain(bnn_twin, x, t, mask, per_sample=True)
    np.testing.assert_allclose(df["average_drop"], want["average_drop"], rtol=1e-4, atol=1e-4)
    full = evaluation.cam_faithfulness(bnn_twin, x, t, {"m": cam}, top_fraction=1.0)  # keeps the image
    np.testing.assert_allclose(full["o"], full["y"], rtol=1e-5)


# ------------------------------------------------------------------------------ agreement
def test_agreement_is_spearman_of_upsampled_maps():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(3, 4, 4)), rng.normal(size=(3, 8, 8))
    got = ch03_gradcam.agreement(a, b, (16, 16))
    ua, ub = postprocess.upsample(a, (16, 16), np.float64), postprocess.upsample(b, (16, 16), np.float64)
    for i in range(3):
        assert got[i] == pytest.approx(sps.spearmanr(ua[i].ravel(), ub[i].ravel())[0], abs=1e-12)
    assert np.isnan(ch03_gradcam.agreement(np.zeros((1, 4, 4)), a[:1])[0])


# ----------------------------------------------------------------------------- statistics
# ---------------------------------------------------------------------------- bookkeeping
def test_stratified_subset_balances_sorted_labels():
    labels = np.repeat(np.arange(10), 50)          # sorted by class, as in the CIFAR mirror
    idx = common.stratified_subset(labels, 50, seed=0)
    assert len(idx) == 50 and len(np.unique(idx)) == 50 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(np.bincount(labels[idx], minlength=10), [5] * 10)
    np.testing.assert_array_equal(idx, common.stratified_subset(labels, 50, seed=0))
    odd = common.stratified_subset(labels, 23, seed=1)   # 2 per class + 3 extra, no repeats
    assert len(odd) == 23 and len(np.unique(odd)) == 23
    assert np.bincount(labels[odd], minlength=10).min() >= 2
    few = common.stratified_subset(np.arange(7), 3)      # more classes than items wanted
    assert len(few) == 3 and len(np.unique(few)) == 3
    assert len(common.stratified_subset(labels[:4], 10)) == 4
    with pytest.raises(ValueError):
        common.stratified_subset(labels, 0)


def test_kind_of_registered_names():
    assert common.kind_of("vgg-fp-s7") == "FP"
    assert common.kind_of("resnet-bnn-s0") == "BNN"
    assert common.kind_of("vgg-binw-s0") == "binary weights"
    assert common.kind_of("vgg-bina-s0") == "binary activations"
    assert common.kind_of("QuickNet") == "BNN" and common.kind_of("VGG16") == "FP"
    with pytest.raises(KeyError):
        common.kind_of("alexnet")


# ------------------------------------------------------------------- the chapter's tables
def _long(rows):
    import pandas as pd

    return pd.DataFrame(rows)


def test_display_cams_upsamples_then_normalizes():
    cam = np.array([[[0.0, 1.0], [2.0, 3.0]]])
    out = ch03_gradcam.display_cams(cam, (4, 4))
    up = postprocess.upsample(cam, (4, 4), np.float64)
    np.testing.assert_allclose(out, (up - up.min()) / (up.max() - up.min()), atol=1e-6)


def test_score_table_against_metrics_and_hand_blank_maps(bnn_twin):
    x = _images(4, (32, 32, 3), seed=8)
    t = np.array([0, 1, 2, 3])
    rng = np.random.default_rng(5)
    signed = rng.normal(size=(4, 4, 4)).astype(np.float32)
    signed[1] = -np.abs(signed[1])                   # all negative: blank Grad-CAM
    signed[2] = -np.abs(signed[2])
    signed[2, 0, 0] = 0.005 * np.abs(signed[2]).max()  # positive part below 1%: blank at tol 0.01
    table = ch03_gradcam.score_table({"m": bnn_twin}, x, t, {"m": signed}, {"m": "BNN"})
    assert set(table["measure"]) == {"AD", "AI", "AG", "AD@50%", "blank", "blank (exact)"}
    assert (table["kind"] == "BNN").all() and (table["model"] == "m").all()

    def values(measure, variant):
        sel = table[(table["measure"] == measure) & (table["variant"] == variant)]
        return sel.sort_values("image")["value"].to_numpy()

    np.testing.assert_array_equal(values("blank", "Grad-CAM"), [0, 1, 1, 0])
    np.testing.assert_array_equal(values("blank (exact)", "Grad-CAM"), [0, 1, 0, 0])
    for variant, cam in (("Grad-CAM", np.maximum(signed, 0)), ("inverted", -signed),
                         ("no ReLU", signed)):
        want = evaluation.average_drop_increase_gain(bnn_twin, x, t, cam, per_sample=True)
        np.testing.assert_allclose(values("AD", variant), want["average_drop"], rtol=1e-4,
                                   atol=1e-4)
        np.testing.assert_allclose(values("AG", variant), want["average_gain"], rtol=1e-4,
                                   atol=1e-4)
    mask = evaluation.top_fraction_mask(-signed, (32, 32), 0.5)
    want = evaluation.average_drop_increase_gain(bnn_twin, x, t, mask, per_sample=True)
    np.testing.assert_allclose(values("AD@50%", "inverted"), want["average_drop"], rtol=1e-4,
                               atol=1e-4)
    assert values("AD@50%", "no ReLU").size == 0


def test_model_table_and_rows():
    summary = _long([{"measure": m, "model": n, "variant": v, "mean": i + 10 * j,
                      "low": 0.0, "high": 1.0}
                     for i, n in enumerate(["a", "b"]) for j, m in enumerate(["AD", "blank"])
                     for v in ("Grad-CAM", "inverted")])
    table = ch03_gradcam.model_table(summary, ["b", "a"], {"a": "FP", "b": "BNN"}, ["blank", "AD"])
    assert list(table.index) == ["b", "a"] and list(table.columns) == ["kind", "blank", "AD"]
    assert table.loc["b", "blank"] == 11 and table.loc["a", "AD"] == 0
    rows = ch03_gradcam.model_rows(summary, "blank", ["b", "a"], {"a": "FP", "b": "BNN"})
    assert list(rows["model"]) == ["b", "a"] and list(rows["kind"]) == ["BNN", "FP"]
    assert list(rows["mean"]) == [11, 10]


def test_agreement_table_against_spearman():
    rng = np.random.default_rng(6)
    base = rng.normal(size=(5, 4, 4))
    maps = {n: methods.cam_variants(base + s * rng.normal(size=(5, 4, 4)))
            for n, s in (("f0", 0.1), ("f1", 0.2), ("b0", 2.0), ("b1", 3.0))}
    pairs = {"FP vs BNN": [("f0", "b0"), ("f1", "b1")], "seed": [("f0", "f1")]}
    agree = ch03_gradcam.agreement_table(maps, pairs, (8, 8), idx=np.array([0, 2, 4]))
    assert len(agree) == 3 * 3 * 3 and set(agree["variant"]) == set(ch03_gradcam.SCORED)
    row = agree[(agree["pair"] == "f0 vs b0") & (agree["variant"] == "inverted")]
    want = [sps.spearmanr(postprocess.upsample(-maps["b0"]["no ReLU"][i:i + 1], (8, 8), np.float64).ravel(),
                          postprocess.upsample(maps["f0"]["Grad-CAM"][i:i + 1], (8, 8), np.float64).ravel())[0]
            for i in (0, 2, 4)]
    np.testing.assert_allclose(row["value"], want, atol=1e-12)


def test_sign_table_and_kind_mean(bnn_twin):
    parts = {"a": methods.CamParts(np.ones((3, 2, 2), np.float32), np.array([[1, -1]] * 3, np.float32),
                             np.ones((3, 2), np.float32)),
             "b": methods.CamParts(-np.ones((3, 2, 2), np.float32), np.array([[-1, -1]] * 3, np.float32),
                             np.ones((3, 2), np.float32))}
    table = ch03_gradcam.sign_table(parts, {"a": "FP", "b": "BNN"}, idx=np.array([0, 2]))
    assert len(table) == 4 and list(table["model"]) == ["a", "a", "b", "b"]
    np.testing.assert_array_equal(table["frac_neg_alpha"], [0.5, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(table["blank"], [False, False, True, True])
    assert ch03_gradcam.kind_mean_ci(table, "frac_neg_alpha", "BNN").point == 1.0
    with pytest.raises(KeyError):
        ch03_gradcam.kind_mean_ci(table, "frac_neg_alpha", "binary weights")


def test_depth_table_layers_and_difference(bnn_twin):
    x = _images(3, (32, 32, 3), seed=9)
    t = np.array([0, 1, 2])
    depth = ch03_gradcam.depth_table({"vgg-bnn-s0": bnn_twin}, x, t, {"vgg-bnn-s0": "BNN"})
    layers = set(depth["layer"])
    assert {f"bn{i}" for i in range(1, 7)} | {f"act{i}" for i in range(1, 7)} <= layers
    blocks = depth[depth["tensor"] == "block"]
    assert sorted(set(blocks["block"])) == list(range(1, 7))
    # the AD of act3 is that of Grad-CAM at act3, by a second implementation
    cam = np.maximum(methods.gradcam(bnn_twin, x, t, layer="act3"), 0)
    want = evaluation.average_drop_increase_gain(bnn_twin, x, t, cam, per_sample=True)["average_drop"]
    got = depth[(depth["layer"] == "act3") & (depth["measure"] == "AD")]["value"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
    summary = stats.summarize(depth, "value", by=["measure", "family", "kind", "tensor", "block",
                                                  "layer"])
    best = ch03_gradcam.best_layers(summary)
    sel = summary[summary["measure"] == "AD"]
    assert best.loc["BNN", "layer"] == sel.loc[sel["mean"].idxmin(), "layer"]


def test_method_maps_and_table(bnn_twin):
    x = _images(3, (32, 32, 3), seed=10)
    t = np.array([3, 1, 2])
    mm = ch03_gradcam.method_maps({"m": bnn_twin}, x, t, {"m": {"std": "conv6", "a5": "act5"}},
                       skip={"m": 1})
    assert set(mm) == {("m", "std"), ("m", "a5")}
    np.testing.assert_allclose(mm["m", "a5"]["Grad-CAM"],
                               np.maximum(methods.gradcam(bnn_twin, x, t, layer="act5"), 0),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(mm["m", "std"]["Score-CAM"][0], 0.0)  # skipped image
    np.testing.assert_allclose(mm["m", "std"]["Score-CAM"][1:],
                               methods.scorecam(bnn_twin, x[1:], t[1:], layer="conv6"), rtol=1e-4,
                               atol=1e-6)
    sliced = {k: {m: v[1:] for m, v in by.items()} for k, by in mm.items()}
    table = ch03_gradcam.method_table({"m": bnn_twin}, sliced, x[1:], t[1:], {"m": "BNN"})
    assert set(table["variant"]) == set(ch03_gradcam.METHODS) and set(table["layer"]) == {"std", "a5"}
    sel = table[(table["layer"] == "a5") & (table["variant"] == "Grad-CAM++")
                & (table["measure"] == "AD")]
    want = evaluation.average_drop_increase_gain(bnn_twin, x[1:], t[1:], sliced["m", "a5"]["Grad-CAM++"],
                                        per_sample=True)["average_drop"]
    np.testing.assert_allclose(sel["value"], want, rtol=1e-4, atol=1e-4)


def test_rescore_constant_maps_equals_scoring_them_so(bnn_twin):
    x = _images(3, (32, 32, 3), seed=11)
    t = np.array([0, 1, 2])
    rng = np.random.default_rng(7)
    cams = {"Grad-CAM": rng.random((3, 4, 4)), "inverted": rng.random((3, 4, 4))}
    cams["Grad-CAM"][1] = 0.0  # a constant (blank) map
    scores = evaluation.cam_faithfulness(bnn_twin, x, t, cams, constant="zero")
    table = (scores.melt(id_vars=["variant", "image"], value_vars=list(ch03_gradcam.MEASURES),
                         var_name="measure").assign(model="m"))
    table["measure"] = table["measure"].map(ch03_gradcam.MEASURES)
    again = ch03_gradcam.rescore_constant_maps(table, "one", {"m": bnn_twin},
                                    {("m", k): c for k, c in cams.items()}, x, t)
    want = evaluation.cam_faithfulness(bnn_twin, x, t, cams, constant="one")
    for variant in cams:
        got = again[(again["variant"] == variant) & (again["measure"] == "AD")]["value"]
        np.testing.assert_allclose(got, want[want["variant"] == variant]["average_drop"],
                                   rtol=1e-5, atol=1e-5)
    assert again.loc[(again["variant"] == "Grad-CAM") & (again["measure"] == "AD")
                     & (again["image"] == 1), "value"].item() == pytest.approx(0.0, abs=1e-4)




# ------------------------------------------------------------------ the twins-v2 statistics
def _suite():
    """Two seeds of each kind: FP fa/fb, BNN ba/bb, controls ca/cb."""
    return common.Suite({"fp": {0: "fa", 1: "fb"}, "bnn": {0: "ba", 1: "bb"},
                         "control": {0: "ca", 1: "cb"}})


def _values(base):
    return {n: b + np.arange(4.0) for n, b in base.items()}


def test_excess_statistic_is_cross_mean_minus_largest_seed_difference():
    suite = _suite()
    v = _values({"fa": 1.0, "fb": 2.0, "ba": 5.0, "bb": 9.0})
    # cross-seed pairs (fa, bb) = 8 and (fb, ba) = 3: mean 5.5; seed pairs 1 and 4: max 4
    prepare = ch03_gradcam.excess_statistic(suite, v, scale=10.0)
    assert prepare(suite.seeds)(np.arange(4)) == pytest.approx(15.0)
    assert prepare({"fp": [0, 0], "bnn": [1, 1]}) is None  # no seed pair drawn
    ci, boots = suite.bootstrap_statistic(prepare, 4)
    assert ci.point == pytest.approx(15.0) and ci.low <= ci.point <= ci.high
    assert len(boots) == 2000
    # the values of every replicate are drawn from the models' possible statistics
    assert set(np.round(boots, 9)) <= {15.0, 10 * (8 - 1.0), 10 * (8 - 4.0), 10 * (3 - 1.0),
                                       10 * (3 - 4.0)}


def test_cross_difference_kind_mean_and_seed_spread_by_hand():
    suite = _suite()
    v = _values({"fa": 1.0, "fb": 2.0, "ba": 5.0, "bb": 9.0, "ca": 0.0, "cb": 3.0})
    np.testing.assert_allclose(suite.cross_difference(v, "bnn", "fp")(suite.seeds), 5.5)
    np.testing.assert_allclose(suite.cross_difference(v, "bnn", "control")(suite.seeds),
                               ((9 - 0) + (5 - 3)) / 2)
    np.testing.assert_allclose(ch03_gradcam.kind_mean(suite, v)({"bnn": [1, 1]}), 9 + np.arange(4.0))
    assert ch03_gradcam.seed_spread(suite, v) == pytest.approx(4.0)
    rates = ch03_gradcam.kind_rates(suite, {n: np.array([0.0, 1.0]) * (n[0] == "b") for n in v})
    assert rates == {"fp": 0.0, "bnn": 50.0, "control": 0.0}


def _hand_scores():
    """AD and blank of six models; AD(inverted) = AD(Grad-CAM) - 10, AD@50% = AD / 2."""
    rows = []
    for model, base in (("fa", 1.0), ("fb", 2.0), ("ba", 5.0), ("bb", 9.0), ("ca", 0.0),
                        ("cb", 3.0)):
        for image in range(4):
            for variant, shift in (("Grad-CAM", 0.0), ("no ReLU", -4.0), ("inverted", -10.0)):
                ad = base + shift + image
                rows.append({"model": model, "variant": variant, "measure": "AD",
                             "image": image, "value": ad})
                rows.append({"model": model, "variant": variant, "measure": "AD@50%",
                             "image": image, "value": ad / 2})
            rows.append({"model": model, "variant": "Grad-CAM", "measure": "blank",
                         "image": image, "value": float(model[0] == "b" and image < 2)})
    return _long(rows)


def _hand_agreement(suite):
    """Grad-CAM agreement 0.5 within a kind and 0.2 across kinds; inverted maps agree 0.1
    more than Grad-CAM on cross pairs."""
    rows = []
    for group, pairs in suite.pair_groups().items():
        for a, b in pairs:
            same = a[0] == b[0]
            for variant, value in (("Grad-CAM", 0.5 if same else 0.2),
                                   ("inverted", 0.5 if same else 0.3)):
                rows += [{"group": group, "pair": f"{a} vs {b}", "a": a, "b": b,
                          "variant": variant, "image": i, "value": value} for i in range(4)]
    return _long(rows)


def test_gradcam_statistics_on_hand_tables():
    suite = _suite()
    st = ch03_gradcam.gradcam_statistics(suite, _hand_scores(), _hand_agreement(suite))
    # blank rates: BNN 50%, FP 0%: cross 50 pp, no seed difference
    assert st["blank_excess"][0].point == pytest.approx(50.0)
    assert st["blank_seed"] == 0.0
    assert st["ad_excess"][0].point == pytest.approx(1.5)
    assert st["ad50_excess"][0].point == pytest.approx(0.75)
    # controls: cross pairs (ca, bb) = 9, (cb, ba) = 2: mean 5.5; seed terms 3 and 4
    assert st["ad_excess_matched"][0].point == pytest.approx(1.5)
    assert st["agree_gap"][0].point == pytest.approx(0.3)
    assert st["invert_agree"][0].point == pytest.approx(0.1)
    assert st["invert_agree_seed"] == pytest.approx(0.0)
    assert st["invert_ad"][0].point == pytest.approx(10.0)
    assert st["norelu_ad"][0].point == pytest.approx(4.0)
    assert st["invert_ad50"][0].point == pytest.approx(5.0)
    assert st["fp_invert_ad50"][0].point == pytest.approx(5.0)
    with pytest.raises(ValueError, match="several"):  # two ways of scoring mixed up
        ch03_gradcam.gradcam_statistics(suite, pd.concat([_hand_scores()] * 2),
                                        _hand_agreement(suite))


def _hand_methods(layer="act5"):
    """AD of each method: Grad-CAM as in _hand_scores, Score-CAM half of it."""
    scores = _hand_scores()
    gc = scores[(scores["measure"] == "AD") & (scores["variant"] == "Grad-CAM")]
    return pd.concat([gc.assign(layer=layer),
                      gc.assign(layer=layer, variant="Grad-CAM++", value=gc["value"] + 1),
                      gc.assign(layer=layer, variant="Score-CAM", value=gc["value"] / 2)],
                     ignore_index=True)


def test_method_statistics_and_claims_on_hand_tables():
    suite = _suite()
    st = ch03_gradcam.method_statistics(suite, _hand_methods())
    # Grad-CAM cross difference 5.5, Score-CAM 2.75; STE share 2.75
    assert st["gap/act5/Grad-CAM"][0].point == pytest.approx(5.5)
    assert st["gap/act5/Grad-CAM++"][0].point == pytest.approx(5.5)
    assert st["scorecam"][0].point == pytest.approx(2.75)
    assert st["ste"][0].point == pytest.approx(2.75)
    assert st["scorecam_seed"] == pytest.approx(2.0)
    st.update(ch03_gradcam.gradcam_statistics(suite, _hand_scores(), _hand_agreement(suite)))
    rows = ch03_gradcam.v2_claims(st)
    by_id = {c.claim_id: c for c in rows}
    assert "ch03.prebinarization_more_faithful" not in by_id  # no depth table given
    assert by_id["ch03.inversion_more_faithful"].verdict == "reproduced"  # 10 > 0 on every draw
    assert by_id["ch03.gradcam_blank_on_bnn"].p_value is not None  # primary: p-value
    assert by_id["ch03.scorecam_alike"].matched["value"] == pytest.approx((4.5 + 1.0) / 2)


def test_depth_statistics_by_hand():
    rows = [{"model": m, "layer": f"{p}{i}", "measure": "AD", "image": j,
             "value": (3.0 if p == "act" else 1.0) * (2 if m[-2] == "b" else 1) + j}
            for m in ("vgg-fa", "vgg-fb", "vgg-ba", "vgg-bb") for p in ("act", "bn")
            for i in range(1, 7) for j in range(3)]
    suite = common.Suite({"fp": {0: "vgg-fa", 1: "vgg-fb"}, "bnn": {0: "vgg-ba", 1: "vgg-bb"},
                          "control": {}})
    st = ch03_gradcam.depth_statistics(suite, _long(rows))
    assert st["act_vs_bn"][0].point == pytest.approx(4.0)
    assert st["act_vs_bn_fp"][0].point == pytest.approx(2.0)


def test_gradcam_records_rescore_constant_maps_like_scoring_them_so(bnn_twin):
    x = _images(3, (32, 32, 3), seed=12)
    t = np.array([0, 1, 2])
    rec = ch03_gradcam.gradcam_records(bnn_twin, x, t, "conv6", name="m", kind="BNN")
    assert set(rec["constant"]) == set(ch03_gradcam.CONSTANTS)
    signed = methods.gradcam_layers(bnn_twin, x, t, ["conv6"])["conv6"].signed
    cams = {k: v for k, v in methods.cam_variants(signed).items() if k in ch03_gradcam.SCORED}
    for constant in ch03_gradcam.CONSTANTS:
        want = evaluation.cam_faithfulness(bnn_twin, x, t, cams, constant=constant)
        got = rec[(rec["constant"] == constant) & (rec["measure"] == "AD")]
        for variant in cams:
            np.testing.assert_allclose(
                got[got["variant"] == variant].sort_values("image")["value"],
                want[want["variant"] == variant]["average_drop"], rtol=1e-4, atol=1e-4,
                equal_nan=True)
