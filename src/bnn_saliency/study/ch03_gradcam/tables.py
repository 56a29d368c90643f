"""Chapter 3's per-model tables: Grad-CAM maps and their variants, faithfulness and blank maps,
agreement between models, sign structure, the depth sweep and the CAM methods."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ... import evaluation, methods, postprocess
from ...evaluation.faithfulness import cam_faithfulness as faithfulness
from ...memo import cached
from ...models.twins import conv_block_outputs
from ...methods.cam_parts import (
    BLANK_TOL,
    CamParts,
    blank_maps,
    cam_variants,
    gradcam_layers,
    sign_structure,
)
from ...stats import CI, bootstrap_ci


def agreement(maps_a, maps_b, size: tuple[int, int] | None = None) -> np.ndarray:
    """Signed Spearman rank correlation of two batches of CAMs, per image, after upsampling
    both to ``size`` (:func:`bnn_saliency.evaluation.agreement`)."""
    return evaluation.agreement(maps_a, maps_b, size=size)["Spearman signed"]


#: faithfulness() column -> the chapter's short measure name.
MEASURES = {"average_drop": "AD", "average_increase": "AI", "average_gain": "AG"}


#: The map variants scored in the chapter (``"inverted+ReLU"`` is shown, not scored).
SCORED = ("Grad-CAM", "no ReLU", "inverted")


#: The CAM methods compared in the pseudo-gradient section.
METHODS = ("Grad-CAM", "Grad-CAM++", "Score-CAM")


def display_cams(cams, size: tuple[int, int]) -> np.ndarray:
    """CAMs as displayed: upsampled bilinearly to ``size`` and min-max normalized per map."""

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


def sign_table(parts: dict[str, CamParts], kinds: dict, idx=None, tol: float = BLANK_TOL
               ) -> pd.DataFrame:
    """:func:`sign_structure` of every model's Grad-CAM layer (images ``idx``), with model and
    kind columns."""
    pick = slice(None) if idx is None else idx
    return pd.concat([sign_structure(CamParts(p.signed[pick], p.alpha[pick], p.act_mean[pick]),
                                     tol).assign(model=n, kind=kinds[n])
                      for n, p in parts.items()], ignore_index=True)


def kind_mean_ci(table: pd.DataFrame, column: str, kind: str) -> CI:
    """Per image, the mean of ``column`` over the models of one kind, with a bootstrap CI."""
    sel = table.loc[table["kind"] == kind]
    if sel.empty:
        raise KeyError(f"no rows of kind {kind!r}")
    return bootstrap_ci(sel.groupby("image")[column].mean().to_numpy())


@cached
def depth_table(models: dict, images, targets, kinds: dict, *, constant: str = "zero",
                tol: float = BLANK_TOL) -> pd.DataFrame:
    """Average Drop and blank rate of Grad-CAM at every block of each twin.

    Layers: the block outputs of :func:`bnn_saliency.models.twins.conv_block_outputs` (tensor
    ``"block"``) and, for VGG twins, the batch-normalized ``bn1..bn6`` and activated
    ``act1..act6`` tensors, all from one :func:`gradcam_layers` pass per model.

    Args:
        models: twin name (``<family>-...``) -> model.

    Returns:
        DataFrame with columns model, kind, family, layer, tensor, block, measure (AD, blank),
        image, value.
    """

    rows = []
    for n, m in models.items():
        family = n.rpartition(":")[2].split("-")[0]  # "v2:vgg-bnn-s0" -> "vgg"
        layers = {name: ("block", i + 1) for i, name in enumerate(conv_block_outputs(m, family))}
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
        max_n, batch_size: passed to :func:`bnn_saliency.methods.scorecam`.

    Returns:
        (name, role) -> {method: (N, h, w) maps}.
    """

    skip = skip or {}
    out = {}
    for n, m in models.items():
        first = skip.get(n, 0)
        by_layer = gradcam_layers(m, images, targets, list(layers[n].values()))
        for role, layer in layers[n].items():
            score = methods.scorecam(m, images[first:], targets[first:], layer=layer, max_n=max_n,
                                      batch_size=batch_size)
            out[n, role] = {
                "Grad-CAM": np.maximum(by_layer[layer].signed, 0),
                "Grad-CAM++": methods.gradcam_plus_plus(m, images, targets, layer=layer),
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
