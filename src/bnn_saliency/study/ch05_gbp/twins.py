"""Chapter 5 on the CIFAR twins: guided backprop of the untrained twins of every variant, and
on the trained twins-v2 suite the trained half of Nie et al.'s Figure 1 (class invariance per
model and image, its registered statistics and claims ``ch05.gbp_class_invariant_trained``,
``ch05.gbp_invariance_lower_for_bnn``)."""

from __future__ import annotations

import numpy as np

from ... import evaluation, methods, models
from ...memo import cached
from .untrained import display_rgb, mean_pairwise_correlation

@cached
def untrained_twin_table(images, n_logits: int = 4, seed: int = 0, family: str = "vgg"):
    """GBP and gradient of the untrained CIFAR twins (every variant) for logits 0..L-1.

    Each twin is built with ``keras.utils.set_random_seed(seed)`` just before. Per (variant,
    image): ``GBP invariance`` and ``gradient invariance`` (:func:`mean_pairwise_correlation`
    over the logits) and ``gbp~image`` (Pearson correlation of logit 0's GBP map with the image).
    """
    import pandas as pd
    import tensorflow as tf


    x = np.asarray(images, dtype=np.float32)
    xs, ts = np.repeat(x, n_logits, axis=0), np.tile(np.arange(n_logits), len(x))
    rows = []
    for variant in models.VARIANTS:
        tf.keras.utils.set_random_seed(seed)
        model = models.build_twin(family, variant)
        maps = {m: f(model, xs, ts).reshape((len(x), n_logits) + x.shape[1:])
                for m, f in (("gbp", methods.guided_backprop), ("gradient", methods.gradient))}
        for i in range(len(x)):
            rows.append({"variant": variant, "image": i,
                         "GBP invariance": mean_pairwise_correlation(maps["gbp"][i]),
                         "gradient invariance": mean_pairwise_correlation(maps["gradient"][i]),
                         "gbp~image": evaluation.pearson(maps["gbp"][i, :1], x[i:i + 1])[0]})
    return pd.DataFrame(rows)



#: Logits whose maps the class invariance of a trained twin compares (all ten CIFAR classes).
TRAINED_LOGITS = 10


def trained_invariance(models_by_name, images, n_logits: int = TRAINED_LOGITS):
    """Per trained model and image: the class invariance (:func:`mean_pairwise_correlation`
    over the maps of logits 0..L-1) of guided backprop (``GBP invariance``) and of the plain
    gradient (``gradient invariance``). Columns model, image and those two."""
    import pandas as pd

    return pd.concat([_model_invariance(model, images, n_logits).assign(model=name)
                      for name, model in models_by_name.items()], ignore_index=True)


@cached
def _model_invariance(model, images, n_logits: int):
    import pandas as pd

    x = np.asarray(images, dtype=np.float32)
    xs, ts = np.repeat(x, n_logits, axis=0), np.tile(np.arange(n_logits), len(x))
    maps = {m: f(model, xs, ts).reshape((len(x), n_logits) + x.shape[1:])
            for m, f in (("GBP", methods.guided_backprop), ("gradient", methods.gradient))}
    return pd.DataFrame([{"image": i, **{f"{m} invariance": mean_pairwise_correlation(maps[m][i])
                                         for m in maps}} for i in range(len(x))])


def trained_logit_maps(model, image, n_logits: int = TRAINED_LOGITS) -> dict[str, list]:
    """``{"GBP": [...], "gradient": [...]}``: the displayed maps (:func:`display_rgb`) of
    logits 0..L-1 of one image (H, W, C), for a figure like their Figure 1."""
    xs = np.repeat(np.asarray(image, dtype=np.float32)[None], n_logits, axis=0)
    ts = np.arange(n_logits)
    return {m: [display_rgb(g) for g in f(model, xs, ts)]
            for m, f in (("GBP", methods.guided_backprop), ("gradient", methods.gradient))}


def trained_statistics(suite, table) -> dict:
    """The registered statistics of the trained twins (``ch05.gbp_class_invariant_trained``,
    ``ch05.gbp_invariance_lower_for_bnn``; bootstrap seeds>images): ``(CI, replicates)`` or
    why it cannot be formed, and the seed bounds that are thresholds."""
    wide = table.pivot(index="image", columns="model", values="GBP invariance")
    inv = {n: wide[n].to_numpy(float) for n in wide.columns}
    n = len(wide)

    def fp_mean(drawn):
        names = [suite.name("fp", s) for s in drawn["fp"]]
        return np.mean([inv[m] for m in names], axis=0) if names else None

    out = {"fp_invariance": suite.bootstrap(fp_mean, n, kinds=("fp",))}
    for suffix, a in (("", "fp"), ("_matched", "control")):
        out["gap" + suffix] = suite.bootstrap(suite.cross_difference(inv, a), n, a)
        out["bound" + suffix] = suite.seed_bound(inv, (a, "bnn"))
    return out


def trained_claims(st: dict) -> list:
    """The two registered claims of the trained twins, judged on :func:`trained_statistics`."""
    from ...verdicts import registered

    for key in ("fp_invariance", "gap"):
        if isinstance(st[key], str):
            raise RuntimeError(f"the trained-twin statistic {key} cannot be formed: {st[key]}")
    matched = st["gap_matched"]
    return [
        registered("ch05.gbp_class_invariant_trained",
                   "mean pairwise corr of GBP over 10 logits, FP twins, seeds>images",
                   st["fp_invariance"][0], interval="seeds>images"),
        registered("ch05.gbp_invariance_lower_for_bnn",
                   "GBP class invariance FP - BNN, cross-seed pairs", st["gap"][0],
                   threshold=st["bound"], interval="seeds>images",
                   matched=matched if isinstance(matched, str) else matched[0],
                   matched_threshold=st["bound_matched"]),
    ]
