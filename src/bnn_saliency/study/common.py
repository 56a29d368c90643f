"""What a chapter loops over: models, images and the pairs it compares, for either mode.

``twins`` (default): the shipped CIFAR-10 twins on CIFAR-10 test images; the pairs are FP vs
BNN of the same seed, seed-vs-seed baselines and the ablations. ``imagenet``: the paper's ten
networks (wrapped so that every model takes raw RGB in [0, 255] and gradients are w.r.t. the
same pixels) on the ImageNet sample images; the pairs are every FP x BNN combination, with
FP x FP and BNN x BNN pairs as the baseline (no seeds there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .. import data, models, stats

KIND_LABELS = {"fp": "FP", "bnn": "BNN", "binw": "binary weights", "bina": "binary activations",
               "imagenet-fp": "FP", "imagenet-bnn": "BNN"}


def kind_of(name: str) -> str:
    """``"FP"``, ``"BNN"``, ``"binary weights"`` or ``"binary activations"`` for a registered
    model name (twins by variant, ImageNet nets by kind)."""

    spec = models.get_spec(name)
    return KIND_LABELS[spec.variant if spec.kind == "twin" else spec.kind]


def kinds_of(names, suite: "Suite") -> dict[str, str]:
    """Name -> :func:`kind_of`, with ``"FP control"`` for the suite's accuracy-matched FP
    controls (which :func:`kind_of` calls FP)."""
    controls = set(suite.names(("control",)))
    return {n: "FP control" if n in controls else kind_of(n) for n in names}


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


#: v1-suite pairs the chapters keep where v2 trains no counterpart: the VGG seed baseline, the
#: ResNet family (one seed) and the ablations (binary weights only / activations only).
V1_SEED_PAIRS = [("v1:vgg-fp-s0", "v1:vgg-fp-s1"), ("v1:vgg-bnn-s0", "v1:vgg-bnn-s1")]
V1_RESNET = [("v1:resnet-fp-s0", "v1:resnet-bnn-s0")]
V1_ABLATIONS = [(a, b) for a in ("v1:vgg-fp-s0", "v1:vgg-bnn-s0")
                for b in ("v1:vgg-binw-s0", "v1:vgg-bina-s0")]


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


def twin_study(n_images: int, seed: int = 0, note: str | None = None,
               pairs: dict[str, list[tuple[str, str]]] | None = None) -> Study:
    """The shipped twins on the class panel (first 10 images) plus a seeded test subset.

    ``pairs`` (default :data:`TWIN_PAIRS`, the v1 twins) name the models to load. Pairs whose
    twins are not shipped are left out; the first group is required.
    """
    cifar = data.load_cifar10()
    wanted = TWIN_PAIRS if pairs is None else pairs
    shipped = set(models.chapter_models("twins")) | set(models.available_twins("v2")) | {"edge"}
    shipped |= {f"v1:{n}" for n in models.chapter_models("twins")}
    first = next(iter(wanted))
    pairs = {group: [p for p in group_pairs if set(p) <= shipped]
             for group, group_pairs in wanted.items()}
    pairs = {group: p for group, p in pairs.items() if p}
    if first not in pairs:
        raise FileNotFoundError(f"none of the {first} pairs {wanted[first]} is shipped in data/: "
                                "train the twins (scripts/train_all.sh, scripts/train_v2.sh)")
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


def suite_study(n_images: int, pairs, seed: int = 0, mode: str | None = None):
    """``(study, suite)`` of a chapter on the twins-v2 suite, whose pairs ``pairs(suite)``
    names, or (``BNN_SALIENCY_MODELS=imagenet``) on the paper's ten networks with all their
    pairs, falling back to the twins with a one-line note when ImageNet weights cannot be
    obtained."""
    mode, note = models.resolve_mode(mode)
    if mode == "imagenet":
        study = imagenet_study(n_images, note=note)
        return study, Suite.imagenet(list(study.models))
    suite = Suite.shipped()
    return twin_study(n_images, seed, note=note, pairs=pairs(suite)), suite


def _twin_order(name: str) -> tuple:
    suite, _, bare = name.rpartition(":")
    family, variant = bare.split("-")[:2]
    return (suite == "v1", family != "vgg", ["fp", "binw", "bina", "bnn"].index(variant),
            "at-bnn-acc" in bare, name)


def ci_text(result, digits: int = 3, scale: float = 1.0, suffix: str = "") -> str:
    """A statistic of :meth:`Suite.bootstrap` for the prose: ``"value [low, high]"`` from its
    ``(CI, replicates)``, or the reason it cannot be formed."""
    from ..verdicts import format_ci

    return result if isinstance(result, str) else format_ci(result[0], digits, scale, suffix)


class PairScores:
    """Per-image scores of model pairs from a long table (columns metric, pair ``"a vs b"``,
    image, score; :func:`bnn_saliency.evaluation.pairwise_similarity`), looked up by the two
    model names in either order."""

    def __init__(self, table, metric: str):
        sel = table[table["metric"] == metric]
        if sel.empty:
            raise KeyError(f"no {metric!r} scores in the table (has {sorted(set(table['metric']))})")
        wide = sel.pivot(index="image", columns="pair", values="score")
        self.metric = metric
        self._by_pair = {tuple(label.split(" vs ")): wide[label].to_numpy() for label in wide}

    def __call__(self, a: str, b: str) -> np.ndarray:
        if (a, b) in self._by_pair:
            return self._by_pair[(a, b)]
        if (b, a) in self._by_pair:
            return self._by_pair[(b, a)]
        raise KeyError(f"no {self.metric!r} scores for the pair {a} vs {b}")

    def mean(self, pairs) -> np.ndarray | None:
        """Per image, the mean score over ``pairs``, leaving out pairs whose score is undefined
        there (NaN, e.g. the rank correlation with a constant map); NaN where none is
        defined, None if there are no pairs."""
        pairs = list(pairs)
        if not pairs:
            return None
        scores = np.array([self(a, b) for a, b in pairs], dtype=np.float64)
        defined = np.isfinite(scores)
        total = np.where(defined, scores, 0.0).sum(axis=0)
        count = defined.sum(axis=0)
        return np.divide(total, count, out=np.full(count.shape, np.nan), where=count > 0)


@dataclass(frozen=True)
class Suite:
    """The models of each kind an FP-vs-BNN statistic is drawn from, by label.

    Twins (:meth:`shipped`, the twins-v2 VGG suite in ``data/v2/``): kinds ``fp``, ``bnn`` and
    ``control`` (the FP twin's checkpoint at the accuracy of the BNN of the same seed), each
    labelled by its training seed. The labels are shared across kinds, so FP-vs-BNN contrasts
    use cross-seed pairs (seed i vs seed j, i != j): both sides then differ in initialization
    and data order. ImageNet (:meth:`imagenet`): the paper's five FP and five BNN networks,
    labelled by position; no label is shared, so every FP x BNN pair is a cross pair and the
    "seed" term is the same-kind pairs across architectures. Every statistic is a function of
    the drawn labels (:func:`bnn_saliency.stats.seeds_images_replicates`).
    """

    members: dict[str, dict[int, str]]  # kind -> {label: model name}
    shared_labels: bool = True

    TWIN_NAMES = {"fp": "v2:vgg-fp-s{}", "bnn": "v2:vgg-bnn-s{}",
                  "control": "v2:vgg-fp-s{}-at-bnn-acc"}

    @classmethod
    def shipped(cls) -> "Suite":
        available = set(models.available_twins("v2"))
        members = {kind: {s: pattern.format(s) for s in range(10)
                          if pattern.format(s) in available}
                   for kind, pattern in cls.TWIN_NAMES.items()}
        if not members["fp"] or not members["bnn"]:
            raise FileNotFoundError("the twins-v2 suite needs an FP and a BNN twin in data/v2/ "
                                    "(v2:vgg-fp-s<seed>, v2:vgg-bnn-s<seed>): run "
                                    "scripts/train_v2.sh")
        return cls(members)

    @classmethod
    def imagenet(cls, names) -> "Suite":
        kinds = {"fp": [n for n in names if models.get_spec(n).kind == "imagenet-fp"],
                 "bnn": [n for n in names if models.get_spec(n).kind == "imagenet-bnn"],
                 "control": []}
        return cls({k: dict(enumerate(v)) for k, v in kinds.items()}, shared_labels=False)

    @property
    def seeds(self) -> dict[str, tuple[int, ...]]:
        return {kind: tuple(m) for kind, m in self.members.items()}

    def name(self, kind: str, label: int) -> str:
        return self.members[kind][label]

    def names(self, kinds=("fp", "bnn", "control")) -> list[str]:
        return [n for k in kinds for n in self.members[k].values()]

    def cross_pairs(self, a: str = "fp", b: str = "bnn", drawn=None) -> list[tuple[str, str]]:
        drawn = drawn or self.seeds
        labels = (stats.cross_pairs(drawn[a], drawn[b]) if self.shared_labels
                  else [(i, j) for i in drawn[a] for j in drawn[b]])
        return [(self.name(a, i), self.name(b, j)) for i, j in labels]

    def cross_difference(self, values: dict[str, np.ndarray], a: str = "fp", b: str = "bnn"):
        """``per_image(drawn)`` (:meth:`bootstrap`): per image, the mean over the cross-seed
        pairs (a-s_i, b-s_j) of ``values[a-s_i] - values[b-s_j]``; None without a cross pair."""
        def per_image(drawn):
            pairs = self.cross_pairs(a, b, drawn)
            return np.mean([values[x] - values[y] for x, y in pairs], axis=0) if pairs else None
        return per_image

    def seed_bound(self, per_model: dict[str, np.ndarray], kinds=("fp", "bnn")) -> float:
        """The registry's seed bound: the largest absolute end of the paired-bootstrap 95%
        intervals (over images) of ``per_model[s_i] - per_model[s_j]`` over the same-kind seed
        pairs of ``kinds``; 0 without seed pairs."""
        ends = []
        for kind in kinds:
            for x, y in self.seed_pairs(kind):
                ci = stats.paired_bootstrap_diff(per_model[x], per_model[y])
                ends += [abs(ci.low), abs(ci.high)]
        return max(ends) if ends else 0.0

    def same_seed_pairs(self, a: str = "fp", b: str = "bnn") -> list[tuple[str, str]]:
        if not self.shared_labels:
            return []
        return [(self.name(a, s), self.name(b, s)) for s in self.members[a]
                if s in self.members[b]]

    def seed_pairs(self, kind: str, drawn=None) -> list[tuple[str, str]]:
        drawn = drawn or self.seeds
        return [(self.name(kind, i), self.name(kind, j))
                for i, j in stats.within_pairs(drawn[kind])]

    def seed_gap(self, scores: PairScores, a: str = "fp"):
        """``per_image(drawn)``: the mean score of the seed pairs (kind ``a`` and BNN) minus
        that of the cross-seed pairs ``a``-s_i vs BNN-s_j; None if either is empty."""
        def per_image(drawn):
            seed = self.seed_pairs(a, drawn) + self.seed_pairs("bnn", drawn)
            cross = self.cross_pairs(a, "bnn", drawn)
            if not seed or not cross:
                return None
            return scores.mean(seed) - scores.mean(cross)
        return per_image

    def cross_margin(self, scores: PairScores, reference, a: str = "fp"):
        """``per_image(drawn)``: the mean score of the cross-seed pairs minus the mean of
        ``reference(name)`` (a per-image array) over the drawn models of kinds ``a`` and BNN."""
        def per_image(drawn):
            cross = self.cross_pairs(a, "bnn", drawn)
            if not cross:
                return None
            names = [self.name(k, s) for k in (a, "bnn") for s in drawn[k]]
            return scores.mean(cross) - np.mean([reference(n) for n in names], axis=0)
        return per_image

    def pair_groups(self) -> dict[str, list[tuple[str, str]]]:
        """The suite's groups of model pairs, cross-seed FP vs BNN first: the same-seed pairs
        (a secondary view), the seed baseline, the accuracy-matched controls against the BNNs
        and the controls' own seed pairs."""
        return {
            "FP vs BNN (cross-seed)": self.cross_pairs("fp", "bnn"),
            "FP vs BNN (same seed)": self.same_seed_pairs("fp", "bnn"),
            "seed baseline": self.seed_pairs("fp") + self.seed_pairs("bnn"),
            "control vs BNN (cross-seed)": self.cross_pairs("control", "bnn"),
            "control seed baseline": self.seed_pairs("control"),
        }

    def bootstrap(self, per_image, n_images: int, a: str = "fp", seed: int = 0,
                  kinds: Sequence[str] | None = None):
        """``(CI, replicates)`` of the mean over images of ``per_image(drawn)``, over seeds of
        ``kinds`` (default ``a`` and BNN), then images; a string saying why instead, when the
        shipped seeds cannot form it."""
        return self._bootstrap(stats.seeds_images_replicates, per_image, n_images,
                               kinds or (a, "bnn"), seed)

    def bootstrap_statistic(self, prepare, n_images: int, kinds: Sequence[str] = ("fp", "bnn"),
                            seed: int = 0):
        """As :meth:`bootstrap` for a statistic that is not a mean over images (e.g. an excess
        over the largest seed difference): ``prepare(drawn)`` returns ``statistic(image
        indices) -> float`` or None (:func:`bnn_saliency.stats.seeds_images_bootstrap`)."""
        return self._bootstrap(stats.seeds_images_bootstrap, prepare, n_images, kinds, seed)

    def _bootstrap(self, method, fn, n_images, kinds, seed):
        seeds = {k: self.seeds[k] for k in kinds}
        try:
            point, boots = method(fn, seeds, n_images, seed=seed)
        except stats.TooFewSeeds:
            shipped = ", ".join(f"{k} {list(v)}" for k, v in seeds.items())
            return f"too few seeds shipped to form it ({shipped})"
        return stats.percentile_interval(point, boots), boots
