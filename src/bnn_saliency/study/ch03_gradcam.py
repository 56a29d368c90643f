"""Chapter 3 (Grad-CAM): tables of blank maps, Average Drop / Increase / Gain, agreement,
layer depth and CAM methods, with seed-aware effect sizes and verdicts."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .. import evaluation, methods, postprocess
from ..evaluation.faithfulness import cam_faithfulness as faithfulness
from ..memo import cached
from ..models.twins import conv_block_outputs
from ..methods.cam_parts import (
    BLANK_TOL,
    CamParts,
    blank_maps,
    cam_variants,
    gradcam_layers,
    sign_structure,
)
from ..stats import CI, bootstrap_ci, paired_bootstrap_diff
from ..verdicts import Rule, capped


def agreement(maps_a, maps_b, size: tuple[int, int] | None = None) -> np.ndarray:
    """Signed Spearman rank correlation of two batches of CAMs, per image, after upsampling
    both to ``size`` (:func:`bnn_saliency.evaluation.agreement`)."""
    return evaluation.agreement(maps_a, maps_b, size=size)["Spearman signed"]


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


def _excess_stat(n_cross: int, n_base: int):
    def stat(x, axis):
        m = np.nanmean(x, axis=axis)
        cross = m[..., :n_cross].mean(axis=-1)
        if n_base == 0:
            return cross
        return cross - np.abs(m[..., n_cross:]).max(axis=-1)
    return stat


def excess_over_baseline(cross, baseline=None, n_boot: int = 2000, seed: int = 0) -> CI:
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
    return bootstrap_ci(np.concatenate([c, b], axis=1), stat=_excess_stat(c.shape[1], b.shape[1]),
                              n_boot=n_boot, seed=seed)


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


def pair_mean(agree: pd.DataFrame, pairs: Sequence[tuple[str, str]], variant: str = "Grad-CAM"
              ) -> pd.Series:
    """Per image, the mean agreement over ``pairs`` (an :func:`agreement_table` selection)."""
    labels = [f"{a} vs {b}" for a, b in pairs]
    sel = agree[(agree["variant"] == variant) & agree["pair"].isin(labels)]
    if sel.empty:
        raise KeyError(f"no {variant!r} agreement rows for pairs {labels}")
    return sel.pivot_table(index="image", columns="pair", values="value").mean(axis=1)


def agreement_gap(agree: pd.DataFrame, cross_pairs, base_pairs) -> CI:
    """Mean agreement of the baseline pairs minus that of the cross pairs, per image, with a
    paired bootstrap CI; with no baseline pairs, ``1 - agreement`` of the cross pairs."""
    cross = pair_mean(agree, cross_pairs)
    if not base_pairs:
        return bootstrap_ci(1.0 - cross.to_numpy())
    both = pd.concat([pair_mean(agree, base_pairs), cross], axis=1, join="inner")
    return paired_bootstrap_diff(both.iloc[:, 0].to_numpy(), both.iloc[:, 1].to_numpy())


def excess(scores: pd.DataFrame, cross_pairs, base_pairs, measure: str,
           variant: str = "Grad-CAM") -> CI:
    """:func:`excess_over_baseline` of one measure: the cross pairs' difference beyond the
    largest baseline (seed) difference; the plain cross difference without baseline pairs."""
    cross = pair_differences(scores, cross_pairs, measure, variant)
    base = pair_differences(scores, base_pairs, measure, variant) if base_pairs else None
    return excess_over_baseline(cross, base)


def cap_verdict(verdict: str, has_baseline: bool) -> str:
    """Without a seed baseline a test cannot be "reproduced": cap the verdict at "partly"."""
    return verdict if has_baseline else capped(verdict, "partly")


def variant_gain(scores: pd.DataFrame, models: Sequence[str], measure: str, variant: str,
                 reference: str = "Grad-CAM") -> CI:
    """Per image, ``measure(reference) - measure(variant)`` averaged over ``models``, with a
    bootstrap CI (for Average Drop: positive when ``variant`` is more faithful)."""
    own = [(m, m) for m in models]
    return bootstrap_ci(-pair_differences(scores, own, measure, reference, variant)
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
        family = n.split("-")[0]
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


def layer_difference_ci(depth: pd.DataFrame, model: str, layers_a: Sequence[str],
                        layers_b: Sequence[str], measure: str = "AD") -> CI:
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
    return bootstrap_ci(np.mean(diffs, axis=0))


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


def _defined(fn, *args) -> CI:
    """fn(*args), or NaNs when no image has a defined score (e.g. every map excluded)."""
    try:
        return fn(*args)
    except ValueError:
        return CI(np.nan, np.nan, np.nan)


def ad_tests(scores: pd.DataFrame, methods: pd.DataFrame, *, cross_pairs, base_pairs,
             score_pairs, layers: Sequence[str]) -> dict[str, CI]:
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
        res[f"Score-CAM BNN - FP ({layer})"] = _defined(bootstrap_ci, d["Score-CAM"])
        res[f"STE share of the gap ({layer})"] = _defined(paired_bootstrap_diff,
                                                          d["Grad-CAM"], d["Score-CAM"])
    return res


def ad_test_rule(test: str) -> Rule:
    """The chapter's rule for an :func:`ad_tests` test: Score-CAM's BNN - FP difference
    below a 10-point margin, every other test above 0."""
    return Rule.below(10.0, unit=" AD points") if test.startswith("Score-CAM") else Rule.above(0.0)


def judge_tests(tests: dict[str, CI], has_baseline: bool = True) -> pd.DataFrame:
    """Verdicts of :func:`ad_tests` under :func:`ad_test_rule` ("undefined" for NaN intervals;
    the AD excess is capped with :func:`cap_verdict`)."""

    rows = []
    for test, ci in tests.items():
        verdict = ad_test_rule(test).verdict(ci[1], ci[2]) if np.isfinite(ci[1]) else "undefined"
        if test.startswith("AD excess"):
            verdict = cap_verdict(verdict, has_baseline)
        rows.append({"test": test, "value": round(float(ci[0]), 3), "low": round(float(ci[1]), 3),
                     "high": round(float(ci[2]), 3), "verdict": verdict})
    return pd.DataFrame(rows)
