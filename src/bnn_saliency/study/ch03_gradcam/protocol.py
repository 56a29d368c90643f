"""Chapter 3 on the twins-v2 suite: per-image records of the heavy scores, the statistics of
the protocol (cross-seed pairs, seeds>images bootstrap, accuracy-matched controls) and the
registered verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...methods.cam_parts import BLANK_TOL, cam_variants, gradcam_layers
from ...verdicts import Claim, registered, registry
from ..common import V1_ABLATIONS, V1_RESNET, PairScores, Suite, ci_text  # noqa: F401 (re-exported)
from .tables import (
    METHODS,
    SCORED,
    depth_table,
    method_maps,
    method_table,
    rescore_constant_maps,
    score_table,
)

#: The ways of scoring a constant (blank) map in Average Drop, the chapter's first.
CONSTANTS = ("zero", "one", "nan")


def v2_pairs(suite: Suite) -> dict[str, list[tuple[str, str]]]:
    """The chapter's pairs: the twins-v2 groups (:meth:`Suite.pair_groups`) and, from the v1
    suite, the ResNet pair and the ablations (v2 trains no counterparts yet)."""
    return {**suite.pair_groups(), "ResNet FP vs BNN (v1)": V1_RESNET,
            "ablation (v1)": V1_ABLATIONS}


def gradcam_records(model, images, targets, layer: str, *, name: str, kind: str,
                    tol: float = BLANK_TOL, top_fraction: float = 0.5) -> pd.DataFrame:
    """:func:`score_table` of one model's Grad-CAM at ``layer``, under every way of scoring
    constant maps (:data:`CONSTANTS`, column ``constant``): the per-image records of the
    chapter's faithfulness and blank-map statistics."""
    signed = gradcam_layers(model, images, targets, [layer])[layer].signed
    base = score_table({name: model}, images, targets, {name: signed}, {name: kind},
                       constant=CONSTANTS[0], tol=tol, top_fraction=top_fraction)
    maps = {(name, v): cam for v, cam in cam_variants(signed).items() if v in SCORED}
    return pd.concat([base.assign(constant=CONSTANTS[0])] + [
        rescore_constant_maps(base, c, {name: model}, maps, images, targets).assign(constant=c)
        for c in CONSTANTS[1:]], ignore_index=True)


gradcam_records.record_keys = ["variant", "measure", "constant", "image"]


def method_records(model, images, targets, layers: dict[str, str], *, name: str, kind: str,
                   max_n: int | None = None, batch_size: int = 64) -> pd.DataFrame:
    """:func:`method_table` of one model's Grad-CAM, Grad-CAM++ and Score-CAM at each layer
    role of ``layers``, under every way of scoring constant maps (column ``constant``);
    ``max_n`` as for :func:`method_maps`."""
    maps = method_maps({name: model}, images, targets, {name: layers}, max_n=max_n,
                       batch_size=batch_size)
    return pd.concat([method_table({name: model}, maps, images, targets, {name: kind},
                                   constant=c).assign(constant=c) for c in CONSTANTS],
                     ignore_index=True)


method_records.record_keys = ["variant", "measure", "layer", "constant", "image"]


def depth_records(model, images, targets, *, name: str, kind: str) -> pd.DataFrame:
    """:func:`depth_table` of one model (Average Drop with blank maps scored as black)."""
    return depth_table({name: model}, images, targets, {name: kind})


depth_records.record_keys = ["layer", "measure", "image"]


def recorded(step: str, fn, name: str, model, images, targets, *args, twins: bool = True,
             sample: int = 4, max_bad_share: float = 0.01, **kwargs) -> pd.DataFrame:
    """``fn(model, images, targets, *args, name=name, **kwargs)`` (:func:`gradcam_records`,
    :func:`method_records`, :func:`depth_records`) through
    :func:`bnn_saliency.records.per_image`: the committed records
    ``03_gradcam/<step>/<name>``, with ``sample`` images recomputed live and checked (in
    ImageNet mode nothing is committed and everything is computed). The live check allows
    ``max_bad_share`` of rows (default 1%) outside its tolerance: on a BNN a sign whose input is
    within float32 noise of 0 flips from one CPU to another, and Increase in Confidence is a
    0/100 indicator that flips when the masked image's probability ties the clean one's."""
    from ... import records

    images, targets = np.asarray(images), np.asarray(targets)
    if not twins:
        return fn(model, images, targets, *args, name=name, **kwargs)

    def compute(idx):
        return fn(model, images[idx], targets[idx], *args, name=name, **kwargs)

    return records.per_image(
        f"03_gradcam/{step}/{name.replace(':', '/')}", compute, len(images), sample=sample,
        inputs_fingerprint=records.fingerprint(fn, model, images, targets, args, kwargs),
        keys=fn.record_keys, value="value", atol=0.5, rtol=0.02, max_bad_share=max_bad_share)


def per_model(table: pd.DataFrame, measure: str, variant: str = "Grad-CAM",
              layer: str | None = None) -> dict[str, np.ndarray]:
    """Model -> the per-image values (sorted by image) of one measure and map variant (and
    layer role, for a :func:`method_table`)."""
    sel = table[(table["measure"] == measure) & (table["variant"] == variant)]
    if layer is not None:
        sel = sel[sel["layer"] == layer]
    if sel.empty:
        raise KeyError(f"no {measure!r} rows of variant {variant!r}"
                       + (f" at layer {layer!r}" if layer else ""))
    if sel.duplicated(["model", "image"]).any():
        raise ValueError(f"several {measure!r} rows per model and image: select one way of "
                         "scoring constant maps (and one layer role) first")
    wide = sel.pivot_table(index="image", columns="model", values="value", aggfunc="first",
                           dropna=False)
    return {n: wide[n].to_numpy(float) for n in wide.columns}


def agreement_scores(agree: pd.DataFrame, variant: str = "Grad-CAM") -> PairScores:
    """The :func:`agreement_table` rows of one variant of b's map, looked up by pair."""
    sel = agree[agree["variant"] == variant].drop_duplicates(["pair", "image"])
    return PairScores(sel.rename(columns={"value": "score"}).assign(metric=variant), variant)


def excess_statistic(suite: Suite, values: dict[str, np.ndarray], a: str = "fp",
                     scale: float = 1.0):
    """``prepare(drawn)`` (:meth:`Suite.bootstrap_statistic`) of the registry's excess beyond
    seed variation: the mean over the cross-seed pairs (a-s_i, BNN-s_j) of the mean
    ``values[BNN-s_j] - values[a-s_i]``, minus the largest ``|mean values[s_j] -
    values[s_i]|`` over the same-kind seed pairs of kinds ``a`` and BNN, times ``scale``
    (NaN images left out of each mean). None when the drawn seeds form no cross or no seed
    pair."""
    def prepare(drawn):
        cross = suite.cross_pairs(a, "bnn", drawn)
        seed = suite.seed_pairs(a, drawn) + suite.seed_pairs("bnn", drawn)
        if not cross or not seed:
            return None
        c = np.stack([values[b] - values[f] for f, b in cross], axis=1)
        s = np.stack([values[j] - values[i] for i, j in seed], axis=1)

        def statistic(idx):
            return scale * (np.nanmean(c[idx], axis=0).mean()
                            - np.abs(np.nanmean(s[idx], axis=0)).max())
        return statistic
    return prepare


def kind_mean(suite: Suite, values: dict[str, np.ndarray], kind: str = "bnn"):
    """``per_image(drawn)``: per image, the mean of ``values`` over the drawn models of one
    kind (a within-model statistic averaged over seeds)."""
    def per_image(drawn):
        names = [suite.name(kind, s) for s in drawn[kind]]
        return np.mean([values[n] for n in names], axis=0) if names else None
    return per_image


def seed_spread(suite: Suite, values: dict[str, np.ndarray], kinds=("fp", "bnn")) -> float:
    """The largest ``|mean values[s_j] - values[s_i]|`` over the seed pairs of ``kinds``: how
    far retraining alone moves a per-model score (NaN without seed pairs)."""
    pairs = [p for k in kinds for p in suite.seed_pairs(k)]
    if not pairs:
        return float("nan")
    return float(max(abs(np.nanmean(values[j] - values[i])) for i, j in pairs))


def _minus(f, g):
    """``per_image(drawn)`` of ``f(drawn) - g(drawn)`` (None if either is None)."""
    def per_image(drawn):
        a, b = f(drawn), g(drawn)
        return None if a is None or b is None else a - b
    return per_image


def _differences(by_model_a: dict, by_model_b: dict) -> dict[str, np.ndarray]:
    return {n: by_model_a[n] - by_model_b[n] for n in by_model_a if n in by_model_b}


def method_gap(suite: Suite, methods_table: pd.DataFrame, layer: str, method: str,
               a: str = "fp", minus: str | None = None):
    """``(CI, replicates)`` (or why not) of one CAM method's Average Drop BNN - FP over the
    cross-seed pairs at one layer role of a :func:`method_table` (a single way of scoring
    constant maps), per image; with ``minus``, that difference minus the same difference of
    method ``minus`` (paired per image)."""
    n = methods_table["image"].nunique()
    gap = suite.cross_difference(per_model(methods_table, "AD", method, layer), "bnn", a)
    if minus is not None:
        gap = _minus(gap, suite.cross_difference(per_model(methods_table, "AD", minus, layer),
                                                 "bnn", a))
    return suite.bootstrap(gap, n, a)


def kind_rates(suite: Suite, values: dict[str, np.ndarray], scale: float = 100.0
               ) -> dict[str, float]:
    """Kind (fp, bnn, control) -> the mean of ``values`` over the kind's shipped models and
    all images, times ``scale`` (NaN for a kind with no model)."""
    return {k: scale * float(np.mean([np.nanmean(values[n]) for n in suite.names((k,))]))
            if suite.names((k,)) else float("nan") for k in ("fp", "bnn", "control")}


def gradcam_statistics(suite: Suite, scores: pd.DataFrame, agree: pd.DataFrame
                       ) -> dict[str, object]:
    """The statistics of Grad-CAM at the standard layer on the twins-v2 suite, each as ``(CI,
    replicates)`` or a string saying why it cannot be formed (bootstrap seeds>images):

    * ``blank_excess`` (percentage points), ``ad_excess`` and ``ad50_excess``: BNN - FP beyond
      seed variation (:func:`excess_statistic`);
    * ``agree_gap``: Grad-CAM agreement of the seed pairs minus the cross-seed pairs;
    * ``invert_agree``: the change in a BNN map's agreement with the FP Grad-CAM when it is
      inverted, cross-seed pairs;
    * ``invert_ad``, ``norelu_ad``, ``invert_ad50``: AD(Grad-CAM) - AD(new map) on the BNN
      seeds, ``fp_invert_ad50`` the same on the FP seeds.

    FP-vs-BNN statistics are repeated with the accuracy-matched controls (suffix
    ``_matched``). Seed-to-seed references (floats): ``invert_agree_seed`` (the inversion's
    change within the FP seeds) and ``blank_seed`` (the largest blank-rate difference
    between two seeds of one kind, pp). ``scores`` holds one way of scoring constant maps."""
    n = scores["image"].nunique()
    blank = per_model(scores, "blank")
    ad = {v: per_model(scores, "AD", v) for v in SCORED}
    ad50 = {v: per_model(scores, "AD@50%", v) for v in ("Grad-CAM", "inverted")}
    gc, inv = agreement_scores(agree, "Grad-CAM"), agreement_scores(agree, "inverted")
    out = {}
    for suffix, a in (("", "fp"), ("_matched", "control")):
        for key, values, scale in (("blank_excess", blank, 100.0),
                                   ("ad_excess", ad["Grad-CAM"], 1.0),
                                   ("ad50_excess", ad50["Grad-CAM"], 1.0)):
            out[key + suffix] = suite.bootstrap_statistic(
                excess_statistic(suite, values, a, scale), n, (a, "bnn"))
        out["agree_gap" + suffix] = suite.bootstrap(suite.seed_gap(gc, a), n, a)

        def gain(drawn, a=a):
            cross = suite.cross_pairs(a, "bnn", drawn)
            return inv.mean(cross) - gc.mean(cross) if cross else None
        out["invert_agree" + suffix] = suite.bootstrap(gain, n, a)
    gains = {"invert_ad": (ad, "inverted", "bnn"), "norelu_ad": (ad, "no ReLU", "bnn"),
             "invert_ad50": (ad50, "inverted", "bnn"), "fp_invert_ad50": (ad50, "inverted", "fp")}
    for key, (table, variant, kind) in gains.items():
        out[key] = suite.bootstrap(
            kind_mean(suite, _differences(table["Grad-CAM"], table[variant]), kind), n,
            kinds=(kind,))
    fp_seeds = suite.seed_pairs("fp")
    out["invert_agree_seed"] = (float(np.nanmean(inv.mean(fp_seeds) - gc.mean(fp_seeds)))
                                if fp_seeds else float("nan"))
    out["blank_seed"] = 100 * seed_spread(suite, blank)
    return out


def method_statistics(suite: Suite, methods_table: pd.DataFrame, claim_layer: str = "act5"
                      ) -> dict[str, object]:
    """Per layer role L and method M of a :func:`method_table` (one way of scoring constant
    maps): ``gap/<L>/<M>``, the Average Drop BNN - FP over the cross-seed pairs, and
    ``ste/<L>``, Grad-CAM's gap minus Score-CAM's ((CI, replicates) or why not; bootstrap
    seeds>images). At ``claim_layer`` also ``scorecam`` and ``ste`` (with ``_matched``, the
    accuracy-matched controls) and ``scorecam_seed``, the largest mean Score-CAM AD difference
    between two seeds of one kind."""
    out = {}
    for layer in methods_table["layer"].unique():
        for method in METHODS:
            out[f"gap/{layer}/{method}"] = method_gap(suite, methods_table, layer, method)
        out[f"ste/{layer}"] = method_gap(suite, methods_table, layer, "Grad-CAM",
                                         minus="Score-CAM")
    if claim_layer in set(methods_table["layer"]):
        out["scorecam"] = out[f"gap/{claim_layer}/Score-CAM"]
        out["ste"] = out[f"ste/{claim_layer}"]
        out["scorecam_matched"] = method_gap(suite, methods_table, claim_layer, "Score-CAM",
                                             "control")
        out["ste_matched"] = method_gap(suite, methods_table, claim_layer, "Grad-CAM",
                                        "control", minus="Score-CAM")
        out["scorecam_seed"] = seed_spread(
            suite, per_model(methods_table, "AD", "Score-CAM", claim_layer))
    return out


def depth_statistics(suite: Suite, depth: pd.DataFrame) -> dict[str, object]:
    """``act_vs_bn`` (BNN seeds) and ``act_vs_bn_fp`` (FP seeds): per image, AD(act*) -
    AD(bn*) averaged over the six VGG blocks and the kind's seeds ((CI, replicates) or why
    not; bootstrap seeds>images). Positive: the tensor before the activation explains
    better."""
    n = depth["image"].nunique()
    vgg = [m for m in depth["model"].unique() if m.rpartition(":")[2].startswith("vgg")]
    act = {m: np.mean([_layer_values(depth, m, f"act{i}") - _layer_values(depth, m, f"bn{i}")
                       for i in range(1, 7)], axis=0) for m in vgg}
    return {key: suite.bootstrap(kind_mean(suite, act, kind), n, kinds=(kind,))
            for key, kind in (("act_vs_bn", "bnn"), ("act_vs_bn_fp", "fp"))}


def _layer_values(depth: pd.DataFrame, model: str, layer: str, measure: str = "AD"):
    sel = depth[(depth["model"] == model) & (depth["layer"] == layer)
                & (depth["measure"] == measure)]
    if sel.empty:
        raise KeyError(f"no {measure!r} rows for model {model!r}, layer {layer!r}")
    return sel.sort_values("image")["value"].to_numpy(float)


def _ci(result):
    return result if isinstance(result, str) else result[0]


def _boots(result):
    return None if isinstance(result, str) else result[1]


#: Registered claim id -> (statistic key, measure text). FP-vs-BNN claims carry the
#: accuracy-matched contrast (``<key>_matched``).
V2_CLAIMS = {
    "ch03.gradcam_blank_on_bnn": ("blank_excess", "blank rate BNN - FP beyond seed variation "
                                  "(pp; cross-seed pairs)"),
    "ch03.gradcam_less_faithful_on_bnn": ("ad_excess", "Average Drop BNN - FP beyond seed "
                                          "variation (cross-seed pairs)"),
    "ch03.gradcam_other_regions_on_bnn": ("agree_gap", "Grad-CAM Spearman of seed pairs minus "
                                          "cross-seed FP-vs-BNN pairs"),
    "ch03.inversion_closer_to_fp": ("invert_agree", "Spearman(inverted BNN, FP Grad-CAM) - "
                                    "Spearman(BNN Grad-CAM, FP Grad-CAM), cross-seed pairs"),
    "ch03.inversion_more_faithful": ("invert_ad", "AD(Grad-CAM) - AD(inverted), BNN seeds"),
    "ch03.inversion_more_faithful_at_50": ("invert_ad50", "AD@50%(Grad-CAM) - "
                                           "AD@50%(inverted), BNN seeds"),
    "ch03.scorecam_alike": ("scorecam", "Score-CAM Average Drop BNN - FP at act5, cross-seed "
                            "pairs"),
    "ch03.ste_causes_deficit": ("ste", "(AD BNN - FP) Grad-CAM minus Score-CAM at act5, "
                                "cross-seed pairs"),
    "ch03.prebinarization_more_faithful": ("act_vs_bn", "AD(act*) - AD(bn*), mean over VGG "
                                           "blocks, BNN seeds"),
}


def v2_claims(statistics: dict[str, object], claim_ids=None) -> list[Claim]:
    """The registered claims (:data:`V2_CLAIMS`, or those of ``claim_ids``) judged on
    :func:`v2_statistics` (interval over seeds, then images), each with the claim its
    registered precondition names judged first. A claim whose statistic cannot be formed with
    the shipped models raises, naming why."""
    rows, entries = [], registry()
    for claim_id in claim_ids or V2_CLAIMS:
        key, measure = V2_CLAIMS[claim_id]
        if key not in statistics:
            continue
        if isinstance(statistics[key], str):
            raise RuntimeError(f"{claim_id} cannot be formed: {statistics[key]}")
        matched = statistics.get(f"{key}_matched")
        pre = entries[claim_id].get("precondition")
        rows.append(registered(claim_id, measure, _ci(statistics[key]), interval="seeds>images",
                               replicates=_boots(statistics[key]),
                               matched=None if matched is None else _ci(matched),
                               precondition=None if pre is None else v2_claims(
                                   statistics, [pre["claim"]])[0]))
    return rows


#: The claims that rest on Average Drop, re-judged under each way of scoring blank maps.
AD_CLAIMS = ("ch03.gradcam_less_faithful_on_bnn", "ch03.inversion_more_faithful",
             "ch03.inversion_more_faithful_at_50", "ch03.scorecam_alike",
             "ch03.ste_causes_deficit")


def constant_robustness(suite: Suite, scores: pd.DataFrame, agree: pd.DataFrame,
                        methods_table: pd.DataFrame) -> pd.DataFrame:
    """The verdicts of :data:`AD_CLAIMS` with blank maps scored each way of :data:`CONSTANTS`
    (``scores`` and ``methods_table`` hold all of them, column ``constant``; rows: claim id,
    columns: the constant). "undefined" where leaving constant maps out leaves an interval
    without images."""
    verdict = {}
    for constant in CONSTANTS:
        st = gradcam_statistics(suite, scores[scores["constant"] == constant], agree)
        st.update(method_statistics(suite, methods_table[methods_table["constant"] == constant]))
        verdict[constant] = {}
        for claim_id in AD_CLAIMS:
            ci = _ci(st[V2_CLAIMS[claim_id][0]])
            defined = not isinstance(ci, str) and bool(np.all(np.isfinite(ci)))
            verdict[constant][claim_id] = (v2_claims(st, [claim_id])[0].verdict if defined
                                           else "undefined")
    return pd.DataFrame(verdict).rename_axis("claim id")
