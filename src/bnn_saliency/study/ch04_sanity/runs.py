"""Chapter 4 runs: the method suite, the blocks randomized, the recorded scores and the
checkpoint verdicts."""

from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ... import methods, models
from ...evaluation.randomization import (
    COLUMNS,
    cascade_blocks,
    cascading,
    compare_to_reference,
    compute_views,
    independent,
)
from ...stats import summarize
from ...verdicts import Rule

#: The seven methods of the chapter, in display order.
METHOD_NAMES = ("gradient", "smoothgrad", "gradcam", "guided_backprop", "guided_gradcam",
                "integrated_gradients", "gradient_x_input")



#: Row labels of the methods in figures and claims (same order as :data:`METHOD_NAMES`).
LABELS = {"gradient": "Gradient", "smoothgrad": "SmoothGrad", "gradcam": "Grad-CAM",
          "guided_backprop": "Guided BP", "guided_gradcam": "Guided GC",
          "integrated_gradients": "Int. Grad.", "gradient_x_input": "Grad x Input"}



#: Twin variants in display order: full precision, binary weights only, binary
#: activations only, fully binarized.
VARIANTS = ("fp", "binw", "bina", "bnn")



#: The similarity measure the verdicts use.
SPEARMAN = "Spearman |map|"



def method_suite(gradcam_layer: str, names: Sequence[str] = METHOD_NAMES, *,
                 smoothgrad_samples: int = 8, smoothgrad_noise: float = 0.15,
                 ig_steps: int = 8, seed: int = 0, batch_size: int = 128) -> dict[str, Callable]:
    """The saliency methods as ``name -> f(model, images, targets)``, settings bound.

    Args:
        gradcam_layer: layer for Grad-CAM and guided Grad-CAM (named explicitly).
        names: method names from :data:`bnn_saliency.methods.METHODS` (default: the seven
            of :data:`METHOD_NAMES`).
        smoothgrad_samples, smoothgrad_noise: SmoothGrad's ``n_samples`` (default 8) and
            ``noise`` (default 0.15 of each image's range); signed average of gradients.
        ig_steps: Integrated Gradients midpoint steps from a black baseline (default 8).
        seed: SmoothGrad's noise seed (default 0): every model sees the same noise.
        batch_size: rows per compiled call (default 128).
    """
    params = {
        "smoothgrad": dict(n_samples=smoothgrad_samples, noise=smoothgrad_noise, seed=seed),
        "integrated_gradients": dict(steps=ig_steps),
    }
    return {name: methods.configure(
        name, gradcam_layer if methods.SETTINGS[name].needs_layer else None,
        batch_size=batch_size, **params.get(name, {})) for name in names}



_VGG_LAYER = re.compile(r"^(conv|bn)(\d+)$")



_RESNET_LAYER = re.compile(r"^(s\d+)b\d+_")



def twin_stage(layer: str) -> str:
    """Block name of a twin layer for a stage-wise cascade.

    VGG twins: ``logits``; ``stage 3`` (conv5, conv6 and their BN), ``stage 2`` (conv3-4),
    ``stage 1`` (conv1-2). ResNet twins: ``logits``; ``stage 3``/``2``/``1`` (every layer of
    ``s<k>b*``, shortcuts included); ``stem`` (``stem_conv``, ``stem_bn``).
    """
    if layer == "logits":
        return "logits"
    m = _VGG_LAYER.match(layer)
    if m:
        return f"stage {(int(m.group(2)) + 1) // 2}"
    m = _RESNET_LAYER.match(layer)
    if m:
        return f"stage {m.group(1)[1:]}"
    if layer.startswith("stem_"):
        return "stem"
    raise ValueError(f"{layer!r} is not a layer of a VGG or ResNet twin; pass n_blocks= instead")



def blocks_for(name: str, per: str = "stage", n_blocks: int = 5) -> list[tuple[str, list[str]]]:
    """Cascade blocks of a registered model: twins by stage (``per="stage"``) or one block per
    weighted layer (``per="layer"``); other networks in ``n_blocks`` contiguous blocks."""
    spec = models.get_spec(name)
    layers = spec.randomization_layers
    if per == "layer":
        return cascade_blocks(layers)
    if per != "stage":
        raise ValueError(f"per must be 'stage' or 'layer', got {per!r}")
    if spec.kind == "twin":
        return cascade_blocks(layers, key=twin_stage)
    return cascade_blocks(layers, n_blocks=n_blocks)



def run_scores(model, images, targets, methods: dict[str, Callable],
               blocks: Sequence[tuple[str, Sequence[str]]], *, mode: str = "cascading",
               seed: int = 0, reset_batchnorm: bool = False, name: str | None = None,
               drop_original: bool = False) -> pd.DataFrame:
    """The score table of a :func:`cascading` or :func:`independent` run (no maps), e.g. for
    :func:`recorded`; ``drop_original`` drops the step-0 rows (the original vs itself)."""
    run = {"cascading": cascading, "independent": independent}[mode]
    scores = run(model, images, targets, methods, blocks, seed=seed,
                 reset_batchnorm=reset_batchnorm, name=name).scores
    return scores[scores["step"] > 0].reset_index(drop=True) if drop_original else scores



run_scores.record_keys = [c for c in COLUMNS if c != "score"]



def reference_scores(model, images, targets, methods: dict[str, Callable], *, versus,
                     metrics: dict[str, tuple[str, Callable]] | None = None) -> pd.DataFrame:
    """Similarity of ``versus``'s maps to ``model``'s on the same images (the data
    randomization test: ``versus`` trained on random labels, or with another seed)."""
    reference = compute_views(model, images, targets, methods)
    return compare_to_reference(reference, versus, images, targets, methods, metrics)[0]



reference_scores.record_keys = ["method", "metric", "image"]



def recorded(record: str, scores: Callable, model, images, targets, methods, *args,
             sample: int = 4, **kwargs) -> pd.DataFrame:
    """``scores(model, images, targets, methods, *args, **kwargs)`` (:func:`run_scores`,
    :func:`reference_scores`) through :func:`bnn_saliency.records.per_image`: the committed
    records ``record`` (``None``: compute everything, commit nothing), with ``sample``
    images recomputed live and checked. SmoothGrad rows are not checked live: its noise is
    drawn image after image from one generator, so an image's noise depends on which images
    precede it. On BNNs a sign activation whose input is within float32 noise of 0 flips
    from one CPU to another and changes that image's map, so up to 1% of the live rows may
    fall outside the tolerance (seen: 2 of 576 HOG rows of resnet-bnn-s0 on an AMD EPYC)."""
    from ... import records

    images, targets = np.asarray(images), np.asarray(targets)
    if record is None:  # e.g. ImageNet mode: nothing committed, compute everything
        return scores(model, images, targets, methods, *args, **kwargs)

    def compute(idx):
        return scores(model, images[idx], targets[idx], methods, *args, **kwargs)

    return records.per_image(
        record, compute, len(images), sample=sample,
        inputs_fingerprint=records.fingerprint(scores, model, images, targets, methods, args,
                                               kwargs),
        keys=scores.record_keys, exclude={"method": ["smoothgrad"]}, max_bad_share=0.01)



def last_step(scores: pd.DataFrame) -> pd.DataFrame:
    """Rows of each model's last step (the fully randomized network in a cascade)."""
    last = scores.groupby(["model", "mode"])["step"].transform("max")
    return scores[scores["step"] == last]



def summarize_steps(scores: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Mean and bootstrap 95% CI over images per model x mode x step x method x metric."""

    out = summarize(scores, "score", by=["model", "mode", "step", "method", "metric"],
                          n_boot=n_boot, seed=seed)
    blocks = scores.drop_duplicates(["model", "mode", "step"])[["model", "mode", "step", "block"]]
    return out.merge(blocks, on=["model", "mode", "step"], how="left")



def verdicts(scores: pd.DataFrame, threshold: float = 0.5, metric: str = "Spearman |map|",
             step: int | str | None = None, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Pass/fail per model x method from the cascading similarity at one step.

    ``pass`` (the map depends on the parameters) if the 95% CI of the mean similarity lies
    entirely below ``threshold``; ``fail`` (nearly invariant) if it lies entirely above;
    ``inconclusive`` otherwise or when every score is undefined.

    Args:
        step: the cascade step: an index, a block name (e.g. ``"stage 3"``: the blocks up to
            and including it are randomized) or None (default) for each model's last step
            (the fully randomized network).

    Returns:
        DataFrame: model, method, mean, low, high, n, n_nan, verdict.
    """

    sel = scores[(scores["metric"] == metric) & (scores["mode"] == "cascading")]
    if step is None:
        sel = last_step(sel)
    elif isinstance(step, str):
        sel = sel[sel["block"] == step]
    else:
        sel = sel[sel["step"] == step]
    if sel.empty:
        raise ValueError(f"no cascading scores for metric {metric!r} at step {step!r}")
    out = summarize(sel, "score", by=["model", "method"], n_boot=n_boot, seed=seed)
    rule = Rule("below", threshold, labels=("pass", "inconclusive", "fail"))
    out["verdict"] = [rule.verdict(lo, hi) if np.isfinite(lo) and np.isfinite(hi)
                      else "inconclusive" for lo, hi in zip(out["low"], out["high"])]
    return out
