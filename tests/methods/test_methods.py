"""Tests of bnn_saliency.methods against independent oracles.

Oracles: central finite differences, hand-written numpy formulas (Grad-CAM, guided
backprop), closed forms (IG and DeepLIFT toys from the papers, SmoothGrad noise variance),
axioms (completeness, summation-to-delta) and a second implementation (tf-keras-vis).
Models are tiny; float64 where precision matters.
"""
from __future__ import annotations

import functools

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from conftest import float64, jitter_biases_and_bn
from float_tolerance import assert_float32_close
from tensorflow import keras

from bnn_saliency import methods
from bnn_saliency.methods import _core
from bnn_saliency.models.twins import build_twin, gradcam_layer


def set_bn(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            new = []
            for v in layer.weights:
                name = v.name.split("/")[-1]
                if name.startswith("gamma") or name.startswith("moving_variance"):
                    new.append(rng.uniform(0.5, 1.5, v.shape))
                else:  # beta, moving_mean
                    new.append(rng.normal(0.0, 0.3, v.shape))
            layer.set_weights([w.astype(v.dtype.as_numpy_dtype) for w, v in zip(new, layer.weights)])
    return model


def images(n, shape=(32, 32, 3), seed=0, dtype=np.float32):
    return np.random.default_rng(seed).random((n,) + shape).astype(dtype)


@pytest.fixture(scope="module")
def vgg_bnn():
    keras.utils.set_random_seed(1)
    return set_bn(build_twin("vgg", "bnn", width=8), seed=1)


@pytest.fixture(scope="module")
def resnet_bnn():
    keras.utils.set_random_seed(2)
    return set_bn(build_twin("resnet", "bnn", width=8), seed=2)


@pytest.fixture(scope="module")
def vgg_fp():
    keras.utils.set_random_seed(3)
    return set_bn(build_twin("vgg", "fp", width=8), seed=3)


# --------------------------------------------------------------------- gradient
@pytest.fixture(scope="module")
def smooth64():
    """A smooth float64 conv net (tanh, softplus): finite differences are accurate."""
    with float64():
        keras.utils.set_random_seed(4)
        inp = keras.Input((5, 5, 2))
        x = keras.layers.Conv2D(3, 3, padding="same", activation="tanh")(inp)
        x = keras.layers.Conv2D(4, 3, strides=2, activation="softplus")(x)
        x = keras.layers.Flatten()(x)
        out = keras.layers.Dense(3)(x)
        return keras.Model(inp, out)


def test_gradient_matches_central_finite_differences(smooth64):
    x = images(2, (5, 5, 2), seed=1, dtype=np.float64)
    t = np.array([0, 2])
    g = methods.gradient(smooth64, x, t)
    h = 1e-5
    d = x[0].size
    eye = np.eye(d).reshape((d,) + x.shape[1:])
    fd = np.empty_like(x)
    for i in range(len(x)):
        plus = smooth64(x[i] + h * eye).numpy()[:, t[i]]
        minus = smooth64(x[i] - h * eye).numpy()[:, t[i]]
        fd[i] = ((plus - minus) / (2 * h)).reshape(x.shape[1:])
    rel = np.linalg.norm(g - fd) / np.linalg.norm(fd)
    assert g.dtype == np.float32 and g.shape == x.shape
    assert rel < 1e-4
    np.testing.assert_allclose(methods.gradient_x_input(smooth64, x, t), x * fd, rtol=1e-4, atol=1e-7)


def test_gradient_batch_size_invariant(vgg_bnn):
    x = images(5)
    a = methods.gradient(vgg_bnn, x, 3, batch_size=2)
    b = methods.gradient(vgg_bnn, x, 3)
    assert_float32_close(a, b, depth=7)  # backward through the dense layer and 6 convs


# ---------------------------------------------------------------------- Grad-CAM
def _conv_valid(x, kernel, bias):
    """Numpy 'valid' convolution (cross-correlation), x (H, W, C), kernel (k, k, C, K)."""
    k = kernel.shape[0]
    h, w = x.shape[0] - k + 1, x.shape[1] - k + 1
    out = np.empty((h, w, kernel.shape[-1]))
    for i in range(h):
        for j in range(w):
            out[i, j] = np.tensordot(x[i:i + k, j:j + k], kernel, axes=3) + bias
    return out


def _cam_net():
    keras.utils.set_random_seed(5)
    inp = keras.Input((6, 6, 2))
    a = keras.layers.Conv2D(3, 3, activation="relu", name="feat")(inp)
    f = keras.layers.Flatten()(a)
    hid = keras.layers.Dense(5, activation="relu", name="hidden")(f)
    out = keras.layers.Dense(4, name="logits")(hid)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def cam64():
    """float64 conv -> flatten -> relu dense -> logits, and a numpy oracle of its
    activations A and logit gradients dS/dA at layer "feat"."""
    with float64():
        model = _cam_net()
    kc, bc = model.get_layer("feat").get_weights()
    w1, b1 = model.get_layer("hidden").get_weights()
    w2, _ = model.get_layer("logits").get_weights()

    def forward(x):
        """numpy logits."""
        out = []
        for xi in x:
            act = np.maximum(_conv_valid(xi, kc, bc), 0)
            out.append(np.maximum(act.reshape(-1) @ w1 + b1, 0) @ w2 + model.get_layer("logits").get_weights()[1])
        return np.array(out)

    def oracle(x, t):
        acts, grads = [], []
        for xi, ti in zip(x, t):
            act = np.maximum(_conv_valid(xi, kc, bc), 0)
            pre = act.reshape(-1) @ w1 + b1
            grads.append((w1 @ (w2[:, ti] * (pre > 0))).reshape(act.shape))
            acts.append(act)
        return np.array(acts), np.array(grads)

    return model, oracle, forward


def test_gradcam_matches_numpy_formula(cam64):
    model, oracle, _ = cam64
    x = images(3, (6, 6, 2), seed=2, dtype=np.float64) - 0.3
    t = np.array([0, 3, 1])
    acts, grads = oracle(x, t)
    want_alpha = grads.mean(axis=(1, 2))
    want_map = np.einsum("nhwk,nk->nhw", acts, want_alpha)
    assert np.any(want_map < 0) and np.any(want_map > 0)  # the ReLU matters
    np.testing.assert_allclose(methods.gradcam_weights(model, x, t, "feat"), want_alpha, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(methods.gradcam(model, x, t, layer="feat", relu=False), want_map,
                               rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(methods.gradcam(model, x, t, layer="feat"), np.maximum(want_map, 0),
                               rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(methods.gradcam(model, x, t, layer="feat", invert=True),
                               np.maximum(-want_map, 0), rtol=1e-5, atol=1e-8)
    assert methods.gradcam(model, x, t, layer="feat").shape == (3, 4, 4)


def test_gradcam_plus_plus_matches_closed_form(cam64):
    # Chattopadhay et al. 2018, eq. 19 with exp(S) scaling removed, plus tf-keras-vis's
    # spatial normalization of the alphas (see the docstring).
    model, oracle, _ = cam64
    x = images(4, (6, 6, 2), seed=3, dtype=np.float64) - 0.3
    t = np.array([2, 0, 1, 3])
    acts, g = oracle(x, t)
    denom = 2 * g ** 2 + g ** 3 * acts.sum(axis=(1, 2), keepdims=True)
    alpha = g ** 2 / np.where(g == 0, 1.0, denom)
    norm = alpha.sum(axis=(1, 2), keepdims=True)
    alpha = alpha / np.where(norm == 0, 1.0, norm)
    w = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
    want = np.maximum(np.einsum("nhwk,nk->nhw", acts, w), 0)
    assert want.max() > 0
    np.testing.assert_allclose(methods.gradcam_plus_plus(model, x, t, layer="feat"), want,
                               rtol=1e-5, atol=1e-7 * want.max())


def test_scorecam_matches_closed_form(cam64):
    # Wang et al. 2020 as implemented by tf-keras-vis 0.8.7: channel k upsampled (linear,
    # border 'nearest'), min-max normalized, multiplied into the image; weight = softmax
    # probability of the target for that masked image; map = relu(sum_k w_k A^k).
    from scipy.ndimage import zoom

    model64, oracle, forward = cam64
    with pytest.raises(ValueError, match="float32"):
        methods.scorecam(model64, images(1, (6, 6, 2)), 0, layer="feat")
    model = _cam_net()  # float32 twin of the same net
    model.set_weights([w.astype(np.float32) for w in model64.get_weights()])
    assert model.inputs[0].dtype == tf.float32
    x = images(2, (6, 6, 2), seed=4, dtype=np.float64) - 0.3
    t = np.array([1, 2])
    acts, _ = oracle(x, t)
    want = []
    for xi, ti, act in zip(x, t, acts):
        w = []
        for k in range(act.shape[-1]):
            up = zoom(act[..., k], 1.5, order=1, mode="nearest")
            up = (up - up.min()) / (up.max() - up.min() + 1e-7)
            logits = forward((xi * up[..., None])[None])[0]
            p = np.exp(logits - logits.max())
            w.append(p[ti] / p.sum())
        want.append(np.maximum(np.einsum("hwk,k->hw", act, np.array(w)), 0))
    want = np.array(want)
    assert want.max() > 0
    np.testing.assert_allclose(methods.scorecam(model, x, t, layer="feat"), want, rtol=1e-4,
                               atol=1e-5 * want.max())


def test_gradcam_matches_tfkerasvis_on_bnn_twin(vgg_bnn):
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.scores import CategoricalScore

    x = images(3, seed=3)
    t = np.array([1, 4, 7])
    viz = Gradcam(vgg_bnn, model_modifier=None, clone=False)
    for relu, modifier in [(True, {}), (False, {"activation_modifier": None})]:
        ref = np.asarray(viz(CategoricalScore(t.tolist()), x, penultimate_layer="conv6",
                             seek_penultimate_conv_layer=False, expand_cam=False,
                             normalize_cam=False, **modifier))
        ours = methods.gradcam(vgg_bnn, x, t, layer="conv6", relu=relu)
        assert ours.shape == ref.shape == (3, 8, 8)
        scale = np.abs(ref).max()
        assert scale > 0
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5 * scale)


# ------------------------------------------------------------ integrated gradients
def _largest_delta_targets(model, x, base):
    diff = model(x).numpy() - model(base).numpy()
    return np.abs(diff).argmax(axis=1), diff


@pytest.mark.parametrize("rule", ["midpoint", "trapezoid"])
def test_ig_completeness_smooth_float64(smooth64, rule):
    x = images(3, (5, 5, 2), seed=4, dtype=np.float64)
    t, diff = _largest_delta_targets(smooth64, x, np.zeros_like(x))
    attr = methods.integrated_gradients(smooth64, x, t, steps=256, rule=rule)
    delta = methods.convergence_delta(smooth64, x, t, attr)
    fdiff = diff[np.arange(3), t]
    assert np.all(np.abs(delta) / np.abs(fdiff) < 1e-3)
    # the Riemann sum with very few steps is visibly incomplete: the check can fail
    coarse = methods.integrated_gradients(smooth64, x, t, steps=1, rule=rule)
    assert np.max(np.abs(methods.convergence_delta(smooth64, x, t, coarse)) / np.abs(fdiff)) > 1e-3


def test_ig_completeness_fp_twin(vgg_fp):
    x = images(3, seed=5)
    base = np.full_like(x, 0.5)
    t, diff = _largest_delta_targets(vgg_fp, x, base)
    attr = methods.integrated_gradients(vgg_fp, x, t, baseline=base, steps=256)
    delta = methods.convergence_delta(vgg_fp, x, t, attr, baseline=base)
    assert np.all(np.abs(delta) / np.abs(diff[np.arange(3), t]) < 0.01)
    blur = methods.integrated_gradients(vgg_fp, x, t, baseline="blur", steps=256)
    delta = methods.convergence_delta(vgg_fp, x, t, blur, baseline="blur")
    diff_blur = (vgg_fp(x).numpy() - vgg_fp(methods.baseline_images(x, "blur")).numpy())[np.arange(3), t]
    assert np.all(np.abs(delta) / np.abs(diff_blur) < 0.01)


def _dense_model(in_dim, layers):
    """float64 MLP on a (1, 1, in_dim) 'image'; layers = [(kernel, bias, activation), ...]."""
    with float64():
        inp = keras.Input((1, 1, in_dim))
        x = keras.layers.Flatten()(inp)
        dense = []
        for kernel, bias, act in layers:
            lay = keras.layers.Dense(np.shape(kernel)[1], activation=act)
            x = lay(x)
            dense.append((lay, kernel, bias))
        model = keras.Model(inp, x)
    for lay, kernel, bias in dense:
        lay.set_weights([np.asarray(kernel, float), np.asarray(bias, float)])
    return model


def test_ig_sensitivity_example_from_paper():
    # Sundararajan et al. 2017, Sec. 2.1: f(x) = 1 - ReLU(1 - x), x = 2, baseline 0.
    model = _dense_model(1, [([[-1.0]], [1.0], "relu"), ([[-1.0]], [1.0], None)])
    x = np.full((1, 1, 1, 1), 2.0)
    assert methods.gradient(model, x, 0).item() == 0.0  # gradients miss the feature
    assert methods.integrated_gradients(model, x, 0, steps=64).item() == pytest.approx(1.0, abs=1e-6)
    assert methods.deeplift_rescale(model, x, 0).item() == pytest.approx(1.0, abs=1e-6)


def test_ig_two_relu_toy_closed_form():
    # f(x1, x2) = ReLU(x1 - 1) - ReLU(x2); at (3, 1) with a zero baseline IG = (2, -1):
    # x1's ReLU opens at a = 1/3 of the path, so IG_1 = 3 * (1 - 1/3). grad * input = (3, -1).
    model = _dense_model(2, [([[1.0, 0.0], [0.0, 1.0]], [-1.0, 0.0], "relu"),
                             ([[1.0], [-1.0]], [0.0], None)])
    x = np.array([3.0, 1.0]).reshape(1, 1, 1, 2)
    ig = methods.integrated_gradients(model, x, 0, steps=96).ravel()  # 96 = 3 * 32: kink between points
    np.testing.assert_allclose(ig, [2.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(methods.gradient_x_input(model, x, 0).ravel(), [3.0, -1.0], atol=1e-6)
    # DeepLIFT-rescale: z1 = x1 - 1 goes -1 -> 2, relu 0 -> 2: m = 2/3, attr = 3 * 2/3 = 2.
    np.testing.assert_allclose(methods.deeplift_rescale(model, x, 0).ravel(), [2.0, -1.0], atol=1e-6)


# ------------------------------------------------------------------------ DeepLIFT
@functools.lru_cache(maxsize=None)
def _relu_net64(sign=False, seed=6):
    """float64 conv net without max pooling: BN, avg pool, ReLU in every supported form
    (Activation layer, activation= inside Conv, keras.layers.ReLU) or sign activations."""
    with float64():
        keras.utils.set_random_seed(seed)
        act = (lambda: keras.layers.Activation(lq.quantizers.SteSign())) if sign else \
            (lambda: keras.layers.Activation("relu"))
        inp = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(4, 3, padding="same")(inp)
        x = keras.layers.BatchNormalization()(x)
        x = act()(x)
        x = keras.layers.Conv2D(6, 3, padding="same", activation=None if sign else "relu")(x)
        x = keras.layers.AveragePooling2D(2)(x)
        x = keras.layers.BatchNormalization()(x)
        x = act()(x) if sign else keras.layers.ReLU()(x)
        y = keras.layers.Conv2D(6, 1)(x)
        x = keras.layers.Add()([x, y])
        x = act()(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        out = keras.layers.Dense(5)(x)
        model = keras.Model(inp, out)
    return jitter_biases_and_bn(model, seed)


@pytest.mark.parametrize("sign", [False, True], ids=["relu", "sign"])
@pytest.mark.parametrize("baseline", ["black", "random"])
def test_deeplift_summation_to_delta(sign, baseline):
    model = _relu_net64(sign=sign)
    x = images(3, (8, 8, 3), seed=7, dtype=np.float64) - 0.5
    base = "black" if baseline == "black" else images(3, (8, 8, 3), seed=8, dtype=np.float64) - 0.5
    base_arr = methods.baseline_images(x, base)
    t, diff = _largest_delta_targets(model, x, base_arr)
    fdiff = diff[np.arange(3), t]
    assert np.all(np.abs(fdiff) > 1e-3)
    attr = methods.deeplift_rescale(model, x, t, baseline=base)
    delta = methods.convergence_delta(model, x, t, attr, baseline=base)
    assert np.all(np.abs(delta) <= 1e-5 * np.maximum(1.0, np.abs(fdiff)))
    # plain gradient x (input - baseline) is not complete on this net: the check can fail
    naive = methods.gradient(model, x, t).astype(np.float64) * (x - base_arr)
    assert np.max(np.abs(methods.convergence_delta(model, x, t, naive, baseline=base))) > 1e-3


def test_deeplift_sign_multiplier_is_finite_difference():
    # f(x) = 3 * sign(2 x - 0.5) + 0.1, one unit; the rescale multiplier of the sign is
    # (sign(z) - sign(z')) / (z - z'), so attr = f(x) - f(x') exactly, with no STE.
    with float64():
        inp = keras.Input((1, 1, 1))
        h = keras.layers.Dense(1, name="d1")(keras.layers.Flatten()(inp))
        h = keras.layers.Activation(lq.quantizers.SteSign())(h)
        out = keras.layers.Dense(1, name="d2")(h)
        model = keras.Model(inp, out)
    model.get_layer("d1").set_weights([np.array([[2.0]]), np.array([-0.5])])
    model.get_layer("d2").set_weights([np.array([[3.0]]), np.array([0.1])])

    def f(v):
        return 3.0 * (1.0 if 2 * v - 0.5 >= 0 else -1.0) + 0.1

    x = np.array([1.0, 0.4, 0.1, -2.0]).reshape(4, 1, 1, 1)
    ref = np.array([0.0, 0.3, 0.0, 1.0]).reshape(4, 1, 1, 1)
    attr = methods.deeplift_rescale(model, x, 0, baseline=ref).ravel()
    want = [f(a) - f(b) for a, b in zip(x.ravel(), ref.ravel())]
    np.testing.assert_allclose(attr, want, atol=1e-9)
    assert want == [6.0, 0.0, 0.0, -6.0]
    # the STE gradient at x = 0.4 (|z| = 0.3 <= 1) is 2 * 3 = 6, DeepLIFT gives 0: no STE used
    assert methods.gradient(model, x[1:2], 0).item() == pytest.approx(6.0)


# ----------------------------------------------------------------------- SmoothGrad
def test_smoothgrad_zero_noise_single_sample_is_gradient(vgg_bnn):
    x = images(3, seed=9)
    t = np.array([0, 5, 9])
    # the same compiled gradient of the same 3 inputs (x + 0 * eps == x), one batch: bit-identical
    np.testing.assert_array_equal(methods.smoothgrad(vgg_bnn, x, t, noise=0.0, n_samples=1),
                                  methods.gradient(vgg_bnn, x, t))
    # 3 copies per image: a batch of 9, not 3, so float32 rounding may differ
    assert_float32_close(
        methods.smoothgrad(vgg_bnn, x, t, method="gradient_x_input", noise=0.0, n_samples=3),
        methods.gradient_x_input(vgg_bnn, x, t), depth=7)


def test_smoothgrad_seeding_and_batch_size(vgg_bnn):
    x = images(2, seed=10)
    a = methods.smoothgrad(vgg_bnn, x, 1, n_samples=8, seed=3)
    b = methods.smoothgrad(vgg_bnn, x, 1, n_samples=8, seed=3, batch_size=5)
    c = methods.smoothgrad(vgg_bnn, x, 1, n_samples=8, seed=4)
    assert_float32_close(a, b, depth=7)  # batches of 5 vs 16
    assert np.array_equal(a, methods.smoothgrad(vgg_bnn, x, 1, n_samples=8, seed=3))
    assert not np.allclose(a, c)


def test_smoothgrad_noise_variance_closed_form():
    # f(x) = 0.5 * sum(x^2) has gradient x, so the noisy gradients are x + eps and, with the
    # same seed, mean(g^2) - mean(g)^2 is the sample variance of eps: sigma^2 (n-1)/n.
    with float64():
        inp = keras.Input((8, 8, 1))
        sq = keras.layers.Multiply()([inp, inp])
        dense = keras.layers.Dense(1, use_bias=False)
        out = dense(keras.layers.Flatten()(sq))
        model = keras.Model(inp, out)
    dense.set_weights([np.full((64, 1), 0.5)])
    x = images(2, (8, 8, 1), seed=11, dtype=np.float64)
    x[1] *= 3.0  # a second image with a 3x larger range: 3x larger sigma
    n = 400
    spreads = x.reshape(2, -1).max(axis=1) - x.reshape(2, -1).min(axis=1)
    for value_range, spread in [(None, spreads), ((0.0, 2.0), np.array([2.0, 2.0]))]:
        kw = dict(noise=0.1, n_samples=n, value_range=value_range, seed=7)
        mean = methods.smoothgrad(model, x, 0, **kw).astype(np.float64)
        mean_sq = methods.smoothgrad(model, x, 0, magnitude="square", **kw).astype(np.float64)
        var = (mean_sq - mean ** 2).reshape(2, -1).mean(axis=1)
        sigma2 = (0.1 * spread) ** 2
        # sd of the average of 64 sample variances of n normal draws: sigma^2 sqrt(2 / (64 n))
        assert np.all(np.abs(var - sigma2 * (n - 1) / n) < 5 * sigma2 * np.sqrt(2 / (64 * n)))
        assert np.all(np.abs(mean - x).max(axis=(1, 2, 3)) < 5 * 0.1 * spread / np.sqrt(n))


def test_smoothgrad_agrees_with_tfkerasvis_within_monte_carlo_error():
    # A small sign/ReLU conv net (STE gradients depend on the noise through |z| <= 1).
    keras.utils.set_random_seed(12)
    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(8, 3, padding="same")(inp)
    h = keras.layers.Activation(lq.quantizers.SteSign())(h)
    h = keras.layers.Conv2D(8, 3, padding="same", strides=2, activation="relu")(h)
    model = keras.Model(inp, keras.layers.Dense(4)(keras.layers.Flatten()(h)))
    x = images(4, (8, 8, 3), seed=12)
    t = np.array([0, 1, 2, 3])
    n = 200
    ours = methods.smoothgrad(model, x, t, n_samples=n, magnitude="abs", seed=0).astype(np.float64)
    second = methods.smoothgrad(model, x, t, n_samples=n, magnitude="square", seed=0)
    var = np.maximum(second - ours ** 2, 0.0)  # per-pixel variance of |grad| under noise
    theirs = methods.smoothgrad_tfkerasvis(model, x, t, n_samples=n, seed=0).astype(np.float64)
    keep = var > 1e-3 * var.mean()
    se = np.sqrt(2 * var / n)  # sd of the difference of two independent means

    def mean_z2(a, b):
        return float(np.mean(((a - b)[keep] / se[keep]) ** 2))

    assert mean_z2(ours, theirs) < 1.5  # ~1 when both estimate the same expectation
    # power: the same statistic rejects half or double the noise level on our side
    for noise in (0.1, 0.4):
        other = methods.smoothgrad(model, x, t, n_samples=n, magnitude="abs", noise=noise)
        assert mean_z2(other, theirs) > 3.0
    # signed=True switches tf-keras-vis's abs off
    theirs_signed = methods.smoothgrad_tfkerasvis(model, x, t, n_samples=20, seed=1, signed=True)
    assert np.mean(theirs_signed < 0) > 0.05 and theirs.min() >= 0


def _smoothgrad_reference_loop(model, x, t, noise, n, seed, value_range=None, magnitude="none"):
    """SmoothGrad written the slow, obvious way: per image, per draw, one eager gradient.

    The noise is defined here independently of the package: one ``default_rng(seed)``,
    images in order, one float32 standard-normal image per draw, scaled by the float32
    ``noise * spread`` (spread = the image's max - min, or hi - lo)."""
    rng = np.random.default_rng(seed)
    out = []
    for img, target in zip(x, t):
        spread = (value_range[1] - value_range[0]) if value_range else float(img.max() - img.min())
        scale = np.float32(noise * spread)
        maps = []
        for _ in range(n):
            eps = rng.standard_normal(img.shape, dtype=np.float32)
            xi = tf.constant((img + scale * eps)[None])
            with tf.GradientTape() as tape:
                tape.watch(xi)
                score = model(xi, training=False)[0, int(target)]
            g = tape.gradient(score, xi).numpy()[0].astype(np.float64)
            maps.append({"none": g, "abs": np.abs(g), "square": g ** 2}[magnitude])
        out.append(np.mean(maps, axis=0))
    return np.array(out)


@pytest.mark.parametrize("net, magnitude, value_range, batch_size", [
    ("vgg_bnn", "none", None, 64), ("vgg_bnn", "abs", (0.0, 2.0), 5),
    ("vgg_fp", "square", None, 256), ("resnet_bnn", "abs", None, 7)])
def test_smoothgrad_equals_reference_loop(net, magnitude, value_range, batch_size, request):
    """The batched implementation computes exactly the per-draw loop (same noise draws)."""
    model = request.getfixturevalue(net)
    x = images(3, seed=21)
    t = np.array([2, 7, 4])
    kw = dict(noise=0.15, n_samples=6, seed=5, value_range=value_range, magnitude=magnitude)
    ours = methods.smoothgrad(model, x, t, batch_size=batch_size, **kw)
    ref = _smoothgrad_reference_loop(model, x, t, 0.15, 6, 5, value_range, magnitude)
    assert ours.dtype == np.float32 and ours.shape == x.shape
    # batched vs one draw at a time: float32 gradients through the dense layer and 6 (VGG) or
    # 7 (ResNet: stem + 6 blocks) convs
    assert_float32_close(ours, ref, depth=8 if net.startswith("resnet") else 7)


def test_smoothgrad_equals_reference_loop_float64(smooth64):
    """float64 models: noise drawn in float32, added to the float64 image."""
    x = images(2, (5, 5, 2), seed=22, dtype=np.float64)
    ours = methods.smoothgrad(smooth64, x, np.array([0, 2]), noise=0.3, n_samples=5, seed=9)
    ref = _smoothgrad_reference_loop(smooth64, x, [0, 2], 0.3, 5, 9)
    # float64 model: float32 enters only as rounding (per draw in ours, of the mean in ref), the
    # same on every machine, so the tolerance stays tight
    np.testing.assert_allclose(ours, ref.astype(np.float32), rtol=1e-6, atol=1e-7)


def test_smoothgrad_noise_draws_are_the_documented_ones():
    """The inputs smoothgrad differentiates, bit for bit: x_i + float32(noise * spread_i) * eps,
    eps drawn image by image, draw by draw, from default_rng(seed) (float32 and float64 images)."""
    seen = []

    def recorder(model, imgs, targets, batch_size=64):
        seen.append(np.array(imgs))
        return np.zeros_like(imgs)

    for dtype in (np.float32, np.float64):
        with float64() if dtype == np.float64 else _nullcontext():
            inp = keras.Input((4, 4, 3))
            model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(inp)))
        x = images(3, (4, 4, 3), seed=23, dtype=dtype)
        x[1] *= 2.5
        seen.clear()
        methods.smoothgrad(model, x, 0, method=recorder, noise=0.2, n_samples=4, seed=13)
        got = np.concatenate(seen).reshape(3, 4, 4, 4, 3)
        rng = np.random.default_rng(13)
        for i, img in enumerate(x):
            scale = np.float32(0.2 * float(img.max() - img.min()))
            for d in range(4):
                want = img + scale * rng.standard_normal(img.shape, dtype=np.float32)
                assert want.dtype == dtype
                np.testing.assert_array_equal(got[i, d], want)


def test_smoothgrad_image_ids_key_each_images_noise():
    """With image_ids, image i's copies are x_i + float32(noise * spread_i) * eps drawn from
    default_rng([seed, image_ids[i]]), bit for bit, whatever images it is explained with."""
    seen = []

    def recorder(model, imgs, targets, batch_size=64):
        seen.append(np.array(imgs))
        return np.asarray(imgs) ** 2

    inp = keras.Input((4, 4, 3))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(inp)))
    x = images(4, (4, 4, 3), seed=24)
    ids = np.array([7, 3, 11, 0])
    kw = dict(method=recorder, noise=0.3, n_samples=3, seed=2)
    full = methods.smoothgrad(model, x, 0, image_ids=ids, **kw)
    got = np.concatenate(seen).reshape(4, 3, 4, 4, 3)
    for i, img in enumerate(x):
        rng = np.random.default_rng([2, int(ids[i])])
        scale = np.float32(0.3 * float(img.max() - img.min()))
        for d in range(3):
            np.testing.assert_array_equal(
                got[i, d], img + scale * rng.standard_normal(img.shape, dtype=np.float32))
    part = methods.smoothgrad(model, x[[2, 0]], 0, image_ids=ids[[2, 0]], **kw)
    np.testing.assert_array_equal(part, full[[2, 0]])
    with pytest.raises(ValueError, match="one per image"):
        methods.smoothgrad(model, x, 0, image_ids=ids[:2], **kw)


def _nullcontext():
    import contextlib

    return contextlib.nullcontext()


# ---------------------------------------------------------------- guided backprop
def _guided_net(seed=13):
    """float64 MLP with all three nonlinearity forms: relu inside Dense, SteSign Activation,
    keras.layers.ReLU."""
    rng = np.random.default_rng(seed)
    with float64():
        inp = keras.Input((1, 1, 4))
        x = keras.layers.Flatten()(inp)
        d1 = keras.layers.Dense(6, activation="relu")
        d2 = keras.layers.Dense(5)
        d3 = keras.layers.Dense(4)
        d4 = keras.layers.Dense(3)
        x = keras.layers.Activation(lq.quantizers.SteSign())(d2(d1(x)))
        x = keras.layers.ReLU()(d3(x))
        model = keras.Model(inp, d4(x))
    ws = [(rng.normal(size=(4, 6)), rng.normal(0, 0.3, 6)), (rng.normal(0, 0.4, size=(6, 5)), rng.normal(0, 0.3, 5)),
          (rng.normal(size=(5, 4)), rng.normal(0, 0.3, 4)), (rng.normal(size=(4, 3)), np.zeros(3))]
    for lay, (k, b) in zip((d1, d2, d3, d4), ws):
        lay.set_weights([k, b])
    return model, ws, (d1, d2, d3, d4)


def _guided_oracle(ws, x, t):
    (k1, b1), (k2, b2), (k3, b3), (k4, _) = ws
    out = []
    for xi, ti in zip(x.reshape(len(x), -1), t):
        z1 = xi @ k1 + b1
        z2 = np.maximum(z1, 0) @ k2 + b2
        z3 = np.where(z2 >= 0, 1.0, -1.0) @ k3 + b3
        g = k4[:, ti]
        g = np.maximum(g, 0) * (z3 > 0)           # guided ReLU
        g = k3 @ g
        g = np.maximum(g, 0) * (np.abs(z2) <= 1)  # guided STE
        g = k2 @ g
        g = np.maximum(g, 0) * (z1 > 0)           # guided ReLU
        out.append(k1 @ g)
    return np.array(out).reshape(x.shape)


def test_guided_backprop_matches_numpy_oracle():
    model, ws, _ = _guided_net()
    x = np.random.default_rng(14).normal(size=(16, 1, 1, 4))
    t = np.arange(16) % 3
    want = _guided_oracle(ws, x, t)
    assert np.count_nonzero(want) > 16  # non-trivial
    np.testing.assert_allclose(methods.guided_backprop(model, x, t), want, rtol=1e-5, atol=1e-7)


def test_guided_backprop_nonnegative_with_positive_first_layer():
    # With a non-negative first layer every guided signal that reaches the input is >= 0,
    # while the plain gradient (negative weights further up) has negative entries.
    model, ws, dense = _guided_net(seed=15)
    dense[0].set_weights([np.abs(ws[0][0]), ws[0][1]])
    x = np.random.default_rng(16).normal(size=(32, 1, 1, 4))
    t = np.arange(32) % 3
    guided = methods.guided_backprop(model, x, t)
    plain = methods.gradient(model, x, t)
    assert guided.min() >= 0 and guided.max() > 0
    assert plain.min() < 0
    assert not np.allclose(guided, plain)


def test_override_methods_do_not_modify_model(vgg_bnn):
    x = images(2, seed=17)
    t = np.array([3, 8])
    acts = [getattr(lay, "activation", None) for lay in vgg_bnn.layers]
    weights = [w.copy() for w in vgg_bnn.get_weights()]
    before = methods.gradient(vgg_bnn, x, t)
    guided = methods.guided_backprop(vgg_bnn, x, t)
    methods.deeplift_rescale(vgg_bnn, x, t)
    after = methods.gradient(vgg_bnn, x, t)
    np.testing.assert_array_equal(before, after)
    assert [getattr(lay, "activation", None) for lay in vgg_bnn.layers] == acts
    assert all(np.array_equal(a, b) for a, b in zip(weights, vgg_bnn.get_weights()))
    assert not np.allclose(guided, before)
    # the cached copy follows in-place weight changes of the original
    old = vgg_bnn.get_layer("logits").get_weights()
    vgg_bnn.get_layer("logits").set_weights([-old[0], old[1]])
    try:
        flipped = methods.guided_backprop(vgg_bnn, x, t)
        assert not np.allclose(flipped, guided)
    finally:
        vgg_bnn.get_layer("logits").set_weights(old)


# ------------------------------------------------------------------ every method runs
FAST_PARAMS = {"smoothgrad": {"n_samples": 3}, "integrated_gradients": {"steps": 4}}


def _params(name, layer):
    params = dict(FAST_PARAMS.get(name, {}))
    if name in methods.LAYER_METHODS:
        params["layer"] = layer
    return params


def _check_output(model, name, out, x, layer):
    if name in methods.CAM_METHODS:
        h, w = model.get_layer(layer).output.shape[1:3]
        assert out.shape == (len(x), h, w)
    else:
        assert out.shape == x.shape
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("name", list(methods.METHODS))
@pytest.mark.parametrize("family", ["vgg", "resnet"])
def test_every_method_runs_on_bnn_twins(name, family, vgg_bnn, resnet_bnn):
    model = vgg_bnn if family == "vgg" else resnet_bnn
    layer = gradcam_layer(family)
    x = images(2, seed=18)
    out = methods.get_method(name)(model, x, np.array([1, 7]), **_params(name, layer))
    _check_output(model, name, out, x, layer)


def test_every_method_runs_on_quicknet():
    """larq-zoo QuickNet (random init, 64x64 input, 10 classes; softmax stripped)."""
    import larq_zoo as lqz

    keras.utils.set_random_seed(19)
    full = lqz.sota.QuickNet(weights=None, input_shape=(64, 64, 3), num_classes=10)
    model = keras.Model(full.input, full.layers[-2].output)  # logits
    # the last feature map with at least 4x4 positions (4x4x256: 256 Score-CAM passes)
    layer = [lay.name for lay in model.layers
             if lay.output.shape.rank == 4 and lay.output.shape[1] >= 4][-1]
    x = images(1, (64, 64, 3), seed=19) * 2 - 1
    for name, fn in methods.METHODS.items():
        out = fn(model, x, 3, **_params(name, layer))
        _check_output(model, name, out, x, layer)
    # the input quantizers (its sign activations) are overridden in the modified copies
    copy = _core._cache(model)["guided"]
    quant = [lay for lay in copy.layers if getattr(lay, "input_quantizer", None) is not None]
    assert quant and all(q.input_quantizer.__name__ == "wrapped" for q in quant)


# ------------------------------------------------------------------------ bad input
BAD_INPUTS = {
    "rank": (lambda x: x[0], ValueError, "shape"),
    "channels": (lambda x: x[..., :1], ValueError, "expects"),
    "integer": (lambda x: (x * 255).astype(np.uint8), TypeError, "float"),
    "nan": (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x), ValueError, "NaN"),
    "empty": (lambda x: x[:0], ValueError, "empty"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
@pytest.mark.parametrize("name", list(methods.METHODS))
def test_bad_images_raise(name, case, vgg_bnn):
    make, err, match = BAD_INPUTS[case]
    x = make(images(2, seed=20))
    with pytest.raises(err, match=match):
        methods.get_method(name)(vgg_bnn, x, 0, **_params(name, "conv6"))


@pytest.mark.parametrize("name", list(methods.METHODS))
@pytest.mark.parametrize("targets", [10, -1, np.array([0, 1, 2]), np.array([0.0, 1.0])],
                         ids=["too-big", "negative", "wrong-length", "float"])
def test_bad_targets_raise(name, targets, vgg_bnn):
    with pytest.raises((ValueError, TypeError), match="targets"):
        methods.get_method(name)(vgg_bnn, images(2, seed=21), targets, **_params(name, "conv6"))


@pytest.mark.parametrize("name", methods.LAYER_METHODS)
@pytest.mark.parametrize("layer, match", [("no_such_layer", "no layer named"), ("logits", "rank-2"),
                                          ("flatten", "rank-2"), (None, "needs layer"),
                                          (-1, "named explicitly")])
def test_bad_layer_raises(name, layer, match, vgg_bnn):
    params = _params(name, layer)
    with pytest.raises(ValueError, match=match):
        methods.get_method(name)(vgg_bnn, images(1, seed=22), 0, **params)


def test_unknown_method_and_options(vgg_bnn):
    with pytest.raises(KeyError, match="available: gradient"):
        methods.get_method("grad-cam")
    x = images(1, seed=23)
    with pytest.raises(KeyError, match="unknown saliency method"):
        methods.smoothgrad(vgg_bnn, x, 0, method="nope")
    with pytest.raises(ValueError, match="magnitude"):
        methods.smoothgrad(vgg_bnn, x, 0, magnitude="abs2")
    with pytest.raises(ValueError, match="baseline"):
        methods.integrated_gradients(vgg_bnn, x, 0, baseline="white")
    with pytest.raises(ValueError, match="broadcast"):
        methods.deeplift_rescale(vgg_bnn, x, 0, baseline=np.zeros((16, 16, 3)))
    with pytest.raises(ValueError, match="batch_size"):
        methods.gradient(vgg_bnn, x, 0, batch_size=0)
    with pytest.raises(ValueError, match="rule"):
        methods.integrated_gradients(vgg_bnn, x, 0, rule="simpson")
    assert set(methods.PIXEL_METHODS) | set(methods.CAM_METHODS) == set(methods.METHODS)


def test_softmax_output_warns():
    inp = keras.Input((4, 4, 1))
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inp))
    with pytest.warns(UserWarning, match="softmax"):
        methods.gradient(keras.Model(inp, out), images(1, (4, 4, 1)), 0)


def test_low_precision_model_warns():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_twin("vgg", "bnn", width=4)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with pytest.warns(UserWarning, match="bfloat16"):
        methods.gradient(model, images(1), 0)
