"""The audit's checks: each one measures one thing on the user's model, with a 95% bootstrap
interval over images, and judges it by a stated :class:`bnn_saliency.verdicts.Rule` whose
verdicts are ``pass`` / ``inconclusive`` / ``fail``.

Every check takes ``(model, images, targets, ...)`` (``model`` outputs logits, ``targets`` are
the explained classes) and returns :class:`CheckResult` rows; it reuses the library's methods
and metrics, so an audit measures exactly what the book measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import evaluation, methods, models, postprocess, stats
from ..verdicts import Rule

#: The audit's verdicts (success, in between, failure).
AUDIT_VERDICTS = ("pass", "inconclusive", "fail")

#: Spearman |map| below which a map counts as changed (Adebayo et al.'s randomization check;
#: the threshold of the book's chapter 4) and below which it is "more than an edge map".
SIMILARITY_BOUND = 0.5

#: Largest acceptable rate of blank Grad-CAM maps, in percent.
BLANK_BOUND = 10.0

#: Largest acceptable median relative completeness error of integrated gradients.
COMPLETENESS_BOUND = 0.05


def rule(kind: str, threshold: float, unit: str = "") -> Rule:
    return Rule(kind, float(threshold), unit=unit, labels=AUDIT_VERDICTS)


@dataclass
class CheckResult:
    """One judged measurement of the audit."""

    check: str  # e.g. "randomization/gradcam"
    question: str
    measure: str
    value: float
    low: float
    high: float
    rule: Rule | None  # None: a measurement reported without a verdict
    advice: str  # what the verdict means for the user
    table: pd.DataFrame | None = None  # details (e.g. one row per candidate layer)
    values: np.ndarray | None = None  # the per-image measurements behind the interval

    @property
    def verdict(self) -> str:
        """The rule's verdict; ``"info"`` for a measurement without a rule, ``"inconclusive"``
        when the interval is undefined."""
        if self.rule is None:
            return "info"
        if not (np.isfinite(self.low) and np.isfinite(self.high)):
            return "inconclusive"
        return self.rule.verdict(self.low, self.high)

    def to_dict(self) -> dict:
        out = {"check": self.check, "question": self.question, "measure": self.measure,
               "value": self.value, "low": self.low, "high": self.high,
               "rule": self.rule.text if self.rule else "", "verdict": self.verdict,
               "advice": self.advice}
        if self.values is not None:
            out["values"] = [float(v) for v in self.values]
        if self.table is not None:
            out["table"] = self.table.reset_index().to_dict(orient="records")
        return out


def _ci(values) -> stats.CI:
    v = np.asarray(values, dtype=np.float64)
    if not np.isfinite(v).any():
        return stats.CI(np.nan, np.nan, np.nan)
    return stats.bootstrap_ci(v, seed=0)


def _judged(check, question, measure, values, judge: Rule, advice: dict, **extra) -> CheckResult:
    point, low, high = _ci(values)
    if not np.isfinite(point):
        point = low = high = np.nan
    result = CheckResult(check, question, measure, float(point), float(low), float(high), judge,
                         "", values=np.asarray(values, dtype=np.float64), **extra)
    result.advice = (advice.get("n/a", "could not be measured (no defined values)")
                     if not np.isfinite(point) else advice[result.verdict])
    return result


def gradient_vs_edges(model, images, targets) -> list[CheckResult]:
    """Are gradient maps more than an edge detector? Spearman rank correlation of the
    absolute gradient (max over channels) with the image's Sobel edge map (Adebayo et al.
    2018's model-free baseline)."""
    grad = postprocess.reduce_channels(np.abs(methods.gradient(model, images, targets)), "max")
    scores = evaluation.spearman_abs(grad, evaluation.edge_map(images))
    return [_judged(
        "gradient_vs_edges", "Are gradient maps more than edge detection?",
        "Spearman(|gradient|, Sobel edges)", scores, rule("below", SIMILARITY_BOUND),
        {"pass": "gradient maps are not explained by image edges alone",
         "inconclusive": "gradient maps resemble edge maps in part: read them with care",
         "fail": "gradient maps look like an edge detector's: they say more about the image "
                 "than about the model"})]


def gradcam_layers(model, images, targets, layers) -> list[CheckResult]:
    """Grad-CAM at every candidate layer: blank-map rate and Average Drop of Grad-CAM, of the
    map without ReLU (min-max scaled) and of the inverted map. The recommended layer has the
    fewest blank maps (then the lowest Average Drop); the verdict is on its blank rate."""
    from ..methods import cam_parts

    parts = cam_parts.gradcam_layers(model, images, targets, layers)
    rows, blanks = {}, {}
    for name, p in parts.items():
        blank = cam_parts.blank_maps(p.signed).astype(float) * 100
        variants = cam_parts.cam_variants(p.signed)
        scores = evaluation.cam_faithfulness(
            model, images, targets, {v: variants[v] for v in ("Grad-CAM", "no ReLU", "inverted")})
        drop = scores.groupby("variant")["average_drop"].mean()
        blank_ci = _ci(blank)
        blanks[name] = blank
        rows[name] = {"blank %": round(blank_ci.point, 1),
                      "blank % low": round(blank_ci.low, 1),
                      "blank % high": round(blank_ci.high, 1),
                      "AD Grad-CAM": round(drop["Grad-CAM"], 1),
                      "AD no ReLU": round(drop["no ReLU"], 1),
                      "AD inverted": round(drop["inverted"], 1)}
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("layer")
    best = table.sort_values(["blank %", "AD Grad-CAM"], kind="stable").index[0]
    better = [v for v in ("no ReLU", "inverted")
              if table.loc[best, f"AD {v}"] < table.loc[best, "AD Grad-CAM"]]
    alternative = (f"; at {best} the {' and the '.join(better)} map keeps more of the "
                   "prediction (lower Average Drop) than Grad-CAM" if better else "")
    result = _judged(
        "gradcam_blank", f"Does Grad-CAM give usable maps (recommended layer: {best})?",
        f"blank Grad-CAM maps at {best} (%)", blanks[best], rule("below", BLANK_BOUND, " %"),
        {"pass": f"Grad-CAM at {best} rarely gives blank maps{alternative}",
         "inconclusive": f"Grad-CAM at {best} gives blank maps on part of the images"
                         f"{alternative}",
         "fail": f"Grad-CAM gives blank maps on many images even at its best layer ({best})"
                 f"{alternative}: do not read a blank map as 'nothing matters'"},
        table=table)
    result.recommended_layer = best
    return [result]


#: The settings of the methods the audit judges (randomization and faithfulness checks).
SMOOTHGRAD = {"noise": 0.1, "n_samples": 8}
IG_STEPS = 16


def method_suite(layer: str, names=("gradient", "smoothgrad", "integrated_gradients",
                                    "gradcam", "guided_backprop")) -> dict:
    """The audited methods by name, configured as the audit runs them (Grad-CAM at
    ``layer``): one call shape ``(model, images, targets) -> maps``."""
    options = {"smoothgrad": SMOOTHGRAD, "integrated_gradients": {"steps": IG_STEPS}}
    return {name: (methods.configure(name, layer) if name == "gradcam"
                   else methods.configure(name, **options.get(name, {}))) for name in names}


def randomization(model, images, targets, layer: str, *, quick: bool = False,
                  seed: int = 0) -> list[CheckResult]:
    """Adebayo et al.'s cascading model randomization: re-initialize the logits layer and the
    block below it (batch normalization reset too) and compare each method's maps with the
    trained model's (Spearman of absolute maps). A method passes if its maps change."""
    suite = method_suite(layer, ("gradient", "gradcam", "guided_backprop")
                         + (() if quick else ("smoothgrad",)))
    blocks = evaluation.cascade_blocks(models.randomization_layers_of(model), n_blocks=4)
    run = evaluation.cascading(model, images, targets, suite, blocks[:2],
                               metrics={"Spearman |map|":
                                        evaluation.SIMILARITY_MEASURES["Spearman |map|"]},
                               seed=seed, reset_batchnorm=True)
    at = run.scores[run.scores["step"] == len(blocks[:2])]
    layers = run.steps[-1][2]
    randomized = f"{len(layers)} layers, {layers[0]} to {layers[-1]}"
    out = []
    for name in suite:
        scores = at[at["method"] == name]["score"].to_numpy()
        label = methods.SETTINGS[name].label
        out.append(_judged(
            f"randomization/{name}", f"Do {label} maps depend on the learned weights?",
            f"Spearman |map| trained vs randomized top ({randomized})", scores,
            rule("below", SIMILARITY_BOUND),
            {"pass": f"{label} maps change when the top of the network is re-initialized",
             "inconclusive": f"{label} maps change only partly when the top is re-initialized",
             "fail": f"{label} maps barely change when the top of the network is "
                     "re-initialized: they do not explain what the model learned",
             "n/a": f"{label} maps were constant (e.g. blank): similarity undefined"}))
    return out


def binarized_layers(model) -> dict[str, str]:
    """Layers that binarize with a straight-through estimator (larq quantizers): layer name
    -> what is quantized."""
    import larq as lq
    from tensorflow import keras

    found = {}
    for layer in model.layers:
        parts = []
        for attr in ("input_quantizer", "kernel_quantizer", "depthwise_quantizer"):
            q = getattr(layer, attr, None)
            if q is not None:
                parts.append(f"{attr.split('_')[0]}: {getattr(q, '__name__', type(q).__name__)}")
        if isinstance(layer, keras.layers.Activation) and isinstance(
                layer.activation, lq.quantizers.Quantizer):
            parts.append(f"activation: {type(layer.activation).__name__}")
        if parts:
            found[layer.name] = "; ".join(parts)
    return found


def _ste_inputs(model) -> dict[str, float]:
    """Layer name -> clip value of every straight-through sign on activations."""
    import larq as lq
    from tensorflow import keras

    clips = {}
    for layer in model.layers:
        q = getattr(layer, "input_quantizer", None)
        if isinstance(layer, keras.layers.Activation):
            q = layer.activation
        if isinstance(q, lq.quantizers.Quantizer) and hasattr(q, "clip_value"):
            clips[layer.name] = float(q.clip_value)
    return clips


def binarization(model, images, targets, *, ig_steps: int = 32) -> list[CheckResult]:
    """Binarization awareness. For straight-through sign activations: the fraction of
    pre-activations outside the clip range, where the pseudo-gradient is zero. For every
    model: integrated gradients' completeness error (it holds only where the gradient is the
    network's true derivative, so a BNN fails it by construction) and DeepLIFT's
    summation-to-delta error (Rescale rule, Captum's max-pooling rule: its multipliers are
    finite differences, so it holds for sign activations too, on networks built from
    elementwise nonlinearities, affine layers, pooling and additions)."""
    from tensorflow import keras

    out = []
    clips = _ste_inputs(model)
    if clips:
        probe = keras.Model(model.inputs, [model.get_layer(n).input for n in clips])
        acts = probe.predict(images, batch_size=64, verbose=0)
        acts = acts if isinstance(acts, list) else [acts]
        outside = np.mean([np.mean(np.abs(a.reshape(len(a), -1)) > c, axis=1)
                           for a, c in zip(acts, clips.values())], axis=0) * 100
        point, low, high = _ci(outside)
        out.append(CheckResult(
            "ste_saturation", "Where is the straight-through gradient zero?",
            "pre-activations outside the STE clip range (%)", float(point), float(low),
            float(high), None, values=outside,
            advice=f"binarized activations found: on average {point:.0f}% of their "
                   "pre-activations lie outside the clip range, where the straight-through "
                   "gradient is zero, so gradient methods do not see what happens there",
            table=pd.DataFrame({"binarized": binarized_layers(model)}).rename_axis("layer")))
    ig = methods.integrated_gradients(model, images, targets, steps=ig_steps)
    error = methods.relative_completeness_error(model, images, targets, ig)
    out.append(_judged(
        "ig_completeness", "Do integrated gradients sum to the logit change (completeness)?",
        f"relative completeness error of IG ({ig_steps} steps, black baseline)", error,
        rule("below", COMPLETENESS_BOUND),
        {"pass": "IG attributions add up to the logit difference: read them as contributions",
         "inconclusive": "IG's completeness holds only roughly: use more steps or read the "
                         "attributions as a ranking only",
         "fail": "IG attributions do not add up to the logit difference (expected for "
                 "straight-through binarized networks): read them as a ranking, not as "
                 "contributions",
         "n/a": "the logit difference to the baseline is zero on every image"}))
    deeplift = methods.deeplift_rescale(model, images, targets, maxpool="rescale")
    error = methods.relative_completeness_error(model, images, targets, deeplift)
    out.append(_judged(
        "deeplift_summation", "Do DeepLIFT attributions sum to the logit change "
        "(summation-to-delta)?", "relative summation-to-delta error of DeepLIFT (Rescale, "
        "black baseline)", error, rule("below", COMPLETENESS_BOUND),
        {"pass": "DeepLIFT (Rescale) attributions add up to the logit difference: on this "
                 "model they can be read as contributions, binarized layers included",
         "inconclusive": "DeepLIFT's summation-to-delta holds only roughly: some layer "
                         "is not covered by the Rescale rule",
         "fail": "DeepLIFT (Rescale) attributions do not add up to the logit difference: "
                 "the model has layers the Rescale rule does not cover (e.g. multiplicative "
                 "gates, normalizations over features); read them as a ranking",
         "n/a": "the logit difference to the baseline is zero on every image"}))
    return out


def accuracy(model, images, truth) -> list[CheckResult]:
    """Does the model classify these images at all? Accuracy (%) on the audited images
    against twice the chance level: a saliency map explains a decision, and a model near
    chance (e.g. untrained, or given wrongly preprocessed images) has none worth explaining."""
    forward = methods.forward(model)
    logits = np.asarray(forward(images))
    chance = 100.0 / logits.shape[1]
    correct = (np.argmax(logits, axis=1) == np.asarray(truth)) * 100.0
    return [_judged(
        "accuracy", "Does the model classify these images better than chance?",
        "accuracy on the audited images (%)", correct,
        rule("above", 2 * chance, " %"),
        {"pass": "the model classifies these images well above chance, so its decisions are "
                 "worth explaining",
         "inconclusive": "the model's accuracy here is not clearly above twice chance: check "
                         "its weights and the images' preprocessing before reading any map",
         "fail": "the model is near chance on these images (untrained, wrong weights or "
                 "wrong preprocessing?): its maps explain no learned decision"})]


#: Largest acceptable rate of changed predictions among SmoothGrad's noisy copies, in percent.
FLIP_BOUND = 10.0


def noise_sensitivity(model, images, targets, noises=(0.01, 0.02, 0.05, 0.10, 0.20, 0.30),
                      n_draws: int = 8, seed: int = 0) -> list[CheckResult]:
    """Which SmoothGrad noise levels explain the same decision? Per noise level, the share of
    noisy copies whose predicted class differs from the clean image's (flip rate) and the
    agreement of two independent SmoothGrad maps (Spearman |map|, ``n_draws / 2`` copies each).
    The recommended range ends at the largest level whose flip rate interval stays below
    :data:`FLIP_BOUND`; the verdict is on the flip rate at the paper's 20%."""
    forward = methods.forward(model)
    clean = np.argmax(np.asarray(forward(images)), axis=1)
    half = max(1, n_draws // 2)
    rows, flips = {}, {}
    for k, noise in enumerate(noises):
        copies = evaluation.noisy_copies(images, noise, n_draws, seed=seed + k)
        flat = copies.reshape((-1,) + images.shape[1:])
        pred = np.argmax(np.asarray(forward(flat)), axis=1).reshape(len(images), n_draws)
        flips[noise] = np.mean(pred != clean[:, None], axis=1) * 100
        a, b = (methods.smoothgrad(model, images, targets, noise=noise, n_samples=half,
                                   seed=1000 + 2 * k + j) for j in (0, 1))
        stability = _ci(evaluation.spearman_abs(a, b))
        flip = _ci(flips[noise])
        rows[f"{noise:.0%}"] = {"flip %": round(flip.point, 1),
                                "flip % low": round(flip.low, 1),
                                "flip % high": round(flip.high, 1),
                                "stability": round(stability.point, 3)}
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("noise")
    ok = [nz for nz in noises if _ci(flips[nz]).high < FLIP_BOUND]
    upto = f"noise up to {max(ok):.0%} of the image range" if ok else "no tested noise level"
    at = 0.20 if 0.20 in flips else max(noises)
    return [_judged(
        "smoothgrad_noise", f"Does SmoothGrad at {at:.0%} noise explain the same decision?",
        f"noisy copies at {at:.0%} that change the prediction (%)", flips[at],
        rule("below", FLIP_BOUND, " %"),
        {"pass": f"SmoothGrad's noisy copies keep the prediction; recommended: {upto}",
         "inconclusive": f"at {at:.0%} some noisy copies change the prediction; "
                         f"recommended: {upto}",
         "fail": f"at {at:.0%} noise many copies are classified differently, so SmoothGrad "
                 f"averages explanations of other decisions; recommended: {upto}"},
        table=table)]


def faithfulness_ranking(model, images, targets, layer: str, *, n_steps: int = 8,
                         seed: int = 0) -> list[CheckResult]:
    """Which methods' maps rank the pixels the decision depends on? Per method, insertion AUC
    minus deletion AUC (blurred image as the reference of both) minus the same for a random
    map, per image: the excess over chance. One result per method, best first."""
    suite = method_suite(layer, ("gradient", "smoothgrad", "integrated_gradients", "gradcam"))
    rng = np.random.default_rng(seed)
    maps = {m: f(model, images, targets) for m, f in suite.items()}
    maps["random"] = rng.uniform(size=images.shape[:3])

    def score(m):
        m = np.abs(m).max(axis=-1) if m.ndim == 4 else m
        kw = {"n_steps": n_steps, "baseline": "blur", "seed": seed}
        return (evaluation.insertion_auc(model, images, targets, m, **kw)
                - evaluation.deletion_auc(model, images, targets, m, **kw))

    scores = {m: score(v) for m, v in maps.items()}
    out = []
    for name in suite:
        label = methods.SETTINGS[name].label
        out.append(_judged(
            f"faithfulness/{name}", f"Is {label} more faithful than a random map?",
            "insertion - deletion AUC, excess over a random map", scores[name] - scores["random"],
            rule("above", 0.0),
            {"pass": f"{label} ranks the pixels the decision depends on better than chance",
             "inconclusive": f"{label} is not clearly more faithful than a random map",
             "fail": f"{label} is less faithful than a random map on these images"}))
    return sorted(out, key=lambda r: -r.value if np.isfinite(r.value) else np.inf)
