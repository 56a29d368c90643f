"""Chapter 5's trained-twin statistics (bnn_saliency.study.ch05_gbp.trained_*).

Oracles: a linear model, whose gradient and guided backprop of logit k are its weight column k
whatever the input (no nonlinearity to guide), so the class invariance is the mean pairwise
correlation of the columns, computed with numpy; hand-built tables for the statistics.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tensorflow import keras

from bnn_saliency.study import ch05_gbp
from bnn_saliency.study.common import Suite


def test_trained_invariance_of_a_linear_model_is_the_correlation_of_its_weight_columns():
    keras.utils.set_random_seed(3)
    inp = keras.Input((4, 4, 3))
    out = keras.layers.Dense(3, use_bias=False, name="logits")(keras.layers.Flatten()(inp))
    model = keras.Model(inp, out)
    x = np.random.default_rng(0).random((2, 4, 4, 3)).astype(np.float32)
    table = ch05_gbp.trained_invariance({"lin": model}, x, n_logits=3)
    w = model.get_layer("logits").get_weights()[0]  # (48, 3)
    c = np.corrcoef(w.T)
    want = np.mean([c[0, 1], c[0, 2], c[1, 2]])
    assert list(table["image"]) == [0, 1]
    np.testing.assert_allclose(table["gradient invariance"], want, atol=1e-6)
    np.testing.assert_allclose(table["GBP invariance"], want, atol=1e-6)


def test_trained_statistics_and_claims_by_hand():
    suite = Suite({"fp": {0: "f0", 1: "f1"}, "bnn": {0: "b0", 1: "b1"},
                   "control": {0: "c0", 1: "c1"}})
    inv = {"f0": [0.9, 0.95, 1.0], "f1": [0.92, 0.94, 0.96], "b0": [0.5, 0.6, 0.7],
           "b1": [0.55, 0.6, 0.65], "c0": [0.8, 0.8, 0.8], "c1": [0.7, 0.8, 0.9]}
    table = pd.DataFrame([{"model": m, "image": i, "GBP invariance": v,
                           "gradient invariance": 0.0}
                          for m, vals in inv.items() for i, v in enumerate(vals)])
    st = ch05_gbp.trained_statistics(suite, table)
    a = {k: np.array(v) for k, v in inv.items()}
    assert st["fp_invariance"][0][0] == pytest.approx(np.mean([a["f0"], a["f1"]]))
    # cross pairs (f0, b1), (f1, b0)
    gap = np.mean(((a["f0"] - a["b1"]) + (a["f1"] - a["b0"])) / 2)
    assert st["gap"][0][0] == pytest.approx(gap)
    assert st["gap_matched"][0][0] == pytest.approx(np.mean(((a["c0"] - a["b1"])
                                                             + (a["c1"] - a["b0"])) / 2))
    assert 0 < st["bound"] <= 0.1 + 1e-9  # |f0 - f1| <= 0.04, |b0 - b1| <= 0.05 per image
    fp_claim, gap_claim = ch05_gbp.trained_claims(st)
    assert fp_claim.claim_id == "ch05.gbp_class_invariant_trained"
    assert fp_claim.verdict == "reproduced"  # every replicate lies within [0.9, 1.0]
    assert gap_claim.claim_id == "ch05.gbp_invariance_lower_for_bnn"
    assert gap_claim.verdict == "reproduced" and gap_claim.matched["verdict"] == "reproduced"
    with pytest.raises(RuntimeError, match="cannot be formed"):
        ch05_gbp.trained_claims({**st, "gap": "too few seeds"})
