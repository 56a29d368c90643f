"""Tests of bnn_saliency.theory against independent oracles.

Oracles: TensorFlow autodiff of the same networks (guided ReLU / guided STE via
tf.custom_gradient, larq's ste_sign for the plain STE gradient), explicit patch slicing, brute-force
enumeration of sign patterns, Monte Carlo over weights, and the analytic expectations.
"""
import itertools
import math

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnn_saliency import methods, models, theory
from bnn_saliency.study import ch05_gbp


def _pearson(a, b):
    a, b = np.ravel(a) - np.mean(a), np.ravel(b) - np.mean(b)
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


# --------------------------------------------------------------------------- patches
def test_patches_match_slicing_and_fold_is_adjoint():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 5, 2))
    p = theory.extract_patches(x, 3)
    assert p.shape == (4 * 3, 18)
    # patch j = (row 2, col 1): explicit slice in (row, col, channel) order
    np.testing.assert_array_equal(p[2 * 3 + 1], x[2:5, 1:4, :].ravel())
    q = rng.normal(size=p.shape)
    # <D x, q> == <x, D^T q>
    np.testing.assert_allclose((p * q).sum(), (x * theory.fold_patches(q, x.shape, 3)).sum(), rtol=1e-12)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="one image"):
        theory.extract_patches(np.zeros((2, 8, 8, 3)), 3)
    with pytest.raises(ValueError, match="kernel"):
        theory.extract_patches(np.zeros((4, 4, 1)), 7)
    with pytest.raises(ValueError, match="weight law"):
        theory.RandomConvNet(4, weights="ternary")
    with pytest.raises(ValueError, match="n_filters"):
        theory.RandomConvNet(0)
    with pytest.raises(ValueError, match="integer"):
        theory.rademacher_halfspace_mean_exact(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="channels"):
        theory.conv_sweep(theory.RandomConvNet(2, kernel=3, channels=3), np.zeros((8, 8, 1)), 0)
    with pytest.raises(KeyError, match="variant"):
        theory.RandomConvNet.variant("xnor", 4)


# --------------------------------------------------------------------------- TF oracles
def _guided(kind, window=1.0):
    @tf.custom_gradient
    def act(z):
        if kind == "relu":
            y = tf.nn.relu(z)

            def grad(dy):
                return tf.nn.relu(dy) * tf.cast(z > 0, z.dtype)
        else:
            y = tf.where(z >= 0, tf.ones_like(z), -tf.ones_like(z))

            def grad(dy):
                return tf.nn.relu(dy) * tf.cast(tf.abs(z) <= window, z.dtype)
        return y, grad
    return act


def _tf_conv_maps(net, x, target, n):
    """(gbp, gradient, logit) of the prefix net with n filters, by TF autodiff in float64."""
    kernel = tf.constant(net.kernel_tensor()[..., :n].astype(np.float64))
    out_hw = (x.shape[0] - net.kernel + 1, x.shape[1] - net.kernel + 1)
    dense = tf.constant(net.dense_tensor(target, out_hw)[..., :n].astype(np.float64))
    plain = tf.nn.relu if net.activation == "relu" else lq.quantizers.ste_sign
    res = []
    for act in (_guided(net.activation, net.ste_window), plain):
        xt = tf.constant(x[None])
        with tf.GradientTape() as tape:
            tape.watch(xt)
            z = tf.nn.conv2d(xt, kernel, strides=1, padding="VALID")
            logit = tf.reduce_sum(dense[None] * act(z))
        res.append(tape.gradient(logit, xt).numpy()[0])
    return res[0], res[1], float(logit.numpy())


@pytest.mark.parametrize("variant", ["fp", "binw", "bina", "bnn"])
def test_conv_net_matches_tensorflow_autodiff(variant):
    rng = np.random.default_rng(1)
    x = rng.random((9, 8, 2))
    # c = 1/3: pre-activations ~ 0.8, so the STE window |z| <= 1 cuts through them
    net = theory.RandomConvNet.variant(variant, 70, seed=3, kernel=3, channels=2, c=1.0 / 3)
    sizes = [1, 3, 5, 70]  # segments of 1, 2 and 2 filters take the small-segment path
    sweep = theory.conv_sweep(net, x, 5, sizes=sizes)
    for i, n in enumerate(sizes):
        gbp, grad, logit = _tf_conv_maps(net, x, 5, n)
        np.testing.assert_allclose(sweep["gbp"][i], gbp, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(sweep["gradient"][i], grad, rtol=1e-10, atol=1e-12)
        if n == 70:
            np.testing.assert_allclose(theory.conv_logits(net, x[None], 5)[0], logit, rtol=1e-10)
    assert np.abs(sweep["gbp"][-1]).max() > 0 and np.abs(sweep["gradient"][-1]).max() > 0


def test_float32_conv_net_matches_float64_autodiff_of_its_weights():
    x = np.random.default_rng(12).random((10, 9, 3))
    net = theory.RandomConvNet(40, kernel=3, seed=2, dtype="float32")
    sweep = theory.conv_sweep(net, x, 1)
    gbp, grad, _ = _tf_conv_maps(net, x, 1, 40)
    np.testing.assert_allclose(sweep["gbp"][0], gbp, rtol=1e-4, atol=1e-5 * np.abs(gbp).max())
    np.testing.assert_allclose(sweep["gradient"][0], grad, rtol=1e-4, atol=1e-5 * np.abs(grad).max())


def test_fc_chunked_equals_unchunked_and_autodiff():
    rng = np.random.default_rng(2)
    x = rng.random((4, 3, 2))
    net = theory.RandomFCNet(2500, seed=7, dtype="float64")  # three generation blocks
    sweep = theory.fc_sweep(net, x, 3, sizes=[100, 1024, 2500])
    w = np.concatenate([net.first_layer(b, x.size) for b in range(3)])[:2500]
    v = np.concatenate([net.dense_weights(3, b) for b in range(3)])[:2500]
    for i, n in enumerate([100, 1024, 2500]):
        wn, vn = w[:n], v[:n]
        mask = wn @ x.ravel() > 0
        np.testing.assert_allclose(sweep["gbp"][i].ravel(), (np.maximum(vn, 0) * mask) @ wn,
                                   rtol=1e-10)
        np.testing.assert_allclose(sweep["gradient"][i].ravel(), (vn * mask) @ wn, rtol=1e-10)
    # TF autodiff of the full net with a guided ReLU
    xt = tf.constant(x.ravel()[None])
    with tf.GradientTape() as tape:
        tape.watch(xt)
        logit = tf.reduce_sum(tf.constant(v) * _guided("relu")(xt @ tf.constant(w.T)))
    np.testing.assert_allclose(sweep["gbp"][-1].ravel(), tape.gradient(logit, xt).numpy()[0],
                               rtol=1e-10)


# --------------------------------------------------------------------------- closed forms
def test_gaussian_halfspace_mean_matches_monte_carlo():
    rng = np.random.default_rng(3)
    y = rng.random(20)
    w = rng.standard_normal((400_000, 20))
    mc = (w * (w @ y > 0)[:, None]).mean(0)
    se = (w * (w @ y > 0)[:, None]).std(0) / math.sqrt(len(w))
    assert np.all(np.abs(mc - theory.gaussian_halfspace_mean(y)) < 4.5 * se)


def test_closed_form_is_the_monte_carlo_limit_of_gbp():
    """Nie et al.'s eq. 5 (with our constant N c c_v / 2pi): GBP / its prediction -> 1 as N grows."""
    x = np.random.default_rng(4).random((12, 12, 1))
    net = theory.RandomConvNet(8192, kernel=3, channels=1, seed=1, c=0.7, c_v=1.3)
    ref = theory.expected_gbp(net, x)
    sizes = [32, 512, 8192]
    sweep = theory.conv_sweep(net, x, 0, sizes)
    err = [theory.relative_error(m[None] * net.n_filters / n, ref)[0] for n, m in zip(sizes, sweep["gbp"])]
    assert err[0] > err[1] > err[2]
    assert err[2] < 0.08  # ~ err[0] * sqrt(32/8192) = 0.04 if the constant is right
    # a wrong constant (e.g. 2 c^2 N / pi, 4x ours) would leave a relative error near 3
    assert theory.relative_error(sweep["gbp"][-1:] * 4, ref)[0] > 2.5
    # the plain gradient has mean zero: its projection on the closed form does not grow with N
    grad = sweep["gradient"][-1]
    assert abs(_pearson(grad, ref)) < 0.1


def test_rademacher_exact_matches_enumeration():
    rng = np.random.default_rng(5)
    for y in (rng.integers(0, 30, 11), rng.integers(-9, 9, 12), np.array([5, 5, 5, 5, 5, 0, 2])):
        eps = np.array(list(itertools.product([-1, 1], repeat=len(y))))
        brute = (eps * (eps @ y > 0)[:, None]).mean(0)
        np.testing.assert_allclose(theory.rademacher_halfspace_mean_exact(y), brute, atol=1e-12)


def test_rademacher_clt_and_gaussian_vs_monte_carlo_on_a_patch():
    rng = np.random.default_rng(6)
    y = rng.integers(0, 256, 147)  # an 8-bit 7x7x3 patch
    eps = rng.integers(0, 2, size=(200_000, 147), dtype=np.int8) * 2 - 1
    ind = (eps @ y > 0)
    mc = (eps * ind[:, None]).mean(0)
    se = 1 / math.sqrt(len(eps))  # |eps * ind| <= 1
    exact = theory.rademacher_halfspace_mean_exact(y)
    assert np.abs(mc - exact).max() < 5 * se
    # on such a patch the approximations are close but not exact
    gauss = theory.gaussian_halfspace_mean(y)
    assert np.linalg.norm(exact - gauss) / np.linalg.norm(gauss) < 0.02
    assert np.linalg.norm(theory.rademacher_halfspace_mean_clt(y) - gauss) / np.linalg.norm(gauss) < 0.02
    # one large coordinate: the erf saturation is visible and the CLT form tracks it
    y2 = np.r_[np.full(30, 1), 40]
    ex2 = theory.rademacher_halfspace_mean_exact(y2)
    assert abs(theory.rademacher_halfspace_mean_clt(y2)[-1] - ex2[-1]) < abs(
        theory.gaussian_halfspace_mean(y2)[-1] - ex2[-1])


def test_sign_activation_gbp_has_zero_mean():
    """For sign/STE the guided signal relu(V) 1(|w.y| <= t) is even in w: E[GBP] = 0."""
    x = np.random.default_rng(7).random((10, 10, 1))
    fp, bina = [], []
    for s in range(60):
        fp.append(theory.conv_sweep(theory.RandomConvNet(16, kernel=3, channels=1, seed=s), x, 0)["gbp"][0])
        bina.append(theory.conv_sweep(theory.RandomConvNet.variant("bina", 16, seed=s, kernel=3, channels=1),
                                 x, 0)["gbp"][0])
    fp, bina = np.array(fp), np.array(bina)
    typical = np.linalg.norm(bina.reshape(60, -1), axis=1).mean()
    assert np.linalg.norm(bina.mean(0)) < 3 * typical / math.sqrt(60)
    assert np.linalg.norm(fp.mean(0)) > 0.5 * np.linalg.norm(fp.reshape(60, -1), axis=1).mean()


# --------------------------------------------------------------------------- FC law sampler
def test_fc_law_sampler_matches_explicit_network_distribution():
    rng = np.random.default_rng(8)
    x = rng.random((4, 4, 2)) + 0.2
    n_h, seeds = 64, 300
    explicit = np.array([_pearson(theory.fc_sweep(theory.RandomFCNet(n_h, seed=s, dtype="float64"), x, 0)
                                  ["gbp"][0], x) for s in range(seeds)])
    law = np.array([_pearson(theory.fc_sweep_in_law(x, [n_h], seed=s)["gbp"][0], x)
                    for s in range(seeds)])
    se = math.sqrt(explicit.var() / seeds + law.var() / seeds)
    assert abs(explicit.mean() - law.mean()) < 4 * se
    assert abs(explicit.std() - law.std()) < 0.25 * explicit.std()


def test_fc_predicted_correlation_at_large_width():
    x = np.random.default_rng(9).random((16, 16, 3))
    sizes = [10_000, 1_000_000]
    r = np.array([[_pearson(m, x) for m in theory.fc_sweep_in_law(x, sizes, seed=s)["gbp"]]
                  for s in range(20)])
    np.testing.assert_allclose(r.mean(0), theory.fc_predicted_correlation(x, sizes), atol=0.02)


# --------------------------------------------------------------------------- determinism
def test_determinism_by_seed():
    x = np.random.default_rng(10).random((10, 10, 3))
    a = theory.conv_sweep(theory.RandomConvNet(20, kernel=3, seed=4), x, 2)
    b = theory.conv_sweep(theory.RandomConvNet(20, kernel=3, seed=4), x, 2)
    c = theory.conv_sweep(theory.RandomConvNet(20, kernel=3, seed=5), x, 2)
    np.testing.assert_array_equal(a["gbp"], b["gbp"])
    assert not np.allclose(a["gbp"], c["gbp"])
    # a prefix network is the same network whatever the sweep asked for
    d = theory.conv_sweep(theory.RandomConvNet(20, kernel=3, seed=4), x, 2, sizes=[3, 20])
    np.testing.assert_allclose(d["gbp"][-1], a["gbp"][0], rtol=1e-12)
    f1 = theory.fc_sweep_in_law(x, [10, 100], seed=1)["gbp"]
    np.testing.assert_array_equal(f1, theory.fc_sweep_in_law(x, [10, 100], seed=1)["gbp"])


def test_rms_slope_recovers_known_rate():
    rng = np.random.default_rng(11)
    n = np.array([1, 4, 16, 64, 256])
    c = rng.uniform(0.5, 2.0, size=(1, 6, 1))  # per-image constants
    # errors with E[err^2] = c / n exactly: chi-square(3)/3 fluctuations
    err = np.sqrt(c / n * rng.chisquare(3, size=(8, 6, len(n))) / 3)
    slope, low, high = ch05_gbp.rms_slope_ci([(n, err)], n_boot=400)
    assert low < -0.5 < high and high - low < 0.2
    slope_fast, *_ = ch05_gbp.rms_slope_ci([(n, err * n ** -0.25)], n_boot=50)
    assert abs(slope_fast + 0.75) < 0.1
    # two independent blocks (many seeds at small n) give the same rate
    small = np.sqrt(c[..., :1] / 1 * rng.chisquare(3, size=(200, 6, 1)) / 3)
    slope2, low2, high2 = ch05_gbp.rms_slope_ci([([1], small), (n[1:], err[..., 1:])], n_boot=400)
    assert low2 < -0.5 < high2
    with pytest.raises(ValueError, match="repeat"):
        ch05_gbp.rms_slope_ci([(n, err), (n[:1], err[..., :1])])


@pytest.mark.parametrize("weights", ["gaussian", "rademacher"])
def test_small_networks_are_prefixes_of_large_ones(weights):
    x = np.random.default_rng(13).random((9, 9, 3))
    small = theory.conv_sweep(theory.RandomConvNet(3, kernel=3, weights=weights, seed=6), x, 4)
    big = theory.conv_sweep(theory.RandomConvNet(100, kernel=3, weights=weights, seed=6), x, 4, sizes=[3, 100])
    np.testing.assert_allclose(small["gbp"][0], big["gbp"][0], rtol=1e-12)
    fc_small = theory.fc_sweep(theory.RandomFCNet(50, seed=6, dtype="float64"), x, 2)
    fc_big = theory.fc_sweep(theory.RandomFCNet(2000, seed=6, dtype="float64"), x, 2, sizes=[50, 2000])
    np.testing.assert_allclose(fc_small["gradient"][0], fc_big["gradient"][0], rtol=1e-12)


# --------------------------------------------------------------------------- chapter experiments
import pandas as pd  # noqa: E402


def _corr(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def _explicit_conv_maps(net, x, target):
    """GBP and gradient by explicit loops over positions: sum_ij [V]_+ act'(z) D_j^T w_i."""
    k = net.kernel
    w = net.kernel_tensor().astype(np.float64).reshape(-1, net.n_filters)  # (p, N)
    hh, ww = x.shape[0] - k + 1, x.shape[1] - k + 1
    v = net.dense_tensor(target, (hh, ww)).astype(np.float64)  # (H', W', N)
    gbp, grad = np.zeros_like(x), np.zeros_like(x)
    for r in range(hh):
        for c in range(ww):
            y = x[r:r + k, c:c + k].ravel()
            z = y @ w
            mask = z > 0 if net.activation == "relu" else np.abs(z) <= net.ste_window
            gbp[r:r + k, c:c + k] += ((np.maximum(v[r, c], 0) * mask) @ w.T).reshape(k, k, -1)
            grad[r:r + k, c:c + k] += ((v[r, c] * mask) @ w.T).reshape(k, k, -1)
    return gbp, grad


def _eq5(x, k=7):
    """sum_j D_j^T y_j / (sqrt(2 pi) ||y_j||) by explicit slicing."""
    out = np.zeros_like(x)
    for r in range(x.shape[0] - k + 1):
        for c in range(x.shape[1] - k + 1):
            y = x[r:r + k, c:c + k]
            out[r:r + k, c:c + k] += y / (math.sqrt(2 * math.pi) * np.linalg.norm(y))
    return out


def test_seeds_images_ci_and_group_cis_point_estimates():
    table = pd.DataFrame({"seed": [0, 0, 1, 1], "image": [0, 1, 0, 1], "v": [1.0, 2.0, 3.0, 6.0]})
    point, low, high = ch05_gbp.seeds_images_ci(table, "v")
    assert point == pytest.approx(3.0) and low <= 3.0 <= high
    assert low >= 1.0 and high <= 6.0
    same = pd.DataFrame({"seed": [0, 1], "image": [0, 0], "v": [2.0, 2.0]})
    assert tuple(ch05_gbp.seeds_images_ci(same, "v")) == pytest.approx((2.0, 2.0, 2.0))
    with pytest.raises(ValueError, match="repeated"):
        ch05_gbp.seeds_images_ci(pd.concat([table, table]), "v")
    with pytest.raises(KeyError, match="lacks"):
        ch05_gbp.seeds_images_ci(table, "missing")
    groups = pd.DataFrame({"variant": ["b", "b", "a", "a", "a"], "x": [1.0, 3.0, 0.0, 0.0, 3.0]})
    out = ch05_gbp.group_cis(groups, ["x"], by="variant")
    assert list(out.index) == ["b", "a"]  # order of appearance
    assert out.loc["b", "x"][0] == pytest.approx(2.0) and out.loc["a", "x"][0] == pytest.approx(1.0)


def test_random_logit_targets():
    logits = np.random.default_rng(0).normal(size=(5, 30))
    t = ch05_gbp.random_logit_targets(logits, 4, seed=3)
    assert t.shape == (5, 4)
    np.testing.assert_array_equal(t[:, 0], logits.argmax(axis=1))
    for row in t:
        assert len(set(row)) == 4 and (0 <= row).all() and (row < 30).all()
    np.testing.assert_array_equal(t, ch05_gbp.random_logit_targets(logits, 4, seed=3))
    assert not np.array_equal(t[:, 1:], ch05_gbp.random_logit_targets(logits, 4, seed=4)[:, 1:])
    with pytest.raises(ValueError, match="n_logits"):
        ch05_gbp.random_logit_targets(logits, 31, seed=0)


def test_untrained_logit_maps_are_the_weight_rows_of_a_linear_model():
    """For f(x) = W^T vec(x) + b the gradient (and GBP: no ReLU) of logit k is W[:, k]."""
    from tensorflow import keras

    def build(seed):
        keras.utils.set_random_seed(seed)
        return keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Flatten(),
                                 keras.layers.Dense(7)])

    x = np.random.default_rng(1).random((3, 4, 4, 2)).astype(np.float32)
    res = ch05_gbp.untrained_logit_maps(build, x, seeds=(5, 6), n_logits=3, batch_size=2)
    for seed in (5, 6):
        w = build(seed).layers[-1].get_weights()[0]  # (32, 7), this seed's weights
        z = x.reshape(3, -1) @ w + build(seed).layers[-1].get_weights()[1]
        np.testing.assert_array_equal(res[seed]["targets"][:, 0], z.argmax(axis=1))
        for i in range(3):
            for j, k in enumerate(res[seed]["targets"][i]):
                expected = w[:, k].reshape(4, 4, 2)
                np.testing.assert_allclose(res[seed]["gradient"][i, j], expected, atol=1e-6)
                np.testing.assert_allclose(res[seed]["gbp"][i, j], expected, atol=1e-6)
    with pytest.raises(ValueError, match="inputs"):
        ch05_gbp.untrained_logit_maps(build, x[0], seeds=(0,))


def test_invariance_table_on_known_maps():
    rng = np.random.default_rng(2)
    x = rng.random((2, 5, 5, 3))
    a = rng.normal(size=(2, 5, 5, 3))
    results = {0: {"gbp": np.stack([np.stack([2 * xi + 1, 2 * xi + 1, 3 * xi]) for xi in x]),
                   "gradient": np.stack([np.stack([ai, -ai, ai]) for ai in a])}}
    t = ch05_gbp.invariance_table(results, x)
    assert list(t.columns) == ["seed", "image", "invariance gbp", "invariance gradient",
                               "corr(image) gbp", "corr(image) gradient"]
    np.testing.assert_allclose(t["invariance gbp"], 1.0)
    np.testing.assert_allclose(t["invariance gradient"], -1 / 3)  # pairs: -1, +1, -1
    np.testing.assert_allclose(t["corr(image) gbp"], 1.0)
    np.testing.assert_allclose(t["corr(image) gradient"], [_corr(a[i], x[i]) for i in range(2)])


def test_conv_experiment_matches_explicit_networks():
    rng = np.random.default_rng(3)
    images = rng.random((2, 11, 11, 3))
    exp = ch05_gbp.conv_experiment(images, seeds=[0, 1], sizes=[2, 4, 8], variants=("fp", "bina"),
                            sign_max=4, invariance_n=4)
    t = exp.table
    assert exp.sizes == {"fp": [2, 4, 8], "bina": [2, 4]}
    assert len(t) == 2 * 2 * 3 + 2 * 2 * 2 and len(exp.invariance) == 2 * 2 * 2
    assert set(exp.maps) == {(v, i) for v in ("fp", "bina") for i in range(2)}
    for variant, seed, i, n in [("fp", 1, 0, 4), ("fp", 0, 1, 8), ("bina", 1, 1, 4)]:
        x = images[i]
        net = theory.RandomConvNet.variant(variant, n, seed=seed, dtype="float32")
        gbp, grad = _explicit_conv_maps(net, x, 0)
        row = t[(t["variant"] == variant) & (t["seed"] == seed) & (t["image"] == i) & (t["N"] == n)]
        assert len(row) == 1
        row = row.iloc[0]
        assert row["gbp~eq5"] == pytest.approx(_corr(gbp, _eq5(x)), abs=1e-6)
        assert row["gbp~image"] == pytest.approx(_corr(gbp, x), abs=1e-6)
        assert row["grad~image"] == pytest.approx(_corr(grad, x), abs=1e-6)
        if variant == "fp":  # E[GBP] = N c c_v / (2 pi) * sum_j D_j^T y_j / ||y_j||
            expected = n * net.c * _eq5(x) / math.sqrt(2 * math.pi)
            assert row["rel. error"] == pytest.approx(
                np.linalg.norm(gbp - expected) / np.linalg.norm(expected), rel=1e-5)
        else:
            assert np.isnan(row["rel. error"])
    # class invariance: logit 0 vs logit 1 of the same network with invariance_n filters
    net = theory.RandomConvNet.variant("fp", 4, seed=1, dtype="float32")
    g0, d0 = _explicit_conv_maps(net, images[0], 0)
    g1, d1 = _explicit_conv_maps(net, images[0], 1)
    inv = exp.invariance.set_index(["variant", "seed", "image"]).loc[("fp", 1, 0)]
    assert inv["gbp"] == pytest.approx(_corr(g0, g1), abs=1e-6)
    assert inv["gradient"] == pytest.approx(_corr(d0, d1), abs=1e-6)
    with pytest.raises(ValueError, match="invariance_n"):
        ch05_gbp.conv_experiment(images, [0], [2, 8], variants=("fp",), invariance_n=4)


def test_independent_errors_error_blocks_and_rms():
    rng = np.random.default_rng(4)
    images = rng.random((2, 8, 8, 3))
    errs = ch05_gbp.independent_errors("fp", images, {1: 3, 2: 2}, seed_base=10)
    assert errs[1].shape == (3, 2, 1) and errs[2].shape == (2, 2, 1)
    net = theory.RandomConvNet.variant("fp", 2, seed=10 * 2 + 1, dtype="float32")  # s = 1 at n = 2
    gbp, _ = _explicit_conv_maps(net, images[1], 0)
    expected = 2 * net.c * _eq5(images[1]) / math.sqrt(2 * math.pi)
    assert errs[2][1, 1, 0] == pytest.approx(
        np.linalg.norm(gbp - expected) / np.linalg.norm(expected), rel=1e-5)
    with pytest.raises(ValueError, match="sign activations"):
        ch05_gbp.independent_errors("bina", images, {1: 1})
    # error_blocks on a hand-made table: 2 seeds x 2 images x sizes (1, 4, 16)
    rows = [{"variant": "fp", "seed": s, "image": i, "N": n, "rel. error": 100 * s + 10 * i + k}
            for s in range(2) for i in range(2) for k, n in enumerate((1, 4, 16))]
    table = pd.DataFrame(rows)
    small = {1: np.ones((5, 2, 1))}
    blocks = ch05_gbp.error_blocks(table, "fp", small)
    assert blocks[0][0] == [1] and blocks[0][1] is small[1]
    assert blocks[1][0] == [4, 16]
    np.testing.assert_array_equal(blocks[1][1][1, 0], [101, 102])  # seed 1, image 0
    np.testing.assert_array_equal(blocks[1][1][0, 1], [11, 12])
    sizes, rms = ch05_gbp.rms_by_size([([1], np.full((3, 2, 1), 2.0)), ([4], np.array([[[3.0], [4.0]]]))])
    np.testing.assert_array_equal(sizes, [1, 4])
    np.testing.assert_allclose(rms, [2.0, math.sqrt(12.5)])
    with pytest.raises(KeyError, match="variant"):
        ch05_gbp.error_blocks(table, "binw", small)


def test_fc_law_table_and_width_for_correlation():
    x = np.random.default_rng(5).random((2, 4, 4, 3))
    t = ch05_gbp.fc_law_table(x, [10, 1000], seeds=[0, 1])
    assert len(t) == 8 and set(t["N_h"]) == {10, 1000}
    law = theory.fc_sweep_in_law(x[1], [10, 1000], seed=1)
    row = t[(t["seed"] == 1) & (t["image"] == 1) & (t["N_h"] == 1000)].iloc[0]
    assert row["gbp~image"] == pytest.approx(_corr(law["gbp"][1], x[1]), abs=1e-12)
    assert row["grad~image"] == pytest.approx(_corr(law["gradient"][1], x[1]), abs=1e-12)
    # hand-computed: half the pixels 0, half 1 -> rho^2 = var / mean(x^2) = 0.25 / 0.5
    half = np.zeros((2, 2, 1))
    half[0] = 1.0
    assert ch05_gbp.fc_width_for_correlation(half, 0.9) == pytest.approx(
        math.pi ** 2 * 4 / (0.5 * (1 / 0.81 - 1)))
    # and it inverts the prediction
    n = ch05_gbp.fc_width_for_correlation(x[0], 0.7)
    assert theory.fc_predicted_correlation(x[0], [n])[0] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="r must be"):
        ch05_gbp.fc_width_for_correlation(x[0], 1.0)
    with pytest.raises(ValueError, match="constant"):
        ch05_gbp.fc_width_for_correlation(np.ones((2, 2, 1)), 0.5)


def test_rademacher_patch_deviations_by_enumeration():
    x = np.random.default_rng(6).random((2, 4, 4, 3))
    t = ch05_gbp.rademacher_patch_deviations(x, per_image=2, seed=7, kernel=2)  # p = 12 dims
    assert len(t) == 4 and list(t["image"]) == [0, 0, 1, 1]
    rng = np.random.default_rng(7)
    eps = np.array(list(itertools.product([-1, 1], repeat=12)))
    for i in range(2):
        patches = [np.round(255 * x[i, r:r + 2, c:c + 2]).astype(int).ravel()
                   for r in range(3) for c in range(3)]
        for k, j in enumerate(rng.choice(9, size=2, replace=False)):
            y = patches[j]
            exact = (eps * (eps @ y > 0)[:, None]).mean(0)
            gauss = y / (math.sqrt(2 * math.pi) * np.linalg.norm(y))
            assert t["exact vs Gaussian"].iloc[2 * i + k] == pytest.approx(
                np.linalg.norm(exact - gauss) / np.linalg.norm(gauss), rel=1e-9)
    with pytest.raises(ValueError, match="patches"):
        ch05_gbp.rademacher_patch_deviations(x, per_image=10, kernel=2)


def test_variant_summary_on_a_hand_made_table():
    rows, inv = [], []
    for v, base in (("fp", 0.9), ("bnn", 0.0)):
        for s in range(2):
            for i in range(2):
                rows.append({"variant": v, "seed": s, "image": i, "N": 4, "gbp~eq5": base + 0.1 * s,
                             "gbp~image": 0.5, "grad~image": 0.01 * i})
                rows.append({"variant": v, "seed": s, "image": i, "N": 8, "gbp~eq5": 7.0,
                             "gbp~image": 7.0, "grad~image": 7.0})
                inv.append({"variant": v, "seed": s, "image": i, "gbp": base, "gradient": 0.0})
    out = ch05_gbp.variant_summary(pd.DataFrame(rows), pd.DataFrame(inv), n=4)
    assert list(out.index) == ["fp", "bnn"]
    assert out.loc["bnn", "weights"] == "rademacher" and out.loc["bnn", "activation"] == "sign"
    assert out.loc["fp", "gbp~eq5"][0] == pytest.approx(0.95)
    assert out.loc["fp", "grad~image"][0] == pytest.approx(0.005)
    assert out.loc["bnn", "GBP invariance (2 logits)"][0] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="N = 16"):
        ch05_gbp.variant_summary(pd.DataFrame(rows), pd.DataFrame(inv), n=16)


def test_untrained_twin_table_matches_direct_saliency_calls():

    x = np.random.default_rng(8).random((2, 32, 32, 3)).astype(np.float32)
    t = ch05_gbp.untrained_twin_table(x, n_logits=2, seed=0)
    assert list(t["variant"]) == [v for v in models.VARIANTS for _ in range(2)]
    tf.keras.utils.set_random_seed(0)
    model = models.build_twin("vgg", "bnn")
    xs, ts = np.repeat(x, 2, axis=0), np.tile(np.arange(2), 2)
    gbp = methods.guided_backprop(model, xs, ts)
    grad = methods.gradient(model, xs, ts)
    row = t[t["variant"] == "bnn"].iloc[1]
    assert row["GBP invariance"] == pytest.approx(_corr(gbp[2], gbp[3]), abs=1e-6)
    assert row["gradient invariance"] == pytest.approx(_corr(grad[2], grad[3]), abs=1e-6)
    assert row["gbp~image"] == pytest.approx(_corr(gbp[2], x[1]), abs=1e-6)


def test_mean_pool():
    img = np.arange(16, dtype=float).reshape(4, 4, 1)
    np.testing.assert_array_equal(ch05_gbp.mean_pool(img)[..., 0], [[2.5, 4.5], [10.5, 12.5]])
    with pytest.raises(ValueError, match="divisible"):
        ch05_gbp.mean_pool(np.zeros((5, 4, 3)))
