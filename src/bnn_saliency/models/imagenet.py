"""The paper's ImageNet networks: pretrained weights files (with hashes and URLs), builders
that output logits, and their preprocessing."""

from __future__ import annotations

import collections
import contextlib
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

MODELS_ENV = "BNN_SALIENCY_MODELS"


IMAGENET_MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)  # larq_zoo.training.data.MEAN_RGB


IMAGENET_STD_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)  # larq_zoo.training.data.STDDEV_RGB


class WeightsUnavailableError(FileNotFoundError):
    """Pretrained ImageNet weights are neither cached nor downloadable."""


@dataclass(frozen=True)
class WeightsFile:
    """One pretrained-weights file as the library fetches it with ``get_file``."""

    file: str
    url: str
    cache_subdir: str
    file_hash: str | None

    def cache_path(self) -> Path:
        """Where ``tf.keras.utils.get_file`` keeps (or would put) the file."""
        base = os.path.expanduser(os.path.join("~", ".keras"))
        if not os.access(base, os.W_OK):  # same fallback as keras' get_file
            base = os.path.join("/tmp", ".keras")
        return Path(base) / self.cache_subdir / self.file


_KA = "https://storage.googleapis.com/tensorflow/keras-applications/"


_LZ = "https://github.com/larq/zoo/releases/download/"


def _larq_file(model: str, version: str, file: str, file_hash: str) -> WeightsFile:
    # mirrors larq_zoo.core.utils.download_pretrained_model
    return WeightsFile(file, f"{_LZ}{model}-{version}/{file}", f"larq/models/{model}", file_hash)


# File names, URLs and hashes as in keras 2.15 / larq-zoo 2.4.0 (include_top=True);
# tests/test_models.py checks them against the libraries' own get_file calls.
WEIGHTS_FILES: dict[str, WeightsFile] = {
    "VGG16": WeightsFile("vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                         _KA + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                         "models", "64373286793e3c8b2b4e3219cbf3544b"),
    "ResNet50": WeightsFile("resnet50_weights_tf_dim_ordering_tf_kernels.h5",
                            _KA + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5",
                            "models", "2cb95161c43110f7111970584f804107"),
    "MobileNet": WeightsFile("mobilenet_1_0_224_tf.h5", _KA + "mobilenet/mobilenet_1_0_224_tf.h5",
                             "models", None),
    "MobileNetV2": WeightsFile(
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
        _KA + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
        "models", None),
    "EfficientNetB0": WeightsFile("efficientnetb0.h5",
                                  "https://storage.googleapis.com/keras-applications/efficientnetb0.h5",
                                  "models", "902e53a9f72be733fc0bcb005b3ebbac"),
    "QuickNet": _larq_file("quicknet", "v1.0", "quicknet_weights.h5",
                           "8aba9e4e5f8d342faef04a0b2ae8e562da57dbb7d15162e8b3e091c951ba756c"),
    "BinaryAlexNet": _larq_file("binary_alexnet", "v0.3.0", "binary_alexnet_weights.h5",
                                "7fc065c47c5c1d92389e0bb988ce6df6a4fa09d803b866e2ba648069d6652d63"),
    "BinaryResNetE18": _larq_file("resnet_e", "v0.1.0", "resnet_e_18_weights.h5",
                                  "bde4a64d42c164a7b10a28debbe1ad5b287c499bc0247ecb00449e6e89f3bf5b"),
    "MeliusNet22": _larq_file("meliusnet22", "v0.1.0", "meliusnet22_weights.h5",
                              "c1ba85e8389ae326009665ec13331e49fc3df4d0f925fa8553e224f7362c18ed"),
    "RealToBinaryNet": _larq_file("r2b", "v0.1.0", "r2b_weights.h5",
                                  "e8fd16ca1ab9810ac3835f24f5c62758a57bc32a615f73aaa50d382d2b9617e1"),
}


def _fetch_weights(name: str) -> str:
    """Path of the cached weights file, downloading it if needed (as the library would)."""
    import tensorflow as tf

    wf = WEIGHTS_FILES[name]
    try:
        return tf.keras.utils.get_file(wf.file, wf.url, cache_subdir=wf.cache_subdir,
                                       file_hash=wf.file_hash)
    except Exception as err:  # offline: "URL fetch failure ..."; corrupt: hash mismatch
        raise WeightsUnavailableError(
            f"ImageNet weights for {name} are unavailable: {wf.file} is not cached and could "
            f"not be downloaded from {wf.url} ({type(err).__name__}: {err}). Download it on a "
            f"machine with internet access and put it at {wf.cache_path()}, or use the CIFAR-10 "
            f"twins ({MODELS_ENV}=twins)."
        ) from err


@contextlib.contextmanager
def _float32_policy():
    from tensorflow import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@contextlib.contextmanager
def _fresh_layer_names():
    """Auto-name layers as a fresh process would; restore the session's counters after."""
    from keras.src import backend as kb

    saved = {g: collections.defaultdict(int, m) for g, m in kb.PER_GRAPH_OBJECT_NAME_UIDS.items()}
    observed = set(kb.OBSERVED_NAMES)
    kb.reset_uids()
    try:
        yield
    finally:
        kb.PER_GRAPH_OBJECT_NAME_UIDS.clear()
        kb.PER_GRAPH_OBJECT_NAME_UIDS.update(saved)
        kb.OBSERVED_NAMES.clear()
        kb.OBSERVED_NAMES.update(observed)


def _strip_softmax(model):
    """The same model without its final softmax layer (outputs logits)."""
    from tensorflow import keras

    last = model.layers[-1]
    is_softmax = isinstance(last, keras.layers.Softmax) or (
        isinstance(last, keras.layers.Activation)
        and getattr(last.activation, "__name__", "") == "softmax")
    if not is_softmax:
        raise RuntimeError(f"{model.name}: expected a final softmax layer, found {last.name} "
                           f"({type(last).__name__}); larq-zoo's layout changed.")
    return keras.Model(model.inputs, last.input, name=model.name)


def _keras_app_builder(ctor: str) -> Callable:
    def builder(weights):
        from tensorflow import keras

        if weights == "imagenet":
            _fetch_weights(ctor)  # clear error if unavailable; the library then finds it cached
        elif weights is not None:
            raise ValueError(f"{ctor}: weights must be 'imagenet' or None, got {weights!r}")
        # weights="imagenet" (not a path) so the library builds the exact pretrained layout
        # (EfficientNet adds a rescaling layer only for "imagenet").
        return getattr(keras.applications, ctor)(weights=weights, classifier_activation=None)

    return builder


def _larq_builder(module: str, ctor: str) -> Callable:
    def builder(weights):
        import larq_zoo

        if weights == "imagenet":
            _fetch_weights(ctor)
        elif weights is not None:
            raise ValueError(f"{ctor}: weights must be 'imagenet' or None, got {weights!r}")
        full = getattr(getattr(larq_zoo, module), ctor)(weights=weights)
        return _strip_softmax(full)

    return builder


def _copy_float32(x):
    import tensorflow as tf

    if tf.is_tensor(x):
        return tf.cast(x, tf.float32)
    return np.array(x, dtype=np.float32, copy=True)  # keras preprocessing works in place


def _keras_preprocess(module: str) -> Callable:
    def preprocess(images):
        """``keras.applications.{module}.preprocess_input`` on a float32 copy ([0, 255] RGB in)."""
        from tensorflow import keras

        return getattr(keras.applications, module).preprocess_input(_copy_float32(images))

    preprocess.__name__ = f"preprocess_{module}"
    return preprocess


def preprocess_larq_zoo(images):
    """larq-zoo normalisation ``(x - mean) / std`` per RGB channel, for [0, 255] RGB images.

    The per-pixel part of ``larq_zoo.preprocess_input`` (which also centre-crops a single
    image; crop beforehand with :func:`bnn_saliency.data.load_imagenet_sample`).
    """
    x = _copy_float32(images)
    mean = np.asarray(IMAGENET_MEAN_RGB, np.float32)
    std = np.asarray(IMAGENET_STD_RGB, np.float32)
    return (x - mean) / std


def preprocess_identity(images):
    """Twins' preprocessing: float32 images in [0, 1], unchanged (returns a copy)."""
    return _copy_float32(images)


def _host_reachable(url: str, timeout: float) -> bool:
    host = re.match(r"https?://([^/]+)/", url).group(1)
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def imagenet_status(timeout: float = 2.0) -> dict[str, str]:
    """Per ImageNet net: ``"cached"``, ``"downloadable"`` (host reachable within ``timeout``
    seconds, not a full download) or ``"unavailable"``. Each host is tried at most once."""
    reachable: dict[str, bool] = {}
    status = {}
    for name, wf in WEIGHTS_FILES.items():
        if wf.cache_path().is_file():
            status[name] = "cached"
            continue
        host = re.match(r"https?://([^/]+)/", wf.url).group(1)
        if host not in reachable:
            reachable[host] = _host_reachable(wf.url, timeout)
        status[name] = "downloadable" if reachable[host] else "unavailable"
    return status


def imagenet_available(timeout: float = 2.0) -> bool:
    """True if all ten ImageNet nets' weights are cached or (apparently) downloadable."""
    return all(s != "unavailable" for s in imagenet_status(timeout).values())
