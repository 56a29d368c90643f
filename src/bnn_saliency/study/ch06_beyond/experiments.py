"""Chapter 6 experiments: completeness, cost, maps of every method, faithfulness, class
sensitivity and cascading randomization."""

from __future__ import annotations

import functools
import re
import time
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ... import evaluation, methods, models, postprocess
from ...memo import cached
from ...methods import SETTINGS, configure
from ...methods.paths import relative_completeness_error

#: Every saliency method of the study with the settings this chapter uses. ``layer`` is
#: filled in per model (its Grad-CAM layer). SmoothGrad uses the paper's 20% noise with 16
#: samples (run-time budget), Score-CAM the 16 channels of largest spatial spread (Faster
#: Score-CAM), IG 32 midpoint steps, DeepLIFT the rescale rule with the exact max-pool rule.
FAITHFULNESS_METHODS: dict[str, dict] = {
    "gradient": {},
    "gradient_x_input": {},
    "smoothgrad": {"noise": 0.2, "n_samples": 16, "seed": 0},
    "integrated_gradients": {"steps": 32, "baseline": "black"},
    "deeplift_rescale": {"baseline": "black", "maxpool": "rescale"},
    "guided_backprop": {},
    "guided_gradcam": {},
    "gradcam": {},
    "gradcam_plus_plus": {},
    "scorecam": {"max_n": 16},
}



@cached
def completeness_table(nets: Mapping[str, object], images, targets,
                       attributions: Mapping[str, Mapping[str, np.ndarray]],
                       baseline="black") -> pd.DataFrame:
    """:func:`relative_completeness_error` of several methods' attributions on several models.

    Args:
        attributions: method label -> model name -> attributions of ``images`` (computed with
            ``baseline``).

    Returns:
        long DataFrame with columns model, method, image, rel_error.
    """
    frames = []
    for label, by_model in attributions.items():
        for name, attr in by_model.items():
            err = relative_completeness_error(nets[name], images, targets, attr, baseline)
            frames.append(pd.DataFrame({"model": name, "method": label,
                                        "image": np.arange(len(err)), "rel_error": err}))
    return pd.concat(frames, ignore_index=True)



def ig_convergence(model, images, targets, steps: Sequence[int], baselines=("black", "blur"),
                   rule: str = "midpoint", **kw) -> pd.DataFrame:
    """Completeness error of integrated gradients for each number of steps and baseline.

    Returns:
        long DataFrame with columns baseline, steps, image, rel_error.
    """
    steps = [int(s) for s in steps]
    if not steps or min(steps) < 1:
        raise ValueError(f"steps must be a non-empty list of positive integers, got {steps!r}")
    frames = []
    for base in baselines:
        for s in steps:
            attr = methods.integrated_gradients(model, images, targets, baseline=base, steps=s,
                                                 rule=rule, **kw)
            rel = relative_completeness_error(model, images, targets, attr, base)
            frames.append(pd.DataFrame({"baseline": base if isinstance(base, str) else "array",
                                        "steps": s, "image": np.arange(len(rel)),
                                        "rel_error": rel}))
    return pd.concat(frames, ignore_index=True)



def time_per_map(method: Callable, model, images, targets, *, repeats: int = 5,
                 clock: Callable[[], float] = time.perf_counter, **params) -> np.ndarray:
    """Wall-clock seconds per map of ``method`` on ``images``, once per repeat.

    One warm-up call first (tracing and compiling are not timed), then ``repeats`` timed
    calls of the whole batch; each is divided by the number of images.

    Returns:
        float64 (repeats,) of positive seconds per map.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    n = len(images)
    if n == 0:
        raise ValueError("images is empty; time at least one map")
    method(model, images, targets, **params)
    out = np.empty(int(repeats))
    for r in range(int(repeats)):
        start = clock()
        method(model, images, targets, **params)
        out[r] = (clock() - start) / n
    if not np.all(out > 0):
        raise RuntimeError(f"the clock returned non-positive durations {out}; use a finer clock")
    return out



def method_maps(model, images, targets, layer: str, methods: Mapping[str, dict] | None = None,
                ) -> dict[str, np.ndarray]:
    """Raw maps of every method: name -> array (pixel methods (N,H,W,C), CAMs (N,h,w)).

    Args:
        layer: the model's Grad-CAM layer, passed to every method that needs one
            (:data:`bnn_saliency.methods.SETTINGS`).
        methods: name -> keyword settings; default :data:`FAITHFULNESS_METHODS`.
    """
    methods = FAITHFULNESS_METHODS if methods is None else methods
    out = {}
    for name, params in methods.items():
        needs = SETTINGS[name].needs_layer
        out[name] = configure(name, layer if needs else None, **params)(model, images, targets)
    return out



def ranking_map(maps, signed: bool = False) -> np.ndarray:
    """The 2-D map a perturbation metric ranks pixels by.

    ``(N, H, W, C)`` pixel maps: absolute value, maximum over channels (the paper's
    tf-keras-vis post-processing without the normalization, which does not change ranks);
    with ``signed=True`` the signed sum over channels instead (positive evidence first).
    ``(N, h, w)`` maps (CAMs) are returned as they are.
    """
    m = np.asarray(maps, dtype=np.float64)
    if m.ndim == 3:
        return m
    if m.ndim != 4:
        raise ValueError(f"maps must have shape (N, h, w) or (N, H, W, C), got {m.shape}")
    return m.sum(axis=-1) if signed else np.abs(m).max(axis=-1)



def random_maps(n: int, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """``n`` maps of i.i.d. uniform values, the chance baseline of a faithfulness metric.

    At a CAM's resolution and upsampled, a random map ranks random blocks of pixels; at the
    image resolution, random pixels.
    """
    if n < 1 or len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"need n >= 1 and a 2-D shape, got n={n}, shape={shape}")
    return np.random.default_rng(seed).random((int(n),) + tuple(shape))



def perturbation_scores(model, images, targets, maps: Mapping[str, np.ndarray], *,
                        n_steps: int = 16, deletion_baseline="black",
                        insertion_baseline="blur", seed: int = 0) -> pd.DataFrame:
    """Deletion and insertion AUC (Petsiuk et al. 2018) of several 2-D maps of one model.

    Args:
        maps: method name -> (N, h, w) ranking maps (see :func:`ranking_map`); CAM-sized
            maps are upsampled bilinearly to the image size.
        n_steps: perturbation steps (default 16: 64 pixels per step on 32x32 images).
        deletion_baseline, insertion_baseline: RISE's defaults, black and blurred.
        seed: tie-breaking seed (a constant map, e.g. a blank Grad-CAM, ranks at random).

    Returns:
        long DataFrame with columns method, image, deletion, insertion, ins_minus_del
        (higher is better: insertion AUC minus deletion AUC).
    """
    if not maps:
        raise ValueError("maps is empty; pass at least one {method: maps}")
    f = methods.forward(model)
    frames = []
    for name, m in maps.items():
        m = np.asarray(m)
        if m.ndim != 3:
            raise ValueError(f"maps[{name!r}] must be (N, h, w); apply ranking_map first")
        d = evaluation.deletion_auc(f, images, targets, m, n_steps=n_steps,
                                 baseline=deletion_baseline, seed=seed)
        i = evaluation.insertion_auc(f, images, targets, m, n_steps=n_steps,
                                  baseline=insertion_baseline, seed=seed)
        frames.append(pd.DataFrame({"method": name, "image": np.arange(len(d)),
                                    "deletion": d, "insertion": i, "ins_minus_del": i - d}))
    return pd.concat(frames, ignore_index=True)



def excess_over(scores: pd.DataFrame, reference: str = "random", value: str = "ins_minus_del",
                by: Sequence[str] = ()) -> pd.DataFrame:
    """Per-image ``value`` of each method minus that of the ``reference`` method.

    Args:
        scores: long table with columns method, image, ``value`` (and the ``by`` columns).
        reference: the method to subtract (default the random map).
        by: extra key columns (e.g. ``["model"]``) within which images are matched.

    Returns:
        ``scores`` without the reference rows, with a column ``excess``.
    """
    keys = list(by) + ["image"]
    missing = [c for c in keys + ["method", value] if c not in scores.columns]
    if missing:
        raise KeyError(f"columns {missing} not in scores (has {list(scores.columns)})")
    ref = scores[scores["method"] == reference]
    if ref.empty:
        raise KeyError(f"no rows for the reference method {reference!r}; methods: "
                       f"{sorted(scores['method'].unique())}")
    if ref.duplicated(keys).any():
        raise ValueError(f"the reference {reference!r} has repeated {keys} rows")
    ref = ref.set_index(keys)[value].rename("_ref")
    out = scores[scores["method"] != reference].join(ref, on=keys)
    if out["_ref"].isna().any():
        raise ValueError(f"some images have no {reference!r} score to subtract")
    out["excess"] = out[value] - out.pop("_ref")
    return out



def rank_methods(summary: pd.DataFrame, value: str = "mean", within: str = "model",
                 higher_is_better: bool = True) -> pd.Series:
    """Rank of each row's method among the rows of the same ``within`` group (1 = best).

    Ties share the lowest rank ("min" method); NaN values rank last.
    """
    for col in (value, within):
        if col not in summary.columns:
            raise KeyError(f"column {col!r} not in summary (has {list(summary.columns)})")
    return (summary.groupby(within)[value]
            .rank(ascending=not higher_is_better, method="min", na_option="bottom")
            .astype(int))



def ranking_table(summary: pd.DataFrame, kind: Mapping[str, str], value: str = "mean",
                  higher_is_better: bool = True) -> pd.DataFrame:
    """One ranking table: methods as rows, each model's rank as a column, mean rank per kind.

    Args:
        summary: one row per (model, method) with columns model, method, ``value``.
        kind: model -> group label, e.g. ``{"vgg-fp-s0": "FP", "vgg-bnn-s0": "BNN"}``;
            models missing from ``kind`` are left out.
        value, higher_is_better: what to rank by.

    Returns:
        DataFrame indexed by method: one rank column per model (in ``kind``'s order), then
        ``mean rank <kind>`` for each kind, sorted by the first kind's mean rank.
    """
    sel = summary[summary["model"].isin(list(kind))].copy()
    if sel.empty:
        raise ValueError("no model of summary is in kind")
    sel["rank"] = rank_methods(sel, value, "model", higher_is_better)
    wide = sel.pivot(index="method", columns="model", values="rank")
    order = [m for m in kind if m in wide.columns]
    wide = wide[order]
    kinds = list(dict.fromkeys(kind[m] for m in order))
    for k in kinds:
        cols = [m for m in order if kind[m] == k]
        wide[f"mean rank {k}"] = wide[cols].mean(axis=1)
    wide.columns.name = None
    return wide.sort_values([f"mean rank {k}" for k in kinds] + list(order), kind="stable")



def runner_up(model, images, targets, batch_size: int = 256) -> np.ndarray:
    """Per image, the class with the highest logit other than ``targets`` (int (N,))."""
    logits = evaluation.predict_proba(methods.forward(model), images, batch_size, softmax=False)
    t = np.asarray(targets)
    if t.shape != (len(logits),):
        raise ValueError(f"targets must have shape ({len(logits)},), got {t.shape}")
    masked = logits.copy()
    masked[np.arange(len(t)), t] = -np.inf
    return masked.argmax(axis=1)



_NUMBERED = re.compile(r"^[a-z]+(\d+)$")



def layer_block_key(name: str) -> str:
    """Cascade block of a twin layer: ``conv6``/``bn6`` -> ``6``, ``s3b2_conv``/``s3b2_bn`` ->
    ``s3b2`` (the part before the first underscore), any other name is its own block."""
    match = _NUMBERED.match(name)
    return match.group(1) if match else name.split("_")[0]



@cached
def maps_by_model(nets: Mapping[str, object], images, targets, layers: Mapping[str, str],
                  methods: Mapping[str, dict] | None = None,
                  precomputed: Mapping[str, Mapping[str, np.ndarray]] | None = None,
                  ) -> dict[str, dict[str, np.ndarray]]:
    """:func:`method_maps` for every model: model -> method -> raw maps.

    ``precomputed`` (model -> method -> maps of the same images, computed with the same
    settings) is used instead of recomputing those methods.
    """
    methods = FAITHFULNESS_METHODS if methods is None else methods
    out = {}
    for name, net in nets.items():
        have = dict((precomputed or {}).get(name, {}))
        for method, maps in have.items():
            if len(maps) != len(images):
                raise ValueError(f"precomputed {name}/{method} has {len(maps)} maps for "
                                 f"{len(images)} images")
        todo = {m: p for m, p in methods.items() if m not in have}
        computed = method_maps(net, images, targets, layers[name], todo)
        out[name] = {m: (have[m] if m in have else computed[m]) for m in methods}
    return out



@cached
def faithfulness_scores(nets: Mapping[str, object], images, targets,
                        maps: Mapping[str, Mapping[str, np.ndarray]], *, n_steps: int = 16,
                        baseline="blur", blur_sigma: float = 5.0, random_seed: int = 1,
                        seed: int = 0) -> pd.DataFrame:
    """Deletion / insertion scores of every model's maps plus a random map.

    Pixel maps are ranked by :func:`ranking_map` (abs, max over channels), CAMs as they are;
    the random map (uniform i.i.d. at the image resolution, ``random_seed``) is added as the
    method ``"random"``. Both curves use the same reference image: ``baseline="blur"`` is the
    image blurred by a Gaussian of ``blur_sigma`` pixels (default 5, IG's blurred baseline);
    ``"black"`` or an array are passed on.

    Returns:
        long DataFrame with columns model, method, image, deletion, insertion, ins_minus_del.
    """
    x = np.asarray(images)
    ref = baseline
    if isinstance(baseline, str) and baseline == "blur":
        ref = methods.baseline_images(x, "blur", blur_sigma)
    frames = []
    for name, net in nets.items():
        ranked = {m: ranking_map(v) for m, v in maps[name].items()}
        ranked["random"] = random_maps(len(x), x.shape[1:3], seed=random_seed)
        scores = perturbation_scores(net, x, targets, ranked, n_steps=n_steps,
                                     deletion_baseline=ref, insertion_baseline=ref, seed=seed)
        scores.insert(0, "model", name)
        frames.append(scores)
    return pd.concat(frames, ignore_index=True)



def agreement(maps_a: Mapping[str, np.ndarray], maps_b: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per-image Spearman rank correlation and SSIM of two methods' maps, for each model
    (:func:`bnn_saliency.evaluation.agreement`).

    Both maps go through the paper's display pipeline first
    (:func:`bnn_saliency.postprocess.tfkerasvis_style`: abs, max over channels, min-max), as in
    the chapter on gradients.

    Args:
        maps_a, maps_b: model -> raw (N, H, W, C) maps of the same images.

    Returns:
        long DataFrame with columns model, metric, image, score.
    """

    metrics = {"Spearman": evaluation.spearman_abs, "SSIM": evaluation.ssim}
    frames = []
    for name in maps_a:
        scores = evaluation.agreement(maps_a[name], maps_b[name], metrics,
                                      prepare=postprocess.tfkerasvis_style)
        for metric, s in scores.items():
            frames.append(pd.DataFrame({"model": name, "metric": metric,
                                        "image": np.arange(len(s)), "score": s}))
    return pd.concat(frames, ignore_index=True)



def class_sensitivity(model, images, targets, others, layer: str) -> pd.DataFrame:
    """How much a method's map changes when the explained class changes.

    For each image the maps for ``targets`` and for ``others`` (e.g. :func:`runner_up`) are
    compared: Grad-CAM as its signed map before the ReLU (signed Spearman; the ReLU'd map is
    often blank), guided backprop and the gradient by Spearman of their absolute maps.
    A class-discriminative method has low similarity; a class-invariant one, near 1.

    Returns:
        long DataFrame with columns method, image, score.
    """
    rows = []
    pairs = {
        "gradcam": (lambda c: methods.gradcam(model, images, c, layer=layer, relu=False),
                    evaluation.spearman_signed),
        "guided_backprop": (lambda c: methods.guided_backprop(model, images, c),
                            evaluation.spearman_abs),
        "gradient": (lambda c: methods.gradient(model, images, c), evaluation.spearman_abs),
    }
    for name, (compute, sim) in pairs.items():
        s = sim(compute(np.asarray(targets)), compute(np.asarray(others)))
        rows.append(pd.DataFrame({"method": name, "image": np.arange(len(s)), "score": s}))
    return pd.concat(rows, ignore_index=True)



def roughness(maps, size: tuple[int, int]) -> np.ndarray:
    """Total variation (:func:`bnn_saliency.evaluation.total_variation`) of 2-D maps at ``size``.

    (N, H, W, C) pixel maps are reduced by abs-max over channels, CAMs are upsampled
    bilinearly to ``size`` first, so that maps of both kinds are compared at the image
    resolution. Lower is smoother (coarser); NaN for an all-zero map (e.g. a blank Grad-CAM).
    """
    m = ranking_map(maps)
    return evaluation.total_variation(postprocess.upsample(m, size, np.float64))



def per_image_mean(table: pd.DataFrame, models: Sequence[str], value: str = "score",
                   **filters) -> np.ndarray:
    """Per image, the mean of ``value`` over the rows of ``models`` (and ``column=value``
    filters, e.g. ``method="gradcam"``); images ordered by their index. Pools seeds of a twin
    so that a bootstrap over images carries both."""
    sel = table[table["model"].isin(list(models))]
    for col, want in filters.items():
        sel = sel[sel[col] == want]
    if sel.empty:
        raise KeyError(f"no rows for models {list(models)} with {filters}")
    return sel.groupby("image")[value].mean().sort_index().to_numpy()



def cam_scores(nets: Mapping[str, object], images, targets,
               maps: Mapping[str, Mapping[str, np.ndarray]],
               cams: Sequence[str] = ("gradcam", "gradcam_plus_plus", "scorecam"),
               random_seed: int = 1) -> pd.DataFrame:
    """Average Drop / Increase / Gain (:func:`bnn_saliency.evaluation.average_drop_increase_gain`,
    per sample, blank maps scored as black images) of each model's CAMs and of a random map
    at the CAMs' resolution (method ``"random"``).

    Returns:
        long DataFrame with columns model, method, image, average_drop, average_increase,
        average_gain (percent).
    """
    frames = []
    for name, net in nets.items():
        f = methods.forward(net)
        shape = np.asarray(maps[name][cams[0]]).shape[1:]
        these = {c: maps[name][c] for c in cams}
        these["random"] = random_maps(len(images), shape, seed=random_seed)
        for method, cam in these.items():
            r = evaluation.average_drop_increase_gain(f, images, targets, cam, per_sample=True)
            frames.append(pd.DataFrame({"model": name, "method": method,
                                        "image": np.arange(len(images)),
                                        "average_drop": r["average_drop"],
                                        "average_increase": r["average_increase"],
                                        "average_gain": r["average_gain"]}))
    return pd.concat(frames, ignore_index=True)



def class_sensitivity_table(nets: Mapping[str, object], images, targets,
                            layers: Mapping[str, str]) -> pd.DataFrame:
    """:func:`class_sensitivity` of every model against its :func:`runner_up` class.

    Returns:
        long DataFrame with columns model, method, image, score.
    """
    frames = []
    for name, net in nets.items():
        others = runner_up(net, images, targets)
        table = class_sensitivity(net, images, targets, others, layers[name])
        table.insert(0, "model", name)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)



def coarseness_table(nets: Mapping[str, object], images, targets,
                     layers: Mapping[str, str]) -> pd.DataFrame:
    """Roughness (:func:`roughness`) of Grad-CAM and of the gradient, and their ratio.

    Returns:
        long DataFrame with columns model, image, tv_gradcam, tv_gradient, ratio (NaN where
        the Grad-CAM is blank).
    """
    size = np.asarray(images).shape[1:3]
    frames = []
    for name, net in nets.items():
        cam = roughness(methods.gradcam(net, images, targets, layer=layers[name]), size)
        grad = roughness(methods.gradient(net, images, targets), size)
        frames.append(pd.DataFrame({"model": name, "image": np.arange(len(cam)),
                                    "tv_gradcam": cam, "tv_gradient": grad,
                                    "ratio": cam / grad}))
    return pd.concat(frames, ignore_index=True)



def cascading_table(nets: Mapping[str, object], images, targets,
                    methods: Mapping[str, tuple[Callable, dict]], seed: int = 0) -> pd.DataFrame:
    """Cascading randomization (:func:`bnn_saliency.evaluation.randomization.cascading`, batch normalization
    reset too) of several methods on several models, one block per layer pair
    (:func:`layer_block_key`), scored by Spearman of the absolute maps.

    Args:
        methods: name -> (method, keyword settings).

    Returns:
        long DataFrame with columns model, method, step (1 = logits), block (the deepest layer
        randomized so far), image, score.
    """

    bound = {m: functools.partial(fn, **params) for m, (fn, params) in methods.items()}
    spearman = {"Spearman |map|": evaluation.SIMILARITY_MEASURES["Spearman |map|"]}
    frames = []
    for name, net in nets.items():
        groups = evaluation.cascade_blocks(models.randomization_layers_of(net), key=layer_block_key)
        blocks = [(layers[-1], layers) for _, layers in groups]
        run = evaluation.cascading(net, images, targets, bound, blocks, metrics=spearman, seed=seed,
                               reset_batchnorm=True, name=name)
        frames.append(run.scores[run.scores["step"] > 0])
    return pd.concat(frames, ignore_index=True)[["model", "method", "step", "block", "image",
                                                 "score"]]
