"""Grad-CAM's parts at many layers at once: the signed map, its variants and blank maps.

Grad-CAM of a layer with activations ``A^k`` (``k = 1..K`` channels) is ``ReLU(L)`` with the
*signed map* ``L = sum_k alpha_k A^k`` and ``alpha_k = mean_ij d logit[t] / d A^k_ij``
(Selvaraju et al.). Everything here starts from ``L``:

* :func:`gradcam_layers` computes ``L``, ``alpha`` and the channel means of ``A`` for many
  layers in **one** forward/backward pass (the same numbers as
  :func:`bnn_saliency.methods.gradcam` layer by layer, at a fraction of the cost);
* :func:`cam_variants` derives the maps the Grad-CAM chapter compares: Grad-CAM ``ReLU(L)``,
  the map without the ReLU ``L``, its inversion ``-L`` (Widdicombe & Julier's remark) and the
  counterfactual ``ReLU(-L)``;
* :func:`blank_maps` flags maps whose ReLU leaves (almost) nothing;
* :func:`sign_structure` splits ``L`` into its spatial mean (the *offset*
  ``c = sum_k alpha_k mean(A^k)``) and the spatial pattern ``L - c``: a ReLU'd map is blank
  exactly when ``max(L - c) <= -c``, so a large negative offset blanks the map whatever the
  pattern.

Scoring these maps (Average Drop / Increase / Gain) is
:func:`bnn_saliency.evaluation.cam_faithfulness`; the chapter's tables are in
:mod:`bnn_saliency.study.ch03_gradcam`.

References:
    Selvaraju et al. 2019, "Grad-CAM", IJCV, arXiv:1610.02391.
    Widdicombe & Julier 2021, "Gradient-based interpretability methods and binarized neural
    networks", arXiv:2106.12569 (section 3.4: Grad-CAM on BNNs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from .. import checks
from ._core import _cache

#: Default tolerance of :func:`blank_maps`, relative to the largest |L| of the same map.
BLANK_TOL = 0.01


#: Map variants of :func:`cam_variants`, in display order.
CAM_VARIANTS = ("Grad-CAM", "no ReLU", "inverted", "inverted+ReLU")


def _check_inputs(model, images, targets) -> tuple[np.ndarray, np.ndarray]:
    from tensorflow import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a tf.keras Model, got {type(model).__name__}")
    x = checks.images(images)
    t = checks.targets(targets, len(x), int(model.outputs[0].shape[-1]))
    dtype = np.float64 if model.inputs[0].dtype == "float64" else np.float32
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

    cache = _cache(model)
    key = ("cam_parts", layers)
    if key not in cache:
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

        cache[key] = fn
    return cache[key]


def gradcam_layers(model, images, targets, layers: Sequence[str], *,
                   batch_size: int = 64) -> dict[str, CamParts]:
    """Grad-CAM ingredients of several layers from one forward/backward pass per batch.

    Same definition as :func:`bnn_saliency.methods.gradcam` (target logit, inference mode,
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
