"""Model registry: the paper's ten ImageNet networks and the CIFAR-10 FP/BNN twins.

Every model is addressed by name and described by a :class:`ModelSpec` (how to build it,
its input size, range and preprocessing, the Grad-CAM layer, the layers the
randomization sanity checks walk through). All models output **logits**: saliency
methods differentiate the pre-softmax class score.

ImageNet networks (``kind`` ``"imagenet-fp"`` / ``"imagenet-bnn"``):

================  ==========================================  =======================
name              source                                      Grad-CAM layer
================  ==========================================  =======================
VGG16             ``keras.applications.VGG16``                ``block5_conv3`` 14x14
ResNet50          ``keras.applications.ResNet50``             ``conv5_block3_3_conv``
MobileNet         ``keras.applications.MobileNet``            ``conv_pw_13``
MobileNetV2       ``keras.applications.MobileNetV2``          ``Conv_1``
EfficientNetB0    ``keras.applications.EfficientNetB0``       ``top_conv``
QuickNet          ``larq_zoo.sota.QuickNet``                  ``quant_conv2d_20``
BinaryAlexNet     ``larq_zoo.literature.BinaryAlexNet``       ``quant_conv2d_4`` 13x13
BinaryResNetE18   ``larq_zoo.literature.BinaryResNetE18``     ``quant_conv2d_15``
MeliusNet22       ``larq_zoo.literature.MeliusNet22``         ``section_3_block_3_improve_binconv``
RealToBinaryNet   ``larq_zoo.literature.RealToBinaryNet``     ``r2b_bnn_block_9b_conv2d``
================  ==========================================  =======================

(7x7 unless stated.) The Grad-CAM layer follows tf-keras-vis' default rule (the last
layer that is a Keras ``Conv`` -- which includes larq's ``QuantConv2D``) restricted to
layers with a spatial output larger than 1x1: MobileNet's ``conv_preds`` and
BinaryAlexNet's classifier are 1x1 "convolutions" acting as dense layers and are skipped.
For MeliusNet22 the rule lands on the 64-channel improvement convolution whose output is
merged into the last 512-channel feature map (``head_relu`` would be the alternative).

Logits: ``keras.applications`` are built with ``classifier_activation=None``. The larq-zoo
models end in a softmax layer (``Activation("softmax")`` or, for RealToBinaryNet, a
``Softmax`` layer ``r2b_bnn_block_10_probs``); we build the full model, load weights into
it, and return ``keras.Model(inputs, softmax_layer.input)`` -- the same layers and weights
without the final softmax.

Layer names: larq-zoo leaves most layers auto-named (``quant_conv2d_20``), and Keras
numbers auto-names with a per-session counter. Every build here therefore runs with a
fresh name counter (restored afterwards), so the names are the ones a fresh Python
process produces and the recorded names above are stable.

Preprocessing (``spec.preprocess``) maps float RGB images in [0, 255] to the model input
with the model's own convention: ``keras.applications.<net>.preprocess_input`` (VGG16 and
ResNet50: RGB->BGR and caffe mean subtraction; MobileNet/V2: ``x / 127.5 - 1``;
EfficientNetB0: identity, the model rescales internally) and, for larq-zoo, the per-channel
normalisation of ``larq_zoo.preprocess_input``, ``(x - 255 * (0.485, 0.456, 0.406)) /
(255 * (0.229, 0.224, 0.225))``. ``larq_zoo.preprocess_input`` additionally centre-crops
(224/256 of the short side) and bicubically resizes a single 3-D image; we leave cropping
to :func:`bnn_saliency.data.load_imagenet_sample` so that pixels and saliency maps stay
aligned. Preprocessing never modifies its argument (keras' own functions do, in place).

Pretrained ImageNet weights: ``weights="imagenet"`` fetches the file through
``tf.keras.utils.get_file`` exactly as the library would (same file name, cache folder and
hash), so a cached file is used without network access. If the file is neither cached nor
downloadable, :class:`WeightsUnavailableError` names the file, its URL and the path to
put it at: ``~/.keras/models/<file>`` for ``keras.applications`` and
``~/.keras/larq/models/<model>/<file>`` for larq-zoo (``/tmp/.keras/...`` when ``~/.keras``
is not writable, as in Keras' ``get_file``).

Twins (``kind`` ``"twin"``): names ``<family>-<variant>-s<seed>[-randlabels]`` such as
``vgg-bnn-s1`` or ``vgg-fp-s0-randlabels`` (see :mod:`bnn_saliency.twins`). Trained weights
and provenance live in ``data/<name>.weights.h5`` and ``data/<name>.json`` (written by
:mod:`bnn_saliency.train`). Twins take float images in [0, 1] of shape (N, 32, 32, 3);
their preprocessing is the identity.

Precision: every build runs under the ``float32`` global Keras policy (twins were trained
with ``mixed_bfloat16``; saliency needs float32 gradients). The caller's policy is restored
afterwards; the built layers keep float32.

References:
    Simonyan & Zisserman 2014 (VGG), arXiv:1409.1556. He et al. 2015 (ResNet),
    arXiv:1512.03385. Howard et al. 2017 (MobileNet), arXiv:1704.04861. Sandler et al. 2018
    (MobileNetV2), arXiv:1801.04381. Tan & Le 2019 (EfficientNet), arXiv:1905.11946.
    Bannink et al. 2021 (QuickNet / Larq Compute Engine), arXiv:2011.09398. Hubara et al.
    2016 (binarized networks, BinaryAlexNet), arXiv:1602.02830. Bethge et al. 2019
    (BinaryResNetE), arXiv:1906.08637. Bethge et al. 2020 (MeliusNet), arXiv:2001.05936.
    Martinez et al. 2020 (Real-to-Binary), arXiv:2003.11535. Selvaraju et al. 2019
    (Grad-CAM), arXiv:1610.02391. Adebayo et al. 2018 (sanity checks), arXiv:1810.03292.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import socket
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import data as data_mod

MODELS_ENV = "BNN_SALIENCY_MODELS"
MODES = ("twins", "imagenet")
TWIN_WEIGHTS_DIR = data_mod.PROJECT_ROOT / "data"  # tests monkeypatch this
TWIN_NAME_RE = re.compile(r"^(vgg|resnet)-(fp|binw|bina|bnn)-s(\d+)(-randlabels)?$")
TWIN_DEFAULT_WIDTH = 64
KINDS = ("imagenet-fp", "imagenet-bnn", "twin")

IMAGENET_MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)  # larq_zoo.training.data.MEAN_RGB
IMAGENET_STD_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)  # larq_zoo.training.data.STDDEV_RGB


class WeightsUnavailableError(FileNotFoundError):
    """Pretrained ImageNet weights are neither cached nor downloadable."""


# ------------------------------------------------------------------ weights files
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


# ------------------------------------------------------------------ build helpers
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


# ------------------------------------------------------------------ specs
_LAYER_CACHE: dict[tuple, list[str]] = {}


@dataclass(frozen=True)
class ModelSpec:
    """How to build and use one registered model.

    Attributes:
        name: registry name (``"VGG16"``, ``"vgg-bnn-s1"``, ...).
        kind: ``"imagenet-fp"``, ``"imagenet-bnn"`` or ``"twin"``.
        builder: ``builder(weights) -> keras.Model`` with logits output; ``weights`` is
            ``"imagenet"``/``None`` for ImageNet nets and ``"trained"``/``None`` for twins.
            Prefer :func:`load`/:func:`build` (float32 policy, stable layer names).
        input_size: (H, W) the model expects.
        preprocess: maps float images in ``input_range`` to the model input.
        gradcam_layer: name of the feature map Grad-CAM uses (see module docstring).
        input_range: value range of the images ``preprocess`` expects.
        family, variant, width: twin architecture (``None`` for ImageNet nets).
        reference: the architecture's paper.
    """

    name: str
    kind: str
    builder: Callable[[Any], Any]
    input_size: tuple[int, int]
    preprocess: Callable[[Any], Any]
    gradcam_layer: str
    input_range: tuple[float, float]
    family: str | None = None
    variant: str | None = None
    width: int | None = None
    reference: str = ""

    @property
    def weights_file(self) -> WeightsFile | None:
        """The pretrained ImageNet weights file (``None`` for twins)."""
        return WEIGHTS_FILES.get(self.name)

    @property
    def randomization_layers(self) -> list[str]:
        """Layers with weights, logits first down to the first layer (see
        :func:`randomization_layers_of`). Taken from the last build of this model, or from
        an untrained build made on first access."""
        key = (self.name, self.width)
        if key not in _LAYER_CACHE:
            _build_spec(self, None)  # fills the cache
        return list(_LAYER_CACHE[key])


_IMAGENET_TABLE = [
    # name, kind, builder, preprocess, gradcam layer, reference
    ("VGG16", "imagenet-fp", _keras_app_builder("VGG16"), _keras_preprocess("vgg16"),
     "block5_conv3", "Simonyan & Zisserman 2014, arXiv:1409.1556"),
    ("ResNet50", "imagenet-fp", _keras_app_builder("ResNet50"), _keras_preprocess("resnet50"),
     "conv5_block3_3_conv", "He et al. 2015, arXiv:1512.03385"),
    ("MobileNet", "imagenet-fp", _keras_app_builder("MobileNet"), _keras_preprocess("mobilenet"),
     "conv_pw_13", "Howard et al. 2017, arXiv:1704.04861"),
    ("MobileNetV2", "imagenet-fp", _keras_app_builder("MobileNetV2"),
     _keras_preprocess("mobilenet_v2"), "Conv_1", "Sandler et al. 2018, arXiv:1801.04381"),
    ("EfficientNetB0", "imagenet-fp", _keras_app_builder("EfficientNetB0"),
     _keras_preprocess("efficientnet"), "top_conv", "Tan & Le 2019, arXiv:1905.11946"),
    ("QuickNet", "imagenet-bnn", _larq_builder("sota", "QuickNet"), preprocess_larq_zoo,
     "quant_conv2d_20", "Bannink et al. 2021, arXiv:2011.09398"),
    ("BinaryAlexNet", "imagenet-bnn", _larq_builder("literature", "BinaryAlexNet"),
     preprocess_larq_zoo, "quant_conv2d_4", "Hubara et al. 2016, arXiv:1602.02830"),
    ("BinaryResNetE18", "imagenet-bnn", _larq_builder("literature", "BinaryResNetE18"),
     preprocess_larq_zoo, "quant_conv2d_15", "Bethge et al. 2019, arXiv:1906.08637"),
    ("MeliusNet22", "imagenet-bnn", _larq_builder("literature", "MeliusNet22"),
     preprocess_larq_zoo, "section_3_block_3_improve_binconv",
     "Bethge et al. 2020, arXiv:2001.05936"),
    ("RealToBinaryNet", "imagenet-bnn", _larq_builder("literature", "RealToBinaryNet"),
     preprocess_larq_zoo, "r2b_bnn_block_9b_conv2d", "Martinez et al. 2020, arXiv:2003.11535"),
]

IMAGENET_SPECS: dict[str, ModelSpec] = {
    name: ModelSpec(name=name, kind=kind, builder=builder, input_size=(224, 224),
                    preprocess=pre, gradcam_layer=layer, input_range=(0.0, 255.0), reference=ref)
    for name, kind, builder, pre, layer, ref in _IMAGENET_TABLE
}
IMAGENET_NAMES: tuple[str, ...] = tuple(IMAGENET_SPECS)


# ------------------------------------------------------------------ twins
def _twin_record_path(name: str) -> Path:
    return Path(TWIN_WEIGHTS_DIR) / f"{name}.json"


def _read_record(name: str) -> dict | None:
    path = _twin_record_path(name)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def _retrain_hint(name: str, record: dict | None) -> str:
    m = TWIN_NAME_RE.match(name)
    family, variant, seed, rand = m.groups()
    cmd = f"python -m bnn_saliency.train --model {family}-{variant} --seed {seed}"
    if rand:
        cmd += " --random-labels"
    if record:
        if record.get("epochs"):
            cmd += f" --epochs {record['epochs']}"
        if record.get("width", TWIN_DEFAULT_WIDTH) != TWIN_DEFAULT_WIDTH:
            cmd += f" --width {record['width']}"
    return cmd


def _twin_weights_path(name: str) -> Path:
    """Path of a twin's verified weights; clear errors if missing or corrupted."""
    record = _read_record(name)
    if record is None:
        raise FileNotFoundError(
            f"twin {name!r} has no provenance record {_twin_record_path(name)}. Fetch the "
            f"shipped weights (`git lfs pull`, or re-clone with git-lfs installed) or train it: "
            f"`{_retrain_hint(name, None)}`.")
    path = Path(TWIN_WEIGHTS_DIR) / record.get("weights_file", f"{name}.weights.h5")
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {path} for twin {name!r} is missing. Fetch it with `git lfs pull` "
            f"(or re-clone with git-lfs installed), or retrain: `{_retrain_hint(name, record)}`.")
    try:
        data_mod.verify_sha256(path, record["weights_sha256"])
    except data_mod.ChecksumError as err:
        with open(path, "rb") as fh:
            pointer = fh.read(40).startswith(b"version https://git-lfs")
        hint = (" It is a git-lfs pointer, not the weights: run `git lfs pull`." if pointer else
                f" Re-fetch it (`git lfs pull`) or retrain: `{_retrain_hint(name, record)}`.")
        raise data_mod.ChecksumError(f"twin {name!r}: {err}{hint}") from err
    return path


def _twin_spec(name: str) -> ModelSpec:
    from . import twins

    family, variant, _, _ = TWIN_NAME_RE.match(name).groups()
    record = _read_record(name)
    width = int(record.get("width", TWIN_DEFAULT_WIDTH)) if record else TWIN_DEFAULT_WIDTH
    if record and (record.get("family"), record.get("variant")) != (family, variant):
        raise ValueError(f"{_twin_record_path(name)} records {record.get('family')}-"
                         f"{record.get('variant')}, which does not match the name {name!r}")

    def builder(weights):
        if weights not in (None, "trained"):
            raise ValueError(f"twin {name}: weights must be 'trained' or None, got {weights!r}")
        path = _twin_weights_path(name) if weights == "trained" else None
        model = twins.build_twin(family, variant, width)
        if path is not None:
            model.load_weights(path)
        return model

    return ModelSpec(name=name, kind="twin", builder=builder, input_size=(32, 32),
                     preprocess=preprocess_identity, gradcam_layer=twins.gradcam_layer(family),
                     input_range=(0.0, 1.0), family=family, variant=variant, width=width,
                     reference="Courbariaux et al. 2016, arXiv:1602.02830 (vgg); "
                               "Liu et al. 2018, arXiv:1808.00278 (resnet)")


def _twin_sort_key(name: str):
    from . import twins

    family, variant, seed, rand = TWIN_NAME_RE.match(name).groups()
    return (twins.FAMILIES.index(family), bool(rand), twins.VARIANTS.index(variant), int(seed))


def available_twins() -> list[str]:
    """Twin names whose provenance record and weights file are in ``data/`` (not hash-checked;
    :func:`load` checks), ordered by family, labels, variant (fp, binw, bina, bnn), seed."""
    folder = Path(TWIN_WEIGHTS_DIR)
    names = []
    for path in folder.glob("*.json") if folder.is_dir() else []:
        name = path.stem
        if not TWIN_NAME_RE.match(name):
            continue
        try:
            record = json.loads(path.read_text())
        except ValueError:
            continue
        if (folder / record.get("weights_file", f"{name}.weights.h5")).is_file():
            names.append(name)
    return sorted(names, key=_twin_sort_key)


# ------------------------------------------------------------------ public API
def names() -> list[str]:
    """All names :func:`load` accepts with pretrained weights: ImageNet nets, shipped twins."""
    return list(IMAGENET_NAMES) + available_twins()


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a registered model.

    Raises:
        KeyError: unknown name (the message lists the valid ones).
    """
    if name in IMAGENET_SPECS:
        return IMAGENET_SPECS[name]
    if isinstance(name, str) and TWIN_NAME_RE.match(name):
        return _twin_spec(name)
    raise KeyError(
        f"unknown model {name!r}. ImageNet nets: {', '.join(IMAGENET_NAMES)}. Twins with shipped "
        f"weights: {', '.join(available_twins()) or 'none yet'}. Twin names follow "
        "<vgg|resnet>-<fp|binw|bina|bnn>-s<seed>[-randlabels].")


def _build_spec(spec: ModelSpec, weights, seed: int | None = None):
    from tensorflow import keras

    with _float32_policy(), _fresh_layer_names():
        if seed is not None:
            keras.utils.set_random_seed(seed)
        model = spec.builder(weights)
    _LAYER_CACHE[(spec.name, spec.width)] = randomization_layers_of(model)
    return model


_DEFAULT = "pretrained"


def load(name: str, weights: str | None = _DEFAULT, seed: int | None = None):
    """Build a registered model (float32, logits output) with its weights.

    Args:
        name: an ImageNet net (``"VGG16"``, ``"QuickNet"``, ...; see :data:`IMAGENET_NAMES`)
            or a twin (``"vgg-bnn-s0"``).
        weights: ``"pretrained"`` (default: ``"imagenet"`` for ImageNet nets, the shipped
            ``"trained"`` weights for twins), ``"imagenet"``, ``"trained"``, or ``None`` for
            the random initialisation.
        seed: if given, ``keras.utils.set_random_seed(seed)`` before building (makes
            ``weights=None`` builds reproducible).

    Raises:
        KeyError: unknown name.
        WeightsUnavailableError: ImageNet weights neither cached nor downloadable.
        FileNotFoundError: a twin's weights or provenance record is missing.
        bnn_saliency.data.ChecksumError: a twin's weights file does not match its sha256.
    """
    spec = get_spec(name)
    if weights == _DEFAULT:
        weights = "trained" if spec.kind == "twin" else "imagenet"
    return _build_spec(spec, weights, seed)


def build(name: str, weights: str | None = None, seed: int | None = None):
    """Build a registered model untrained (``weights=None``, the default); see :func:`load`."""
    return load(name, weights=weights, seed=seed)


def provenance(name: str) -> dict:
    """A twin's provenance record (``data/<name>.json``), or the weights source of an ImageNet net."""
    spec = get_spec(name)
    if spec.kind != "twin":
        wf = spec.weights_file
        return {"name": name, "kind": spec.kind, "reference": spec.reference,
                "weights_file": wf.file, "weights_url": wf.url, "file_hash": wf.file_hash,
                "cache_path": str(wf.cache_path())}
    record = _read_record(name)
    if record is None:
        raise FileNotFoundError(f"no provenance record {_twin_record_path(name)} for twin {name!r}; "
                                f"train it with `{_retrain_hint(name, None)}`.")
    return record


def randomization_layers_of(model) -> list[str]:
    """Names of the layers a randomization sanity check re-initialises, output to input.

    A layer is included if it has trainable weights or is a ``BatchNormalization`` layer
    (whose moving statistics :func:`randomize_layers` can reset). Excluded: layers without
    weights, and frozen layers with fixed, non-learned weights (QuickNet's blur-pool
    depthwise filters, EfficientNet's input ``Normalization``). Order: reversed topological
    order of ``model.layers`` (logits first). Call it on a freshly built (trainable) model.
    """
    from tensorflow import keras

    return [layer.name for layer in reversed(model.layers)
            if layer.weights and (layer.trainable_weights
                                  or isinstance(layer, keras.layers.BatchNormalization))]


# ------------------------------------------------------------------ randomization
def _weight_key(variable) -> str:
    return variable.name.split("/")[-1].split(":")[0]


def _layer_attr(layer, key: str, suffix: str):
    """The layer's ``<weight>_initializer`` / ``<weight>_constraint`` attribute."""
    for attr in (f"{key}_{suffix}", f"{key.replace('_kernel', '')}_{suffix}"):
        if hasattr(layer, attr):
            return getattr(layer, attr)
    return None


def _seeded(initializer, seed: int):
    """A copy of a Keras initializer with ``seed`` (unseeded ones are returned unchanged)."""
    get_config = getattr(initializer, "get_config", None)
    if get_config is None:
        return initializer  # a plain function, e.g. QuickNet's blurpool_initializer
    config = get_config()
    if "seed" in config:
        config = {**config, "seed": seed}
    return type(initializer).from_config(config)


def _weight_seed(seed: int, layer_name: str, key: str) -> int:
    """A per-(seed, layer, weight) seed, so cascading and independent runs draw alike."""
    return int(np.random.SeedSequence([seed, zlib.crc32(f"{layer_name}/{key}".encode())])
               .generate_state(1)[0] % (2**31 - 1))


def randomize_layers(model, layer_names: Sequence[str], seed: int = 0,
                     reset_batchnorm: bool = False):
    """A copy of ``model`` whose named layers are re-initialised from their own initializers.

    The copy is ``keras.models.clone_model`` plus the original weights; ``model`` is not
    changed. For each named layer, every weight is re-drawn from the initializer the layer
    was built with (``kernel_initializer``, ``bias_initializer``, ``depthwise_initializer``,
    ``alpha_initializer``, ...), seeded with a seed derived from (``seed``, layer name,
    weight name): the same layer gets the same draw in cascading and independent
    randomization. If the layer has a constraint for that weight (larq's ``weight_clip`` on
    a ``QuantConv2D`` latent kernel), it is applied to the draw; quantizers act in the
    forward pass as usual, so a binarized layer computes with ``sign`` of the new latent
    kernel.

    ``BatchNormalization`` layers are left unchanged unless ``reset_batchnorm=True``; then
    all four variables are reset from their initializers: gamma = 1, beta = 0, moving mean
    = 0, moving variance = 1 (Keras defaults; larq-zoo uses them too).

    Args:
        model: a Keras model.
        layer_names: layers to re-initialise (e.g. ``spec.randomization_layers[:k]`` for
            cascading, ``[name]`` for independent randomization).
        seed: base seed (default 0).
        reset_batchnorm: also reset BatchNormalization layers (default False).

    Returns:
        The randomized copy.

    Raises:
        KeyError: a layer name is not in the model.
        ValueError: a weight of a named layer has no initializer to draw from.

    References:
        Adebayo et al. 2018, "Sanity Checks for Saliency Maps", arXiv:1810.03292.
    """
    import tensorflow as tf
    from tensorflow import keras

    names_in_model = {layer.name for layer in model.layers}
    missing = [n for n in layer_names if n not in names_in_model]
    if missing:
        raise KeyError(f"layers {missing} are not in model {model.name!r}; use names from "
                       "spec.randomization_layers or randomization_layers_of(model)")
    with _fresh_layer_names():
        clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    for name in layer_names:
        layer = clone.get_layer(name)
        if isinstance(layer, keras.layers.BatchNormalization) and not reset_batchnorm:
            continue
        for variable in layer.weights:
            key = _weight_key(variable)
            initializer = _layer_attr(layer, key, "initializer")
            if initializer is None:
                raise ValueError(f"layer {name!r} ({type(layer).__name__}): weight {key!r} has no "
                                 "initializer to re-draw from; leave this layer out")
            value = _seeded(initializer, _weight_seed(seed, name, key))(
                shape=tuple(variable.shape), dtype=variable.dtype)
            constraint = _layer_attr(layer, key, "constraint")
            if constraint is not None:
                value = constraint(tf.convert_to_tensor(value))
            variable.assign(tf.cast(value, variable.dtype))
    return clone


# ------------------------------------------------------------------ chapter settings
def models_mode() -> str:
    """``BNN_SALIENCY_MODELS``: ``"twins"`` (default) or ``"imagenet"``."""
    mode = os.environ.get(MODELS_ENV, "twins").strip().lower() or "twins"
    if mode not in MODES:
        raise ValueError(f"{MODELS_ENV}={mode!r}; set it to 'twins' or 'imagenet'")
    return mode


def chapter_models(mode: str | None = None, include_randlabels: bool = False) -> list[str]:
    """The model names a chapter loops over.

    Args:
        mode: ``"twins"`` (the shipped twins, see :func:`available_twins`) or
            ``"imagenet"`` (the ten ImageNet nets); default :func:`models_mode`.
        include_randlabels: keep the random-label twins (default False: they serve the
            data randomization test only).
    """
    mode = models_mode() if mode is None else mode
    if mode == "imagenet":
        return list(IMAGENET_NAMES)
    if mode == "twins":
        return [n for n in available_twins() if include_randlabels or "-randlabels" not in n]
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


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


def resolve_mode(mode: str | None = None, timeout: float = 2.0) -> tuple[str, str | None]:
    """The mode a chapter should use, and a one-line note if it had to fall back.

    ``"imagenet"`` falls back to ``"twins"`` when :func:`imagenet_available` is False.
    """
    mode = models_mode() if mode is None else mode
    if mode == "imagenet" and not imagenet_available(timeout):
        return "twins", "ImageNet weights unavailable offline; using the twins."
    return mode, None
