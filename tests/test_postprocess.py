"""Tests of bnn_saliency.postprocess: closed forms, hand-computed examples, tf-keras-vis."""

from __future__ import annotations

import numpy as np
import pytest

from bnn_saliency import postprocess as P

# one 2x2 map with 3 channels, values chosen by hand
PIX = np.array([[[1.0, -4.0, 2.0], [0.0, 0.0, 0.0]],
                [[-3.0, -1.0, -2.0], [2.0, 2.0, -1.0]]])
MAPS = np.stack([PIX, 2 * PIX + 1])  # (2, 2, 2, 3)


def test_abs_map():
    out = P.abs_map(MAPS)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0, 0, 0], [1, 4, 2])


@pytest.mark.parametrize("how, want", [
    ("max", [[2, 0], [-1, 2]]),
    ("sum", [[-1, 0], [-6, 3]]),
    ("mean", [[-1 / 3, 0], [-2, 1]]),
    ("l2", [[np.sqrt(21), 0], [np.sqrt(14), 3]]),
    ("abs_max", [[4, 0], [3, 2]]),
])
def test_reduce_channels_by_hand(how, want):
    out = P.reduce_channels(MAPS, how)
    assert out.shape == (2, 2, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], want, rtol=1e-6)  # float64, rounded once to float32


def test_reduce_channels_errors():
    with pytest.raises(ValueError, match="how must be one of"):
        P.reduce_channels(MAPS, "median")
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        P.reduce_channels(MAPS[..., 0], "max")
    with pytest.raises(TypeError, match="numeric"):
        P.reduce_channels(MAPS.astype(str), "max")


def test_normalize_minmax_per_sample():
    maps = np.array([[[0.0, 2.0], [4.0, 1.0]], [[-1.0, -1.0], [3.0, 1.0]]])
    out = P.normalize(maps, "minmax")
    np.testing.assert_allclose(out[0], [[0, 0.5], [1, 0.25]])
    np.testing.assert_allclose(out[1], [[0, 0], [1, 0.5]])


def test_normalize_maxabs_keeps_sign():
    maps = np.array([[[0.0, -2.0], [4.0, 1.0]], [[-8.0, 2.0], [0.0, 4.0]]])
    out = P.normalize(maps, "maxabs")
    np.testing.assert_allclose(out[0], [[0, -0.5], [1, 0.25]])
    np.testing.assert_allclose(out[1], [[-1, 0.25], [0, 0.5]])


@pytest.mark.parametrize("how", ["minmax", "maxabs"])
def test_normalize_zero_range_is_zero_not_nan(how):
    maps = np.stack([np.full((3, 3), 5.0 if how == "minmax" else 0.0), np.arange(9.0).reshape(3, 3)])
    out = P.normalize(maps, how)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[0], 0.0)
    assert out[1].max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="how must be one of"):
        P.normalize(maps, "zscore")


def test_normalize_matches_tfkerasvis():
    from tf_keras_vis.utils import normalize as tkv_normalize

    maps = np.random.default_rng(0).normal(size=(4, 5, 6))
    np.testing.assert_allclose(P.normalize(maps), tkv_normalize(maps), atol=1e-6)


def _bilinear_oracle_1d(n_in, n_out):
    """Interpolation matrix of half-pixel-centred linear resizing (clamped at the borders)."""
    mat = np.zeros((n_out, n_in))
    for i in range(n_out):
        src = min(max((i + 0.5) * n_in / n_out - 0.5, 0.0), n_in - 1)
        lo = int(np.floor(src))
        hi = min(lo + 1, n_in - 1)
        mat[i, lo] += 1 - (src - lo)
        mat[i, hi] += src - lo
    return mat


def test_upsample_bilinear_against_separable_oracle():
    cams = np.random.default_rng(1).normal(size=(2, 3, 4))
    out = P.upsample(cams, (9, 8))
    ry, rx = _bilinear_oracle_1d(3, 9), _bilinear_oracle_1d(4, 8)
    want = np.einsum("yi,nij,xj->nyx", ry, cams, rx)
    assert out.shape == (2, 9, 8) and out.dtype == np.float32
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    # 2 -> 4 by hand: sample positions -0.25, 0.25, 0.75, 1.25 clamp to 0, .25, .75, 1
    row = P.upsample(np.array([[[0.0, 4.0]]]), (1, 4))[0, 0]
    np.testing.assert_allclose(row, [0, 1, 3, 4])


def test_upsample_constant_and_channels():
    const = np.full((1, 2, 2, 3), 7.0)
    out = P.upsample(const, (5, 5))
    assert out.shape == (1, 5, 5, 3)
    np.testing.assert_allclose(out, 7.0)
    with pytest.raises(ValueError, match="size"):
        P.upsample(const, (5,))
    with pytest.raises(ValueError, match="upsample needs"):
        P.upsample(np.zeros((1, 2, 2, 2, 2)), (4, 4))


def test_tfkerasvis_style_by_hand():
    out = P.tfkerasvis_style(MAPS)
    # abs -> channel max of PIX: [[4, 0], [3, 2]] -> minmax: [[1, 0], [.75, .5]]
    np.testing.assert_allclose(out[0], [[1, 0], [0.75, 0.5]])
    assert out.shape == (2, 2, 2)


def test_tfkerasvis_style_matches_tfkerasvis_saliency():
    """Our gradient + tfkerasvis_style == tf-keras-vis Saliency with all its defaults."""
    from tensorflow import keras
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.scores import CategoricalScore

    from bnn_saliency.methods.gradients import gradient

    keras.utils.set_random_seed(2)
    inp = keras.Input((6, 6, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    model = keras.Model(inp, keras.layers.Dense(5)(keras.layers.Flatten()(h)))
    x = np.random.default_rng(3).random((3, 6, 6, 3)).astype(np.float32)
    t = [0, 2, 4]
    ref = Saliency(model)(CategoricalScore(t), x)  # abs, max over channels, normalize
    ours = P.tfkerasvis_style(gradient(model, x, np.array(t)))
    assert ours.shape == ref.shape == (3, 6, 6)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_upsample_equals_tensorflow_bilinear():
    """Second implementation: tf.image.resize (half-pixel centers) agrees to float32 rounding."""
    import tensorflow as tf

    from float_tolerance import assert_float32_close

    maps = np.random.default_rng(5).normal(size=(3, 4, 6, 2))
    want = tf.image.resize(maps.astype(np.float32), (13, 9), method="bilinear").numpy()
    assert_float32_close(P.upsample(maps, (13, 9), np.float64), want, depth=4)
    assert_float32_close(P.upsample(maps[..., 0], (13, 9)), want[..., 0], depth=4)
