"""What a chapter loops over: models, images and the pairs it compares, for either mode.

``twins`` (default): the shipped CIFAR-10 twins on CIFAR-10 test images; the pairs are FP vs
BNN of the same seed, seed-vs-seed baselines and the ablations. ``imagenet``: the paper's ten
networks (wrapped so that every model takes raw RGB in [0, 255] and gradients are w.r.t. the
same pixels) on the ImageNet sample images; the pairs are every FP x BNN combination, with
FP x FP and BNN x BNN pairs as the baseline (no seeds there).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import data, models

KIND_LABELS = {"fp": "FP", "bnn": "BNN", "binw": "binary weights", "bina": "binary activations",
               "imagenet-fp": "FP", "imagenet-bnn": "BNN"}


def kind_of(name: str) -> str:
    """``"FP"``, ``"BNN"``, ``"binary weights"`` or ``"binary activations"`` for a registered
    model name (twins by variant, ImageNet nets by kind)."""

    spec = models.get_spec(name)
    return KIND_LABELS[spec.variant if spec.kind == "twin" else spec.kind]


def stratified_subset(labels, n: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of ``n`` items with (as nearly as possible) equal counts per class.

    Each class contributes ``n // n_classes`` items drawn without replacement with
    ``np.random.default_rng(seed)`` (classes with fewer items give all of theirs); the
    remainder is drawn at random from the items not yet chosen. Use it instead of "the first
    n images" when the images are ordered by class (the CIFAR-10 mirror's test set is).

    Returns:
        int array of ``min(n, len(labels))`` sorted positions into ``labels``.
    """
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {y.shape}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    n = min(int(n), len(y))
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per = n // len(classes)
    chosen = [rng.choice(np.flatnonzero(y == c), min(per, int(np.sum(y == c))), replace=False)
              for c in classes] if per else []
    chosen = np.concatenate(chosen).astype(int) if len(chosen) else np.empty(0, int)
    rest = np.setdiff1d(np.arange(len(y)), chosen)
    extra = rng.choice(rest, n - len(chosen), replace=False) if n > len(chosen) else []
    return np.sort(np.concatenate([chosen, np.asarray(extra, dtype=int)]))


def pct(v: float) -> str:
    """A fraction as a percentage in the shortest form (``0.06 -> "6%"``)."""
    return f"{100 * v:g}%"


def pct_ci(ci) -> str:
    """``"point [low, high]"`` of a (point, low, high) triple of fractions, as percentages."""
    return f"{pct(ci[0])} [{pct(ci[1])}, {pct(ci[2])}]"


@dataclass
class Study:
    mode: str
    note: str | None
    models: dict            # name -> keras model taking images in ``value_range``
    images: np.ndarray      # (N, H, W, 3) in value_range
    labels: np.ndarray      # (N,)
    class_names: list[str]
    value_range: tuple[float, float]
    pairs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    panel: np.ndarray | None = None  # indices of the figure panel within images
    gradcam_layers: dict[str, str] = field(default_factory=dict)
    stats_idx: np.ndarray | None = None  # indices of the images used for statistics

    def baseline_pairs(self) -> list[tuple[str, str]]:
        """Pairs that differ by retraining only (twins: seeds) or, on ImageNet, same-kind pairs."""
        if "seed baseline" in self.pairs:
            return self.pairs["seed baseline"]
        return self.pairs.get("FP vs FP", []) + self.pairs.get("BNN vs BNN", [])

    def display_images(self) -> np.ndarray:
        lo, hi = self.value_range
        return (self.images - lo) / (hi - lo)


TWIN_PAIRS = {
    "FP vs BNN": [("vgg-fp-s0", "vgg-bnn-s0"), ("vgg-fp-s1", "vgg-bnn-s1")],
    "seed baseline": [("vgg-fp-s0", "vgg-fp-s1"), ("vgg-bnn-s0", "vgg-bnn-s1")],
    "ablation": [("vgg-fp-s0", "vgg-binw-s0"), ("vgg-fp-s0", "vgg-bina-s0"),
                 ("vgg-bnn-s0", "vgg-binw-s0"), ("vgg-bnn-s0", "vgg-bina-s0")],
    "ResNet FP vs BNN": [("resnet-fp-s0", "resnet-bnn-s0")],
    "edge baseline": [("vgg-fp-s0", "edge"), ("vgg-bnn-s0", "edge"),
                      ("resnet-fp-s0", "edge"), ("resnet-bnn-s0", "edge")],
}


def _preprocess_layer_class():
    from tensorflow import keras

    class RawPreprocess(keras.layers.Layer):
        """The registered preprocessing of model ``model_name`` as a Keras layer (no weights)."""

        def __init__(self, model_name: str, **kwargs):
            super().__init__(**kwargs)
            self.model_name = model_name

        def call(self, x):
            return models.get_spec(self.model_name).preprocess(x)

        def get_config(self):
            return {**super().get_config(), "model_name": self.model_name}

    return RawPreprocess


def _with_preprocessing(spec: models.ModelSpec, net):
    """``net`` behind its preprocessing, as one *flat* functional model taking raw RGB.

    The preprocessing becomes a layer (``raw_preprocess``) right after the input, and the
    network's own layers (same names, same weights) follow in the same graph, so that
    ``model.get_layer(spec.gradcam_layer)`` works (Grad-CAM, randomization); a nested
    ``keras.Model(inp, net(preprocess(inp)))`` would hide them inside one layer. Outputs and
    gradients are those of the nested form.
    """
    import copy

    from tensorflow import keras

    cfg = copy.deepcopy(net.get_config())
    if len(cfg.get("input_layers", [])) != 1:
        raise ValueError(f"{spec.name}: expected a functional model with one input")
    old_input = cfg["input_layers"][0][0]

    def rewire(obj):  # inbound references to the old input now point at the preprocessing
        if isinstance(obj, list):
            if len(obj) >= 3 and obj[0] == old_input and isinstance(obj[1], int):
                return ["raw_preprocess"] + obj[1:]
            return [rewire(o) for o in obj]
        if isinstance(obj, dict):
            return {k: rewire(v) for k, v in obj.items()}
        return obj

    layers = []
    for layer in cfg["layers"]:
        if layer["class_name"] == "Lambda":  # rebuilt by SameLambda below
            layer = {k: v for k, v in layer.items() if k not in ("module", "registered_name")}
            layer["class_name"] = "SameLambda"
        if layer["name"] != old_input:
            layers.append({**layer, "inbound_nodes": rewire(layer["inbound_nodes"])})
            continue
        h, w = spec.input_size
        layers.append({**layer, "name": "raw_rgb",
                       "config": {**layer["config"], "name": "raw_rgb",
                                  "batch_input_shape": [None, h, w, 3]}})
        layers.append({"class_name": "RawPreprocess", "name": "raw_preprocess",
                       "config": {"name": "raw_preprocess", "trainable": False,
                                  "model_name": spec.name},
                       "inbound_nodes": [[["raw_rgb", 0, 0, {}]]]})
    cfg.update(layers=layers, name=f"{spec.name}_raw", input_layers=[["raw_rgb", 0, 0]])
    lambdas = {lay.name: lay for lay in net.layers if isinstance(lay, keras.layers.Lambda)}

    class SameLambda(keras.layers.Lambda):
        """Rebuild a Lambda layer (larq-zoo wraps TF ops in some) around the original
        in-memory function: its closure does not survive a config round trip."""

        @classmethod
        def from_config(cls, config, custom_objects=None):
            orig = lambdas[config["name"]]
            return keras.layers.Lambda(orig.function, output_shape=orig._output_shape,
                                       mask=orig.mask, arguments=orig.arguments,
                                       name=config["name"])

    custom = {"RawPreprocess": _preprocess_layer_class(), "SameLambda": SameLambda}
    with keras.utils.custom_object_scope(custom):
        flat = keras.Model.from_config(cfg, custom_objects=custom)
    flat.set_weights(net.get_weights())
    return flat


def twin_study(n_images: int, seed: int = 0, note: str | None = None) -> Study:
    """The shipped twins on the class panel (first 10 images) plus a seeded test subset.

    Pairs whose twins are not shipped are left out; FP vs BNN (seed 0) is required.
    """
    cifar = data.load_cifar10()
    shipped = set(models.chapter_models("twins")) | {"edge"}
    pairs = {group: [p for p in group_pairs if set(p) <= shipped]
             for group, group_pairs in TWIN_PAIRS.items()}
    pairs = {group: p for group, p in pairs.items() if p}
    if "FP vs BNN" not in pairs:
        raise FileNotFoundError("the twins vgg-fp-s0 and vgg-bnn-s0 are not shipped in data/: "
                                "run scripts/train_all.sh")
    needed = {n for group_pairs in pairs.values() for p in group_pairs for n in p} - {"edge"}
    nets = {n: models.load(n) for n in sorted(needed, key=_twin_order)}
    idx = np.concatenate([data.cifar10_panel(cifar, seed), data.cifar10_subset(cifar, n_images, seed)])
    return Study("twins", note, nets, data.to_float(cifar.x_test[idx]), cifar.y_test[idx],
                 list(data.CIFAR10_CLASSES), (0.0, 1.0), pairs, np.arange(10),
                 {n: models.get_spec(n).gradcam_layer for n in nets},
                 np.arange(10, len(idx)))


def imagenet_study(n_images: int, weights="imagenet", note: str | None = None,
                   names: list[str] | None = None) -> Study:
    """The paper's ten networks on ImageNet sample images (224x224, raw RGB in [0, 255])."""
    names = names or list(models.IMAGENET_NAMES)
    samples = data.imagenet_samples()[:n_images]
    loaded = [data.load_imagenet_sample(s.index, size=224) for s in samples]
    images = np.stack([im for im, _ in loaded])
    labels = np.array([i for _, i in loaded])
    nets, layers = {}, {}
    for n in names:
        spec = models.get_spec(n)
        nets[n] = _with_preprocessing(spec, models.load(n, weights=weights, seed=0))
        layers[n] = spec.gradcam_layer
    fp = [n for n in names if models.get_spec(n).kind == "imagenet-fp"]
    bnn = [n for n in names if models.get_spec(n).kind == "imagenet-bnn"]
    pairs = {
        "FP vs BNN": [(a, b) for a in fp for b in bnn],
        "FP vs FP": [(a, b) for i, a in enumerate(fp) for b in fp[i + 1:]],
        "BNN vs BNN": [(a, b) for i, a in enumerate(bnn) for b in bnn[i + 1:]],
        "edge baseline": [(n, "edge") for n in names],
    }
    class_names = {s.index: s.name for s in data.imagenet_samples()}
    return Study("imagenet", note, nets, images, labels,
                 [class_names.get(i, str(i)) for i in range(1000)], (0.0, 255.0), pairs,
                 np.arange(min(5, len(images))), layers, np.arange(len(images)))


def load_study(n_images: int, seed: int = 0, mode: str | None = None) -> Study:
    """The study for the configured mode (``BNN_SALIENCY_MODELS``), falling back to the twins
    with a one-line note when ImageNet weights cannot be obtained."""
    mode, note = models.resolve_mode(mode)
    if mode == "imagenet":
        return imagenet_study(n_images, note=note)
    return twin_study(n_images, seed, note=note)


def _twin_order(name: str) -> tuple:
    family, variant = name.split("-")[:2]
    return (family != "vgg", ["fp", "binw", "bina", "bnn"].index(variant), name)
