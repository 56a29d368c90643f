"""Building blocks of the Grad-CAM chapter: multi-layer Grad-CAM, map variants, blank maps,
batched Average Drop / Increase / Gain, and seed-aware effect sizes.

Grad-CAM of a layer with activations ``A^k`` (``k = 1..K`` channels) is ``ReLU(L)`` with the
*signed map* ``L = sum_k alpha_k A^k`` and ``alpha_k = mean_ij d logit[t] / d A^k_ij``
(Selvaraju et al.). Everything here starts from ``L``:

* :func:`gradcam_layers` computes ``L``, ``alpha`` and the channel means of ``A`` for many
  layers in **one** forward/backward pass (the same numbers as
  :func:`bnn_saliency.saliency.gradcam` layer by layer, at a fraction of the cost);
* :func:`cam_variants` derives the maps the chapter compares: Grad-CAM ``ReLU(L)``, the map
  without the ReLU ``L``, its inversion ``-L`` (Widdicombe & Julier's remark) and the
  counterfactual ``ReLU(-L)``;
* :func:`blank_maps` flags maps whose ReLU leaves (almost) nothing;
* :func:`sign_structure` splits ``L`` into its spatial mean (the *offset*
  ``c = sum_k alpha_k mean(A^k)``) and the spatial pattern ``L - c``: a ReLU'd map is blank
  exactly when ``max(L - c) <= -c``, so a large negative offset blanks the map whatever the
  pattern;
* :func:`faithfulness` scores many maps of one model with Average Drop / Increase / Gain
  (Chattopadhay et al. 2018; Zhang et al. 2023), computing the unmasked prediction once,
  optionally with a coverage-neutral binary mask (:func:`top_fraction_mask`);
* :func:`excess_over_baseline` is the effect size "FP-vs-BNN difference beyond seed
  variation" with a bootstrap interval.

References:
    Selvaraju et al. 2019, "Grad-CAM", IJCV, arXiv:1610.02391.
    Chattopadhay et al. 2018, "Grad-CAM++", WACV, arXiv:1710.11063 (Average Drop, Increase).
    Zhang et al. 2023, "Opti-CAM", arXiv:2301.07002 (Average Gain).
    Widdicombe & Julier 2020, "Gradient-based interpretability methods and binarized neural
    networks", arXiv:2106.12569 (section 3.4: Grad-CAM on BNNs).
    Efron & Tibshirani 1993, An Introduction to the Bootstrap (percentile intervals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from . import metrics, stats

#: Default tolerance of :func:`blank_maps`, relative to the largest |L| of the same map.
BLANK_TOL = 0.01
#: Map variants of :func:`cam_variants`, in display order.
VARIANTS = ("Grad-CAM", "no ReLU", "inverted", "inverted+ReLU")


# ----------------------------------------------------------------------------- validation
def _check_inputs(model, images, targets) -> tuple[np.ndarray, np.ndarray]:
    from tensorflow import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a tf.keras Model, got {type(model).__name__}")
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"images must be a non-empty (N, H, W, C) array, got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"images must be float (see data.to_float), got dtype {x.dtype}")
    t = np.asarray(targets)
    if t.dtype.kind not in "iu":
        raise TypeError(f"targets must be integer class indices, got dtype {t.dtype}")
    if t.ndim == 0:
        t = np.full(len(x), int(t))
    if t.shape != (len(x),):
        raise ValueError(f"targets must be a scalar or have shape ({len(x)},), got {t.shape}")
    n_classes = int(model.outputs[0].shape[-1])
    if t.min() < 0 or t.max() >= n_classes:
        raise ValueError(f"targets must be in [0, {n_classes}), got {t.min()}..{t.max()}")
    dtype = model.inputs[0].dtype
    dtype = np.float64 if dtype == "float64" else np.float32
    return x.astype(dtype, copy=False), t.astype(np.int32)


def _check_layers(model, layers: Sequence[str]) -> list[str]:
    if isinstance(layers, str) or not layers:
        raise ValueError("layers must be a non-empty list of layer names, e.g. ['conv6']")
    names = [lay.name for lay in model.layers]
    out = []
    for name in layers:
        if name not in names:
            raise KeyError(f"model {model.name!r} has no layer {name!r}; it has {names}")
        rank = model.get_layer(name).output.shape.rank
        if rank != 4:
            raise ValueError(f"layer {name!r} outputs a rank-{rank} tensor; Grad-CAM needs a 4-D "
                             "(N, h, w, K) feature map")
        out.append(name)
    return out


# ----------------------------------------------------------------------- multi-layer CAM
@dataclass
class CamParts:
    """Grad-CAM ingredients of one layer for N images.

    Attributes:
        signed: (N, h, w) float32, ``L = sum_k alpha_k A^k`` (Grad-CAM before its ReLU).
        alpha: (N, K) float32 channel weights (spatially averaged gradients).
        act_mean: (N, K) float32 spatial means of the activations ``A^k``.
    """

    signed: np.ndarray
    alpha: np.ndarray
    act_mean: np.ndarray


def _multi_cam_fn(model, layers: tuple[str, ...]):
    import tensorflow as tf
    from tensorflow import keras

    cache = model.__dict__.setdefault("_camstudy_cache", {})
    if layers not in cache:
        sub = keras.Model(model.inputs, [model.get_layer(n).output for n in layers]
                          + [model.outputs[0]])
        dtype = model.inputs[0].dtype
        spec = tf.TensorSpec((None,) + tuple(model.inputs[0].shape[1:]), dtype)

        @tf.function(input_signature=[spec, tf.TensorSpec((None,), tf.int32)])
        def fn(x, t):
            with tf.GradientTape() as tape:
                tape.watch(x)
                *acts, logits = sub(x, training=False)
                score = tf.gather(logits, t, axis=1, batch_dims=1)
            grads = tape.gradient(score, acts, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            out = []
            for a, g in zip(acts, grads):
                a = tf.cast(a, tf.float64)
                alpha = tf.reduce_mean(tf.cast(g, tf.float64), axis=[1, 2])
                out += [tf.einsum("nhwk,nk->nhw", a, alpha), alpha, tf.reduce_mean(a, axis=[1, 2])]
            return out

        cache[layers] = fn
    return cache[layers]


def gradcam_layers(model, images, targets, layers: Sequence[str], *,
                   batch_size: int = 64) -> dict[str, CamParts]:
    """Grad-CAM ingredients of several layers from one forward/backward pass per batch.

    Same definition as :func:`bnn_saliency.saliency.gradcam` (target logit, inference mode,
    ``alpha_k`` = spatial mean of the gradient; products and sums in float64): ``ReLU`` of
    ``result[layer].signed`` is Grad-CAM of that layer.

    Args:
        model: tf.keras model with one input, logits output.
        images: float (N, H, W, C) in the model's input space.
        targets: int (N,) class indices (a scalar broadcasts).
        layers: names of 4-D layers.
        batch_size: images per compiled call (default 64).

    Returns:
        layer name -> :class:`CamParts`.

    References:
        Selvaraju et al. 2019, arXiv:1610.02391.
    """
    import tensorflow as tf

    x, t = _check_inputs(model, images, targets)
    layers = tuple(_check_layers(model, layers))
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    fn = _multi_cam_fn(model, layers)
    parts: list[list[np.ndarray]] = [[] for _ in range(3 * len(layers))]
    for s in range(0, len(x), batch_size):
        res = fn(tf.constant(x[s:s + batch_size]), tf.constant(t[s:s + batch_size]))
        for store, r in zip(parts, res):
            store.append(r.numpy())
    out = {}
    for i, name in enumerate(layers):
        sig, alpha, mean = (np.concatenate(parts[3 * i + j]).astype(np.float32) for j in range(3))
        out[name] = CamParts(sig, alpha, mean)
    return out


# ----------------------------------------------------------------------------- variants
def cam_variants(signed) -> dict[str, np.ndarray]:
    """The four maps compared in the chapter, from the signed map ``L`` (N, h, w).

    ``"Grad-CAM"`` = ``ReLU(L)`` (Selvaraju et al.); ``"no ReLU"`` = ``L``; ``"inverted"`` =
    ``-L`` (Widdicombe & Julier's "remove the ReLU and invert"); ``"inverted+ReLU"`` =
    ``ReLU(-L)`` (Grad-CAM with negated weights, Selvaraju et al.'s counterfactual map).
    """
    L = np.asarray(signed, dtype=np.float32)
    if L.ndim != 3:
        raise ValueError(f"signed maps must have shape (N, h, w), got {L.shape}")
    return {"Grad-CAM": np.maximum(L, 0), "no ReLU": L, "inverted": -L,
            "inverted+ReLU": np.maximum(-L, 0)}


def blank_maps(signed, tol: float = BLANK_TOL) -> np.ndarray:
    """Which Grad-CAM maps are blank: ``max(ReLU(L)) <= tol * max|L|`` per map.

    A map is blank if the ReLU removes everything (all of ``L <= 0``, which includes
    ``L == 0``) or leaves only values below ``tol`` times the map's largest magnitude
    before the ReLU. ``tol=0`` counts only exactly blank maps.

    Args:
        signed: (N, h, w) signed maps ``L`` (before the ReLU).
        tol: relative tolerance in [0, 1) (default :data:`BLANK_TOL` = 0.01).

    Returns:
        (N,) bool.
    """
    L = np.asarray(signed, dtype=np.float64)
    if L.ndim < 2 or L.shape[0] == 0:
        raise ValueError(f"signed maps must have shape (N, h, w), got {L.shape}")
    if not 0 <= tol < 1:
        raise ValueError(f"tol must be in [0, 1), got {tol!r}")
    flat = L.reshape(len(L), -1)
    return np.maximum(flat.max(axis=1), 0.0) <= tol * np.abs(flat).max(axis=1)


def sign_structure(parts: CamParts, tol: float = BLANK_TOL) -> pd.DataFrame:
    """Per-image sign structure of Grad-CAM's weighted sum ``L = sum_k alpha_k A^k``.

    Columns: ``frac_neg_alpha`` (fraction of channels with ``alpha_k < 0``),
    ``frac_pos_pixels`` (fraction of positions with ``L > 0``, i.e. what the ReLU keeps),
    ``offset`` ``c = mean_ij L = sum_k alpha_k mean(A^k)``, ``spread`` ``max(L) - min(L)``,
    ``offset_ratio`` ``c / spread`` (0 for a constant map), ``offset_pos`` and ``offset_neg``
    (the part of ``c`` from channels with positive / negative weight), and ``blank``
    (:func:`blank_maps`).
    """
    L = parts.signed.astype(np.float64)
    flat = L.reshape(len(L), -1)
    alpha = parts.alpha.astype(np.float64)
    contrib = alpha * parts.act_mean.astype(np.float64)
    offset = contrib.sum(axis=1)
    spread = np.ptp(flat, axis=1)
    return pd.DataFrame({
        "image": np.arange(len(L)),
        "frac_neg_alpha": (alpha < 0).mean(axis=1),
        "frac_pos_pixels": (flat > 0).mean(axis=1),
        "offset": offset,
        "spread": spread,
        "offset_ratio": np.where(spread > 0, offset / np.where(spread > 0, spread, 1.0), 0.0),
        "offset_pos": np.where(alpha > 0, contrib, 0.0).sum(axis=1),
        "offset_neg": np.where(alpha < 0, contrib, 0.0).sum(axis=1),
        "blank": blank_maps(L, tol),
    })


# ---------------------------------------------------------------------------- faithfulness
def fast_logits(model):
    """A compiled forward pass ``f(x: np.ndarray) -> np.ndarray`` of logits (inference mode),
    usable wherever :mod:`bnn_saliency.metrics` accepts a model callable."""
    import tensorflow as tf

    cache = model.__dict__.setdefault("_camstudy_cache", {})
    if "logits" not in cache:
        dtype = model.inputs[0].dtype
        spec = tf.TensorSpec((None,) + tuple(model.inputs[0].shape[1:]), dtype)
        compiled = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        np_dtype = np.float64 if dtype == "float64" else np.float32

        def f(x):
            return compiled(tf.constant(np.asarray(x, dtype=np_dtype))).numpy()

        cache["logits"] = f
    return cache["logits"]


def top_fraction_mask(maps, size: tuple[int, int], fraction: float = 0.5,
                      seed: int = 0) -> np.ndarray:
    """Binary masks keeping the ``fraction`` of pixels with the highest map value.

    Maps are upsampled bilinearly to ``size`` (:func:`bnn_saliency.metrics.resize_maps`,
    as for Average Drop); exactly ``round(fraction * H * W)`` pixels are kept, ties broken by
    a fixed random permutation drawn with ``seed`` (so a constant map keeps a random subset).
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
    up = metrics.resize_maps(m, size).reshape(len(m), -1)
    k = int(round(fraction * up.shape[1]))
    tie = np.random.default_rng(seed).random(up.shape)
    order = np.lexsort((tie, -up), axis=-1)
    mask = np.zeros_like(up, dtype=np.float32)
    np.put_along_axis(mask, order[:, :k], 1.0, axis=1)
    return mask.reshape((len(m),) + tuple(size))


def faithfulness(model, images, targets, cams: dict[str, np.ndarray], *,
                 constant: str = "zero", top_fraction: float | None = None,
                 batch_size: int = 256, seed: int = 0) -> pd.DataFrame:
    """Average Drop, Increase in Confidence and Average Gain of several maps of one model.

    Same definitions as :func:`bnn_saliency.metrics.average_drop_increase_gain` (Y = target
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
            :func:`bnn_saliency.metrics.explanation_images`: ``"zero"`` (default; black image),
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
    f = fast_logits(model)
    rows = np.arange(len(x))
    y = metrics.predict_proba(f, x, batch_size)[rows, t]
    frames = []
    for name, cam in cams.items():
        cam = np.asarray(cam)
        if cam.shape[0] != len(x):
            raise ValueError(f"cams[{name!r}] has {cam.shape[0]} maps for {len(x)} images")
        if top_fraction is None:
            e = metrics.explanation_images(x, cam, constant=constant)
        else:
            e = x * top_fraction_mask(cam, x.shape[1:3], top_fraction, seed)[..., None].astype(x.dtype)
        ok = np.isfinite(e.reshape(len(e), -1)).all(axis=1)
        o = np.full(len(x), np.nan)
        if ok.any():
            o[ok] = metrics.predict_proba(f, e[ok], batch_size)[np.arange(ok.sum()), t[ok]]
        with np.errstate(invalid="ignore", divide="ignore"):
            drop = np.where(y == 0, 0.0, 100.0 * np.maximum(0.0, y - o) / y)
            gain = np.where(y == 1, 0.0, 100.0 * np.maximum(0.0, o - y) / (1.0 - y))
        inc = 100.0 * (y < o)
        undefined = ~np.isfinite(o)
        drop[undefined] = gain[undefined] = inc[undefined] = np.nan
        frames.append(pd.DataFrame({"variant": name, "image": rows, "y": y, "o": o,
                                    "average_drop": drop, "average_increase": inc,
                                    "average_gain": gain}))
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- agreement
def agreement(maps_a, maps_b, size: tuple[int, int] | None = None) -> np.ndarray:
    """Spearman rank correlation of two batches of CAMs, per image.

    Both are upsampled bilinearly to ``size`` (e.g. the image size) first, so maps of
    different resolution can be compared; ``None`` requires equal shapes. NaN where a map
    is constant (e.g. a blank Grad-CAM).
    """
    a, b = np.asarray(maps_a, dtype=np.float64), np.asarray(maps_b, dtype=np.float64)
    if size is not None:
        a, b = metrics.resize_maps(a, size), metrics.resize_maps(b, size)
    return metrics.spearman_signed(a, b)


# ------------------------------------------------------------------------- bookkeeping
KIND_LABELS = {"fp": "FP", "bnn": "BNN", "binw": "binary weights", "bina": "binary activations",
               "imagenet-fp": "FP", "imagenet-bnn": "BNN"}


def kind_of(name: str) -> str:
    """``"FP"``, ``"BNN"``, ``"binary weights"`` or ``"binary activations"`` for a registered
    model name (twins by variant, ImageNet nets by kind)."""
    from . import models

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


def pair_differences(scores: pd.DataFrame, pairs: Sequence[tuple[str, str]], measure: str,
                     variant_a: str = "Grad-CAM", variant_b: str | None = None) -> np.ndarray:
    """Per-image differences ``value(b, variant_b) - value(a, variant_a)`` for each pair.

    Args:
        scores: long table with columns model, variant, measure, image, value.
        pairs: (a, b) model names.
        measure: which measure.
        variant_a, variant_b: map variants (``variant_b`` defaults to ``variant_a``).

    Returns:
        (n_images, len(pairs)) float64 array (NaN where either value is undefined).
    """
    variant_b = variant_a if variant_b is None else variant_b
    sel = scores[scores["measure"] == measure]
    table = sel.pivot_table(index="image", columns=["model", "variant"], values="value",
                            aggfunc="first", dropna=False)
    cols = []
    for a, b in pairs:
        for key in ((a, variant_a), (b, variant_b)):
            if key not in table.columns:
                raise KeyError(f"no {measure!r} values for model {key[0]!r}, variant {key[1]!r}")
        cols.append(table[(b, variant_b)].to_numpy(float) - table[(a, variant_a)].to_numpy(float))
    if not cols:
        raise ValueError("pairs is empty")
    return np.stack(cols, axis=1)


# --------------------------------------------------------------------------- statistics
def _excess_stat(n_cross: int, n_base: int):
    def stat(x, axis):
        m = np.nanmean(x, axis=axis)
        cross = m[..., :n_cross].mean(axis=-1)
        if n_base == 0:
            return cross
        return cross - np.abs(m[..., n_cross:]).max(axis=-1)
    return stat


def excess_over_baseline(cross, baseline=None, n_boot: int = 2000, seed: int = 0) -> stats.CI:
    """Mean cross-kind difference minus the largest baseline difference, with a bootstrap CI.

    ``cross[:, p]`` are per-image differences of one score between the two kinds (e.g.
    AD(BNN) - AD(FP) for the FP/BNN pair of seed p); ``baseline[:, q]`` the same difference
    between two models of one kind (e.g. AD(FP s0) - AD(FP s1)). The statistic is

        mean_p mean_i cross[i, p]  -  max_q |mean_i baseline[i, q]|

    i.e. how far the FP-vs-BNN difference exceeds the largest seed-to-seed difference; images
    are resampled jointly for all columns (percentile bootstrap, NaNs ignored). With no
    baseline columns it is the mean cross difference.

    Args:
        cross: (n,) or (n, P) per-image differences.
        baseline: None or (n,) / (n, Q) per-image differences.

    Returns:
        :class:`bnn_saliency.stats.CI` (point, low, high).
    """
    c = np.asarray(cross, dtype=np.float64)
    c = c[:, None] if c.ndim == 1 else c
    b = np.empty((len(c), 0)) if baseline is None else np.asarray(baseline, dtype=np.float64)
    b = b[:, None] if b.ndim == 1 else b
    if c.ndim != 2 or b.ndim != 2 or len(b) != len(c) or c.shape[1] == 0:
        raise ValueError(f"cross must be (n, P>=1) and baseline (n, Q), got {c.shape} and {b.shape}")
    return stats.bootstrap_ci(np.concatenate([c, b], axis=1), stat=_excess_stat(c.shape[1], b.shape[1]),
                              n_boot=n_boot, seed=seed)


__all__ = ["BLANK_TOL", "VARIANTS", "CamParts", "gradcam_layers", "cam_variants", "blank_maps",
           "sign_structure", "fast_logits", "top_fraction_mask", "faithfulness", "agreement",
           "kind_of", "stratified_subset", "pair_differences", "excess_over_baseline"]
