"""The "Audit your own network" page: the audit on one twin of each kind and on an untrained
network, memoized; the page's verdict table and its claims."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import auditing, memo, models
from ..stats import bootstrap_ci, paired_bootstrap_diff
from ..verdicts import Claim, registered

#: The audited models: page label -> (twin name, trained?). The untrained network is the FP
#: twin's architecture at its seeded initialization.
AUDITED = {"FP twin": ("vgg-fp-s0", True), "BNN twin": ("vgg-bnn-s0", True),
           "untrained": ("vgg-fp-s0", False)}


def audited_models(seed: int = 0) -> dict:
    """Page label -> Keras model, as :data:`AUDITED` describes."""
    return {label: models.load(name) if trained else models.build(name, seed=seed)
            for label, (name, trained) in AUDITED.items()}


@memo.cached
def audit_report(model, images, labels, quick: bool = True, seed: int = 0):
    """:func:`bnn_saliency.audit` without a progress bar, memoized on disk."""
    return auditing.audit(model, images, labels, quick=quick, progress=False, seed=seed)


def verdict_table(reports: dict) -> pd.DataFrame:
    """Checks (rows) by audited model (columns): ``verdict (value)``."""
    cells = {label: {c.check: f"{c.verdict} ({c.value:.3g})" if np.isfinite(c.value)
                     else c.verdict for c in r.checks} for label, r in reports.items()}
    return pd.DataFrame(cells).fillna("not run").rename_axis("check")


def check_ci(report, check: str) -> tuple[float, float, float]:
    """``(value, low, high)`` of one check of a report."""
    c = report.check(check)
    return c.value, c.low, c.high


def measurements(reports: dict) -> dict:
    """Every check's value and interval per model (the page's recorded numbers)."""
    return {label: {c.check: {"verdict": c.verdict, "value": c.value, "low": c.low,
                              "high": c.high} for c in r.checks}
            for label, r in reports.items()}


def claims(reports: dict) -> list[Claim]:
    """The page's claims, judged by their registered rules (book/claims.yaml, ``ch08.*``)."""
    untrained, fp, bnn = reports["untrained"], reports["FP twin"], reports["BNN twin"]
    edges = paired_bootstrap_diff(untrained.check("gradient_vs_edges").values,
                                  fp.check("gradient_vs_edges").values)
    deeplift = bnn.check("deeplift_summation").values
    return [
        registered("ch08.untrained_flagged", "accuracy (%) of the untrained FP architecture "
                   "on the audited images", bootstrap_ci(untrained.check("accuracy").values)),
        registered("ch08.untrained_edges", "Spearman(|gradient|, Sobel edges), untrained "
                   "minus trained FP twin", edges),
        registered("ch08.deeplift_bnn", "relative summation-to-delta error of DeepLIFT "
                   "(Rescale), vgg-bnn-s0", bootstrap_ci(deeplift[np.isfinite(deeplift)])),
    ]
