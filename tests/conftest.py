import contextlib
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_collection_modifyitems(config, items):
    """Tests that read the offline mirror are skipped with a reason when it is not configured."""
    if os.environ.get("BNN_SALIENCY_DATA"):
        return
    skip = pytest.mark.skip(reason="BNN_SALIENCY_DATA is not set (see README: data location)")
    for item in items:
        if "needs_data" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_data: reads the offline data mirror")


@contextlib.contextmanager
def float64():
    """Build keras models in float64. The global policy, once set (models.load sets it),
    overrides floatx, so both are set and both restored."""
    from tensorflow import keras

    previous, previous_policy = keras.backend.floatx(), keras.mixed_precision.global_policy()
    keras.backend.set_floatx("float64")
    keras.mixed_precision.set_global_policy("float64")
    try:
        yield
    finally:
        keras.backend.set_floatx(previous)
        keras.mixed_precision.set_global_policy(previous_policy)


def jitter_biases_and_bn(model, seed: int):
    """Give a fresh model non-zero biases and non-trivial BatchNorm statistics (in place), so
    tests of attribution rules see every term; returns the model."""
    import numpy as np
    from tensorflow import keras

    rng = np.random.default_rng(seed)
    model.set_weights([w + rng.normal(0, 0.2, w.shape) if w.ndim == 1 else w
                       for w in model.get_weights()])
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([g, b, m, np.abs(v) + 0.5])
    return model


# Unit tests test the code, never a memoized result (tests/test_memo.py enables the cache in
# a temporary folder where it tests it).
os.environ["BNN_SALIENCY_RECOMPUTE"] = "1"
