"""Training helpers: per-image augmentation, weights-only files, precision choice, recipes."""

import numpy as np
import pytest
import tensorflow as tf

from bnn_saliency.models import training as train
from bnn_saliency.models.twins import build_twin


def test_augment_batch_crops_and_flips_each_image_on_its_own():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    tf.random.set_seed(1)
    out = train.augment_batch(tf.constant(x)).numpy()
    assert out.dtype == np.float32 and out.shape == x.shape
    padded = np.pad(x / 255.0, [(0, 0), (4, 4), (4, 4), (0, 0)], mode="reflect")
    offsets = []
    for i in range(len(x)):  # oracle: every output is one crop of its padded image, or its mirror
        crops = {(dy, dx): padded[i, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)}
        found = [(dy, dx, f) for (dy, dx), c in crops.items() for f in (0, 1)
                 if np.allclose(out[i], c[:, ::-1] if f else c, atol=1e-6)]
        assert found, f"image {i} is not a crop of its padded input"
        offsets.append(found[0])
    assert len(set(offsets)) > 20  # per image, not one window for the whole batch
    assert 0.2 < np.mean([f for *_, f in offsets]) < 0.8


def test_weights_only_file_has_no_optimizer_state_and_reloads(tmp_path):
    recipe = train.Recipe(width=4, epochs=1, batch_size=8)
    net, _ = train.compiled_twin("vgg", "bnn", 4, recipe=recipe, steps_per_epoch=1)
    x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    net.fit(train.training_dataset(x, np.arange(8) % 10, 8, 0), epochs=1, verbose=0)
    path = tmp_path / "w.weights.h5"
    train.save_weights_only(net, "vgg", "bnn", 4, path)
    fresh = build_twin("vgg", "bnn", 4)
    fresh.load_weights(path)
    for a, b in zip(fresh.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(a, b)
    n_bytes = 4 * net.count_params()
    assert path.stat().st_size < 1.5 * n_bytes + 200_000  # Adam's m and v would triple it


def test_precision_choice_and_recipe_validation(monkeypatch):
    monkeypatch.setattr(train, "cpu_flags", lambda: {"avx2", "avx512f"})
    assert train.pick_precision() == "float32"
    monkeypatch.setattr(train, "cpu_flags", lambda: {"avx512_bf16"})
    assert train.pick_precision() == "mixed_bfloat16"
    assert train.pick_precision("float32") == "float32"
    with pytest.raises(ValueError, match="precision"):
        train.pick_precision("fp16")
    with pytest.raises(ValueError, match="optimizer"):
        train.Recipe(optimizer="rmsprop")
    with pytest.raises(ValueError, match="warmup"):
        train.Recipe(epochs=2, warmup_epochs=2)
    assert "cosine decay to 0 over 15 epochs" in train.Recipe().describe()


def test_checkpoint_source_tells_the_original_run_from_a_rerun():
    shipped = [{"epoch": "1", "test_acc": "0.41"}, {"epoch": "2", "test_acc": "0.52"},
               {"epoch": "3", "test_acc": "0.60"}]
    same = shipped[:2]
    assert train.checkpoint_source("vgg-fp-s1", shipped, same, 2) == \
        "the training run of vgg-fp-s1"
    rerun = [{"epoch": "1", "test_acc": "0.40"}, {"epoch": "2", "test_acc": "0.53"}]
    text = train.checkpoint_source("vgg-fp-s1", shipped, rerun, 2)
    assert "re-run" in text and "stopped after epoch 2" in text
    assert "53.00% in the re-run, 52.00% in the original run" in text
