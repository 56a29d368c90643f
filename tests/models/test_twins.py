import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from float_tolerance import assert_float32_close

from bnn_saliency.models.twins import (
    FAMILIES,
    VARIANTS,
    build_twin,
    gradcam_layer,
    randomization_order,
)


@pytest.mark.parametrize("family", FAMILIES)
def test_twins_share_topology(family):
    models = {v: build_twin(family, v, width=8) for v in VARIANTS}
    names = {v: [lay.name for lay in m.layers] for v, m in models.items()}
    shapes = {v: [w.shape for w in m.weights] for v, m in models.items()}
    for v in VARIANTS:
        assert names[v] == names["fp"], "twins must differ only in what is binarized"
        assert shapes[v] == shapes["fp"]
        out = models[v](np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32))
        assert out.shape == (2, 10)
        layer = models[v].get_layer(gradcam_layer(family))
        assert len(layer.output.shape) == 4
        order = randomization_order(models[v])
        assert order[0] == "logits" and all(models[v].get_layer(n).weights for n in order)


def test_binary_conv_uses_sign_of_kernel():
    """Oracle: a binarized conv equals tf.nn.conv2d with np.sign of its latent kernel."""
    model = build_twin("vgg", "bnn", width=8)
    x = np.random.default_rng(1).normal(size=(1, 32, 32, 3)).astype(np.float32)
    conv = model.get_layer("conv1")
    kernel = conv.kernel.numpy()
    expected = tf.nn.conv2d(x, np.where(kernel >= 0, 1.0, -1.0).astype(np.float32), 1, "SAME")
    assert_float32_close(conv(x).numpy(), expected.numpy(), depth=1)  # one conv, 27 terms
    assert isinstance(conv, lq.layers.QuantConv2D)


def test_binary_activations_are_plus_minus_one():
    model = build_twin("vgg", "bina", width=8)
    probe = tf.keras.Model(model.input, model.get_layer("act3").output)
    out = probe(np.random.default_rng(2).random((2, 32, 32, 3), dtype=np.float32)).numpy()
    assert set(np.unique(out)) <= {-1.0, 1.0}
    fp = build_twin("vgg", "fp", width=8)
    relu = tf.keras.Model(fp.input, fp.get_layer("act3").output)(np.ones((1, 32, 32, 3), np.float32))
    assert relu.numpy().min() >= 0


def test_classifier_is_full_precision():
    model = build_twin("resnet", "bnn", width=8)
    assert type(model.get_layer("logits")) is tf.keras.layers.Dense


@pytest.mark.parametrize("family,variant", [("vgg", "int8"), ("alexnet", "fp")])
def test_unknown_twin(family, variant):
    with pytest.raises(ValueError, match="choose one of"):
        build_twin(family, variant)
