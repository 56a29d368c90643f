"""Tests for bnn_saliency.evaluation against independent oracles.

Oracles: scipy.stats (rank / Pearson correlation, entropy), skimage (SSIM, Sobel), Quantus 0.5.3
(Sparseness, Complexity, similarity functions) as a second implementation, closed forms (Gini,
entropy, total variation), and hand-computed softmax outputs of tiny Keras models with known
weights (deletion/insertion AUC, Average Drop/Increase/Gain).
"""
import warnings

import numpy as np
import pytest
import scipy.stats as sps
import skimage.filters
import skimage.metrics

from bnn_saliency import evaluation

RNG = np.random.default_rng(20240601)


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# ------------------------------------------------------------------------------ similarity

def test_spearman_matches_scipy_including_ties():
    a = RNG.normal(size=(5, 6, 7, 2))
    b = 0.5 * a + RNG.normal(size=a.shape)
    a[0, :3] = 0.0  # ties in the absolute values
    b[1] = np.round(b[1])  # ties in the signed values
    got_abs, got_signed = evaluation.spearman_abs(a, b), evaluation.spearman_signed(a, b)
    for i in range(len(a)):
        assert got_abs[i] == pytest.approx(sps.spearmanr(np.abs(a[i]).ravel(), np.abs(b[i]).ravel())[0], abs=1e-12)
        assert got_signed[i] == pytest.approx(sps.spearmanr(a[i].ravel(), b[i].ravel())[0], abs=1e-12)


def test_spearman_and_pearson_agree_with_quantus():
    from quantus.functions.similarity_func import correlation_pearson, correlation_spearman

    a = RNG.normal(size=(4, 8, 8))
    b = a + RNG.normal(size=a.shape)
    sp, pe = evaluation.spearman_signed(a, b), evaluation.pearson(a, b)
    for i in range(len(a)):
        assert sp[i] == pytest.approx(correlation_spearman(a[i].ravel(), b[i].ravel()), abs=1e-12)
        assert pe[i] == pytest.approx(correlation_pearson(a[i].ravel(), b[i].ravel()), abs=1e-12)
        assert pe[i] == pytest.approx(sps.pearsonr(a[i].ravel(), b[i].ravel())[0], abs=1e-12)


def test_rank_correlations_axioms():
    a = RNG.normal(size=(3, 10, 10))
    np.testing.assert_allclose(evaluation.spearman_abs(a, a), 1.0)
    np.testing.assert_allclose(evaluation.spearman_signed(a, -a), -1.0)
    np.testing.assert_allclose(evaluation.spearman_abs(a, -a), 1.0)  # sign is ignored
    np.testing.assert_allclose(evaluation.spearman_signed(a, np.exp(a)), 1.0)  # monotone invariance


def test_constant_maps_give_nan_not_zero():
    a = RNG.normal(size=(3, 16, 16))
    b = a.copy()
    b[1] = 0.25  # constant
    for f in (evaluation.spearman_abs, evaluation.spearman_signed, evaluation.pearson, evaluation.ssim, evaluation.hog_pearson):
        out = f(a, b)
        assert np.isnan(out[1]), f.__name__
        assert np.isfinite(out[[0, 2]]).all(), f.__name__


def test_ssim_identical_is_one_and_matches_skimage():
    a = RNG.random((4, 32, 32))
    np.testing.assert_allclose(evaluation.ssim(a, a), 1.0)
    b = a + 0.3 * RNG.normal(size=a.shape)
    got = evaluation.ssim(a, b)
    for i in range(len(a)):
        na = (a[i] - a[i].min()) / np.ptp(a[i])
        nb = (b[i] - b[i].min()) / np.ptp(b[i])
        ref = skimage.metrics.structural_similarity(na, nb, data_range=1.0)
        assert got[i] == pytest.approx(ref, abs=1e-12)
    # min-max normalization makes SSIM invariant to positive affine maps of either input
    np.testing.assert_allclose(evaluation.ssim(3 * a + 1, b), got, atol=1e-12)
    assert np.all(got < 0.99)


def test_ssim_channels_need_explicit_reduction():
    a = RNG.normal(size=(2, 16, 16, 3))
    b = RNG.normal(size=(2, 16, 16, 3))
    with pytest.raises(ValueError, match="channels"):
        evaluation.ssim(a, b)
    got = evaluation.ssim(a, b, reduce="abs_sum")
    np.testing.assert_allclose(got, evaluation.ssim(np.abs(a).sum(-1), np.abs(b).sum(-1)))
    np.testing.assert_allclose(evaluation.ssim(a[..., :1], b[..., :1]), evaluation.ssim(a[..., 0], b[..., 0]))


def test_hog_identical_one_unrelated_near_zero_related_high():
    a = RNG.random((12, 32, 32))
    np.testing.assert_allclose(evaluation.hog_pearson(a, a), 1.0)
    np.testing.assert_allclose(evaluation.hog_pearson(a, 5 * a - 2), 1.0, atol=1e-9)  # min-max invariant
    unrelated = evaluation.hog_pearson(a, RNG.random(a.shape))
    assert abs(unrelated.mean()) < 0.15
    # a smooth structured map and a noisy copy of it share orientations
    yy, xx = np.mgrid[:32, :32]
    smooth = np.stack([np.sin(xx / (3 + k) + yy / 5) for k in range(12)])
    related = evaluation.hog_pearson(smooth, smooth + 0.05 * RNG.normal(size=smooth.shape))
    assert related.min() > 0.5 and unrelated.max() < 0.3


def test_hog_default_cells_and_small_maps():
    assert evaluation.default_pixels_per_cell((32, 32)) == (4, 4)
    assert evaluation.default_pixels_per_cell((224, 224)) == (16, 16)
    cams = RNG.random((2, 8, 8))
    assert np.isfinite(evaluation.hog_pearson(cams, cams + RNG.random(cams.shape))).all()
    with pytest.raises(ValueError, match="pixels_per_cell"):
        evaluation.hog_pearson(RNG.random((1, 6, 6)), RNG.random((1, 6, 6)))


# ------------------------------------------------------------------------------ complexity

def test_gini_closed_forms():
    n = 8 * 8
    one_hot = np.zeros((1, 8, 8))
    one_hot[0, 3, 5] = -2.5  # sign is ignored
    assert evaluation.gini(one_hot)[0] == pytest.approx((n - 1) / n, abs=1e-15)
    assert evaluation.gini(np.full((1, 8, 8), 0.3))[0] == pytest.approx(0.0, abs=1e-15)
    # [0, 0, 1, 1]: sum (2i - n - 1) a_i / (n sum a) = (1 + 3) / (4 * 2)
    assert evaluation.gini(np.array([[[0.0, 1.0], [1.0, 0.0]]]))[0] == pytest.approx(0.5)
    assert np.isnan(evaluation.gini(np.zeros((1, 4, 4)))[0])


def test_gini_matches_hurley_rickard_and_quantus():
    import quantus

    a = RNG.normal(size=(6, 1, 12, 12))  # channel-first for quantus
    ours = evaluation.gini(a[:, 0])
    # Hurley & Rickard (2009) form, written independently
    for i in range(len(a)):
        c = np.sort(np.abs(a[i].ravel()))
        n = len(c)
        k = np.arange(1, n + 1)
        hr = 1 - 2 * np.sum(c / c.sum() * (n - k + 0.5) / n)
        assert ours[i] == pytest.approx(hr, abs=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric = quantus.Sparseness(abs=True, normalise=False, disable_warnings=True)
        ref = metric(model=None, x_batch=a, y_batch=np.zeros(len(a), int), a_batch=a, channel_first=True)
    # quantus adds 1e-7 to every value before the formula
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_entropy_closed_forms_scipy_and_quantus():
    import quantus

    n = 10 * 10
    assert evaluation.entropy(np.full((1, 10, 10), -3.0))[0] == pytest.approx(np.log(n))
    one_hot = np.zeros((1, 10, 10))
    one_hot[0, 2, 2] = 1.0
    assert evaluation.entropy(one_hot)[0] == pytest.approx(0.0, abs=1e-15)
    assert np.isnan(evaluation.entropy(np.zeros((1, 3, 3)))[0])
    a = RNG.normal(size=(5, 1, 10, 10))
    ours = evaluation.entropy(a[:, 0])
    np.testing.assert_allclose(ours, [sps.entropy(np.abs(x).ravel()) for x in a], rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric = quantus.Complexity(abs=True, normalise=False, disable_warnings=True)
        ref = metric(model=None, x_batch=a, y_batch=np.zeros(len(a), int), a_batch=a, channel_first=True)
    np.testing.assert_allclose(ours, ref, rtol=1e-10)


def test_total_variation_closed_forms():
    checker = (np.indices((6, 6)).sum(0) % 2).astype(float)[None]
    assert evaluation.total_variation(checker)[0] == pytest.approx(1.0)
    assert evaluation.total_variation(np.full((1, 5, 5), 2.0))[0] == pytest.approx(0.0)
    spike = np.zeros((1, 3, 3))
    spike[0, 1, 1] = 7.0
    # 4 neighbour pairs differ by 1 out of (H-1)W + H(W-1) = 12 pairs
    assert evaluation.total_variation(spike)[0] == pytest.approx(4 / 12)
    np.testing.assert_allclose(evaluation.total_variation(-3 * checker), evaluation.total_variation(checker))
    assert np.isnan(evaluation.total_variation(np.zeros((1, 4, 4)))[0])
    noisy = RNG.random((3, 16, 16))
    smooth = np.broadcast_to(np.linspace(0, 1, 16), (3, 16, 16))
    assert (evaluation.total_variation(smooth) < evaluation.total_variation(noisy)).all()


def test_edge_map_matches_skimage_sobel():
    x = RNG.random((2, 9, 11, 3))
    ref = np.stack([np.mean([np.hypot(skimage.filters.sobel_h(img[..., c]),
                                      skimage.filters.sobel_v(img[..., c])) for c in range(3)], 0)
                    for img in x])
    np.testing.assert_allclose(evaluation.edge_map(x), 4 * ref, atol=1e-12)
    step = np.zeros((1, 6, 6, 1))
    step[..., 3:, :] = 1.0
    e = evaluation.edge_map(step)[0]
    assert (e[:, [0, 1, 4, 5]] == 0).all() and (e[:, [2, 3]] > 0).all()


# ------------------------------------------------------------------------------ faithfulness

@pytest.fixture(scope="module")
def keras():
    from tensorflow import keras as k

    return k


def _dense_model(keras, kernel, bias, shape):
    inp = keras.Input(shape)
    out = keras.layers.Dense(kernel.shape[1], name="logits")(keras.layers.Flatten()(inp))
    model = keras.Model(inp, out)
    model.get_layer("logits").set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return model


@pytest.fixture(scope="module")
def one_pixel_model(keras):
    """4x4x1 images; logits = [w * x[1, 2], 0]: only pixel (1, 2) matters. Its float32 logits are
    exact (one weight 2.0, pixels 0, 0.25 or 1; softmax in float64): tight tolerances below."""
    kernel = np.zeros((16, 2))
    kernel[1 * 4 + 2, 0] = 2.0
    return _dense_model(keras, kernel, np.zeros(2), (4, 4, 1))


def _rank_maps(first: bool):
    m = np.arange(16, dtype=float)[::-1].reshape(1, 4, 4) + 1.0  # distinct, raster-descending
    m[0, 1, 2] = 100.0 if first else -100.0
    return m


def test_deletion_auc_exact_values(one_pixel_model):
    img = np.ones((1, 4, 4, 1), np.float32)
    s = 1 / (1 + np.exp(-2.0))  # softmax prob of class 0 with the pixel present; 0.5 without
    first = evaluation.deletion_auc(one_pixel_model, img, 0, _rank_maps(True), n_steps=16)[0]
    last = evaluation.deletion_auc(one_pixel_model, img, 0, _rank_maps(False), n_steps=16)[0]
    assert first == pytest.approx((s + 0.5) / 2 / 16 + 0.5 * 15 / 16, rel=1e-6)
    assert last == pytest.approx(s * 15 / 16 + (s + 0.5) / 2 / 16, rel=1e-6)
    assert first < last
    coarse = evaluation.deletion_auc(one_pixel_model, img, 0, _rank_maps(True), n_steps=4)[0]
    assert coarse == pytest.approx((s + 0.5) / 2 / 4 + 0.5 * 3 / 4, rel=1e-6)
    # a 2x2 map is upsampled bilinearly (half-pixel centres) to the outer product of
    # [1, .75, .25, 0] with itself: pixel (1, 2) gets .1875, rank 7 or 8 of 16 -> removed at step 2
    low_res = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    assert evaluation.deletion_auc(one_pixel_model, img, 0, low_res, n_steps=4)[0] == pytest.approx(
        s / 4 + (s + 0.5) / 8 + 0.5 / 2, rel=1e-6)


def test_insertion_auc_exact_values_and_curves(one_pixel_model):
    img = np.ones((2, 4, 4, 1), np.float32)
    maps = np.concatenate([_rank_maps(True), _rank_maps(False)])
    s = 1 / (1 + np.exp(-2.0))
    auc = evaluation.insertion_auc(one_pixel_model, img, 0, maps, n_steps=16, baseline="black", batch_size=5)
    np.testing.assert_allclose(auc, [(0.5 + s) / 32 + s * 15 / 16, 0.5 * 15 / 16 + (0.5 + s) / 32], rtol=1e-6)
    curves, frac = evaluation.perturbation_curves(one_pixel_model, img, 0, maps, "insertion", 16, "black")
    np.testing.assert_allclose(frac, np.arange(17) / 16)
    np.testing.assert_allclose(curves[0], [0.5] + [s] * 16, rtol=1e-6)
    np.testing.assert_allclose(curves[1], [0.5] * 16 + [s], rtol=1e-6)


def test_perturbation_baselines(one_pixel_model):
    img = RNG.random((1, 4, 4, 1)).astype(np.float32)
    curves, _ = evaluation.perturbation_curves(one_pixel_model, img, 0, _rank_maps(True), "deletion", 16,
                                      baseline=0.25)
    p = _softmax(np.array([2.0 * 0.25, 0.0]))[0]
    np.testing.assert_allclose(curves[0, 1:], p, rtol=1e-6)
    mean_curves, _ = evaluation.perturbation_curves(one_pixel_model, img, 0, _rank_maps(True), "deletion",
                                           16, baseline="mean")
    p = _softmax(np.array([2.0 * img.mean(), 0.0]))[0]
    np.testing.assert_allclose(mean_curves[0, 1:], p, rtol=1e-5)
    blur, _ = evaluation.perturbation_curves(one_pixel_model, img, 0, _rank_maps(True), "deletion", 16,
                                    baseline="blur", blur_sigma=1.0)
    assert np.isfinite(blur).all()


def test_average_drop_increase_gain_vs_hand_computation(keras):
    rng = np.random.default_rng(7)
    kernel = rng.normal(size=(4, 3)) * 2.0
    bias = np.array([0.5, -0.3, 0.1])
    model = _dense_model(keras, kernel, bias, (2, 2, 1))
    x = rng.random((16, 2, 2, 1)).astype(np.float32)
    t = rng.integers(0, 3, 16)
    cams = rng.random((16, 2, 2))

    flat = x.reshape(16, 4).astype(np.float64)
    mask = (cams - cams.min(axis=(1, 2), keepdims=True)) / np.ptp(cams, axis=(1, 2)).reshape(-1, 1, 1)
    y = _softmax(flat @ kernel + bias)[np.arange(16), t]
    o = _softmax((flat * mask.reshape(16, 4)) @ kernel + bias)[np.arange(16), t]
    drop = 100 * np.maximum(0, y - o) / y
    inc = 100.0 * (y < o)
    gain = 100 * np.maximum(0, o - y) / (1 - y)
    assert 0 < inc.mean() < 100  # both outcomes occur, so every branch is exercised

    per = evaluation.average_drop_increase_gain(model, x, t, cams, per_sample=True)
    np.testing.assert_allclose(per["y"], y, rtol=1e-5)
    np.testing.assert_allclose(per["o"], o, rtol=1e-5)
    np.testing.assert_allclose(per["average_drop"], drop, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(per["average_increase"], inc)
    np.testing.assert_allclose(per["average_gain"], gain, rtol=1e-4, atol=1e-4)
    agg = evaluation.average_drop_increase_gain(model, x, t, cams)
    assert agg["average_drop"] == pytest.approx(drop.mean(), rel=1e-4)
    assert agg["average_increase"] == pytest.approx(inc.mean())
    assert agg["average_gain"] == pytest.approx(gain.mean(), rel=1e-4)
    np.testing.assert_allclose(evaluation.average_drop(model, x, t, cams), drop, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(evaluation.increase_in_confidence(model, x, t, cams), inc)
    np.testing.assert_allclose(evaluation.average_gain(model, x, t, cams), gain, rtol=1e-4, atol=1e-4)


def test_adi_constant_cam_conventions(keras):
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(4, 3))
    bias = np.array([0.2, -0.1, 0.4])
    model = _dense_model(keras, kernel, bias, (2, 2, 1))
    x = rng.random((2, 2, 2, 1)).astype(np.float32)
    cams = np.stack([np.zeros((2, 2)), rng.random((2, 2))])  # sample 0: dead (all-zero) CAM
    y = _softmax(x.reshape(2, 4) @ kernel + bias)[:, 1]
    zero = evaluation.average_drop_increase_gain(model, x, 1, cams, per_sample=True)
    assert zero["o"][0] == pytest.approx(_softmax(bias)[1], rel=1e-5)  # black image
    one = evaluation.average_drop_increase_gain(model, x, 1, cams, per_sample=True, constant="one")
    assert one["o"][0] == pytest.approx(y[0], rel=1e-5)  # unmasked image
    nan = evaluation.average_drop_increase_gain(model, x, 1, cams, per_sample=True, constant="nan")
    assert np.isnan(nan["average_drop"][0]) and np.isnan(nan["average_gain"][0])
    agg = evaluation.average_drop_increase_gain(model, x, 1, cams, constant="nan")
    assert agg["average_drop"] == pytest.approx(nan["average_drop"][1])


def test_adi_upsamples_low_resolution_cams(keras):
    model = _dense_model(keras, np.eye(16, 3), np.zeros(3), (4, 4, 1))
    x = np.ones((1, 4, 4, 1), np.float32)
    cam = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    e = evaluation.explanation_images(x, cam)
    # bilinear with half-pixel centres: source coordinates (i + .5) / 2 - .5 = -.25, .25, .75, 1.25
    # (clamped) give weights [1, .75, .25, 0] on the first row/column; already in [0, 1]
    w = np.array([1.0, 0.75, 0.25, 0.0])
    np.testing.assert_allclose(e[0, ..., 0], np.outer(w, w), atol=1e-7)
    out = evaluation.average_drop_increase_gain(model, x, 0, cam, per_sample=True)
    assert out["o"][0] == pytest.approx(_softmax(e[0].ravel()[:3].astype(float))[0], rel=1e-5)


# ------------------------------------------------------------------------------ bad input

def test_bad_inputs_raise_clear_errors(one_pixel_model):
    a = RNG.random((2, 8, 8))
    with pytest.raises(ValueError, match="same shape"):
        evaluation.spearman_abs(a, a[:, :4])
    bad = a.copy()
    bad[1, 0, 0] = np.nan
    for f in (evaluation.spearman_abs, evaluation.ssim, evaluation.pearson):
        with pytest.raises(ValueError, match="NaN"):
            f(a, bad)
    with pytest.raises(ValueError, match="NaN"):
        evaluation.gini(bad)
    with pytest.raises(ValueError, match="empty"):
        evaluation.entropy(np.zeros((0, 8, 8)))
    with pytest.raises(ValueError, match="empty"):
        evaluation.spearman_abs(np.zeros((0, 8, 8)), np.zeros((0, 8, 8)))
    with pytest.raises(ValueError, match="batch axis"):
        evaluation.total_variation(np.ones((8, 8)))
    with pytest.raises(ValueError, match="reduce"):
        evaluation.hog_pearson(RNG.random((1, 8, 8, 3)), RNG.random((1, 8, 8, 3)), reduce="median")
    img = np.ones((1, 4, 4, 1), np.float32)
    with pytest.raises(ValueError, match="n_steps"):
        evaluation.deletion_auc(one_pixel_model, img, 0, _rank_maps(True), n_steps=0)
    with pytest.raises(ValueError, match="targets"):
        evaluation.deletion_auc(one_pixel_model, img, 5, _rank_maps(True))
    with pytest.raises(ValueError, match="targets"):
        evaluation.average_drop(one_pixel_model, img, [0, 1], _rank_maps(True))
    with pytest.raises(ValueError, match="2 maps for 1 images"):
        evaluation.insertion_auc(one_pixel_model, img, 0, np.ones((2, 4, 4)))
    with pytest.raises(TypeError, match="floating"):
        evaluation.average_drop(one_pixel_model, img.astype(np.uint8), 0, _rank_maps(True))
    with pytest.raises(ValueError, match="empty"):
        evaluation.average_drop(one_pixel_model, np.zeros((0, 4, 4, 1), np.float32), 0, np.zeros((0, 4, 4)))
    with pytest.raises(ValueError, match="baseline"):
        evaluation.deletion_auc(one_pixel_model, img, 0, _rank_maps(True), baseline="white")


def test_registries_carry_category_and_direction():
    expected = {
        "similarity": (evaluation.SIMILARITY, {"spearman_abs", "spearman_signed", "pearson", "ssim", "hog_pearson"}),
        "complexity": (evaluation.COMPLEXITY, {"entropy", "gini", "total_variation"}),
        "faithfulness": (evaluation.FAITHFULNESS, {"deletion_auc", "insertion_auc", "average_drop",
                                          "increase_in_confidence", "average_gain"}),
    }
    for category, (registry, names) in expected.items():
        assert set(registry) == names
        for name, f in registry.items():
            assert f.__name__ == name and f.category == category
            assert f.score_direction in ("higher", "lower")
    lower = {"deletion_auc", "average_drop", "entropy", "total_variation"}
    for registry in (evaluation.SIMILARITY, evaluation.COMPLEXITY, evaluation.FAITHFULNESS):
        for name, f in registry.items():
            assert f.score_direction == ("lower" if name in lower else "higher"), name
