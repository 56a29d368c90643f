"""How far a small input perturbation travels through a network, layer by layer.

The mechanism behind SmoothGrad on binarized networks: SmoothGrad averages gradients at
noisy copies ``x + e`` of an image; if the network amplifies ``e`` on its way to the output,
the noisy copies land in very different regions of the network's function and their
gradients (and predictions) disagree. This module measures that amplification directly.

For a layer ``l`` with output ``a_l`` the **relative perturbation** of one noisy copy is::

    r_l(x, e) = ||a_l(x + e) - a_l(x)||_2 / ||a_l(x)||_2

(norms over all units of the layer, one image at a time). With ``n_draws`` noise draws per
image we report the root mean square over draws, ``sqrt(mean_d r_l(x, e_d)^2)``, whose
expectation has a closed form for a linear layer ``a = W x``:
``sigma * ||W||_F / ||W x||`` for ``e ~ N(0, sigma^2 I)``. The input itself (``depth 0``,
layer ``"input"``) has ``r = ||e|| / ||x||``, so ``r_l / r_input`` is the layer's
amplification of the relative perturbation. For a sign layer (outputs +-1) ``r_l`` is
``2 sqrt(f)`` with ``f`` the fraction of units whose sign flipped.

The noise is the SmoothGrad noise of :func:`bnn_saliency.methods.smoothgrad`: ``e`` i.i.d.
Gaussian with ``sigma_i = noise * (max(x_i) - min(x_i))`` per image (or ``noise * (hi -
lo)`` with ``value_range``), drawn from ``np.random.default_rng(seed)`` image by image in
the same order and dtype, so :func:`noisy_copies` reproduces exactly the inputs SmoothGrad
differentiates for the same ``seed`` and ``n_samples = n_draws``. The same ``seed`` at two
noise levels gives the same standard-normal draws scaled differently (common random
numbers), and two models see identical noisy inputs.

The **flip rate** of an image is the fraction of its noisy copies whose predicted class
(argmax of the model output) differs from the prediction on the clean image.

References:
    Lin, Gan & Han 2019, "Defensive quantization: when efficiency meets robustness", ICLR
    (arXiv:1904.08444): quantized networks amplify input perturbations layer by layer (the
    "error amplification effect").
    Smilkov et al. 2017, "SmoothGrad: removing noise by adding noise", arXiv:1706.03825.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

from .. import checks

__all__ = ["depth_layers", "noisy_copies", "relative_change", "propagation", "amplification"]


DEFAULT_BATCH_SIZE = 256


_CACHE_ATTR = "_bnn_saliency_perturbation_cache"


def depth_layers(model, which: str = "act") -> list[str]:
    """The layers to follow through depth, shallow to deep, ending with the model output.

    Args:
        model: a CIFAR-10 twin (see :mod:`bnn_saliency.models.twins`).
        which: for VGG twins ``"act"`` (default: ``act1..act6``, the post-activation
            outputs, +-1 in binary-activation twins), ``"bn"`` (``bn1..bn6``, the
            real-valued pre-activations) or ``"both"`` (``bn1, act1, bn2, ...``). ResNet
            twins use their block outputs in every case: ``stem_bn``, every ``*_add`` and
            ``head_act``.

    Returns:
        Layer names, the last one being the output layer (``logits`` for the twins).

    Raises:
        ValueError: unknown ``which``, or a model that is not a twin (pass layer names to
            :func:`propagation` yourself).
    """
    if which not in ("act", "bn", "both"):
        raise ValueError(f"which must be 'act', 'bn' or 'both', got {which!r}")
    names = [lay.name for lay in model.layers]
    out_name = model.layers[-1].name
    kinds = ("bn", "act") if which == "both" else (which,)
    vgg = [n for n in names if any(re.fullmatch(rf"{k}\d+", n) for k in kinds)]
    if vgg:
        def order(name):  # block number, then bn before act
            return int(re.sub(r"\D", "", name)), name.startswith("act")

        return sorted(vgg, key=order) + [out_name]
    adds = [n for n in names if n.endswith("_add")]
    if adds and "stem_bn" in names:
        tail = ["head_act"] if "head_act" in names else []
        return ["stem_bn"] + adds + tail + [out_name]
    raise ValueError(f"model {model.name!r} has no {which}1..{which}N layers nor ResNet-twin "
                     "block outputs; pass the layer names explicitly (layers=[...])")


def noisy_copies(images: np.ndarray, noise: float, n_draws: int, seed: int = 0,
                 value_range: tuple[float, float] | None = None) -> np.ndarray:
    """The Gaussian noisy copies SmoothGrad uses, ``(N, n_draws, H, W, C)``.

    Identical to the inputs :func:`bnn_saliency.methods.smoothgrad` builds with the same
    ``seed``, ``n_samples=n_draws``, ``noise`` and ``value_range`` for float32 images:
    ``x_i + (noise * spread_i) * eps``, ``eps`` standard normal (float32) drawn image by image
    from ``np.random.default_rng(seed)``, ``spread_i = max(x_i) - min(x_i)`` or ``hi - lo``;
    both call :func:`bnn_saliency.methods.draw_noisy_copies`.

    Args:
        images: float array (N, H, W, C).
        noise: noise level relative to the value range (>= 0; 0 returns exact copies).
        n_draws: copies per image (>= 1).
        seed: seed of the generator (default 0).
        value_range: fixed (lo, hi) for the spread instead of each image's own range.
    """
    x = checks.images(images)
    n_draws = _check_positive_int(n_draws, "n_draws")
    noise = _check_noise(noise)
    if value_range is not None:
        lo, hi = value_range
        if not hi >= lo:
            raise ValueError(f"value_range must be (lo, hi) with hi >= lo, got {value_range}")
    from ..methods.gradients import draw_noisy_copies

    return draw_noisy_copies(x, noise, n_draws, np.random.default_rng(seed), value_range)




def _check_positive_int(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _check_noise(noise) -> float:
    noise = float(noise)
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    return noise


def _forward_fn(model, layers: Sequence[str]):
    """tf.function x -> [a_l(x) for l in layers] + [model output], inference mode.

    Cached on the model (one compiled function per tuple of layer names)."""
    import tensorflow as tf
    from tensorflow import keras

    if isinstance(layers, str) or not len(layers):
        raise ValueError("layers must be a non-empty list of layer names")
    cache = model.__dict__.get(_CACHE_ATTR)
    if cache is None:
        cache = {}
        object.__setattr__(model, _CACHE_ATTR, cache)  # bypass Keras attribute tracking
    key = tuple(layers)
    if key in cache:
        return cache[key]
    outputs = []
    for name in layers:
        try:
            outputs.append(model.get_layer(name).output)
        except ValueError:
            raise KeyError(f"model {model.name!r} has no layer {name!r}; layers include "
                           f"{[lay.name for lay in model.layers][-8:]}") from None
    sub = keras.Model(model.inputs, outputs + [model.outputs[0]])
    spec = tf.TensorSpec((None,) + tuple(model.inputs[0].shape[1:]), model.inputs[0].dtype)
    cache[key] = tf.function(lambda x: sub(x, training=False), input_signature=[spec])
    return cache[key]


def _flat_norms(a: np.ndarray) -> np.ndarray:
    return np.sqrt((a.reshape(len(a), -1).astype(np.float64) ** 2).sum(axis=1))


def _relative_and_pred(model, images, perturbed, layers, batch_size):
    """Relative changes (G, N, P, L) and predicted classes, clean (N,) / noisy (G, N, P).

    ``perturbed`` is (N, P, H, W, C) or a list of G such arrays (e.g. one per noise level);
    each image's clean pass is computed once and shared by all groups.
    """
    import tensorflow as tf

    x = checks.images(images)
    groups = perturbed if isinstance(perturbed, (list, tuple)) else [perturbed]
    groups = [np.asarray(p) for p in groups]
    for p in groups:
        if p.ndim != 5 or p.shape[0] != len(x) or p.shape[2:] != x.shape[1:]:
            raise ValueError(f"perturbed must have shape (N, P, H, W, C) = ({len(x)}, P, "
                             f"{', '.join(map(str, x.shape[1:]))}), got {p.shape}")
    n_p = groups[0].shape[1]
    if any(p.shape[1] != n_p for p in groups):
        raise ValueError("every group of perturbed copies needs the same number of copies P")
    batch_size = _check_positive_int(batch_size, "batch_size")
    fn = _forward_fn(model, list(layers))
    dtype = tf.as_dtype(model.inputs[0].dtype).as_numpy_dtype
    n, g = len(x), len(groups)
    rel = np.empty((g, n, n_p, len(layers)))
    clean_pred = np.empty(n, dtype=np.int64)
    noisy_pred = np.empty((g, n, n_p), dtype=np.int64)
    per = max(1, batch_size // (g * n_p + 1))  # images per forward pass (clean + all copies)
    for s in range(0, n, per):
        xb = x[s:s + per]
        k = len(xb)
        parts = [xb] + [p[s:s + per].reshape((-1,) + x.shape[1:]) for p in groups]
        both = np.concatenate(parts).astype(dtype, copy=False)
        outs = fn(tf.constant(both))
        for j in range(len(layers)):
            a = outs[j].numpy().reshape(len(both), -1).astype(np.float64)
            a0, ap = a[:k], a[k:].reshape(g, k, n_p, -1)
            den = np.sqrt(np.einsum("ij,ij->i", a0, a0))
            d = ap - a0[None, :, None]
            num = np.sqrt(np.einsum("gkpd,gkpd->gkp", d, d))
            with np.errstate(invalid="ignore", divide="ignore"):
                rel[:, s:s + k, :, j] = np.where(den[None, :, None] > 0,
                                                 num / den[None, :, None], np.nan)
        logits = outs[-1].numpy().reshape(len(both), -1)
        clean_pred[s:s + k] = logits[:k].argmax(axis=1)
        noisy_pred[:, s:s + k] = logits[k:].argmax(axis=1).reshape(g, k, n_p)
    return rel, clean_pred, noisy_pred


def relative_change(model, images, perturbed, layers: Sequence[str],
                    batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
    """``||a_l(x') - a_l(x)|| / ||a_l(x)||`` for given perturbed copies ``x'`` of each image.

    Args:
        model: a tf.keras model (run with ``training=False``).
        images: float array (N, H, W, C).
        perturbed: float array (N, P, H, W, C), P perturbed copies of each image.
        layers: names of the layers whose outputs are compared.
        batch_size: clean + perturbed inputs per forward pass (default 256).

    Returns:
        float64 (N, P, L); NaN where ``a_l(x)`` is all zero (no relative change defined).
    """
    rel, _, _ = _relative_and_pred(model, images, perturbed, layers, batch_size)
    return rel[0]


def propagation(model, images, noises: Sequence[float], layers: Sequence[str] | None = None,
                n_draws: int = 1, seed: int = 0,
                value_range: tuple[float, float] | None = None,
                batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Relative perturbation at every layer and prediction flip rate, for each noise level.

    Args:
        model: a tf.keras model with one input and one output (logits or probabilities).
        images: float array (N, H, W, C).
        noises: SmoothGrad noise levels (fractions of the value range, > 0).
        layers: layer names, shallow to deep; default :func:`depth_layers(model) <depth_layers>`.
        n_draws: noise draws per image and level (default 1).
        seed: noise seed (default 0); the same standard-normal draws at every level.
        value_range: fixed (lo, hi) for the noise scale (default: each image's range).
        batch_size: inputs per forward pass (default 256).

    Returns:
        ``(rel, flips)``. ``rel``: long DataFrame with columns ``image``, ``noise``, ``layer``,
        ``depth`` (0 = the input, then 1.. in the order of ``layers``) and ``rel_change``
        (RMS over draws of the relative perturbation). ``flips``: columns ``image``,
        ``noise``, ``flip_rate`` (fraction of draws whose argmax differs from the clean one).
    """
    x = checks.images(images)
    layers = depth_layers(model) if layers is None else list(layers)
    n_draws = _check_positive_int(n_draws, "n_draws")
    noises = [_check_noise(v) for v in noises]
    if not noises:
        raise ValueError("noises is empty; pass at least one noise level")
    x_norm = _flat_norms(x)
    noisy = [noisy_copies(x, noise, n_draws, seed, value_range) for noise in noises]
    rel, clean, pred = _relative_and_pred(model, x, noisy, layers, batch_size)
    names = ["input"] + layers
    rel_frames, flip_frames = [], []
    for g, noise in enumerate(noises):
        diff = (noisy[g] - x[:, None]).reshape(len(x), n_draws, -1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            r_in = np.sqrt((diff ** 2).sum(axis=2)) / np.where(x_norm > 0, x_norm, np.nan)[:, None]
        allrel = np.concatenate([r_in[:, :, None], rel[g]], axis=2)  # (N, P, 1 + L)
        rms = np.sqrt(np.mean(allrel ** 2, axis=1))                  # (N, 1 + L)
        rel_frames.append(pd.DataFrame({
            "image": np.repeat(np.arange(len(x)), len(names)),
            "noise": noise,
            "layer": np.tile(names, len(x)),
            "depth": np.tile(np.arange(len(names)), len(x)),
            "rel_change": rms.ravel()}))
        flip_frames.append(pd.DataFrame({"image": np.arange(len(x)), "noise": noise,
                                         "flip_rate": (pred[g] != clean[:, None]).mean(axis=1)}))
    return pd.concat(rel_frames, ignore_index=True), pd.concat(flip_frames, ignore_index=True)


def amplification(rel: pd.DataFrame) -> pd.DataFrame:
    """``rel_change`` of every layer divided by that of the input, per image and noise level.

    Args:
        rel: the first table returned by :func:`propagation`.

    Returns:
        A copy of ``rel`` with a column ``amplification`` (1.0 at the input).
    """
    missing = {"image", "noise", "layer", "rel_change"} - set(rel.columns)
    if missing:
        raise KeyError(f"rel lacks columns {sorted(missing)}; pass the table from propagation()")
    base = rel[rel["layer"] == "input"].set_index(["image", "noise"])["rel_change"]
    if base.empty:
        raise ValueError("rel has no 'input' rows; pass the table from propagation()")
    out = rel.copy()
    key = pd.MultiIndex.from_frame(out[["image", "noise"]])
    out["amplification"] = out["rel_change"].to_numpy() / base.reindex(key).to_numpy()
    return out
