"""The model registry: specs for the ten ImageNet networks and the CIFAR-10 twins; load,
build, provenance, and the models mode (twins or imagenet)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .. import data as data_mod
from .imagenet import (
    MODELS_ENV,
    WEIGHTS_FILES,
    WeightsFile,
    _float32_policy,
    _fresh_layer_names,
    _keras_app_builder,
    _keras_preprocess,
    _larq_builder,
    imagenet_available,
    preprocess_identity,
    preprocess_larq_zoo,
)
from .randomize import randomization_layers_of
from .twins import FAMILIES, VARIANTS, build_twin, gradcam_layer


MODES = ("twins", "imagenet")


TWIN_WEIGHTS_DIR = data_mod.PROJECT_ROOT / "data"  # tests monkeypatch this


#: ``[suite:]<family>-<variant>-s<seed>[-randlabels | -truelabels][-at-bnn-acc | -narrow]``. The
#: suite prefix picks the folder: ``v1:`` (or none) is ``data/``, ``v2:`` is the twins-v2 suite
#: ``data/v2/`` (the chapters move to it one by one). ``-randlabels`` twins learn a training
#: subset with shuffled labels; ``-truelabels`` twins the same subset with the identical recipe
#: and the true labels (their control). ``-at-bnn-acc`` and ``-narrow`` are accuracy-matched FP
#: controls (a checkpoint of the FP twin, a narrower FP network).
TWIN_NAME_RE = re.compile(r"^(?:(v1|v2):)?(vgg|resnet)-(fp|binw|bina|bnn)-s(\d+)"
                          r"(-randlabels|-truelabels)?"
                          r"(-at-bnn-acc|-narrow)?$")
SUITE_DIRS = {"v1": "", "v2": "v2"}  # suite -> folder under TWIN_WEIGHTS_DIR


TWIN_DEFAULT_WIDTH = 64


KINDS = ("imagenet-fp", "imagenet-bnn", "twin")


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


def _parse_twin(name: str):
    """``(suite, family, variant, seed, labels, control)`` of a twin name (None if not one);
    ``labels`` is ``""``, ``"-randlabels"`` or ``"-truelabels"``."""
    m = TWIN_NAME_RE.match(name) if isinstance(name, str) else None
    if m is None:
        return None
    suite, family, variant, seed, labels, control = m.groups()
    return suite or "v1", family, variant, int(seed), labels or "", control or ""


def _twin_dir(name: str) -> Path:
    return Path(TWIN_WEIGHTS_DIR) / SUITE_DIRS[_parse_twin(name)[0]]


def _file_stem(name: str) -> str:
    return name.split(":", 1)[-1]


def _twin_record_path(name: str) -> Path:
    return _twin_dir(name) / f"{_file_stem(name)}.json"


def _read_record(name: str) -> dict | None:
    path = _twin_record_path(name)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def _retrain_hint(name: str, record: dict | None) -> str:
    suite, family, variant, seed, rand, control = _parse_twin(name)
    if suite == "v2":
        return f"ONLY={_file_stem(name)} bash scripts/train_v2.sh"
    cmd = f"python -m bnn_saliency.models.training --model {family}-{variant} --seed {seed}"
    if rand == "-randlabels":
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
    path = _twin_dir(name) / record.get("weights_file", f"{_file_stem(name)}.weights.h5")
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

    _, family, variant, _, _, _ = _parse_twin(name)
    record = _read_record(name)
    width = int(record.get("width", TWIN_DEFAULT_WIDTH)) if record else TWIN_DEFAULT_WIDTH
    if record and (record.get("family"), record.get("variant")) != (family, variant):
        raise ValueError(f"{_twin_record_path(name)} records {record.get('family')}-"
                         f"{record.get('variant')}, which does not match the name {name!r}")

    def builder(weights):
        if weights not in (None, "trained"):
            raise ValueError(f"twin {name}: weights must be 'trained' or None, got {weights!r}")
        path = _twin_weights_path(name) if weights == "trained" else None
        model = build_twin(family, variant, width)
        if path is not None:
            model.load_weights(path)
        return model

    return ModelSpec(name=name, kind="twin", builder=builder, input_size=(32, 32),
                     preprocess=preprocess_identity, gradcam_layer=gradcam_layer(family),
                     input_range=(0.0, 1.0), family=family, variant=variant, width=width,
                     reference="Courbariaux et al. 2016, arXiv:1602.02830 (vgg); "
                               "Liu et al. 2018, arXiv:1808.00278 (resnet)")


def _twin_sort_key(name: str):

    suite, family, variant, seed, rand, control = _parse_twin(name)
    return (suite, FAMILIES.index(family), rand, VARIANTS.index(variant), seed, control)


def available_twins(suite: str = "v1") -> list[str]:
    """Twin names whose provenance record and weights file are in the suite's folder
    (``data/`` for ``"v1"``, bare names; ``data/v2/`` for ``"v2"``, names prefixed ``v2:``), not
    hash-checked (:func:`load` checks), ordered by family, labels, variant (fp, binw, bina,
    bnn), seed, control."""
    if suite not in SUITE_DIRS:
        raise ValueError(f"suite must be one of {sorted(SUITE_DIRS)}, got {suite!r}")
    folder = Path(TWIN_WEIGHTS_DIR) / SUITE_DIRS[suite]
    prefix = "" if suite == "v1" else f"{suite}:"
    names = []
    for path in folder.glob("*.json") if folder.is_dir() else []:
        name = prefix + path.stem
        if not TWIN_NAME_RE.match(name):
            continue
        try:
            record = json.loads(path.read_text())
        except ValueError:
            continue
        if (folder / record.get("weights_file", f"{path.stem}.weights.h5")).is_file():
            names.append(name)
    return sorted(names, key=_twin_sort_key)


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
    if _parse_twin(name):
        return _twin_spec(name)
    raise KeyError(
        f"unknown model {name!r}. ImageNet nets: {', '.join(IMAGENET_NAMES)}. Twins with shipped "
        f"weights: {', '.join(available_twins() + available_twins('v2')) or 'none yet'}. Twin "
        "names follow [v2:]<vgg|resnet>-<fp|binw|bina|bnn>-s<seed>[-randlabels|-truelabels]"
        "[-at-bnn-acc|-narrow].")


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
        include_randlabels: keep the random-label twins and their true-label controls
            (default False: they serve the data randomization test only).
    """
    mode = models_mode() if mode is None else mode
    if mode == "imagenet":
        return list(IMAGENET_NAMES)
    if mode == "twins":
        return [n for n in available_twins() if include_randlabels or not _parse_twin(n)[4]]
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def resolve_mode(mode: str | None = None, timeout: float = 2.0) -> tuple[str, str | None]:
    """The mode a chapter should use, and a one-line note if it had to fall back.

    ``"imagenet"`` falls back to ``"twins"`` when :func:`imagenet_available` is False.
    """
    mode = models_mode() if mode is None else mode
    if mode == "imagenet" and not imagenet_available(timeout):
        return "twins", "ImageNet weights unavailable offline; using the twins."
    return mode, None
