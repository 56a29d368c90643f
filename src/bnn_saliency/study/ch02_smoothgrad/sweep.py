"""SmoothGrad noise sweeps: maps over a grid of noise levels and the best noise level.

* :func:`smoothgrad_halves`: tf-keras-vis-style SmoothGrad (average of ``|gradient|``) at
  each noise level, computed as independent halves (separate noise seeds). The mean of
  the halves is the SmoothGrad map with all samples; the agreement of two halves measures
  how reproducible the map is under a fresh draw of the noise.
* :func:`display`: tf-keras-vis's displayed map (max over channels, min-max) for arrays
  with any number of leading axes.
* per-image map quality over the sweep (:func:`quality_table`), the two terms of the
  randomization index (:func:`randomization_table`) and the propagation of noise through
  depth (:func:`propagation_tables`), from which :mod:`.protocol` builds the chapter's
  records and statistics.

References:
    Smilkov et al. 2017, "SmoothGrad: removing noise by adding noise", arXiv:1706.03825.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ... import evaluation, methods, models, postprocess
from ...memo import cached


@cached
def smoothgrad_halves(model, images, targets, noises: Sequence[float], n_per_half: int,
                      seeds: Sequence[int] = (1, 2), batch_size: int = 256,
                      image_ids=None) -> np.ndarray:
    """Absolute-value SmoothGrad at each noise level, one array per independent half.

    For half ``h`` and level ``noises[k]`` this is ``methods.smoothgrad(model, images,
    targets, noise=noises[k], n_samples=n_per_half, seed=seeds[h], magnitude="abs")``: the
    mean of ``|d logit / d x|`` over ``n_per_half`` Gaussian noisy copies (what tf-keras-vis
    averages). A noise level of 0 is the plain ``|gradient|``, computed once and shared by
    all halves (they would be identical). The same seed at every level gives common random
    numbers: the same standard-normal draws, scaled.

    Args:
        model, images, targets: as for :func:`bnn_saliency.methods.smoothgrad`.
        noises: noise levels (fractions of each image's value range), >= 0.
        n_per_half: noisy copies per half (>= 1); the combined map uses
            ``len(seeds) * n_per_half`` samples.
        seeds: one noise seed per half (default (1, 2)); must be distinct.
        batch_size: gradients per compiled call (default 256).
        image_ids: one non-negative integer per image keying its noise (passed to
            :func:`bnn_saliency.methods.smoothgrad`), so a subset of the images gets the
            draws it gets in the full set; default None (one generator for all images).

    Returns:
        float32 array ``(len(seeds), len(noises), N, H, W, C)`` of raw (unnormalized)
        averages of ``|gradient|``. Combine halves with ``.mean(axis=0)``.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and non-empty, got {seeds}")
    noises = [float(v) for v in noises]
    if not noises or any(not np.isfinite(v) or v < 0 for v in noises):
        raise ValueError(f"noises must be a non-empty list of numbers >= 0, got {noises}")
    if isinstance(n_per_half, bool) or not isinstance(n_per_half, (int, np.integer)) or n_per_half < 1:
        raise ValueError(f"n_per_half must be a positive integer, got {n_per_half!r}")
    out = None
    plain = None
    for k, noise in enumerate(noises):
        for h, seed in enumerate(seeds):
            if noise == 0:
                if plain is None:
                    plain = np.abs(methods.gradient(model, images, targets, batch_size=batch_size))
                m = plain
            else:
                m = methods.smoothgrad(model, images, targets, noise=noise,
                                        n_samples=int(n_per_half), seed=seed, magnitude="abs",
                                        image_ids=image_ids, batch_size=batch_size)
            if out is None:
                out = np.empty((len(seeds), len(noises)) + m.shape, dtype=np.float32)
            out[h, k] = m
    return out


def display(maps) -> np.ndarray:
    """tf-keras-vis's displayed map for raw maps ``(..., H, W, C)``: abs, max over
    channels, per-map min-max (:func:`bnn_saliency.postprocess.tfkerasvis_style`).

    Returns:
        float32 ``(..., H, W)`` in [0, 1].
    """
    arr = np.asarray(maps)
    if arr.ndim < 4:
        raise ValueError(f"maps must be (..., H, W, C) with a batch axis, got shape {arr.shape}")
    flat = arr.reshape((-1,) + arr.shape[-3:])
    return postprocess.tfkerasvis_style(flat).reshape(arr.shape[:-1])


@cached
def quality_table(name: str, model, forward, images, labels, maps, half_maps,
                  levels: Sequence[float], *, random_maps, requantized, insertion: dict):
    """Per image and noise level: complexity, faithfulness and stability of a model's maps.

    Columns ``gini`` (:func:`bnn_saliency.evaluation.gini` of the displayed map), ``insertion``
    (:func:`bnn_saliency.evaluation.insertion_auc` with the settings ``insertion``),
    ``insertion gain`` (minus the AUC of ``random_maps``) and ``stability``: for a level > 0
    the Spearman correlation of the two half maps; at level 0 (the plain gradient) the
    Spearman correlation with the plain gradient of ``requantized`` (the images moved by one
    grey level).

    Args:
        name: model name (the ``model`` column).
        model, forward: the Keras model and a fast callable of it (:func:`bnn_saliency.methods.forward`).
        images, labels: the N images and their targets.
        maps: (S, N, H, W) displayed maps at the S ``levels``.
        half_maps: (2, S, N, H, W) displayed maps of the two halves.
        random_maps: (N, H, W) uniformly random maps (the faithfulness baseline).

    Returns:
        DataFrame with columns model, noise, image, gini, insertion, insertion gain, stability.
    """
    import pandas as pd


    maps = np.asarray(maps)
    s, n = maps.shape[:2]
    if s != len(levels) or n != len(images) or len(random_maps) != n:
        raise ValueError(f"maps must be (len(levels), N, H, W) = ({len(levels)}, {len(images)}, "
                         f"...) with N random maps, got {maps.shape} and {len(random_maps)}")
    hw = maps.shape[2:]
    tiled = np.concatenate([maps.reshape((-1,) + hw), random_maps])
    auc = evaluation.insertion_auc(forward, np.tile(images, (s + 1, 1, 1, 1)),
                                np.tile(labels, s + 1), tiled,
                                **insertion).reshape(s + 1, -1)
    rows = []
    for k, level in enumerate(levels):
        if level != 0:
            stab = evaluation.spearman_abs(half_maps[0, k], half_maps[1, k])
        else:
            g = methods.gradient(model, requantized, labels, batch_size=256)
            stab = evaluation.spearman_abs(maps[k], display(np.abs(g)))
        rows.append(pd.DataFrame({"model": name, "noise": level, "image": np.arange(n),
                                  "gini": evaluation.gini(maps[k]), "insertion": auc[k],
                                  "insertion gain": auc[k] - auc[-1], "stability": stab}))
    return pd.concat(rows, ignore_index=True)


@cached
def randomization_table(name: str, model, images, labels, maps_a, maps_b, *, noise: float = 0.5,
                        n_half: int = 4, seed: int = 5, randomization_seed: int = 0,
                        layers=None, image_ids=None):
    """Per image: Spearman of a model's map with the map of its fully re-initialized copy
    (``vs randomized``) and with an independent map of the model itself (``vs itself``).

    The copy (:func:`bnn_saliency.models.randomize_layers` of ``layers``, default the spec's
    randomization layers; batch normalization reset) is explained at ``noise`` with
    ``n_half`` samples and noise seed ``seed`` (independent of the model's own draws).
    ``maps_a`` and ``maps_b`` are two independent displayed maps of the model at ``noise``;
    ``image_ids`` keys the copy's noise per image (:func:`smoothgrad_halves`).
    """
    import pandas as pd


    layers = models.get_spec(name).randomization_layers if layers is None else layers
    rnd = models.randomize_layers(model, layers, seed=randomization_seed, reset_batchnorm=True)
    r = display(smoothgrad_halves(rnd, images, labels, [noise], n_half, seeds=(seed,),
                                  image_ids=image_ids)[0, 0])
    return pd.DataFrame({"model": name, "image": np.arange(len(images)),
                         "vs randomized": evaluation.spearman_abs(maps_a, r),
                         "vs itself": evaluation.spearman_abs(maps_a, maps_b)})


@cached
def propagation_tables(models: Mapping, images, levels: Mapping[str, Sequence[float]],
                       seed: int = 0):
    """:func:`bnn_saliency.evaluation.perturbation.propagation` of every model at its noise ``levels``,
    following the pre-activations and activations of every block (``depth_layers(..., "both")``).

    Returns:
        ``(rel, flips)`` with a ``model`` column; ``rel`` also gets ``kind``: ``"act"`` for
        activation layers (``act*``, ``head_act``), ``"pre"`` otherwise.
    """
    import pandas as pd


    rel_frames, flip_frames = [], []
    for n, model in models.items():
        rel, flips = evaluation.propagation(model, images, levels[n],
                                              layers=evaluation.depth_layers(model, "both"),
                                              seed=seed)
        rel_frames.append(rel.assign(model=n))
        flip_frames.append(flips.assign(model=n))
    rel = pd.concat(rel_frames, ignore_index=True)
    flips = pd.concat(flip_frames, ignore_index=True)
    rel["kind"] = np.where(rel["layer"].str.startswith("act") | rel["layer"].isin(["head_act"]),
                           "act", "pre")
    return rel, flips


def relative_depth(rel):
    """``rel`` with ``rdepth`` = depth / the model's largest depth (0 = input, 1 = output)."""
    out = rel.copy()
    out["rdepth"] = out.groupby("model")["depth"].transform(lambda d: d / d.max())
    return out


def sign_flip_fraction(rel_change) -> float:
    """Fraction of +-1 activations that flip sign, from their relative changes.

    For a vector of +-1 values, ``||a(x+e) - a(x)|| / ||a(x)|| = 2 sqrt(f)`` with ``f`` the
    fraction of flipped entries, so ``f = (rel / 2)^2``; averaged over images.
    """
    r = np.asarray(rel_change, dtype=np.float64)
    if r.size == 0:
        raise ValueError("no relative changes given")
    return float(np.mean((r / 2) ** 2))


def start_probabilities(forward, images, labels, maps, baselines: Sequence[str] = ("blur", "mean")
                        ) -> dict[str, float]:
    """Mean true-class probability on each insertion start image and on the clean image.

    One-step insertion curves (:func:`bnn_saliency.evaluation.perturbation_curves`) are
    ``[start image, full image]``; their mean over images gives the model's confidence where
    the insertion curve begins (``baseline`` name -> probability) and ends (``"clean"``).
    """

    out = {}
    for base in baselines:
        curve = evaluation.perturbation_curves(forward, images, labels, maps, "insertion", n_steps=1,
                                            baseline=base)[0].mean(axis=0)
        out[base] = float(curve[0])
        out["clean"] = float(curve[1])
    return out
