"""Tests of chapter 2's twins-v2 protocol (bnn_saliency.study.ch02_smoothgrad.protocol).

Oracles: hand-computed means, ranks and interpolations on tables built by hand; the
keying axiom (an image's random draws do not depend on the other images computed with it);
the registry's definitions, computed directly with numpy.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tensorflow import keras

from bnn_saliency import verdicts
from bnn_saliency.study.ch02_smoothgrad import protocol as c2
from bnn_saliency.study import common
from bnn_saliency.study.common import Suite

SUITE = Suite({"fp": {0: "f0", 1: "f1"}, "bnn": {0: "b0", 1: "b1"}, "control": {}})


def test_keyed_draws_do_not_depend_on_the_other_images():
    maps = c2.keyed_random_maps([3, 7, 9], (4, 5))
    again = c2.keyed_random_maps([9, 3], (4, 5))
    np.testing.assert_array_equal(maps[[2, 0]], again)
    assert not np.array_equal(maps[0], maps[1])
    x = np.full((3, 4, 4, 3), 0.5, np.float32)
    q = c2.keyed_requantize(x, [3, 7, 9])
    np.testing.assert_allclose(np.abs(q - x), 1 / 255, rtol=1e-5)  # float32 of 0.5 +- 1/255
    np.testing.assert_array_equal(c2.keyed_requantize(x[:1], [7]), q[1:2])
    edge = c2.keyed_requantize(np.ones((1, 2, 2, 3), np.float32), [0])
    assert edge.max() == 1.0  # clipped


def test_sweep_records_of_a_subset_equal_the_full_run():
    from bnn_saliency.models.twins import build_twin

    keras.utils.set_random_seed(4)
    model = build_twin("vgg", "fp", width=4)
    x = np.random.default_rng(0).random((3, 32, 32, 3)).astype(np.float32)
    y = np.array([1, 2, 3])
    kw = dict(name="vgg-fp-s0", noises=(0.0, 0.1, 0.5), n_half=2)
    full = c2.sweep_records(model, x, y, image_ids=np.arange(3), **kw)
    sub = c2.sweep_records(model, x[[2]], y[[2]], image_ids=np.array([2]), **kw)
    keys = ["noise", "measure"]
    a = full[full["image"] == 2].sort_values(keys)["value"].to_numpy()
    b = sub.sort_values(keys)["value"].to_numpy()
    # insertion runs the images in one batch: float32 rounding only
    np.testing.assert_allclose(a, b, atol=1e-5, equal_nan=True)
    assert set(full["measure"]) == {"gini", "insertion", "insertion gain", "stability",
                                    "vs randomized", "vs itself"}
    assert set(full.loc[full["measure"] == "vs itself", "noise"]) == {0.5}
    assert len(full) == 3 * (4 * 3 + 2)


def _records():
    """Two noise levels, three images; gini of model m at noise s on image i set by hand."""
    gini = {"f0": [0.5, 0.6, 0.7], "f1": [0.4, 0.6, 0.8], "b0": [0.2, 0.3, 0.1],
            "b1": [0.3, 0.3, 0.3]}
    rows = []
    for m, g in gini.items():
        for i, v in enumerate(g):
            rows.append({"model": m, "noise": 0.2, "measure": "gini", "image": i, "value": v})
            rows.append({"model": m, "noise": 0.0, "measure": "gini", "image": i, "value": 1.0})
    return pd.DataFrame(rows), gini


def test_values_cross_difference_and_seed_bound_by_hand():
    records, gini = _records()
    v = c2.values(records, "gini", 0.2)
    np.testing.assert_allclose(v["f1"], gini["f1"])
    per_image = SUITE.cross_difference(v)(SUITE.seeds)
    # cross pairs (f0, b1), (f1, b0)
    want = ((np.array(gini["f0"]) - gini["b1"]) + (np.array(gini["f1"]) - gini["b0"])) / 2
    np.testing.assert_allclose(per_image, want)
    np.testing.assert_allclose(SUITE.cross_difference(v, "bnn", "fp")(SUITE.seeds), -want)
    assert SUITE.cross_difference(v)({"fp": [0], "bnn": [0]}) is None
    # seed differences: f0 - f1 = (0.1, 0, -0.1), b0 - b1 = (-0.1, 0, -0.2); the bootstrap
    # means of three values lie within their range, and the extreme -0.2 draw is reachable
    bound = SUITE.seed_bound(v)
    assert 0.1 < bound <= 0.2 + 1e-12
    assert Suite({"fp": {0: "f0"}, "bnn": {0: "b0"}, "control": {}}).seed_bound(v) == 0.0
    with pytest.raises(KeyError, match="no 'gini' records at noise 0.3"):
        c2.values(records, "gini", 0.3)


def test_best_noise_and_its_cross_seed_statistic():
    grid = (0.0, 0.1, 0.2)
    curves = {"f0": np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 0.5]]),  # mean peak at 0.2 / image 1: 0.1
              "f1": np.array([[0.0, 3.0, 1.0], [0.0, 3.0, 1.0]]),
              "b0": np.array([[2.0, 1.0, 0.0], [2.0, 2.0, 0.0]]),  # tie on image 1 -> 0.0
              "b1": np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])}
    assert c2.best_noise(curves["f0"], [0, 1], grid) == 0.2  # means (0, 1, 1.25)
    assert c2.best_noise(curves["f0"], [1], grid) == 0.1
    assert c2.best_noise(curves["b0"], [1], grid) == 0.0     # tie goes to the smaller level
    stat = c2.best_noise_statistic(SUITE, {k: np.pad(v, ((0, 0), (0, 8)), constant_values=-9)
                                           for k, v in curves.items()}, "fp")
    # the grid of the statistic is NOISES: positions 0, 1, 2 are 0%, 1%, 2%
    f = stat(SUITE.seeds)
    g = c2.NOISES
    # pairs (f0, b1): g[2] - g[1]; (f1, b0): g[1] - g[0]
    assert f(np.array([0, 1])) == pytest.approx(((g[2] - g[1]) + (g[1] - g[0])) / 2)


def test_randomization_index_pools_before_the_ratio():
    rows = []
    for m, rand, itself in (("b0", [0.2, 0.4], [0.8, 0.8]), ("b1", [0.6, 0.6], [0.4, 1.0])):
        for i in range(2):
            rows += [{"model": m, "noise": 0.5, "measure": "vs randomized", "image": i,
                      "value": rand[i]},
                     {"model": m, "noise": 0.5, "measure": "vs itself", "image": i,
                      "value": itself[i]}]
    stat = c2.randomization_index(pd.DataFrame(rows))
    assert stat(["b0", "b1"], np.array([0, 1])) == pytest.approx(1.8 / 3.0)
    assert stat(["b1"], np.array([0, 0])) == pytest.approx(0.6 / 0.4)


def test_flip_sigma_interpolates_between_grid_points():
    flips = pd.DataFrame({"model": ["a"] * 6 + ["b"] * 2,
                          "noise": [0.1, 0.1, 0.2, 0.2, 0.4, 0.4, 0.1, 0.2],
                          "flip_rate": [0.0, 0.2, 0.2, 0.4, 0.6, 1.0, 0.0, 0.05]})
    # a: mean 0.1 at 10%, 0.3 at 20%, 0.8 at 40%
    assert c2.flip_sigma(flips, 0.10)["a"] == pytest.approx(0.10)
    assert c2.flip_sigma(flips, 0.50)["a"] == pytest.approx(0.2 + 0.2 * 0.2 / 0.5)
    assert c2.flip_sigma(flips, 0.05)["a"] == pytest.approx(0.05)  # from (0, 0)
    assert np.isnan(c2.flip_sigma(flips, 0.5)["b"])


def test_best_noise_table_by_hand():
    grid = (0.0, 0.1, 0.2)
    peaks = {"gini": 0.0, "insertion gain": 0.2, "stability": 0.1}  # each measure's optimum
    records = pd.DataFrame([{"model": "a", "noise": s, "measure": m, "image": i,
                             "value": -abs(s - peak) + 0.01 * i}
                            for m, peak in peaks.items() for s in grid for i in range(3)])
    flips = pd.DataFrame({"model": "a", "noise": [0.1, 0.2], "flip_rate": [0.2, 0.6]})
    row = c2.best_noise_table(records, flips, ["a"], grid).iloc[0]
    assert [row[f"best σ ({m})"] for m in peaks] == [0.0, 0.2, 0.1]
    # flips 0 at 0%, 0.2 at 10%, 0.6 at 20%: 10% at σ 0.05, 50% at 0.1 + 0.1 * 0.3 / 0.4
    assert row["σ at 10% flips"] == pytest.approx(0.05)
    assert row["σ at 50% flips"] == pytest.approx(0.175)
    assert common.pct(0.06) == "6%" and common.pct(0.015) == "1.5%"


def test_logit_changes_and_seed_ratio():
    rel = pd.DataFrame({"model": ["f0"] * 2 + ["f1"] * 2 + ["b0"] * 2 + ["b1"] * 2,
                        "layer": "logits", "noise": 0.02, "image": [0, 1] * 4,
                        "rel_change": [1.0, 2.0, 2.0, 4.0, 3.0, 3.0, 3.0, 3.0]})
    np.testing.assert_allclose(c2.logit_changes(rel, 0.02)["f1"], [2.0, 4.0])
    assert c2.seed_ratio(SUITE, rel, 0.02) == pytest.approx(2.0)


def test_v2_statistics_point_estimates_by_hand():
    rng = np.random.default_rng(0)
    names = ["f0", "f1", "b0", "b1"]
    rows = []
    for m in names:
        for s in c2.NOISES:
            for i in range(6):
                for meas in ("gini", "stability", "insertion gain"):
                    rows.append({"model": m, "noise": s, "measure": meas, "image": i,
                                 "value": rng.random()})
        for i in range(6):
            for meas in ("vs randomized", "vs itself"):
                rows.append({"model": m, "noise": 0.5, "measure": meas, "image": i,
                             "value": rng.random() + 0.5})
    records = pd.DataFrame(rows)
    rel = pd.DataFrame([{"model": m, "layer": "logits", "noise": s, "image": i,
                         "rel_change": rng.random() + 0.1}
                        for m in names for s in (0.02, 0.2) for i in range(6)])
    suite = Suite({"fp": {0: "f0", 1: "f1"}, "bnn": {0: "b0", 1: "b1"},
                   "control": {0: "f0", 1: "f1"}})
    st = c2.v2_statistics(suite, records, rel)
    g = c2.values(records, "gini", 0.2)
    want = np.mean((g["f0"] - g["b1"] + g["f1"] - g["b0"]) / 2)
    assert st["gini20"][0].point == pytest.approx(want)
    assert st["gini20_matched"][0].point == pytest.approx(want)  # controls are the FP twins
    logs = {m: np.log(v) for m, v in c2.logit_changes(rel, 0.02).items()}
    amp = np.exp(np.mean((logs["b1"] - logs["f0"] + logs["b0"] - logs["f1"]) / 2))
    assert st["amp2"][0].point == pytest.approx(amp)
    r, s = c2.values(records, "vs randomized", 0.5), c2.values(records, "vs itself", 0.5)
    assert st["rindex_bnn"][0].point == pytest.approx(
        np.mean([r["b0"], r["b1"]]) / np.mean([s["b0"], s["b1"]]))
    curves = c2.sweep_curves(records, "insertion gain")
    best = {m: c2.NOISES[int(np.argmax(curves[m].mean(axis=0)))] for m in names}
    assert st["best_diff"][0].point == pytest.approx(
        ((best["f0"] - best["b1"]) + (best["f1"] - best["b0"])) / 2)
    assert st["best_fp"][0].point == pytest.approx((best["f0"] + best["f1"]) / 2)
    claims = c2.v2_claims(st)
    assert len(claims) == len(c2.V2_CLAIMS)
    primary = [c for c in claims if c.p_value is not None]
    assert {c.claim_id for c in primary} == {"ch02.smoothgrad_noisier_at_20",
                                             "ch02.best_noise_lower_for_bnn",
                                             "ch02.bnn_random_at_50"}
    noisier = next(c for c in claims if c.claim_id == "ch02.smoothgrad_noisier_at_20")
    assert f"seed bound {st['bound/gini20']:g};" in noisier.threshold


def test_registered_judges_the_matched_contrast_by_its_own_threshold():
    claim = verdicts.registered("ch02.smoothgrad_noisier_at_20", "m", (0.3, 0.2, 0.4),
                                threshold=0.1, replicates=np.full(10, 0.3),
                                matched=(0.3, 0.2, 0.4), matched_threshold=0.25)
    assert claim.verdict == "reproduced"
    assert claim.matched["verdict"] == "partly" and claim.matched["threshold"] == 0.25
    with pytest.raises(ValueError, match="no accuracy_matched"):
        verdicts.registered("ch02.best_noise_bnn_2_6", "m", (0.03, 0.02, 0.04),
                            matched_threshold=0.1)
