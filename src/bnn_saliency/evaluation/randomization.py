"""Randomization sanity checks for saliency maps (Adebayo et al. 2018), for FP and binarized nets.

A saliency method that explains a *model* must change when the model's learned parameters are
destroyed. Two tests:

* **Model parameter randomization.** Re-initialize the network from the logits down to the first
  layer and compare each step's map with the original map. *Cascading*
  (:func:`cascading`): step k re-initializes the first k blocks (logits first) together;
  *independent* (:func:`independent`): step k re-initializes block k alone.
* **Data randomization.** Compare the maps of a model trained on true labels with those of the
  same architecture trained on permuted labels (:func:`compare_to_reference`).

What re-initializing means here is :func:`bnn_saliency.models.randomize_layers`: every weight
of a named layer is re-drawn from the initializer the layer was built with (Glorot-uniform
kernels, zero biases), with a seed derived from (seed, layer, weight), so cascading and
independent runs draw the same values for the same layer. For a binarized ``QuantConv2D`` the
*latent* real-valued kernel is re-drawn and clipped to [-1, 1] by the layer's ``weight_clip``
constraint; the forward pass then uses its sign, i.e. uniformly random +-1 weights.
BatchNormalization layers are part of the blocks; by default their four variables (gamma,
beta, moving mean and variance) keep their trained values (``reset_batchnorm=False``), with
``reset_batchnorm=True`` they are reset to gamma = 1, beta = 0, mean = 0, variance = 1.

Maps are compared through two *views* (:func:`map_views`), computed once per map:
``"abs"``: absolute value, max over colour channels (pixel methods) or the (upsampled) CAM's
absolute value; ``"signed"``: sum over colour channels, or the CAM itself. CAM maps (N, h, w)
are first upsampled bilinearly to the input size. The default similarity measures
(:data:`SIMILARITY`) are those of Adebayo et al.: Spearman rank correlation of the abs view and
of the signed view, SSIM and the Pearson correlation of HOG descriptors of the abs view.

Everything returns tidy pandas tables (one row per model x step x method x metric x image).

Quantus (:func:`quantus_mprt`) implements the same test as ``quantus.MPRT``. Read from its
source (quantus 0.5.3, ``TensorFlowModel.get_random_layer_generator``), it differs from ours in
two ways: it randomizes a layer by permuting each weight array along its first axis (seeded
``np.random.seed(seed + 1)``), not by re-drawing it; and for a tf.keras model its cascading
order (``"top_down"``) starts from ``keras.models.clone_model(model)``, which re-initializes
*every* layer, so its first "cascading" step is already a fully re-initialized network.
Its ``"independent"`` order restores the trained weights before each layer and is what
:func:`quantus_permutation` + :func:`independent` reproduce exactly.

References:
    Adebayo, J., Gilmer, J., Muelly, M., Goodfellow, I., Hardt, M., Kim, B. (2018). Sanity
        Checks for Saliency Maps. NeurIPS. arXiv:1810.03292.
    Hedström, A. et al. (2023). Quantus: An Explainable AI Toolkit for Responsible Evaluation
        of Neural Network Explanations and Beyond. JMLR 24(34). arXiv:2202.06861.
    Smilkov, D. et al. (2017). SmoothGrad. arXiv:1706.03825. Sundararajan, M. et al. (2017).
        Axiomatic attribution (Integrated Gradients). arXiv:1703.01365.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .. import models, postprocess
from ..memo import cached
from .registry import _check_maps, _minmax, _rowwise_pearson
from .similarity import default_pixels_per_cell, hog_pearson, spearman_abs, spearman_signed, ssim

#: Columns of a randomization score table.
COLUMNS = ["model", "mode", "step", "block", "method", "metric", "image", "score"]

VIEWS = ("abs", "signed")


#: Similarity measures: name -> (view, ``f(maps_a, maps_b) -> (N,)``).
SIMILARITY_MEASURES: dict[str, tuple[str, Callable]] = {
    "Spearman |map|": ("abs", spearman_abs),
    "Spearman signed": ("signed", spearman_signed),
    "SSIM": ("abs", ssim),
    "HOG corr.": ("abs", hog_pearson),
}


def map_views(maps: np.ndarray, size: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """The ``"abs"`` and ``"signed"`` 2-D views of raw maps (see the module docstring).

    Args:
        maps: (N, H, W, C) pixel maps or (N, h, w) CAM maps.
        size: (H, W) to upsample CAM maps to (bilinear); required for (N, h, w) maps whose
            size differs from it, ignored for pixel maps.

    Returns:
        ``{"abs": (N, H, W), "signed": (N, H, W)}`` float32.
    """
    maps = np.asarray(maps)
    if maps.ndim == 4:
        return {"abs": postprocess.reduce_channels(maps, "abs_max"),
                "signed": postprocess.reduce_channels(maps, "sum")}
    if maps.ndim == 3:
        if size is not None and tuple(maps.shape[1:]) != tuple(size):
            maps = postprocess.upsample(maps, size)
        maps = maps.astype(np.float32)
        return {"abs": np.abs(maps), "signed": maps}
    raise ValueError(f"maps must be (N, H, W, C) pixel maps or (N, h, w) CAM maps, got shape "
                     f"{maps.shape}")


def compute_views(model, images, targets, methods: dict[str, Callable]
                  ) -> dict[str, dict[str, np.ndarray]]:
    """``method -> view -> (N, H, W)`` for every method in ``methods`` on ``model``."""
    size = tuple(images.shape[1:3])
    return {name: map_views(fn(model, images, targets), size) for name, fn in methods.items()}


def _hog_descriptors(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HOG descriptors of 2-D maps exactly as :func:`bnn_saliency.evaluation.hog_pearson` computes
    them with its defaults (per-map min-max, default cells, 2x2 blocks, 9 orientations), and
    the mask of constant maps."""
    from skimage.feature import hog

    a, constant = _minmax(_check_maps(maps))
    ppc = default_pixels_per_cell(a.shape[1:])
    desc = np.stack([hog(x, orientations=9, pixels_per_cell=ppc, cells_per_block=(2, 2),
                         feature_vector=True) for x in a])
    return desc, constant


def score_similarity(reference: dict[str, dict[str, np.ndarray]],
               other: dict[str, dict[str, np.ndarray]],
               metrics: dict[str, tuple[str, Callable]] | None = None,
               cache: dict | None = None) -> pd.DataFrame:
    """Per-image similarity of two sets of views (same methods, same images).

    Args:
        cache: optional dict kept across calls with the same ``reference``: the HOG
            descriptors of the reference maps are computed once (for
            :func:`bnn_saliency.evaluation.hog_pearson` with its defaults; same values).

    Returns:
        Long table with columns method, metric, image, score (NaN where a map is constant).
    """
    metrics = SIMILARITY_MEASURES if metrics is None else metrics
    missing = sorted(set(reference) ^ set(other))
    if missing:
        raise KeyError(f"reference and other maps cover different methods: {missing}")
    frames = []
    for method in reference:
        for metric, (view, fn) in metrics.items():
            if view not in VIEWS:
                raise ValueError(f"metric {metric!r} asks for view {view!r}; use one of {VIEWS}")
            ref, new = reference[method][view], other[method][view]
            if fn is hog_pearson and cache is not None and ref.ndim == 3:
                key = ("hog", method, view)
                if key not in cache:
                    cache[key] = _hog_descriptors(ref)
                (da, ca), (db, cb) = cache[key], _hog_descriptors(new)
                score = _rowwise_pearson(da, db)
                score[ca | cb] = np.nan
            else:
                score = np.asarray(fn(ref, new), dtype=float)
            frames.append(pd.DataFrame({"method": method, "metric": metric,
                                        "image": np.arange(len(score)), "score": score}))
    return pd.concat(frames, ignore_index=True)


def compare_to_reference(reference: dict[str, dict[str, np.ndarray]], model, images, targets,
                         methods: dict[str, Callable],
                         metrics: dict[str, tuple[str, Callable]] | None = None,
                         ) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """Maps of ``model`` compared with reference views (e.g. the data randomization test).

    Returns:
        (similarity table as in :func:`score_similarity`, the model's views).
    """
    views = compute_views(model, images, targets, methods)
    return score_similarity(reference, views, metrics), views


def cascade_blocks(layers: Sequence[str], key: Callable[[str], str] | None = None,
                   n_blocks: int | None = None) -> list[tuple[str, list[str]]]:
    """Group randomization layers (logits first) into consecutive blocks.

    Args:
        layers: layer names in randomization order (``spec.randomization_layers``).
        key: block name of a layer (e.g. :func:`twin_stage`); consecutive layers with the same
            key form one block. A key that reappears after another one is an error.
        n_blocks: instead of ``key``: the first layer alone, the rest split into
            ``n_blocks - 1`` contiguous blocks of near-equal size (for other networks).
            Neither given: one block per layer.

    Returns:
        ``[(block name, [layer names]), ...]`` in cascade order.
    """
    layers = list(layers)
    if not layers:
        raise ValueError("no layers to randomize")
    if key is not None and n_blocks is not None:
        raise ValueError("give key or n_blocks, not both")
    if n_blocks is not None:
        if not isinstance(n_blocks, (int, np.integer)) or n_blocks < 1:
            raise ValueError(f"n_blocks must be a positive integer, got {n_blocks!r}")
        if n_blocks == 1:
            return [("all", layers)]
        rest = np.array_split(np.arange(1, len(layers)), min(n_blocks - 1, len(layers) - 1))
        blocks = [(layers[0], [layers[0]])]
        for i, idx in enumerate(rest, start=1):
            if len(idx):
                blocks.append((f"block {len(rest) - i + 1}", [layers[j] for j in idx]))
        return blocks
    if key is None:
        return [(name, [name]) for name in layers]
    blocks: list[tuple[str, list[str]]] = []
    for name in layers:
        k = key(name)
        if blocks and blocks[-1][0] == k:
            blocks[-1][1].append(name)
        elif any(b == k for b, _ in blocks):
            raise ValueError(f"block {k!r} is not contiguous in the randomization order "
                             f"(layer {name!r})")
        else:
            blocks.append((k, [name]))
    return blocks


def _owner(model, layer_names: Sequence[str]):
    """The (possibly nested) keras Model whose ``layers`` contain all ``layer_names``."""
    from tensorflow import keras

    top = {layer.name for layer in model.layers}
    if set(layer_names) <= top:
        return model
    for layer in model.layers:
        if isinstance(layer, keras.Model) and set(layer_names) <= {x.name for x in layer.layers}:
            return layer
    missing = sorted(set(layer_names) - top)
    raise KeyError(f"layers {missing[:5]} are not in model {model.name!r} (nor in one nested "
                   "model); use names from spec.randomization_layers")


def _path_to(model, owner) -> list[str]:
    return [] if owner is model else [owner.name]


def _locate(model, path: list[str]):
    for name in path:
        model = model.get_layer(name)
    return model


def quantus_permutation(model, layer_names: Sequence[str], seed: int = 42,
                        reset_batchnorm: bool = False):
    """A copy of ``model`` randomized the way quantus 0.5.3 randomizes a tf.keras layer.

    For each named layer, in order: ``np.random.seed(seed + 1)``, then every weight array
    (trainable or not, BN moving statistics included) is replaced by
    ``np.random.permutation(w)``, a shuffle along its first axis. ``reset_batchnorm`` is
    accepted for interface compatibility and must be False. The global NumPy RNG state is
    restored afterwards.
    """
    if reset_batchnorm:
        raise ValueError("Quantus permutes BN layers like any other; reset_batchnorm must be False")
    copy = models.randomize_layers(model, [], seed=0)
    state = np.random.get_state()
    try:
        for name in layer_names:
            layer = copy.get_layer(name)
            np.random.seed(seed + 1)
            layer.set_weights([np.random.permutation(w) for w in layer.get_weights()])
    finally:
        np.random.set_state(state)
    return copy


_WORK_ATTR = "_bnn_sanity_working_copy"


def _working_copy(model):
    """A clone of ``model`` for randomization runs, cached on ``model``.

    Reusing one clone per model keeps the saliency methods' compiled functions (cached on the
    clone) across runs; each run first sets the clone's weights to ``model``'s.
    """
    work = model.__dict__.get(_WORK_ATTR)
    if work is None:
        work = models.randomize_layers(model, [], seed=0)
        object.__setattr__(model, _WORK_ATTR, work)  # bypass Keras attribute tracking
    return work


@dataclass
class SanityRun:
    """Result of :func:`cascading` or :func:`independent`.

    Attributes:
        scores: tidy table, columns :data:`COLUMNS` (step 0 = original vs itself; absent
            when the run was given a ``reference``).
        steps: ``[(step, block, [layers randomized])]``, step 0 = ``("original", [])``.
        reference: ``method -> view -> (N, H, W)`` maps of the unmodified model.
        kept: ``(step, method) -> (k, H, W)`` abs views of the images in ``keep``.
    """

    scores: pd.DataFrame
    steps: list[tuple[int, str, list[str]]]
    reference: dict[str, dict[str, np.ndarray]]
    kept: dict[tuple[int, str], np.ndarray] = field(default_factory=dict)


def _randomization_run(mode: str, model, images, targets, methods, blocks, *, metrics, seed,
                       reset_batchnorm, randomizer, keep, name, reference) -> SanityRun:
    if mode not in ("cascading", "independent"):
        raise ValueError(f"mode must be 'cascading' or 'independent', got {mode!r}")
    if not methods:
        raise ValueError("methods is empty; pass e.g. sanity.method_suite(layer)")
    blocks = [(str(b), list(layers)) for b, layers in blocks]
    if not blocks:
        raise ValueError("blocks is empty; pass e.g. sanity.blocks_for(name)")
    all_layers = [n for _, layers in blocks for n in layers]
    if len(set(all_layers)) != len(all_layers):
        raise ValueError("a layer appears in more than one block")
    randomizer = models.randomize_layers if randomizer is None else randomizer
    name = name or model.name
    keep = np.asarray(list(keep), dtype=int)
    images = np.asarray(images)
    if keep.size and (keep.min() < 0 or keep.max() >= len(images)):
        raise ValueError(f"keep indices must be in [0, {len(images)}), got {keep.tolist()}")

    work = _working_copy(model)
    original = model.get_weights()
    work.set_weights(original)
    steps = [(0, "original", [])]
    if reference is None:
        reference = compute_views(work, images, targets, methods)
        frames = [score_similarity(reference, reference, metrics).assign(step=0, block="original")]
    elif set(reference) != set(methods) or any(
            v[VIEWS[0]].shape[0] != len(images) for v in reference.values()):
        raise ValueError("reference must hold the views of every method for these images "
                         "(e.g. run.reference of an earlier run on the same model and images)")
    else:
        frames = []  # step 0 was scored in the run that computed the reference
    kept = {(0, m): reference[m]["abs"][keep] for m in methods} if keep.size else {}
    cache: dict = {}  # reference HOG descriptors, computed once per run
    cumulative: list[str] = []
    for k, (block, layers) in enumerate(blocks, start=1):
        cumulative = cumulative + layers if mode == "cascading" else list(layers)
        work.set_weights(original)
        if cumulative:
            owner = _owner(model, cumulative)
            rand = randomizer(owner, cumulative, seed=seed, reset_batchnorm=reset_batchnorm)
            _locate(work, _path_to(model, owner)).set_weights(rand.get_weights())
            del rand
        views = compute_views(work, images, targets, methods)
        steps.append((k, block, list(cumulative)))
        frames.append(score_similarity(reference, views, metrics, cache).assign(step=k, block=block))
        if keep.size:
            kept.update({(k, m): views[m]["abs"][keep] for m in methods})
    work.set_weights(original)
    scores = pd.concat(frames, ignore_index=True).assign(model=name, mode=mode)[COLUMNS]
    return SanityRun(scores, steps, reference, kept)


@cached
def cascading(model, images, targets, methods: dict[str, Callable],
              blocks: Sequence[tuple[str, Sequence[str]]], *,
              metrics: dict[str, tuple[str, Callable]] | None = None, seed: int = 0,
              reset_batchnorm: bool = False, randomizer: Callable | None = None,
              keep: Sequence[int] = (), name: str | None = None,
              reference: dict | None = None) -> SanityRun:
    """Cascading model parameter randomization: step k re-initializes blocks 1..k together.

    Args:
        model: tf.keras model outputting logits (not modified: a working copy is used).
        images, targets: inputs in the model's range and the explained classes (N,).
        methods: ``name -> f(model, images, targets)`` (e.g. :func:`method_suite`).
        blocks: ``[(block name, [layer names])]``, logits first (e.g. :func:`blocks_for`).
        metrics: ``name -> (view, similarity)``; default :data:`SIMILARITY_MEASURES`.
        seed: randomization seed (default 0).
        reset_batchnorm: also reset the BN layers of randomized blocks (default False: BN keeps
            its trained gamma, beta and moving statistics).
        randomizer: ``f(model, layer_names, seed=, reset_batchnorm=) -> randomized copy``;
            default :func:`bnn_saliency.models.randomize_layers` (re-draw from initializers).
        keep: image indices whose abs-view maps are kept per step (for figures).
        name: model name for the ``model`` column (default ``model.name``).
        reference: the unmodified model's views from an earlier run with the same methods
            and images (``run.reference``), to avoid computing them again; step 0 is then
            not scored again (no step-0 rows).

    Returns:
        :class:`SanityRun`. Step 0 compares the original maps with themselves (1 by
        construction; NaN for constant maps).
    """
    return _randomization_run("cascading", model, images, targets, methods, blocks,
                              metrics=metrics, seed=seed, reset_batchnorm=reset_batchnorm,
                              randomizer=randomizer, keep=keep, name=name, reference=reference)


@cached
def independent(model, images, targets, methods: dict[str, Callable],
                blocks: Sequence[tuple[str, Sequence[str]]], *,
                metrics: dict[str, tuple[str, Callable]] | None = None, seed: int = 0,
                reset_batchnorm: bool = False, randomizer: Callable | None = None,
                keep: Sequence[int] = (), name: str | None = None,
                reference: dict | None = None) -> SanityRun:
    """Independent randomization: step k re-initializes block k alone (all others trained).

    Arguments and result as in :func:`cascading`.
    """
    return _randomization_run("independent", model, images, targets, methods, blocks,
                              metrics=metrics, seed=seed, reset_batchnorm=reset_batchnorm,
                              randomizer=randomizer, keep=keep, name=name, reference=reference)


def quantus_layers(model) -> list[str]:
    """The layers quantus randomizes, in its own order (``model.layers`` with weights)."""
    return [layer.name for layer in model.layers if len(layer.get_weights()) > 0]


def quantus_explain_func(method: Callable, view: str = "abs") -> Callable:
    """Wrap a saliency method as a quantus ``explain_func(model, inputs, targets, **kw)``.

    quantus 0.5.3 hands a tf.keras model channel-first inputs (N, C, H, W) on some paths and
    channel-last on others; the wrapper transposes to the model's layout and returns the 2-D
    ``view`` (N, H, W), whose flattening is the same either way.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")

    def explain(model, inputs, targets, **kwargs):
        x = np.asarray(inputs, dtype=np.float32)
        want = tuple(model.inputs[0].shape[1:])
        if x.shape[1:] != want and x.ndim == 4 and (x.shape[2], x.shape[3], x.shape[1]) == want:
            x = np.transpose(x, (0, 2, 3, 1))
        t = np.asarray(targets).astype(int).reshape(-1)
        return map_views(method(model, x, t), x.shape[1:3])[view]

    return explain


def quantus_mprt(model, images, targets, method: Callable, *, layer_order: str = "independent",
                 seed: int = 42, batch_size: int = 256, view: str = "abs") -> pd.DataFrame:
    """``quantus.MPRT`` (Spearman, abs, normalise by max) on one method.

    Args:
        layer_order: ``"independent"`` or ``"top_down"`` (see the module docstring for what
            quantus' top-down order does to a tf.keras model).
        seed: quantus' seed (default 42, quantus' default; it seeds with ``seed + 1``); also
            passed to ``keras.utils.set_random_seed`` (Python, NumPy and TensorFlow global
            generators), so the re-initialized clone of the top-down order is reproducible.

    Returns:
        Long table: layer ("original" first, then quantus' order), image, score.
    """
    import warnings

    from tensorflow import keras

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantus' import and call warn (tqdm, parameterisation)
        import quantus

        # quantus' top-down order re-initializes a clone from TensorFlow's global generator
        keras.utils.set_random_seed(seed)

        metric = quantus.MPRT(layer_order=layer_order, seed=seed, abs=True, normalise=True,
                              disable_warnings=True, display_progressbar=False)
        result = metric(model=model, x_batch=np.asarray(images, dtype=np.float32),
                        y_batch=np.asarray(targets).astype(int), a_batch=None,
                        explain_func=quantus_explain_func(method, view), batch_size=batch_size)
    frames = [pd.DataFrame({"layer": layer, "image": np.arange(len(s)),
                            "score": np.asarray(s, dtype=float)}) for layer, s in result.items()]
    return pd.concat(frames, ignore_index=True)


def quantus_crosscheck(model, images, targets, method: Callable, seed: int = 42
                       ) -> pd.DataFrame:
    """Quantus' independent MPRT next to our :func:`independent` loop with
    :func:`quantus_permutation`, per layer and image (Spearman of the abs view).

    Returns:
        Table: layer, image, quantus, ours, diff (``quantus - ours``).
    """
    q = quantus_mprt(model, images, targets, method, layer_order="independent", seed=seed)
    layers = quantus_layers(model)
    run = independent(model, images, targets, {"m": method},
                      [(name, [name]) for name in layers],
                      metrics={"Spearman |map|": SIMILARITY_MEASURES["Spearman |map|"]}, seed=seed,
                      randomizer=quantus_permutation)
    ours = run.scores.rename(columns={"block": "layer"})[["layer", "image", "score"]]
    out = q.merge(ours, on=["layer", "image"], how="left", suffixes=("_quantus", "_ours"))
    if len(out) != len(ours):
        raise RuntimeError(f"quantus scored layers {sorted(set(q['layer']))}, our loop "
                           f"{sorted(set(ours['layer']))}; the layer lists differ")
    out = out.rename(columns={"score_quantus": "quantus", "score_ours": "ours"})
    out["diff"] = out["quantus"] - out["ours"]
    return out
