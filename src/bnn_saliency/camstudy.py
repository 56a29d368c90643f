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

The second half of the module assembles these into the chapter's tables: per-model scores
(:func:`score_table`), agreement with the FP twin (:func:`agreement_table`,
:func:`agreement_gap`), the sign structure (:func:`sign_table`), Grad-CAM along depth
(:func:`depth_table`), Grad-CAM / Grad-CAM++ / Score-CAM side by side (:func:`method_maps`,
:func:`method_table`) and the robustness of every Average-Drop test to the scoring of blank
maps (:func:`rescore_constant_maps`, :func:`ad_tests`, :func:`judge_tests`).

References:
    Selvaraju et al. 2019, "Grad-CAM", IJCV, arXiv:1610.02391.
    Chattopadhay et al. 2018, "Grad-CAM++", WACV, arXiv:1710.11063 (Average Drop, Increase).
    Zhang et al. 2023, "Opti-CAM", arXiv:2301.07002 (Average Gain).
    Widdicombe & Julier 2021, "Gradient-based interpretability methods and binarized neural
    networks", arXiv:2106.12569 (section 3.4: Grad-CAM on BNNs).
    Efron & Tibshirani 1993, An Introduction to the Bootstrap (percentile intervals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from . import metrics, stats
from .memo import cached

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

        f.__memo_key__ = model
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



# ----------------------------------------------------------------- the chapter's tables
#: faithfulness() column -> the chapter's short measure name.
MEASURES = {"average_drop": "AD", "average_increase": "AI", "average_gain": "AG"}
#: The map variants scored in the chapter (``"inverted+ReLU"`` is shown, not scored).
SCORED = ("Grad-CAM", "no ReLU", "inverted")
#: The CAM methods compared in the pseudo-gradient section.
METHODS = ("Grad-CAM", "Grad-CAM++", "Score-CAM")


def display_cams(cams, size: tuple[int, int]) -> np.ndarray:
    """CAMs as displayed: upsampled bilinearly to ``size`` and min-max normalized per map."""
    from . import postprocess

    return postprocess.normalize(postprocess.upsample(cams, size))


@cached
def model_cams(models: dict, images, targets, layers: dict[str, str]) -> dict[str, CamParts]:
    """:class:`CamParts` of each model at its own Grad-CAM layer ``layers[name]``."""
    missing = sorted(set(models) - set(layers))
    if missing:
        raise KeyError(f"no Grad-CAM layer given for {missing}")
    return {n: gradcam_layers(m, images, targets, [layers[n]])[layers[n]]
            for n, m in models.items()}


def _long_faithfulness(faith: pd.DataFrame) -> pd.DataFrame:
    long = faith.melt(id_vars=["variant", "image"], value_vars=list(MEASURES), var_name="measure")
    long["measure"] = long["measure"].map(MEASURES)
    return long


@cached
def score_table(models: dict, images, targets, signed: dict[str, np.ndarray], kinds: dict,
                *, constant: str = "zero", tol: float = BLANK_TOL, top_fraction: float = 0.5
                ) -> pd.DataFrame:
    """Per model, image and map variant: faithfulness and blank indicators, in one long table.

    For every model (signed maps ``signed[name]`` of ``images``): AD, AI and AG
    (:func:`faithfulness` with ``constant``) of the :data:`SCORED` variants; ``AD@50%``, the
    Average Drop with the binary :func:`top_fraction_mask` (``top_fraction``) of Grad-CAM and of
    the inverted map; ``blank`` (:func:`blank_maps` with ``tol``) and ``blank (exact)``
    (``tol = 0``) of Grad-CAM, as 0/1.

    Returns:
        DataFrame with columns variant, image, measure, value, model, kind.
    """
    rows = []
    for n, m in models.items():
        v = {k: cam for k, cam in cam_variants(signed[n]).items() if k in SCORED}
        faith = faithfulness(m, images, targets, v, constant=constant)
        at50 = faithfulness(m, images, targets, {k: v[k] for k in ("Grad-CAM", "inverted")},
                            top_fraction=top_fraction)
        at50 = at50[["variant", "image", "average_drop"]].rename(columns={"average_drop": "value"})
        blank = pd.DataFrame({"variant": "Grad-CAM", "image": np.arange(len(signed[n])),
                              "measure": "blank",
                              "value": blank_maps(signed[n], tol).astype(float)})
        exact = blank.assign(measure="blank (exact)",
                             value=blank_maps(signed[n], 0.0).astype(float))
        rows += [frame.assign(model=n) for frame in
                 (_long_faithfulness(faith), at50.assign(measure="AD@50%"), blank, exact)]
    scores = pd.concat(rows, ignore_index=True)
    scores["kind"] = scores["model"].map(kinds)
    return scores


def model_table(summary: pd.DataFrame, names: Sequence[str], kinds: dict, columns: Sequence[str],
                variant: str = "Grad-CAM") -> pd.DataFrame:
    """One row per model (in ``names`` order), one column per measure: the summary's means."""
    table = summary[summary["variant"] == variant].pivot(index="model", columns="measure",
                                                         values="mean")
    table = table.loc[list(names), list(columns)]
    table.insert(0, "kind", [kinds[n] for n in table.index])
    return table


def model_rows(summary: pd.DataFrame, measure: str, names: Sequence[str], kinds: dict,
               variant: str = "Grad-CAM") -> pd.DataFrame:
    """The summary rows of one measure and variant, one per model in ``names`` order, with kind."""
    rows = summary[(summary["measure"] == measure) & (summary["variant"] == variant)]
    rows = rows.set_index("model").loc[list(names)].reset_index()
    rows["kind"] = rows["model"].map(kinds)
    return rows


def agreement_table(maps: dict, pairs: dict[str, list[tuple[str, str]]], size, idx=None,
                    variants: Sequence[str] = SCORED) -> pd.DataFrame:
    """Per pair (a, b) and variant: :func:`agreement` of b's variant map with a's Grad-CAM.

    Args:
        maps: model -> :func:`cam_variants` output.
        pairs: group name -> (a, b) pairs.
        size: the image size the maps are upsampled to.
        idx: optional image positions to use (default all).
        variants: b's map variants compared.

    Returns:
        DataFrame with columns group, pair, a, b, variant, image, value.
    """
    pick = slice(None) if idx is None else idx
    rows = []
    for group, group_pairs in pairs.items():
        for a, b in group_pairs:
            ref = maps[a]["Grad-CAM"][pick]
            for variant in variants:
                r = agreement(maps[b][variant][pick], ref, size)
                rows.append(pd.DataFrame({"group": group, "pair": f"{a} vs {b}", "a": a, "b": b,
                                          "variant": variant, "image": np.arange(len(r)),
                                          "value": r}))
    if not rows:
        raise ValueError("no pairs to compare")
    return pd.concat(rows, ignore_index=True)


def pair_mean(agree: pd.DataFrame, pairs: Sequence[tuple[str, str]], variant: str = "Grad-CAM"
              ) -> pd.Series:
    """Per image, the mean agreement over ``pairs`` (an :func:`agreement_table` selection)."""
    labels = [f"{a} vs {b}" for a, b in pairs]
    sel = agree[(agree["variant"] == variant) & agree["pair"].isin(labels)]
    if sel.empty:
        raise KeyError(f"no {variant!r} agreement rows for pairs {labels}")
    return sel.pivot_table(index="image", columns="pair", values="value").mean(axis=1)


def agreement_gap(agree: pd.DataFrame, cross_pairs, base_pairs) -> stats.CI:
    """Mean agreement of the baseline pairs minus that of the cross pairs, per image, with a
    paired bootstrap CI; with no baseline pairs, ``1 - agreement`` of the cross pairs."""
    cross = pair_mean(agree, cross_pairs)
    if not base_pairs:
        return stats.bootstrap_ci(1.0 - cross.to_numpy())
    both = pd.concat([pair_mean(agree, base_pairs), cross], axis=1, join="inner")
    return stats.paired_bootstrap_diff(both.iloc[:, 0].to_numpy(), both.iloc[:, 1].to_numpy())


def excess(scores: pd.DataFrame, cross_pairs, base_pairs, measure: str,
           variant: str = "Grad-CAM") -> stats.CI:
    """:func:`excess_over_baseline` of one measure: the cross pairs' difference beyond the
    largest baseline (seed) difference; the plain cross difference without baseline pairs."""
    cross = pair_differences(scores, cross_pairs, measure, variant)
    base = pair_differences(scores, base_pairs, measure, variant) if base_pairs else None
    return excess_over_baseline(cross, base)


def cap_verdict(verdict: str, has_baseline: bool) -> str:
    """Without a seed baseline a test cannot be "reproduced": cap the verdict at "partly"."""
    return verdict if has_baseline or verdict != "reproduced" else "partly"


def variant_gain(scores: pd.DataFrame, models: Sequence[str], measure: str, variant: str,
                 reference: str = "Grad-CAM") -> stats.CI:
    """Per image, ``measure(reference) - measure(variant)`` averaged over ``models``, with a
    bootstrap CI (for Average Drop: positive when ``variant`` is more faithful)."""
    own = [(m, m) for m in models]
    return stats.bootstrap_ci(-pair_differences(scores, own, measure, reference, variant)
                              .mean(axis=1))


def kind_rate(scores: pd.DataFrame, measure: str, kind: str) -> float:
    """Mean of ``measure`` over all rows of models of one kind (e.g. the blank rate of BNNs)."""
    sel = scores[(scores["measure"] == measure) & (scores["kind"] == kind)]
    return float(sel["value"].mean())


def sign_table(parts: dict[str, CamParts], kinds: dict, idx=None, tol: float = BLANK_TOL
               ) -> pd.DataFrame:
    """:func:`sign_structure` of every model's Grad-CAM layer (images ``idx``), with model and
    kind columns."""
    pick = slice(None) if idx is None else idx
    return pd.concat([sign_structure(CamParts(p.signed[pick], p.alpha[pick], p.act_mean[pick]),
                                     tol).assign(model=n, kind=kinds[n])
                      for n, p in parts.items()], ignore_index=True)


def kind_mean_ci(table: pd.DataFrame, column: str, kind: str) -> stats.CI:
    """Per image, the mean of ``column`` over the models of one kind, with a bootstrap CI."""
    sel = table.loc[table["kind"] == kind]
    if sel.empty:
        raise KeyError(f"no rows of kind {kind!r}")
    return stats.bootstrap_ci(sel.groupby("image")[column].mean().to_numpy())


@cached
def depth_table(models: dict, images, targets, kinds: dict, *, constant: str = "zero",
                tol: float = BLANK_TOL) -> pd.DataFrame:
    """Average Drop and blank rate of Grad-CAM at every block of each twin.

    Layers: the block outputs of :func:`bnn_saliency.twins.conv_block_outputs` (tensor
    ``"block"``) and, for VGG twins, the batch-normalized ``bn1..bn6`` and activated
    ``act1..act6`` tensors, all from one :func:`gradcam_layers` pass per model.

    Args:
        models: twin name (``<family>-...``) -> model.

    Returns:
        DataFrame with columns model, kind, family, layer, tensor, block, measure (AD, blank),
        image, value.
    """
    from . import twins

    rows = []
    for n, m in models.items():
        family = n.split("-")[0]
        layers = {name: ("block", i + 1) for i, name in enumerate(twins.conv_block_outputs(m, family))}
        if family == "vgg":
            layers.update({f"{p}{i}": (p, i) for p in ("bn", "act") for i in range(1, 7)})
        by_layer = gradcam_layers(m, images, targets, list(layers))
        cams = {name: np.maximum(cp.signed, 0) for name, cp in by_layer.items()}
        ad = faithfulness(m, images, targets, cams, constant=constant)
        for name, (tensor, block) in layers.items():
            blank = blank_maps(by_layer[name].signed, tol).astype(float)
            vals = ad.loc[ad["variant"] == name, "average_drop"].to_numpy()
            for measure, v in (("AD", vals), ("blank", blank)):
                rows.append(pd.DataFrame({"model": n, "kind": kinds[n], "family": family,
                                          "layer": name, "tensor": tensor, "block": block,
                                          "measure": measure, "image": np.arange(len(v)),
                                          "value": v}))
    if not rows:
        raise ValueError("no models given")
    return pd.concat(rows, ignore_index=True)


def layer_difference_ci(depth: pd.DataFrame, model: str, layers_a: Sequence[str],
                        layers_b: Sequence[str], measure: str = "AD") -> stats.CI:
    """Per image, ``measure(a) - measure(b)`` averaged over the layer pairs (a, b), with a
    bootstrap CI (e.g. ``act1..act6`` vs ``bn1..bn6``)."""
    def values(layer):
        sel = depth[(depth["model"] == model) & (depth["layer"] == layer)
                    & (depth["measure"] == measure)]
        if sel.empty:
            raise KeyError(f"no {measure!r} rows for model {model!r}, layer {layer!r}")
        return sel.sort_values("image")["value"].to_numpy()

    if len(layers_a) != len(layers_b) or not layers_a:
        raise ValueError("give two equally long, non-empty lists of layers")
    diffs = [values(a) - values(b) for a, b in zip(layers_a, layers_b)]
    return stats.bootstrap_ci(np.mean(diffs, axis=0))


def best_layers(depth_summary: pd.DataFrame, family: str = "vgg", measure: str = "AD"
                ) -> pd.DataFrame:
    """Per kind, the summary row of the layer with the lowest mean ``measure``."""
    sel = depth_summary[(depth_summary["measure"] == measure) & (depth_summary["family"] == family)]
    return sel.sort_values("mean").groupby("kind").first()


@cached
def method_maps(models: dict, images, targets, layers: dict[str, dict[str, str]], *,
                skip: dict[str, int] | None = None, max_n: int | None = None,
                batch_size: int = 64) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Grad-CAM, Grad-CAM++ and Score-CAM maps of each model at each of its layers.

    Args:
        models: name -> model.
        images, targets: the images to explain.
        layers: name -> {layer role: layer name}.
        skip: name -> number of leading images for which Score-CAM (one forward pass per
            channel) is not computed; their Score-CAM maps are zeros.
        max_n, batch_size: passed to :func:`bnn_saliency.saliency.scorecam`.

    Returns:
        (name, role) -> {method: (N, h, w) maps}.
    """
    from . import saliency

    skip = skip or {}
    out = {}
    for n, m in models.items():
        first = skip.get(n, 0)
        by_layer = gradcam_layers(m, images, targets, list(layers[n].values()))
        for role, layer in layers[n].items():
            score = saliency.scorecam(m, images[first:], targets[first:], layer=layer, max_n=max_n,
                                      batch_size=batch_size)
            out[n, role] = {
                "Grad-CAM": np.maximum(by_layer[layer].signed, 0),
                "Grad-CAM++": saliency.gradcam_plus_plus(m, images, targets, layer=layer),
                "Score-CAM": np.concatenate([np.zeros((first,) + score.shape[1:], np.float32),
                                             score])}
    return out


def method_table(models: dict, maps: dict, images, targets, kinds: dict, *,
                 constant: str = "zero") -> pd.DataFrame:
    """AD/AI/AG and the exact blank indicator of every :func:`method_maps` map.

    ``maps`` must hold maps of exactly ``images`` (slice off panel images first).

    Returns:
        DataFrame with columns variant (the method), image, measure, value, model, layer, kind.
    """
    rows = []
    for (n, layer), by_method in maps.items():
        f = faithfulness(models[n], images, targets, by_method, constant=constant)
        blank = [pd.DataFrame({"variant": k, "image": np.arange(len(c)), "measure": "blank",
                               "value": blank_maps(c, 0.0).astype(float)})
                 for k, c in by_method.items()]
        rows += [frame.assign(model=n, layer=layer) for frame in [_long_faithfulness(f)] + blank]
    table = pd.concat(rows, ignore_index=True)
    table["kind"] = table["model"].map(kinds)
    return table


def method_deltas(table: pd.DataFrame, layer: str, pairs, methods: Sequence[str] = METHODS
                  ) -> dict[str, np.ndarray]:
    """Per method, the per-image AD(b) - AD(a) averaged over ``pairs``, at one layer role."""
    sel = table[table["layer"] == layer]
    return {meth: pair_differences(sel, pairs, "AD", meth).mean(axis=1) for meth in methods}


def rescore_constant_maps(table: pd.DataFrame, constant: str, models: dict,
                          maps: dict[tuple[str, str], np.ndarray], images, targets
                          ) -> pd.DataFrame:
    """``table`` with the AD/AI/AG of constant maps rescored under another ``constant``.

    Only constant maps depend on the ``constant`` rule of :func:`faithfulness`, so only they are
    recomputed. ``maps``: (model, variant) -> the maps ``table`` scored, of ``images``.
    """
    out = table.copy()
    for (n, variant), cams in maps.items():
        flat = cams.reshape(len(cams), -1)
        idx = np.flatnonzero(np.ptp(flat, axis=1) == 0)
        if len(idx) == 0:
            continue
        f = faithfulness(models[n], images[idx], targets[idx], {variant: cams[idx]},
                         constant=constant)  # its rows are the images idx, in order
        for col, measure in MEASURES.items():
            sel = ((out["model"] == n) & (out["variant"] == variant) & (out["measure"] == measure)
                   & out["image"].isin(idx))
            new = pd.Series(f[col].to_numpy(), index=idx)
            out.loc[sel, "value"] = out.loc[sel, "image"].map(new).to_numpy()
    return out


def rescore_method_table(methods: pd.DataFrame, constant: str, models: dict,
                         maps: dict[tuple[str, str], dict[str, np.ndarray]], images, targets
                         ) -> pd.DataFrame:
    """:func:`rescore_constant_maps` of a :func:`method_table`, layer role by layer role.

    ``maps``: the :func:`method_table` input, (model, role) -> {method: maps of ``images``}.
    """
    roles = list(dict.fromkeys(role for _, role in maps))
    return pd.concat([rescore_constant_maps(
        methods[methods["layer"] == role], constant, models,
        {(n, k): c for (n, r), by in maps.items() if r == role for k, c in by.items()},
        images, targets) for role in roles])

def _defined(fn, *args) -> stats.CI:
    """fn(*args), or NaNs when no image has a defined score (e.g. every map excluded)."""
    try:
        return fn(*args)
    except ValueError:
        return stats.CI(np.nan, np.nan, np.nan)


def ad_tests(scores: pd.DataFrame, methods: pd.DataFrame, *, cross_pairs, base_pairs,
             score_pairs, layers: Sequence[str]) -> dict[str, stats.CI]:
    """Every Average-Drop-based test of the chapter, from a score table and a method table.

    Tests: the AD excess of the BNNs beyond seeds (:func:`excess`), the AD gain of inverting
    the BNN maps (:func:`variant_gain`), and per layer role the Score-CAM BNN - FP difference
    and the "STE share" (Grad-CAM's difference minus Score-CAM's, paired). Tests that no image
    defines give NaN intervals.
    """
    bnns = [b for _, b in cross_pairs]
    res = {"AD excess (BNN - FP, beyond seeds)":
           _defined(excess, scores, cross_pairs, base_pairs, "AD"),
           "AD gain of inversion (BNN)": _defined(variant_gain, scores, bnns, "AD", "inverted")}
    for layer in layers:
        d = method_deltas(methods, layer, score_pairs)
        res[f"Score-CAM BNN - FP ({layer})"] = _defined(stats.bootstrap_ci, d["Score-CAM"])
        res[f"STE share of the gap ({layer})"] = _defined(stats.paired_bootstrap_diff,
                                                          d["Grad-CAM"], d["Score-CAM"])
    return res


def ad_test_rule(test: str) -> tuple[float, str]:
    """The chapter's threshold of an :func:`ad_tests` test: Score-CAM's BNN - FP difference
    below a 10-point margin, every other test above 0."""
    return (10.0, "below") if test.startswith("Score-CAM") else (0.0, "above")


def judge_tests(tests: dict[str, stats.CI], has_baseline: bool = True) -> pd.DataFrame:
    """Verdicts of :func:`ad_tests` under :func:`ad_test_rule` ("undefined" for NaN intervals;
    the AD excess is capped with :func:`cap_verdict`)."""
    from . import claims

    rows = []
    for test, ci in tests.items():
        thr, direction = ad_test_rule(test)
        verdict = claims.judge(ci[1], ci[2], thr, direction) if np.isfinite(ci[1]) else "undefined"
        if test.startswith("AD excess"):
            verdict = cap_verdict(verdict, has_baseline)
        rows.append({"test": test, "value": round(float(ci[0]), 3), "low": round(float(ci[1]), 3),
                     "high": round(float(ci[2]), 3), "verdict": verdict})
    return pd.DataFrame(rows)

__all__ = ["BLANK_TOL", "VARIANTS", "CamParts", "gradcam_layers", "cam_variants", "blank_maps",
           "sign_structure", "fast_logits", "top_fraction_mask", "faithfulness", "agreement",
           "kind_of", "stratified_subset", "pair_differences", "excess_over_baseline",
           "MEASURES", "SCORED", "METHODS", "display_cams", "model_cams", "score_table",
           "model_table", "model_rows", "agreement_table", "pair_mean", "agreement_gap",
           "excess", "cap_verdict", "variant_gain", "kind_rate", "sign_table", "kind_mean_ci",
           "depth_table", "layer_difference_ci", "best_layers", "method_maps", "method_table",
           "method_deltas", "rescore_constant_maps", "rescore_method_table", "ad_tests",
           "ad_test_rule", "judge_tests"]
