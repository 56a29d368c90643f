"""Tests for bnn_saliency.models: registry, logits outputs, weights handling, randomization."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import tensorflow as tf
from float_tolerance import assert_float32_close
from tensorflow import keras

from bnn_saliency import data as data_mod
from bnn_saliency import models
from bnn_saliency.models import imagenet
from bnn_saliency.models import registry
from bnn_saliency.models.twins import build_twin

BUILD_TIMES: dict[str, float] = {}


@pytest.fixture(autouse=True)
def _free_keras_state():
    """Drop the previous test's models (ImageNet nets are large; keeps the file fast)."""
    yield
    keras.backend.clear_session()


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _patch_get_file(monkeypatch, fn):
    """Replace the download used by us/larq-zoo (tf.keras.utils) and by keras.applications."""
    import keras.src.utils.data_utils as keras_data_utils

    monkeypatch.setattr(tf.keras.utils, "get_file", fn)
    monkeypatch.setattr(keras_data_utils, "get_file", fn)


# ---------------------------------------------------------------- ImageNet nets
@pytest.mark.parametrize("name", models.IMAGENET_NAMES)
def test_imagenet_net_builds_with_logits_gradcam_and_randomization_layers(name):
    from tf_keras_vis.utils import find_layer
    from tf_keras_vis.utils.model_modifiers import Conv

    spec = models.get_spec(name)
    t0, c0 = time.time(), time.process_time()
    model = models.build(name, seed=0)
    BUILD_TIMES[name] = time.process_time() - c0  # CPU time: robust to a busy machine
    print(f"{name}: built in {time.time() - t0:.1f}s wall, {BUILD_TIMES[name]:.1f}s CPU")
    assert spec.input_size == (224, 224) and spec.input_range == (0.0, 255.0)
    assert model.output_shape == (None, 1000)

    image = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    logits = model(spec.preprocess(image), training=False).numpy()
    assert logits.shape == (1, 1000) and logits.dtype == np.float32
    assert np.all(np.isfinite(logits))
    # logits, not probabilities: some are negative and they do not sum to one
    assert logits.min() < 0 and abs(logits.sum() - 1.0) > 1e-2
    last = model.layers[-1]
    assert not isinstance(last, keras.layers.Softmax)
    assert getattr(getattr(last, "activation", None), "__name__", "linear") == "linear"

    # Grad-CAM layer: exists, 4-D, spatial; equals tf-keras-vis' rule (last Conv) once
    # 1x1 classifier convolutions are skipped.
    layer = model.get_layer(spec.gradcam_layer)
    shape = layer.output.shape
    assert len(shape) == 4 and shape[1] > 1 and shape[2] > 1
    expected = find_layer(model, lambda lay: isinstance(lay, Conv) and len(lay.output.shape) == 4
                          and lay.output.shape[1] > 1)
    assert expected.name == spec.gradcam_layer

    # randomization layers: non-empty, all exist and have weights, logits layer first,
    # first convolution (which sees the 3-channel image) last
    order = spec.randomization_layers
    assert len(order) > 5 and len(set(order)) == len(order)
    assert all(model.get_layer(n).weights for n in order)
    assert model.get_layer(order[0]).output.shape[-1] == 1000
    assert model.get_layer(order[-1]).input.shape[-1] == 3


def test_build_times_well_under_a_minute():
    if len(BUILD_TIMES) < len(models.IMAGENET_NAMES):
        pytest.skip("needs the build test above in the same session")
    total = sum(BUILD_TIMES.values())
    print("build CPU times:", {k: round(v, 1) for k, v in BUILD_TIMES.items()}, f"total {total:.1f}s")
    assert total < 60


def _library_weights_reference(name):
    """(file, url, cache_subdir, hash) as keras 2.15 / larq-zoo 2.4.0 define them (no build)."""
    import inspect

    import keras.src.applications as apps
    import larq_zoo.literature as lit
    import larq_zoo.sota as sota

    if name == "VGG16":
        m = apps.vgg16
        file = m.WEIGHTS_PATH.rsplit("/", 1)[1]
        return file, m.WEIGHTS_PATH, "models", "64373286793e3c8b2b4e3219cbf3544b", inspect.getsource(m)
    if name == "ResNet50":
        file = "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
        return (file, apps.resnet.BASE_WEIGHTS_PATH + file, "models",
                apps.resnet.WEIGHTS_HASHES["resnet50"][0], "")
    if name == "MobileNet":
        file = "mobilenet_%s_%d_tf.h5" % ("1_0", 224)
        return file, apps.mobilenet.BASE_WEIGHT_PATH + file, "models", None, ""
    if name == "MobileNetV2":
        file = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_" + str(1.0) + "_224.h5"
        return file, apps.mobilenet_v2.BASE_WEIGHT_PATH + file, "models", None, ""
    if name == "EfficientNetB0":
        file = "efficientnetb0.h5"
        return (file, apps.efficientnet.BASE_WEIGHTS_PATH + file, "models",
                apps.efficientnet.WEIGHTS_HASHES["b0"][0], "")
    module = {"QuickNet": sota.quicknet, "BinaryAlexNet": lit.binary_alex_net,
              "BinaryResNetE18": lit.resnet_e, "MeliusNet22": lit.meliusnet,
              "RealToBinaryNet": lit.real_to_bin_nets}[name]
    return None, None, None, None, inspect.getsource(module)


@pytest.mark.parametrize("name", models.IMAGENET_NAMES)
def test_weights_table_matches_the_library(name):
    """Our (file, url, subdir, hash) is what the library fetches (checked without a build;
    the cache test below captures the real get_file calls for one net of each kind)."""
    wf = models.WEIGHTS_FILES[name]
    file, url, subdir, file_hash, source = _library_weights_reference(name)
    if file is not None:  # keras.applications
        assert (wf.file, wf.url, wf.cache_subdir, wf.file_hash) == (file, url, subdir, file_hash)
        assert not source or (wf.file in source and wf.file_hash in source)
    else:  # larq-zoo: download_pretrained_model(model=..., version=..., file=..., file_hash=...)
        model, version = wf.url.split("/")[-2].rsplit("-", 1)
        for token in (f'model="{model}"', f'version="{version}"', f'file="{wf.file}"',
                      f'file_hash="{wf.file_hash}"'):
            assert token in source, token
        assert wf.url == f"https://github.com/larq/zoo/releases/download/{model}-{version}/{wf.file}"
        assert wf.cache_subdir == f"larq/models/{model}"


@pytest.mark.parametrize("name", models.IMAGENET_NAMES)
def test_imagenet_weights_offline_raise_clear_error(name, monkeypatch):
    def offline(fname=None, origin=None, **kw):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] name resolution")

    _patch_get_file(monkeypatch, offline)
    wf = models.get_spec(name).weights_file
    with pytest.raises(models.WeightsUnavailableError) as info:
        models.load(name)  # default: ImageNet weights
    message = str(info.value)
    assert wf.file in message and wf.url in message and str(wf.cache_path()) in message
    expected_dir = "larq/models" if models.get_spec(name).kind == "imagenet-bnn" else ".keras/models"
    assert expected_dir in str(wf.cache_path())
    assert isinstance(info.value, FileNotFoundError)


@pytest.mark.parametrize("name, library", [
    ("MobileNet", lambda: keras.applications.MobileNet(weights=None)),
    ("BinaryResNetE18", lambda: __import__("larq_zoo").literature.BinaryResNetE18(weights=None)),
])
def test_imagenet_weights_are_loaded_from_the_cache(name, library, tmp_path, monkeypatch):
    """With a (fake) cached weights file, load() returns the library model minus softmax."""
    keras.utils.set_random_seed(3)
    reference = library()  # library model, softmax output, random weights
    rng = np.random.default_rng(3)
    reference.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype)
                           for w in reference.get_weights()])
    path = tmp_path / models.WEIGHTS_FILES[name].file
    reference.save_weights(str(path))
    calls = []

    def cached(fname=None, origin=None, cache_subdir="datasets", file_hash=None, **kw):
        calls.append((fname, origin, cache_subdir, file_hash))
        return str(path)

    _patch_get_file(monkeypatch, cached)

    model = models.load(name)
    x = models.get_spec(name).preprocess(
        np.random.default_rng(4).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32))
    probs = reference(x, training=False).numpy()
    logits = model(x, training=False).numpy()
    np.testing.assert_allclose(_softmax(logits.astype(np.float64)), probs, atol=1e-5)
    assert not np.allclose(logits.sum(axis=1), 1.0)
    # our pre-fetch and the library's own request ask get_file for the same file
    wf = models.WEIGHTS_FILES[name]
    assert calls == [(wf.file, wf.url, wf.cache_subdir, wf.file_hash)] * 2


def test_imagenet_available_uses_cache_and_reachability(tmp_path, monkeypatch):
    monkeypatch.setattr(models.WeightsFile, "cache_path",
                        lambda self: tmp_path / self.cache_subdir / self.file)
    monkeypatch.setattr(imagenet, "_host_reachable", lambda url, timeout: False)
    assert set(models.imagenet_status().values()) == {"unavailable"}
    assert not models.imagenet_available()
    assert models.resolve_mode("imagenet") == (
        "twins", "ImageNet weights unavailable offline; using the twins.")
    for wf in models.WEIGHTS_FILES.values():
        wf.cache_path().parent.mkdir(parents=True, exist_ok=True)
        wf.cache_path().write_bytes(b"x")
    assert set(models.imagenet_status().values()) == {"cached"}
    assert models.imagenet_available()
    assert models.resolve_mode("imagenet") == ("imagenet", None)


def test_models_mode_and_chapter_models(monkeypatch):
    monkeypatch.delenv(models.MODELS_ENV, raising=False)
    assert models.models_mode() == "twins"
    monkeypatch.setenv(models.MODELS_ENV, "imagenet")
    assert models.models_mode() == "imagenet"
    assert models.chapter_models() == list(models.IMAGENET_NAMES)
    assert len(models.chapter_models("imagenet")) == 10
    monkeypatch.setenv(models.MODELS_ENV, "cifar")
    with pytest.raises(ValueError, match="twins"):
        models.models_mode()
    with pytest.raises(ValueError):
        models.chapter_models("both")


# ---------------------------------------------------------------- preprocessing
def test_preprocessing_matches_closed_forms_and_does_not_mutate():
    import larq_zoo

    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    before = image.copy()
    # caffe mode (VGG16, ResNet50): RGB -> BGR, subtract the BGR means
    bgr_mean = np.array([103.939, 116.779, 123.68], np.float32)
    for name in ("VGG16", "ResNet50"):
        out = models.get_spec(name).preprocess(image)
        np.testing.assert_allclose(out, image[..., ::-1] - bgr_mean, atol=1e-4)
    for name in ("MobileNet", "MobileNetV2"):
        np.testing.assert_allclose(models.get_spec(name).preprocess(image), image / 127.5 - 1,
                                   atol=1e-6)
    np.testing.assert_array_equal(models.get_spec("EfficientNetB0").preprocess(image), image)
    np.testing.assert_array_equal(image, before)  # keras' functions work in place; ours copy

    # larq-zoo: larq_zoo.preprocess_input crops + resizes, which leaves a constant image as is
    colour = np.array([10.0, 128.0, 250.0], np.float32)
    flat = np.broadcast_to(colour, (256, 256, 3)).astype(np.float32)
    expected = larq_zoo.preprocess_input(flat)[0, 0]
    for name in ("QuickNet", "BinaryAlexNet", "BinaryResNetE18", "MeliusNet22", "RealToBinaryNet"):
        out = models.get_spec(name).preprocess(flat[None, :4, :4])
        assert_float32_close(out[0, 0, 0], expected, depth=3)  # resize, subtract, divide
    twin_in = rng.uniform(0, 1, (1, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(models.preprocess_identity(twin_in), twin_in)


# ---------------------------------------------------------------- twins
def _randomize_all(model, seed=0):
    rng = np.random.default_rng(seed)
    new = []
    for w in model.weights:
        value = rng.normal(0, 0.3, w.shape)
        if "moving_variance" in w.name:
            value = rng.uniform(0.5, 2.0, w.shape)
        new.append(value.astype(np.float32))
    model.set_weights(new)


@pytest.fixture
def tiny_twin(tmp_path, monkeypatch):
    """A width-4 vgg-bnn twin saved like train.py does, in a temporary data dir."""
    monkeypatch.setattr(registry, "TWIN_WEIGHTS_DIR", tmp_path)
    keras.utils.set_random_seed(0)
    net = build_twin("vgg", "bnn", width=4)
    _randomize_all(net)
    name = "vgg-bnn-s0"
    path = tmp_path / f"{name}.weights.h5"
    net.save_weights(path)
    record = {"name": name, "family": "vgg", "variant": "bnn", "width": 4, "epochs": 1,
              "weights_file": path.name, "weights_sha256": data_mod.sha256_of(path)}
    (tmp_path / f"{name}.json").write_text(json.dumps(record))
    return name, net, path, record


def test_twin_loads_float32_and_predicts_like_the_saved_model(tiny_twin):
    name, net, _, record = tiny_twin
    assert models.available_twins() == [name]
    assert models.chapter_models("twins") == [name]
    assert models.provenance(name) == record
    x = np.random.default_rng(1).uniform(0, 1, (4, 32, 32, 3)).astype(np.float32)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")  # as during training
    try:
        model = models.load(name)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert all(layer.compute_dtype == "float32" for layer in model.layers)
    out = model(x, training=False)
    assert out.dtype == tf.float32
    assert_float32_close(out.numpy(), net(x, training=False).numpy(), depth=7)
    spec = models.get_spec(name)
    assert (spec.kind, spec.family, spec.variant, spec.width) == ("twin", "vgg", "bnn", 4)
    assert spec.gradcam_layer == "conv6" and spec.input_range == (0.0, 1.0)
    assert spec.randomization_layers[0] == "logits" and spec.randomization_layers[-1] == "conv1"
    assert model.get_layer(spec.gradcam_layer).output.shape.rank == 4


def test_v2_suite_names_load_from_their_own_folder(tiny_twin, tmp_path):
    name, net, path, record = tiny_twin
    v2 = tmp_path / "v2"
    v2.mkdir()
    control = "vgg-fp-s0-at-bnn-acc"
    fp = build_twin("vgg", "fp", width=4)
    _randomize_all(fp)
    fp.save_weights(v2 / f"{control}.weights.h5")
    (v2 / f"{control}.json").write_text(json.dumps(
        {"name": control, "family": "vgg", "variant": "fp", "width": 4,
         "weights_file": f"{control}.weights.h5",
         "weights_sha256": data_mod.sha256_of(v2 / f"{control}.weights.h5")}))
    (v2 / "pilot.json").write_text("[]")  # not a twin
    assert models.available_twins("v2") == [f"v2:{control}"]
    assert models.available_twins() == [name]   # v1 is data/ itself, unprefixed
    x = np.random.default_rng(2).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    loaded = models.load(f"v2:{control}")
    assert_float32_close(loaded(x).numpy(), fp(x, training=False).numpy(), depth=7)
    assert models.get_spec(f"v1:{name}").variant == "bnn"
    with pytest.raises(FileNotFoundError, match="ONLY=vgg-bnn-s0 bash scripts/train_v2.sh"):
        models.load("v2:vgg-bnn-s0")
    with pytest.raises(ValueError, match="suite"):
        models.available_twins("v3")


def test_twin_corrupted_weights_raise_checksum_error(tiny_twin):
    name, _, path, _ = tiny_twin
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(data_mod.ChecksumError, match=name):
        models.load(name)


def test_twin_missing_files_raise_file_not_found(tiny_twin):
    name, _, path, _ = tiny_twin
    path.unlink()
    assert models.available_twins() == []
    with pytest.raises(FileNotFoundError) as info:
        models.load(name)
    assert "git lfs" in str(info.value)
    assert "python -m bnn_saliency.models.training --model vgg-bnn --seed 0" in str(info.value)
    with pytest.raises(FileNotFoundError, match="provenance"):
        models.load("resnet-fp-s7")


def test_unknown_name_raises_key_error_listing_valid_names():
    with pytest.raises(KeyError) as info:
        models.load("vgg17")
    assert "VGG16" in str(info.value) and "RealToBinaryNet" in str(info.value)
    with pytest.raises(KeyError):
        models.get_spec("vgg-bnn-0")


def test_twin_build_untrained_and_randlabels_names(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "TWIN_WEIGHTS_DIR", tmp_path)  # no records: default width
    spec = models.get_spec("vgg-fp-s0-randlabels")
    assert (spec.family, spec.variant, spec.width) == ("vgg", "fp", 64)
    model = models.build("resnet-bnn-s1")
    assert model.output_shape == (None, 10)
    assert model.get_layer(models.get_spec("resnet-bnn-s1").gradcam_layer).output.shape.rank == 4


def test_label_twins_and_controls_parse_and_stay_out_of_the_chapters(tiny_twin):
    name, _, path, record = tiny_twin
    tmp = path.parent
    for other in (f"{name}-randlabels", f"{name}-truelabels"):
        (tmp / f"{other}.json").write_text(json.dumps({**record, "name": other}))
    assert registry._parse_twin("v2:vgg-fp-s0-truelabels") == ("v2", "vgg", "fp", 0,
                                                               "-truelabels", "")
    assert registry._parse_twin("vgg-bnn-s2-randlabels")[4] == "-randlabels"
    assert registry._parse_twin("vgg-fp-s1-narrow")[4:] == ("", "-narrow")
    assert registry._parse_twin("vgg-fp-s0-falselabels") is None
    assert models.chapter_models("twins") == [name]
    assert sorted(models.chapter_models("twins", include_randlabels=True)) == sorted(
        [name, f"{name}-randlabels", f"{name}-truelabels"])


# ---------------------------------------------------------------- randomize_layers
@pytest.fixture
def twin_model():
    keras.utils.set_random_seed(0)
    with imagenet._float32_policy():
        net = build_twin("vgg", "bnn", width=4)
    _randomize_all(net, seed=5)
    return net


def _weights_by_layer(model):
    return {layer.name: [w.numpy().copy() for w in layer.weights] for layer in model.layers}


def test_randomize_layers_changes_only_the_named_layers(twin_model):
    before = _weights_by_layer(twin_model)
    x = np.random.default_rng(2).uniform(0, 1, (3, 32, 32, 3)).astype(np.float32)
    out_before = twin_model(x, training=False).numpy()
    names = ["logits", "conv6"]
    rand = models.randomize_layers(twin_model, names, seed=1)
    assert rand is not twin_model
    after = _weights_by_layer(rand)
    for layer, ws in before.items():
        for w_old, w_new in zip(ws, after[layer]):
            if layer in names:
                assert not np.array_equal(w_old, w_new), layer
            else:
                np.testing.assert_array_equal(w_old, w_new)
    # the original is untouched, weights and function
    for layer, ws in _weights_by_layer(twin_model).items():
        for w_old, w_now in zip(before[layer], ws):
            np.testing.assert_array_equal(w_old, w_now)
    np.testing.assert_array_equal(twin_model(x, training=False).numpy(), out_before)
    assert not np.allclose(rand(x, training=False).numpy(), out_before)

    # drawn from the layers' own initializers: zeros bias, glorot-uniform kernels
    kernel, bias = after["logits"]
    np.testing.assert_array_equal(bias, 0.0)
    limit = np.sqrt(6.0 / (kernel.shape[0] + kernel.shape[1]))
    assert np.abs(kernel).max() <= limit
    assert abs(kernel.std() - limit / np.sqrt(3)) < 0.1 * limit / np.sqrt(3)
    conv = after["conv6"][0]
    fan_in, fan_out = 9 * conv.shape[2], 9 * conv.shape[3]
    assert np.abs(conv).max() <= np.sqrt(6.0 / (fan_in + fan_out))


def test_randomize_layers_is_seeded_and_per_layer_consistent(twin_model):
    a = models.randomize_layers(twin_model, ["logits", "conv6"], seed=7)
    b = models.randomize_layers(twin_model, ["logits", "conv6"], seed=7)
    c = models.randomize_layers(twin_model, ["logits", "conv6"], seed=8)
    single = models.randomize_layers(twin_model, ["logits"], seed=7)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_layer("conv6").kernel.numpy(), c.get_layer("conv6").kernel.numpy())
    # cascading step k and the independent draw agree on a shared layer
    np.testing.assert_array_equal(a.get_layer("logits").kernel.numpy(),
                                  single.get_layer("logits").kernel.numpy())


def test_randomize_layers_batchnorm_only_when_asked(twin_model):
    before = [w.numpy() for w in twin_model.get_layer("bn6").weights]
    kept = models.randomize_layers(twin_model, ["bn6"], seed=0)
    for w_old, w_new in zip(before, kept.get_layer("bn6").weights):
        np.testing.assert_array_equal(w_old, w_new.numpy())
    reset = models.randomize_layers(twin_model, ["bn6"], seed=0, reset_batchnorm=True).get_layer("bn6")
    np.testing.assert_array_equal(reset.gamma.numpy(), 1.0)
    np.testing.assert_array_equal(reset.beta.numpy(), 0.0)
    np.testing.assert_array_equal(reset.moving_mean.numpy(), 0.0)
    np.testing.assert_array_equal(reset.moving_variance.numpy(), 1.0)
    with pytest.raises(KeyError, match="bn9"):
        models.randomize_layers(twin_model, ["bn9"], seed=0)


def test_randomize_layers_applies_the_latent_weight_clip():
    import larq as lq

    inputs = keras.Input((6, 6, 2))
    outputs = lq.layers.QuantConv2D(
        8, 3, kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False,
        kernel_initializer=keras.initializers.RandomNormal(stddev=5.0), name="qconv")(inputs)
    model = keras.Model(inputs, outputs)
    model.get_layer("qconv").kernel.assign(tf.zeros((3, 3, 2, 8)))
    kernel = models.randomize_layers(model, ["qconv"], seed=0).get_layer("qconv").kernel.numpy()
    assert np.abs(kernel).max() == 1.0  # N(0, 5) draws clipped to [-1, 1]
    assert np.mean(np.abs(kernel) == 1.0) > 0.5
    assert np.mean(np.abs(kernel) < 1.0) > 0.05


def test_randomize_layers_on_a_larq_zoo_net():
    spec = models.get_spec("BinaryResNetE18")
    model = models.build("BinaryResNetE18", seed=0)
    names = [spec.randomization_layers[0], spec.gradcam_layer]
    rand = models.randomize_layers(model, names, seed=0)
    assert [lay.name for lay in rand.layers] == [lay.name for lay in model.layers]
    for layer in model.layers:
        same = all(np.array_equal(a.numpy(), b.numpy())
                   for a, b in zip(layer.weights, rand.get_layer(layer.name).weights))
        assert same == (layer.name not in names), layer.name
    clip = rand.get_layer(spec.gradcam_layer).kernel_constraint
    assert clip is not None and np.abs(rand.get_layer(spec.gradcam_layer).kernel.numpy()).max() <= 1.0
