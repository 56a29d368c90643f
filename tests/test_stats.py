"""Tests for bnn_saliency.stats: coverage on known distributions, determinism, closed forms."""

import numpy as np
import pandas as pd
import pytest

from bnn_saliency import stats


def test_bootstrap_ci_covers_true_mean_about_95_percent():
    rng = np.random.default_rng(123)
    true_mean, trials, hits = 2.0, 200, 0
    for k in range(trials):
        x = rng.normal(true_mean, 1.5, size=60)
        _, lo, hi = stats.bootstrap_ci(x, n_boot=1000, seed=k)
        hits += lo <= true_mean <= hi
    assert 0.90 <= hits / trials <= 0.99


def test_bootstrap_ci_width_matches_normal_theory():
    # for the mean of n normal values the 95% interval is about +-1.96 sd / sqrt(n)
    rng = np.random.default_rng(5)
    x = rng.normal(0, 2.0, size=400)
    point, lo, hi = stats.bootstrap_ci(x, n_boot=4000)
    assert point == pytest.approx(x.mean())
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.1)
    assert lo < point < hi


def test_bootstrap_ci_deterministic_and_seed_dependent():
    x = np.random.default_rng(0).exponential(size=50)
    assert stats.bootstrap_ci(x, seed=3) == stats.bootstrap_ci(x, seed=3)
    assert stats.bootstrap_ci(x, seed=3) != stats.bootstrap_ci(x, seed=4)
    ci = stats.bootstrap_ci(x)
    assert isinstance(ci, stats.CI) and isinstance(ci.low, float)


def test_bootstrap_ci_nan_values_ignored_and_constant_data():
    x = np.array([1.0, 2.0, np.nan, 3.0, np.nan])
    point, lo, hi = stats.bootstrap_ci(x)
    assert point == pytest.approx(2.0)
    assert 1.0 <= lo <= point <= hi <= 3.0
    assert stats.bootstrap_ci(np.full(10, 0.7)) == pytest.approx((0.7, 0.7, 0.7))


def test_bootstrap_ci_other_stat_and_columns():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 2)) + [0.0, 10.0]
    point, lo, hi = stats.bootstrap_ci(x, stat=np.median)
    np.testing.assert_allclose(point, np.median(x, axis=0))
    assert point.shape == lo.shape == hi.shape == (2,)
    assert (lo < point).all() and (point < hi).all() and lo[1] > 9


def test_paired_diff_removes_shared_unit_variation():
    rng = np.random.default_rng(9)
    unit = rng.normal(0, 10.0, size=80)       # large per-image effect shared by both
    a = unit + 0.5 + rng.normal(0, 0.2, 80)
    b = unit + rng.normal(0, 0.2, 80)
    point, lo, hi = stats.paired_bootstrap_diff(a, b)
    assert point == pytest.approx(np.mean(a - b))
    assert 0.3 < lo < 0.5 < hi < 0.7           # tight around the true 0.5
    _, ulo, uhi = stats.bootstrap_ci(a)
    assert (hi - lo) < 0.1 * (uhi - ulo)
    with pytest.raises(ValueError, match="same shape"):
        stats.paired_bootstrap_diff(a, b[:-1])


def test_paired_diff_coverage_of_zero_under_null():
    rng = np.random.default_rng(11)
    hits = 0
    for k in range(100):
        u = rng.normal(size=40)
        a, b = u + rng.normal(size=40), u + rng.normal(size=40)
        _, lo, hi = stats.paired_bootstrap_diff(a, b, n_boot=800, seed=k)
        hits += lo <= 0 <= hi
    assert 0.85 <= hits / 100 <= 1.0


def test_two_level_reflects_seed_variability():
    rng = np.random.default_rng(4)
    seeds, images = 5, 200
    seed_effect = rng.normal(0, 1.0, size=(seeds, 1))
    values = 3.0 + seed_effect + rng.normal(0, 1.0, size=(seeds, images))
    point, lo, hi = stats.bootstrap_ci_2level(values)
    assert point == pytest.approx(values.mean())
    _, flo, fhi = stats.bootstrap_ci(values.ravel())   # treats 1000 values as independent
    assert (hi - lo) > 3 * (fhi - flo)
    # width of the seed-level part alone: the mean of 5 seed means
    _, slo, shi = stats.bootstrap_ci(values.mean(axis=1))
    assert (hi - lo) == pytest.approx(shi - slo, rel=0.35)
    nested = stats.bootstrap_ci_2level(values, design="nested")
    assert nested.point == pytest.approx(point)
    assert stats.bootstrap_ci_2level(values, seed=1) == stats.bootstrap_ci_2level(values, seed=1)


def test_two_level_single_seed_matches_one_level_width():
    rng = np.random.default_rng(8)
    values = rng.normal(size=(1, 300))
    _, lo, hi = stats.bootstrap_ci_2level(values, n_boot=3000)
    _, lo1, hi1 = stats.bootstrap_ci(values[0], n_boot=3000)
    assert (hi - lo) == pytest.approx(hi1 - lo1, rel=0.1)


def test_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        stats.bootstrap_ci([])
    with pytest.raises(ValueError, match="all NaN"):
        stats.bootstrap_ci([np.nan, np.nan])
    with pytest.raises(ValueError, match="inf"):
        stats.bootstrap_ci([1.0, np.inf])
    with pytest.raises(ValueError, match="ci"):
        stats.bootstrap_ci([1.0, 2.0], ci=95)
    with pytest.raises(ValueError, match="n_boot"):
        stats.bootstrap_ci([1.0, 2.0], n_boot=0)
    with pytest.raises(ValueError, match="seeds, images"):
        stats.bootstrap_ci_2level(np.ones(5))
    with pytest.raises(ValueError, match="design"):
        stats.bootstrap_ci_2level(np.ones((2, 5)), design="mixed")
    with pytest.raises(TypeError):
        stats.bootstrap_ci(np.array(["a", "b"]))


def test_summarize_groups_and_two_level():
    rng = np.random.default_rng(1)
    rows = []
    for model, shift in (("fp", 0.0), ("bnn", 1.0)):
        for seed in range(3):
            for img in range(30):
                rows.append({"model": model, "method": "grad", "seed": seed, "image": img,
                             "score": shift + rng.normal()})
    df = pd.DataFrame(rows)
    df.loc[0, "score"] = np.nan
    out = stats.summarize(df, "score", by=["model", "method"], n_boot=500)
    assert list(out.columns) == ["model", "method", "mean", "low", "high", "n", "n_nan"]
    assert list(out["model"]) == ["bnn", "fp"]
    fp = out[out.model == "fp"].iloc[0]
    assert fp["n"] == 89 and fp["n_nan"] == 1
    assert fp["mean"] == pytest.approx(df[df.model == "fp"]["score"].mean())  # pandas skips NaN
    ref = stats.bootstrap_ci(df[df.model == "bnn"]["score"].to_numpy(), n_boot=500)
    bnn = out[out.model == "bnn"].iloc[0]
    assert (bnn["mean"], bnn["low"], bnn["high"]) == pytest.approx(tuple(ref))
    two = stats.summarize(df, "score", by="model", n_boot=500, seed_col="seed", image_col="image")
    assert list(two["n_seeds"]) == [3, 3]
    table = df[df.model == "fp"].pivot(index="seed", columns="image", values="score").to_numpy()
    ref2 = stats.bootstrap_ci_2level(table, n_boot=500)
    fp2 = two[two.model == "fp"].iloc[0]
    assert (fp2["mean"], fp2["low"], fp2["high"]) == pytest.approx(tuple(ref2))
    with pytest.raises(KeyError, match="nope"):
        stats.summarize(df, "nope", by="model")
    with pytest.raises(ValueError, match="both"):
        stats.summarize(df, "score", by="model", seed_col="seed")
    with pytest.raises(ValueError, match="repeated"):
        stats.summarize(pd.concat([df, df]), "score", by="model", seed_col="seed", image_col="image")
    with pytest.raises(ValueError, match="empty"):
        stats.summarize(df.iloc[:0], "score", by="model")


def test_holm_hand_example_and_bonferroni_for_the_smallest():
    # sorted: 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 = 0.04 -> max 0.06
    adjusted = stats.holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    np.testing.assert_allclose(stats.holm([0.01, 0.9]), [0.02, 0.9], rtol=1e-12)
    np.testing.assert_array_equal(stats.holm([0.5, 0.9]), [1.0, 1.0])  # 2 x 0.5, capped
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.holm([0.2, 1.5])


def test_holm_controls_the_familywise_error_rate_under_the_global_null():
    """Monte Carlo oracle: six true nulls with independent uniform p-values; Holm at 0.05
    rejects any of them in at most about 5% of families."""
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(20000, 6))
    any_rejected = np.array([(stats.holm(row) <= 0.05).any() for row in p])
    unadjusted = (p <= 0.05).any(axis=1).mean()
    assert any_rejected.mean() <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / len(p))
    assert unadjusted > 0.2  # the uncorrected family errs in ~26% of families


def test_bootstrap_pvalue_agrees_with_the_normal_test_and_the_interval():
    """Oracle: for a mean of 400 normal values the bootstrap p-value is close to the z-test's
    2 * (1 - Phi(|mean| / se)); and it is below 0.05 iff the 95% interval excludes the null."""
    from scipy.stats import norm

    rng = np.random.default_rng(1)
    for shift in (0.0, 0.08, 0.12, 0.2):
        x = rng.normal(shift, 1.0, 400)
        z = abs(x.mean()) / (x.std(ddof=1) / np.sqrt(len(x)))
        p = stats.bootstrap_pvalue(x, 0.0, n_boot=4000)
        assert abs(p - 2 * (1 - norm.cdf(z))) < 0.02, (shift, p)
        ci = stats.bootstrap_ci(x, n_boot=4000)
        excluded = ci.low > 0 or ci.high < 0
        assert (p < 0.05) == excluded or abs(p - 0.05) < 0.005
    assert stats.bootstrap_pvalue(np.full(50, 3.0), 1.0) == 2 / 2001


def test_cross_and_within_pairs_by_hand():
    assert stats.cross_pairs([0, 1], [0, 1]) == [(0, 1), (1, 0)]
    assert stats.cross_pairs([0, 0], [1, 2]) == [(0, 1), (0, 2), (0, 1), (0, 2)]
    assert stats.within_pairs([0, 1, 2]) == [(0, 1), (0, 2), (1, 2)]
    assert stats.within_pairs([1, 1, 2]) == [(1, 2), (1, 2)]   # equal labels form no pair
    assert stats.within_pairs([1, 1]) == []


def _seed_gap(scores):
    """Per image: mean over seed pairs minus mean over cross-seed pairs (chapter 1's shape)."""
    def per_image(drawn):
        seed = [scores[("fp", i, "fp", j)] for i, j in stats.within_pairs(drawn["fp"])]
        seed += [scores[("bnn", i, "bnn", j)] for i, j in stats.within_pairs(drawn["bnn"])]
        cross = [scores[("fp", i, "bnn", j)] for i, j in stats.cross_pairs(drawn["fp"],
                                                                            drawn["bnn"])]
        if not seed or not cross:
            return None
        return np.mean(seed, axis=0) - np.mean(cross, axis=0)
    return per_image


def _symmetric_scores(rng, n_seeds, n_images, cross_shift):
    scores = {}
    for a in ("fp", "bnn"):
        for b in ("fp", "bnn"):
            for i in range(n_seeds):
                for j in range(n_seeds):
                    base = 0.8 - (cross_shift if a != b else 0.0)
                    v = base + rng.normal(0, 0.1, n_images)
                    scores[(a, i, b, j)] = v
    return scores


def test_seeds_images_point_estimate_is_the_hand_computed_seed_gap():
    rng = np.random.default_rng(0)
    scores = _symmetric_scores(rng, 3, 50, cross_shift=0.3)
    point, boots = stats.seeds_images_replicates(_seed_gap(scores), {"fp": [0, 1, 2],
                                                                     "bnn": [0, 1, 2]}, 50,
                                                 n_boot=500)
    seed = [scores[(k, i, k, j)] for k in ("fp", "bnn") for i, j in [(0, 1), (0, 2), (1, 2)]]
    cross = [scores[("fp", i, "bnn", j)] for i in range(3) for j in range(3) if i != j]
    assert point == pytest.approx(np.mean(np.mean(seed, 0) - np.mean(cross, 0)), abs=1e-12)
    assert len(boots) == 500 and np.all(np.isfinite(boots))
    lo, hi = np.quantile(boots, [0.025, 0.975])
    assert lo < 0.3 < hi   # covers the built-in shift of 0.3


def test_seeds_images_matches_the_crossed_two_level_bootstrap_on_a_per_seed_mean():
    # A statistic that is a mean of per-seed values: the pair bootstrap must then agree with
    # the (seeds, images) crossed bootstrap, a second implementation of the same resampling.
    rng = np.random.default_rng(3)
    n_seeds, n_images = 8, 200
    values = rng.normal(0, 1.0, (n_seeds, 1)) + rng.normal(0, 1.0, (n_seeds, n_images))
    ci = stats.seeds_images_ci(lambda d: values[d["fp"]].mean(axis=0), {"fp": range(n_seeds)},
                               n_images, n_boot=3000)
    ref = stats.bootstrap_ci_2level(values, n_boot=3000)
    assert ci.point == pytest.approx(ref.point, abs=1e-12)
    assert (ci.high - ci.low) == pytest.approx(ref.high - ref.low, rel=0.15)


def test_seeds_images_bootstrap_of_a_ratio_of_means_matches_the_delta_method():
    # A statistic that is not a mean of per-image values: a ratio of two means. With one
    # seed, the bootstrap spread must match the delta-method standard error (an independent
    # closed form) and the point estimate the ratio on every image.
    rng = np.random.default_rng(4)
    n = 400
    a, b = rng.normal(2.0, 0.5, n), rng.normal(4.0, 0.8, n)
    point, boots = stats.seeds_images_bootstrap(
        lambda d: (lambda idx: a[idx].mean() / b[idx].mean()), {"bnn": [0]}, n, n_boot=3000)
    assert point == pytest.approx(a.mean() / b.mean(), abs=1e-12)
    r = a.mean() / b.mean()
    delta_se = np.sqrt(np.var(a - r * b, ddof=1) / n) / b.mean()
    assert np.std(boots) == pytest.approx(delta_se, rel=0.1)


def test_seeds_images_redraws_and_rejects_impossible_statistics():
    rng = np.random.default_rng(1)
    scores = _symmetric_scores(rng, 2, 20, cross_shift=0.2)
    # two seeds: half the draws repeat one label and have no FP seed pair, yet every
    # replicate is finite (the BNN pair or a redraw supplies the seed term)
    _, boots = stats.seeds_images_replicates(_seed_gap(scores), {"fp": [0, 1], "bnn": [0, 1]},
                                             20, n_boot=200)
    assert len(boots) == 200 and np.all(np.isfinite(boots))
    with pytest.raises(stats.TooFewSeeds, match="more seeds"):
        stats.seeds_images_replicates(_seed_gap(scores), {"fp": [0], "bnn": [0]}, 20)
    with pytest.raises(ValueError, match="must return 20 values"):
        stats.seeds_images_replicates(lambda d: np.zeros(3), {"fp": [0]}, 20)


def test_replicate_pvalue_tails():
    boots = np.linspace(1.0, 2.0, 99)
    assert stats.replicate_pvalue(boots, 0.0) == pytest.approx(2 / 100)
    assert stats.replicate_pvalue(boots, 1.5) == 1.0
    with pytest.raises(ValueError):
        stats.replicate_pvalue([np.nan], 0.0)
