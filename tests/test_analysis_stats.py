"""Statistics of the analysis package against scipy and hand computations."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.interpolate import PchipInterpolator

from shrinkbench.analysis.compare import compare_values, decide
from shrinkbench.analysis.decision import adjust_family
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.power import minimum_detectable_effect, seeds_needed, t_test_power
from shrinkbench.analysis.matched import common_range, unit_levels
from shrinkbench.analysis.resample import bootstrap_column_means, bootstrap_mean_difference, mean_level
from shrinkbench.analysis.stats import (benjamini_hochberg, cohens_d_av, cohens_dz, holm, paired_t,
                            share_better, t_interval, tost_p_value, welch_t)

A = np.array([71.2, 70.4, 72.9, 71.8, 70.9])
B = np.array([70.1, 70.6, 71.0, 70.2, 69.4])


def test_t_interval_matches_scipy():
    got = t_interval(A, 0.95)
    low, high = stats.t.interval(0.95, len(A) - 1, loc=A.mean(), scale=stats.sem(A))
    assert got.mean == pytest.approx(A.mean())
    assert (got.low, got.high) == pytest.approx((low, high))
    assert got.std == pytest.approx(A.std(ddof=1))
    one = t_interval([3.0])
    assert one.n == 1 and math.isnan(one.low) and math.isnan(one.high)


def test_paired_t_matches_scipy_ttest_rel():
    got = paired_t(A, B)
    ref = stats.ttest_rel(A, B)
    ci = ref.confidence_interval(0.95)
    assert got.statistic == pytest.approx(ref.statistic)
    assert got.p_value == pytest.approx(ref.pvalue)
    assert got.df == pytest.approx(ref.df)
    assert (got.ci_low, got.ci_high) == pytest.approx((ci.low, ci.high))
    assert got.difference == pytest.approx((A - B).mean())


def test_welch_matches_scipy_ttest_ind_unequal_var():
    b = np.array([69.0, 71.5, 66.2])
    got = welch_t(A, b, 0.9)
    ref = stats.ttest_ind(A, b, equal_var=False)
    ci = ref.confidence_interval(0.9)
    assert got.statistic == pytest.approx(ref.statistic)
    assert got.p_value == pytest.approx(ref.pvalue)
    assert got.df == pytest.approx(ref.df)
    assert (got.ci_low, got.ci_high) == pytest.approx((ci.low, ci.high))


def test_degenerate_tests_do_not_crash():
    same = paired_t([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])  # every difference is exactly 1
    assert same.p_value == 0.0 and same.ci_low == same.ci_high == 1.0
    assert math.isnan(paired_t([1.0], [0.5]).p_value)
    assert math.isnan(welch_t([1.0, 2.0], [0.5]).p_value)


def test_holm_unsorted_by_hand():
    # sorted: 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, 1*0.04 = .02, .03, .06, .04
    # running maximum: .02, .03, .06, .06; back in input order:
    assert holm([0.04, 0.01, 0.03, 0.005]) == pytest.approx([0.06, 0.03, 0.06, 0.02])
    # capped at 1 and NaN left out of m (m = 2 here)
    got = holm([0.6, np.nan, 0.2])
    assert got[0] == pytest.approx(0.6) and math.isnan(got[1]) and got[2] == pytest.approx(0.4)
    assert holm([0.7, 0.9]) == pytest.approx([1.0, 1.0])  # 2 * 0.7 capped, then running max


def test_benjamini_hochberg_unsorted_by_hand_and_scipy():
    # m p/j over sorted p: .02, .02, .04, .04; running minimum from the top keeps them
    p = [0.04, 0.01, 0.03, 0.005]
    assert benjamini_hochberg(p) == pytest.approx([0.04, 0.02, 0.04, 0.02])
    rng = np.random.default_rng(3)
    for _ in range(20):
        q = rng.uniform(0, 0.2, size=int(rng.integers(2, 30)))
        assert benjamini_hochberg(q) == pytest.approx(stats.false_discovery_control(q, method="bh"))


def test_tost_matches_two_one_sided_scipy_tests_and_the_ci_rule():
    d = A - B
    margin = 1.5
    low = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
    high = stats.ttest_1samp(d, margin, alternative="less").pvalue
    result = paired_t(A, B)
    assert tost_p_value(result, margin) == pytest.approx(max(low, high))
    # equivalent at level alpha exactly when the (1 - 2 alpha) interval lies inside the margin
    rng = np.random.default_rng(0)
    for _ in range(200):
        a, b = rng.normal(0, 1, 4), rng.normal(0, 1, 4)
        res90 = paired_t(a, b, confidence=0.90)
        inside = -1.0 < res90.ci_low and res90.ci_high < 1.0
        assert (tost_p_value(res90, 1.0) < 0.05) == inside


def test_effect_sizes_and_the_share_of_units_better():
    d = A - B
    assert cohens_dz(A, B) == pytest.approx(d.mean() / d.std(ddof=1))
    pooled = math.sqrt((A.var(ddof=1) + B.var(ddof=1)) / 2)
    assert cohens_d_av(A, B) == pytest.approx((A.mean() - B.mean()) / pooled)
    assert share_better(A, B, paired=True) == pytest.approx(np.mean(A > B))
    b = np.array([70.4, 69.0, 72.9])  # ties count one half, like Mann-Whitney U
    u = stats.mannwhitneyu(A, b).statistic
    assert share_better(A, b, paired=False) == pytest.approx(u / (A.size * b.size))


def test_power_and_minimum_detectable_effect():
    assert t_test_power(0.0, 1.0, 9, 0.05) == pytest.approx(0.05)
    sd, n = 1.3, 10
    mde = minimum_detectable_effect(sd / math.sqrt(n), n - 1, 0.05, 0.8)
    assert t_test_power(mde, sd / math.sqrt(n), n - 1, 0.05) == pytest.approx(0.8, abs=1e-6)
    # independent check: scipy's Monte Carlo power of the one-sample t-test at that effect
    rng = np.random.default_rng(11)
    mc = stats.power(lambda x, axis=-1: stats.ttest_1samp(x, 0.0, axis=axis).pvalue,
                     lambda size: rng.normal(mde, sd, size=size), n_observations=(n,),
                     significance=0.05, n_resamples=20000)
    assert float(np.ravel(mc.power)[0]) == pytest.approx(0.8, abs=0.015)
    # large-sample limit: (z_{.975} + z_{.8}) * se
    se = 0.01
    assert minimum_detectable_effect(se, 5000, 0.05, 0.8) == pytest.approx(2.8016 * se, rel=2e-3)


def test_seed_planner_matches_published_sample_sizes():
    # Cohen's d = 0.5, alpha .05, power .8: paired n = 33.37 and two-sample n = 63.77 per group
    # (R pwr::pwr.t.test), so 34 and 64 seeds.
    assert seeds_needed(1.0, 0.5, 0.05, 0.8, paired=True) == 34
    assert seeds_needed(2.0, 1.0, 0.05, 0.8, paired=False) == 64
    assert seeds_needed(0.0, 0.5) == 2
    with pytest.raises(ValueError):
        seeds_needed(1.0, 0.0)


def test_bootstrap_is_seeded_and_resamples_whole_rows():
    rng_values = np.random.default_rng(5).normal(size=(6, 1))
    matrix = np.hstack([rng_values, rng_values + 10.0, rng_values * 0 + 3.0])
    one = bootstrap_column_means(matrix, np.random.default_rng(42), 500)
    two = bootstrap_column_means(matrix, np.random.default_rng(42), 500)
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])
    low, high = one
    # the same rows are drawn for every column: a shifted column gets the shifted interval
    assert low[1] == pytest.approx(low[0] + 10.0) and high[1] == pytest.approx(high[0] + 10.0)
    assert low[2] == high[2] == 3.0
    assert matrix[:, 0].min() <= low[0] < high[0] <= matrix[:, 0].max()
    sparse = np.array([[1.0, np.nan], [2.0, np.nan], [3.0, 5.0]])
    assert math.isnan(bootstrap_column_means(sparse, np.random.default_rng(0), 200)[0][1])
    lo, hi = bootstrap_mean_difference(A, B, np.random.default_rng(1), paired=True)
    assert lo < (A - B).mean() < hi


def test_pchip_mean_level_by_hand():
    u = np.array([1.0, 2.0, 3.0])
    assert mean_level(u, 2 * u, 1.0, 3.0) == pytest.approx(4.0)  # PCHIP keeps a line a line
    assert mean_level(u, 2 * u, 1.0, 2.0) == pytest.approx(3.0)
    v = np.array([0.0, 3.0, 3.5])
    quad = integrate.quad(PchipInterpolator(u, v), 1.5, 3.0)[0] / 1.5
    assert mean_level(u, v, 1.5, 3.0) == pytest.approx(quad)
    with pytest.raises(ValueError):
        mean_level(u, v, 0.5, 3.0)  # would extrapolate


def test_curve_levels_use_only_the_overlap():
    # method on 2..16x, baseline on 4..32x, both straight lines in log2 x, 1.5 points apart
    xa, xb = np.array([2.0, 4, 8, 16]), np.array([4.0, 8, 16, 32])
    offsets = {"u0": 0.0, "u1": 0.4, "u2": -0.3}
    method = {k: (xa, 90 - np.log2(xa) + 1.5 + o) for k, o in offsets.items()}
    baseline = {k: (xb, 90 - np.log2(xb) + o) for k, o in offsets.items()}
    lo, hi = common_range(method, baseline)
    assert (lo, hi) == pytest.approx((4.0, 16.0))
    a, b = unit_levels(method, lo, hi), unit_levels(baseline, lo, hi)
    assert [a[k] - b[k] for k in offsets] == pytest.approx([1.5] * 3)
    assert a["u1"] == pytest.approx(90 - 3 + 1.5 + 0.4)  # a line's mean level over log2 4..16 is its middle
    apart = common_range({0: (np.array([2.0, 4]), np.array([1.0, 2]))}, {0: (np.array([8.0, 16]), np.array([1.0, 2]))})
    assert all(math.isnan(v) for v in apart)


def _null_decisions(reps: int, family: int, paired: bool, seed: int) -> np.ndarray:
    """Simulate `reps` families of `family` comparisons where nothing differs; return
    whether each family produced any better/worse decision."""
    import pandas as pd

    options = AnalysisOptions(rope=0.0)
    rng = np.random.default_rng(seed)
    hits = np.zeros(reps, dtype=bool)
    for r in range(reps):
        p, diffs = [], []
        for _ in range(family):
            unit = rng.normal(0, 2.0, 5)  # shared seed effect, removed by pairing
            a = pd.Series(unit + rng.normal(0, 1.0, 5))
            b = pd.Series((unit if paired else rng.normal(0, 2.0, 5)) + rng.normal(0, 1.0, 5),
                          index=range(5) if paired else range(10, 15))
            stats_ = compare_values(a, b, options)
            p.append(stats_)
        rows = adjust_family(pd.DataFrame(p), options, family="null")
        hits[r] = rows["decision"].isin(["better", "worse"]).any()
    return hits


@pytest.mark.slow
@pytest.mark.parametrize("paired", [True, False])
def test_false_positive_rate_under_the_null_is_nominal(paired):
    reps = 2000
    rate = _null_decisions(reps, 1, paired, seed=2024 + paired).mean()
    tolerance = 3.3 * math.sqrt(0.05 * 0.95 / reps)  # ~99.9% binomial band
    assert abs(rate - 0.05) < tolerance


@pytest.mark.slow
def test_the_family_keeps_its_familywise_rate_under_the_null():
    reps = 1000
    rate = _null_decisions(reps, 6, True, seed=7).mean()
    assert rate < 0.05 + 3.3 * math.sqrt(0.05 * 0.95 / reps)
    assert rate > 0.01  # the simultaneous intervals are not vacuous


def test_decide_reads_one_interval_by_hand():
    assert decide(0.1, 0.3, 0.5) == "equivalent"  # inside ±0.5, though it excludes 0
    assert decide(-0.4, 0.45, 0.5) == "equivalent"
    assert decide(0.1, 0.6, 0.5) == "better" and decide(-0.6, -0.1, 0.5) == "worse"
    assert decide(-0.6, -0.1, 0.5, higher_is_better=False) == "better"
    assert decide(-0.1, 0.6, 0.5) == "inconclusive" and decide(-0.5, 0.2, 0.5) == "inconclusive"
    assert decide(math.nan, math.nan, 0.5) == "inconclusive"
    assert decide(0.1, 0.3, 0.0) == "better"  # ROPE 0: never equivalent


def test_a_family_is_decided_from_its_bonferroni_intervals_against_scipy():
    import pandas as pd

    rng = np.random.default_rng(3)
    options = AnalysisOptions(rope=0.5)
    rows = pd.DataFrame([compare_values(dict(enumerate(rng.normal(shift, 0.3, 6))),
                                        dict(enumerate(rng.normal(0.0, 0.3, 6))), options)
                         for shift in (0.0, 0.05, 1.5, -2.0, 0.4)])
    out = adjust_family(rows, options, family="f")
    m = 5
    for r, (_, raw) in zip(out.itertuples(), rows.iterrows()):
        d = raw["difference"]
        half = stats.t.ppf(1 - 0.05 / (2 * m), r.df) * r.se
        assert (r.sim_low, r.sim_high) == pytest.approx((d - half, d + half))
        assert r.p_adjusted == pytest.approx(min(1.0, m * raw["p_value"]))
        assert r.p_equivalence_adjusted == pytest.approx(min(1.0, 2 * m * raw["p_equivalence"]))
        assert r.decision == decide(r.sim_low, r.sim_high, 0.5)
        assert (r.p_deciding < 0.05) == (r.decision != "inconclusive")
        assert r.mde_alpha == pytest.approx(0.05 / m)
    assert set(out["decision"]) >= {"better", "worse"}


def test_a_seed_free_side_is_a_constant_tested_one_sample_against_scipy():
    import pandas as pd

    options = AnalysisOptions(metric="perplexity", rope=0.5)  # lower is better
    method = {0: 10.2, 1: 11.0, 2: 10.6}
    constant = {0: 12.0}
    stats_ = compare_values(method, constant, options, (False, True))
    ref = stats.ttest_1samp(list(method.values()), 12.0)
    assert stats_["test"].startswith("one-sample t") and stats_["df"] == 2
    assert stats_["p_value"] == pytest.approx(ref.pvalue) and stats_["statistic"] == pytest.approx(ref.statistic)
    assert stats_["difference"] == pytest.approx(np.mean(list(method.values())) - 12.0)
    low, high = ref.confidence_interval(0.95)
    assert (stats_["ci_low"], stats_["ci_high"]) == pytest.approx((low - 12.0, high - 12.0))
    flipped = compare_values(constant, method, options, (True, False))  # the other way round: negated
    assert flipped["difference"] == pytest.approx(-stats_["difference"])
    assert (flipped["ci_low"], flipped["ci_high"]) == pytest.approx((-stats_["ci_high"], -stats_["ci_low"]))
    assert flipped["p_value"] == pytest.approx(stats_["p_value"])
    # without the flag a single value is a sample of one: no test at all
    assert math.isnan(compare_values(method, constant, options)["p_value"])
    # two seed-free values differ exactly: a zero-width interval decides
    exact = compare_values({0: 12.0}, {0: 14.0}, options, (True, True))
    assert exact["se"] == 0.0 and exact["difference"] == -2.0
    out = adjust_family(pd.DataFrame([exact, compare_values({0: 12.0}, {0: 12.2}, options, (True, True)), stats_]),
                        options, family="f")
    assert list(out["decision"][:2]) == ["better", "equivalent"]
    assert (out["sim_low"][0], out["sim_high"][0]) == (-2.0, -2.0)
    half = stats.t.ppf(1 - 0.05 / (2 * 3), 2) * stats_["se"]
    assert (out["sim_low"][2], out["sim_high"][2]) == pytest.approx((stats_["difference"] - half,
                                                                      stats_["difference"] + half))


def test_t_quantile_cached_scalars_equal_scipy_and_arrays_still_work():
    import numpy as np
    from scipy import stats as sps

    from shrinkbench.analysis.stats import t_quantile

    for confidence, df in [(0.95, 2), (0.95, 2.0), (0.99, 7), (0.9, 1e6), (0.95, float("inf")), (0.95, 0.5)]:
        for _ in range(2):  # computed, then looked up
            assert t_quantile(confidence, df) == sps.t.ppf(0.5 + confidence / 2, df)
    assert np.isnan(t_quantile(0.95, float("nan")))
    dfs = np.array([1.0, 3.0, 30.0])
    assert np.array_equal(t_quantile(0.95, dfs), sps.t.ppf(0.975, dfs))
