"""The on-disk memo: a hit returns what the computation returned; any change of weights,
parameters, images or code recomputes."""

import numpy as np
import pytest
from tensorflow import keras

from bnn_saliency import memo

CALLS = []


@memo.cached
def logit_sum(model, images, scale=1.0):
    CALLS.append(1)
    return scale * np.asarray(model(images, training=False)).sum(axis=1)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BNN_SALIENCY_CACHE", str(tmp_path))
    monkeypatch.delenv("BNN_SALIENCY_RECOMPUTE", raising=False)
    CALLS.clear()
    yield tmp_path


def tiny(seed):
    """Fixed layer names: a fingerprint covers the architecture JSON, names included."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((4,), name="x"), keras.layers.Dense(3, name="d")],
                            name="tiny")


def test_hit_returns_the_computed_value_and_does_not_recompute(cache):
    model, x = tiny(0), np.random.default_rng(0).random((5, 4)).astype(np.float32)
    first = logit_sum(model, x)
    second = logit_sum(model, x)
    assert len(CALLS) == 1
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, np.asarray(model(x)).sum(axis=1))
    assert (cache / "memo").is_dir()


def test_changed_weights_parameters_or_images_recompute(cache):
    model, x = tiny(0), np.random.default_rng(0).random((5, 4)).astype(np.float32)
    base = logit_sum(model, x)
    logit_sum(model, x, scale=2.0)
    logit_sum(model, x[:4])
    model.layers[0].bias.assign([1.0, 0.0, 0.0])  # same architecture, other weights
    moved = logit_sum(model, x)
    assert len(CALLS) == 4
    np.testing.assert_allclose(moved - base, 1.0, rtol=1e-5)
    assert memo.model_fingerprint(model) != memo.model_fingerprint(tiny(0))
    assert memo.model_fingerprint(tiny(0)) == memo.model_fingerprint(tiny(0))


def test_code_change_recomputes(cache, monkeypatch):
    model, x = tiny(0), np.ones((2, 4), np.float32)
    logit_sum(model, x)
    monkeypatch.setattr(memo, "code_version", lambda module=None: "another version")
    logit_sum(model, x)
    assert len(CALLS) == 2


def test_recompute_env_and_closures_bypass_the_cache(cache, monkeypatch):
    model, x = tiny(0), np.ones((2, 4), np.float32)

    @memo.cached
    def apply(f, x):
        CALLS.append(1)
        return f(x)

    apply(lambda v: v + 1, x)
    apply(lambda v: v + 2, x)  # a lambda has no content key: must not hit the first result
    assert len(CALLS) == 2
    monkeypatch.setenv("BNN_SALIENCY_RECOMPUTE", "1")
    logit_sum(model, x)
    logit_sum(model, x)
    assert len(CALLS) == 4


def test_stopwatch_counts_the_original_compute_time_of_hits(cache):
    import time

    @memo.cached
    def slow(x):
        time.sleep(0.3)
        return x

    slow(1)
    with memo.stopwatch() as watch:
        slow(1)
    assert watch.seconds >= 0.3
    start = time.perf_counter()
    slow(1)
    assert time.perf_counter() - start < 0.3


def test_code_version_covers_the_library_and_the_functions_own_chapter(tmp_path, monkeypatch):
    files = ["methods/gradients.py", "plotting.py", "study/__init__.py", "study/common.py",
             "study/ch01_gradient.py", "study/ch06_beyond/experiments.py"]
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    monkeypatch.setattr(memo, "PACKAGE_DIR", tmp_path)
    units = {"library": "bnn_saliency.methods.gradients",
             "ch01": "bnn_saliency.study.ch01_gradient",
             "ch06": "bnn_saliency.study.ch06_beyond.experiments"}

    def versions():
        memo.code_version.cache_clear()
        return {u: memo.code_version(m) for u, m in units.items()}

    def changed_by(rel):
        before = versions()
        (tmp_path / rel).write_text((tmp_path / rel).read_text() + "y = 2\n")
        after = versions()
        return {u for u in units if before[u] != after[u]}

    try:
        assert changed_by("plotting.py") == set()
        assert changed_by("study/ch01_gradient.py") == {"ch01"}
        assert changed_by("study/ch06_beyond/experiments.py") == {"ch06"}
        assert changed_by("study/common.py") == {"ch01", "ch06"}
        assert changed_by("methods/gradients.py") == {"library", "ch01", "ch06"}
    finally:
        memo.code_version.cache_clear()
