"""Faithfulness metrics ``metric(model, images, targets, maps, **kw) -> (N,)``: deletion and
insertion curves and Average Drop / Increase in Confidence / Average Gain."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from .. import checks
from ..methods._core import baseline_images, forward
from ..postprocess import upsample
from ..methods.cam_parts import _check_inputs
from .registry import FAITHFULNESS, _check_maps, _flat, _minmax, _register, _to_2d


def top_fraction_mask(maps, size: tuple[int, int], fraction: float = 0.5,
                      seed: int = 0) -> np.ndarray:
    """Binary masks keeping the ``fraction`` of pixels with the highest map value.

    Maps are upsampled bilinearly to ``size`` (:func:`bnn_saliency.postprocess.upsample`,
    as for Average Drop); exactly ``round(fraction * H * W)`` pixels are kept, ties broken by
    one fixed random order of the pixels drawn with ``seed``, the same for every map (so a
    constant map keeps a random subset, and a map's mask does not depend on the other maps in
    the batch).
    Scoring ``image * mask`` measures a map's ranking at a fixed coverage, independent of how
    much mass min-max normalization would leave in the rest of the map.

    Returns:
        float32 (N, H, W) of 0/1.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    m = np.asarray(maps, dtype=np.float64)
    if m.ndim != 3 or len(m) == 0:
        raise ValueError(f"maps must have shape (N, h, w), got {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("maps contain NaN or inf")
    up = upsample(m, size, np.float64).reshape(len(m), -1)
    k = int(round(fraction * up.shape[1]))
    tie = np.broadcast_to(np.random.default_rng(seed).random(up.shape[1]), up.shape)
    order = np.lexsort((tie, -up), axis=-1)
    mask = np.zeros_like(up, dtype=np.float32)
    np.put_along_axis(mask, order[:, :k], 1.0, axis=1)
    return mask.reshape((len(m),) + tuple(size))


def cam_faithfulness(model, images, targets, cams: dict[str, np.ndarray], *,
                 constant: str = "zero", top_fraction: float | None = None,
                 batch_size: int = 256, seed: int = 0) -> pd.DataFrame:
    """Average Drop, Increase in Confidence and Average Gain of several maps of one model.

    Same definitions as :func:`bnn_saliency.evaluation.average_drop_increase_gain` (Y = target
    softmax probability on the image, O on ``image * M``, M the bilinearly upsampled,
    min-max normalized map; per sample ``AD = 100 max(0, Y-O)/Y``, ``AI = 100 [Y < O]``,
    ``AG = 100 max(0, O-Y)/(1-Y)``), but Y is computed once for all maps and the forward
    passes are compiled.

    Args:
        model: tf.keras model outputting logits.
        images: float (N, H, W, C).
        targets: int (N,).
        cams: variant name -> (N, h, w) maps.
        constant: how a constant map (e.g. a blank Grad-CAM) is scored, as in
            :func:`bnn_saliency.evaluation.explanation_images`: ``"zero"`` (default; black image),
            ``"one"`` (the unmasked image) or ``"nan"`` (excluded).
        top_fraction: if given, M is instead the binary :func:`top_fraction_mask` keeping that
            fraction of the pixels (``constant`` is then irrelevant: ties are broken randomly).
        batch_size: images per forward pass (default 256).
        seed: tie-breaking seed of :func:`top_fraction_mask`.

    Returns:
        long DataFrame with columns variant, image, y, o, average_drop, average_increase,
        average_gain (percent; NaN where O is undefined).
    """
    x, t = _check_inputs(model, images, targets)
    if not cams:
        raise ValueError("cams is empty; pass at least one {name: maps}")
    f = forward(model)
    rows = np.arange(len(x))
    y = predict_proba(f, x, batch_size)[rows, t]
    frames = []
    for name, cam in cams.items():
        cam = np.asarray(cam)
        if cam.shape[0] != len(x):
            raise ValueError(f"cams[{name!r}] has {cam.shape[0]} maps for {len(x)} images")
        if top_fraction is None:
            e = explanation_images(x, cam, constant=constant)
        else:
            e = x * top_fraction_mask(cam, x.shape[1:3], top_fraction, seed)[..., None].astype(x.dtype)
        ok = np.isfinite(e.reshape(len(e), -1)).all(axis=1)
        o = np.full(len(x), np.nan)
        if ok.any():
            o[ok] = predict_proba(f, e[ok], batch_size)[np.arange(ok.sum()), t[ok]]
        frames.append(pd.DataFrame({"variant": name, "image": rows, "y": y, "o": o,
                                    "average_drop": _drop(y, o),
                                    "average_increase": _increase(y, o),
                                    "average_gain": _gain(y, o)}))
    return pd.concat(frames, ignore_index=True)






def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict_proba(model, images, batch_size: int = 256, softmax: bool = True) -> np.ndarray:
    """Class probabilities (N, K) as float64, computed in batches.

    Args:
        model: a Keras model (called with ``training=False``) or any callable ``f(x) -> (N, K)``.
        images: (N,H,W,C) float array.
        batch_size: images per forward pass; default 256.
        softmax: default True applies a softmax to the outputs (the twins output logits); pass
            False if the model already outputs probabilities.
    """
    x = np.asarray(images)
    outs = []
    f = forward(model) if _is_keras(model) else model
    for start in range(0, x.shape[0], batch_size):
        out = f(x[start:start + batch_size])
        outs.append(np.asarray(out, dtype=np.float64))
    out = np.concatenate(outs, axis=0)
    if out.ndim != 2 or out.shape[0] != x.shape[0]:
        raise ValueError(f"model must return (N, classes) outputs, got {out.shape}")
    return _softmax(out) if softmax else out


def _is_keras(model) -> bool:
    if "tensorflow" not in sys.modules:  # a Keras model implies TF is already imported
        return False
    from tensorflow import keras

    return isinstance(model, keras.Model)


def _target_proba(model, images, targets, batch_size, softmax) -> np.ndarray:
    p = predict_proba(model, images, batch_size, softmax)
    if targets.max() >= p.shape[1] or targets.min() < 0:
        raise ValueError(f"targets must be in [0, {p.shape[1] - 1}], got {targets.min()}..{targets.max()}")
    return p[np.arange(len(targets)), targets]


def _maps_for(images: np.ndarray, maps, reduce) -> np.ndarray:
    m = _check_maps(maps)
    if m.shape[0] != images.shape[0]:
        raise ValueError(f"got {m.shape[0]} maps for {images.shape[0]} images")
    return upsample(_to_2d(m, reduce), images.shape[1:3], np.float64)


def _rise_baseline(x: np.ndarray, baseline, blur_sigma: float | None) -> np.ndarray:
    """:func:`~bnn_saliency.methods.baseline_images` with RISE's blur width by default
    (``max(1, 5 min(H, W) / 224)`` px, about 1 px on CIFAR-10)."""
    if blur_sigma is None:
        blur_sigma = max(1.0, 5.0 * min(x.shape[1:3]) / 224)
    return baseline_images(x, baseline, blur_sigma)


def perturbation_curves(model, images, targets, maps, mode: str = "deletion",
                        n_steps: int | None = None, baseline="black",
                        blur_sigma: float | None = None, reduce=None, batch_size: int = 256,
                        softmax: bool = True, seed: int = 0):
    """Deletion or insertion curves of Petsiuk et al. (2018), all steps batched through the model.

    Pixels are ordered by decreasing map value (ties broken by a fixed random permutation drawn
    with ``seed``, so a constant map gives a random order, not a raster scan). At step k of
    ``n_steps``, the first ``round(k * H*W / n_steps)`` pixels (all channels) are replaced by the
    baseline (``mode="deletion"``, starting from the image) or copied from the image onto the
    baseline (``mode="insertion"``). Each of the N*(n_steps+1) perturbed images is scored by the
    softmax probability of the target class.

    Args:
        model, images, targets: see :func:`predict_proba`; targets (N,) ints or a scalar.
        maps: (N,h,w), (N,h,w,1) or (N,h,w,C) with ``reduce``; upsampled bilinearly to the image
            size if needed. Higher value = more important.
        mode: ``"deletion"`` or ``"insertion"``.
        n_steps: default None -> H (RISE uses 224 steps of 224 pixels on 224x224 images; on CIFAR
            this gives 32 steps of 32 pixels).
        baseline: ``"black"`` (zeros), ``"blur"`` (Gaussian blur of the image), ``"mean"``
            (per-image channel mean), a number, or an array broadcastable to the images.
        blur_sigma: for ``baseline="blur"``; default None -> ``max(1, 5 * min(H, W) / 224)``
            (RISE's sigma 5 at 224 px, scaled with resolution, at least 1 px).
        reduce: channel reduction for (N,h,w,C>1) maps (see :data:`REDUCTIONS`).
        batch_size: perturbed images per forward pass, default 256.
        softmax: apply softmax to model outputs, default True (twins output logits).
        seed: seed of the tie-breaking permutation, default 0.

    Returns:
        ``(curves, fractions)``: curves (N, n_steps+1) of target probabilities, and fractions
        (n_steps+1,) of pixels perturbed at each step (0 ... 1).
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    x = checks.images(images)
    n, h, w, _ = x.shape
    t = checks.targets(targets, n)
    s = _flat(_maps_for(x, maps, reduce))
    hw = h * w
    n_steps = h if n_steps is None else int(n_steps)
    if not 1 <= n_steps <= hw:
        raise ValueError(f"n_steps must be in 1..{hw} (pixels per image), got {n_steps}")
    base = _rise_baseline(x, baseline, blur_sigma)

    tie = np.random.default_rng(seed).random(s.shape)
    order = np.lexsort((tie, -s), axis=-1)          # primary key: -s (last in the tuple)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(hw), s.shape), axis=1)
    rank = rank.reshape(n, h, w)
    counts = np.round(np.linspace(0, hw, n_steps + 1)).astype(np.int64)
    k1 = n_steps + 1

    total = n * k1
    probs = np.empty(total)
    n_classes = None
    keras_model = _is_keras(model)
    for start in range(0, total, batch_size):
        idx = np.arange(start, min(total, start + batch_size))
        si, ki = idx // k1, idx % k1
        changed = (rank[si] < counts[ki][:, None, None])[..., None]
        if mode == "deletion":
            xb = np.where(changed, base[si], x[si])
        else:
            xb = np.where(changed, x[si], base[si])
        out = model(xb, training=False) if keras_model else model(xb)
        out = np.asarray(out, dtype=np.float64)
        if n_classes is None:
            n_classes = out.shape[1]
            if t.max() >= n_classes or t.min() < 0:
                raise ValueError(f"targets must be in [0, {n_classes - 1}]")
        p = _softmax(out) if softmax else out
        probs[idx] = p[np.arange(len(idx)), t[si]]
    return probs.reshape(n, k1), counts / hw


@_register(FAITHFULNESS, "faithfulness", "lower")
def deletion_auc(model, images, targets, maps, n_steps: int | None = None, baseline="black",
                 **kw) -> np.ndarray:
    """Deletion metric (Petsiuk et al. 2018): area under the target-probability curve while the
    most salient pixels are removed first. Lower is better (a faithful map destroys the class fast).

    AUC is the trapezoid rule over the fraction of pixels removed (x from 0 to 1). Defaults:
    ``baseline="black"`` (RISE), ``n_steps=H``; other keywords go to :func:`perturbation_curves`.

    Returns:
        (N,) float64 in [0, 1].

    References:
        Petsiuk, Das, Saenko (2018), RISE, arXiv:1806.07421.
    """
    curves, frac = perturbation_curves(model, images, targets, maps, "deletion", n_steps, baseline, **kw)
    return np.trapz(curves, frac, axis=1)


@_register(FAITHFULNESS, "faithfulness", "higher")
def insertion_auc(model, images, targets, maps, n_steps: int | None = None, baseline="blur",
                  **kw) -> np.ndarray:
    """Insertion metric (Petsiuk et al. 2018): area under the target-probability curve while the
    most salient pixels are inserted first into a baseline. Higher is better.

    Defaults: ``baseline="blur"`` (RISE inserts into a blurred copy), ``n_steps=H``; other
    keywords go to :func:`perturbation_curves`.

    Returns:
        (N,) float64 in [0, 1].

    References:
        Petsiuk, Das, Saenko (2018), RISE, arXiv:1806.07421.
    """
    curves, frac = perturbation_curves(model, images, targets, maps, "insertion", n_steps, baseline, **kw)
    return np.trapz(curves, frac, axis=1)


def explanation_images(images, maps, reduce=None, constant: str = "zero") -> np.ndarray:
    """The "explanation map" ``E = image * M`` of Chattopadhay et al. (2018).

    ``M`` is the map upsampled bilinearly to the image size and min-max normalized per sample to
    [0, 1], broadcast over the image channels.

    Args:
        images: (N,H,W,C) floats.
        maps: (N,h,w), (N,h,w,1), or (N,h,w,C) with ``reduce``.
        reduce: channel reduction for C>1.
        constant: what a constant map (which cannot be min-max normalized, e.g. an all-zero
            Grad-CAM after the ReLU) becomes: ``"zero"`` (default; same as the common
            ``(m - min) / (max - min + eps)`` implementations, i.e. a black image), ``"one"`` (the
            unmasked image) or ``"nan"`` (flag it; the scores of that sample become NaN).
    """
    x = checks.images(images)
    m, const = _minmax(_maps_for(x, maps, reduce))
    if constant == "one":
        m[const] = 1.0
    elif constant == "nan":
        m[const] = np.nan
    elif constant != "zero":
        raise ValueError(f"constant must be 'zero', 'one' or 'nan', got {constant!r}")
    return x * m[..., None].astype(x.dtype)


def _y_and_o(model, images, targets, maps, reduce=None, constant="zero", batch_size=256,
             softmax=True):
    x = checks.images(images)
    t = checks.targets(targets, x.shape[0])
    e = explanation_images(x, maps, reduce, constant)
    undefined = ~np.isfinite(e.reshape(len(e), -1)).all(axis=1)
    y = _target_proba(model, x, t, batch_size, softmax)
    o = np.full_like(y, np.nan)
    if (~undefined).any():
        o[~undefined] = _target_proba(model, e[~undefined], t[~undefined], batch_size, softmax)
    return y, o


def _drop(y, o):
    # 0/0 (Y = 0 exactly, float underflow) is defined as no drop.
    with np.errstate(invalid="ignore", divide="ignore"):
        d = 100.0 * np.maximum(0.0, y - o) / y
    return np.where((y == 0) & np.isfinite(o), 0.0, d)


def _increase(y, o):
    return np.where(np.isfinite(o), 100.0 * (y < o), np.nan)


def _gain(y, o):
    # 0/0 (Y = 1 exactly, so O cannot exceed it) is defined as no gain.
    with np.errstate(invalid="ignore", divide="ignore"):
        g = 100.0 * np.maximum(0.0, o - y) / (1.0 - y)
    return np.where((y == 1) & np.isfinite(o), 0.0, g)


_ADI_DOC = """

    Y is the softmax probability of the target class on the image, O the same on the explanation
    image ``image * M`` (M = map upsampled and min-max normalized; see :func:`explanation_images`).
    Keywords: ``reduce``, ``constant`` ("zero" default / "one" / "nan"), ``batch_size`` (256),
    ``softmax`` (True: model outputs logits).

    Returns:
        (N,) float64 per-sample values in percent; their mean is the paper's aggregate.
"""


@_register(FAITHFULNESS, "faithfulness", "lower")
def average_drop(model, images, targets, maps, **kw) -> np.ndarray:
    """Per-sample Average Drop ``100 * max(0, Y - O) / Y`` (Chattopadhay et al. 2018, arXiv:1710.11063).

    Lower is better. ``Y = 0`` exactly gives 0."""
    return _drop(*_y_and_o(model, images, targets, maps, **kw))


@_register(FAITHFULNESS, "faithfulness", "higher")
def increase_in_confidence(model, images, targets, maps, **kw) -> np.ndarray:
    """Per-sample Increase in Confidence ``100 * 1[Y < O]`` (Chattopadhay et al. 2018).

    Higher is better; the mean is the percentage of images whose confidence increased."""
    return _increase(*_y_and_o(model, images, targets, maps, **kw))


@_register(FAITHFULNESS, "faithfulness", "higher")
def average_gain(model, images, targets, maps, **kw) -> np.ndarray:
    """Per-sample Average Gain ``100 * max(0, O - Y) / (1 - Y)`` (Zhang et al. 2023, Opti-CAM,
    arXiv:2301.07002). Higher is better. ``Y = 1`` exactly gives 0.

    The normalisation is Opti-CAM's: by ``1 - Y``, the largest gain possible, so AG lies in
    [0, 100]. Torres Figueroa et al. (2024, arXiv:2404.15024, eq. 17) divide by ``Y`` instead,
    which is unbounded for small ``Y``. No claim of the book rests on AG, so the choice changes
    no verdict."""
    return _gain(*_y_and_o(model, images, targets, maps, **kw))


for _f in (average_drop, increase_in_confidence, average_gain):
    _f.__doc__ += _ADI_DOC


def average_drop_increase_gain(model, images, targets, cams, per_sample: bool = False,
                               **kw) -> dict:
    """Average Drop, Average Increase and Average Gain in one pass (two forward passes in total).

    Implements eqs. 15-17 of the interpretable-gradients paper (Torres Figueroa et al. 2024),
    with Y the target softmax probability on the image and O on ``image * M`` (M the upsampled,
    min-max normalized CAM)::

        AD = 100/N sum_i max(0, Y_i - O_i) / Y_i          (Chattopadhay et al. 2018)
        AI = 100/N sum_i 1[Y_i < O_i]                     (Chattopadhay et al. 2018, "increase
                                                            in confidence")
        AG = 100/N sum_i max(0, O_i - Y_i) / (1 - Y_i)    (Zhang et al. 2023, Opti-CAM)

    Args:
        model: Keras model or callable returning logits (or probabilities with ``softmax=False``).
        images: (N,H,W,C) floats in [0, 1].
        targets: (N,) class indices or a scalar.
        cams: (N,h,w) maps (any resolution; upsampled bilinearly), or (N,h,w,C) with ``reduce``.
        per_sample: default False returns the three means (NaN samples ignored); True returns the
            three (N,) arrays plus ``"y"`` and ``"o"``.
        **kw: ``reduce``, ``constant``, ``batch_size``, ``softmax`` (see :func:`explanation_images`,
            :func:`predict_proba`).

    Returns:
        dict with keys ``"average_drop"``, ``"average_increase"``, ``"average_gain"`` (percent).

    References:
        Chattopadhay et al. (2018), Grad-CAM++, arXiv:1710.11063. Zhang et al. (2023), Opti-CAM,
        arXiv:2301.07002. Torres Figueroa et al. (2024), A Learning Paradigm for Interpretable
        Gradients, arXiv:2404.15024.
    """
    y, o = _y_and_o(model, images, targets, cams, **kw)
    out = {"average_drop": _drop(y, o), "average_increase": _increase(y, o),
           "average_gain": _gain(y, o)}
    if per_sample:
        return {**out, "y": y, "o": o}
    if np.isnan(o).all():
        return {k: float("nan") for k in out}
    return {k: float(np.nanmean(v)) for k, v in out.items()}
