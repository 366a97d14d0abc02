"""The across-settings statistics against independent references: scipy (friedmanchisquare,
wilcoxon, ttest_1samp, trim_mean), Demsar (2006) Table 5 and his worked example, hand
computations, and scikit-posthocs / autorank / statsmodels where installed."""
import math

import numpy as np
import pytest
from scipy import stats as sps

from shrinkbench.analysis.across_stats import (friedman, iman_davenport, interval_decision, iqm, mean_difference_interval,
                                               mean_ranks, nemenyi_cd, nemenyi_p, nemenyi_q, pairs_of,
                                               performance_profile, smallest_wilcoxon_p, stratified_bootstrap, stratified_indices,
                                               stratified_resample,
                                               iqm_of_columns, wilcoxon_holm)

# Demsar (2006), Table 5: critical values q_alpha of the two-tailed Nemenyi test, k = 2..10
DEMSAR_Q05 = (1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164)
DEMSAR_Q10 = (1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920)


@pytest.mark.parametrize("k", range(2, 11))
def test_nemenyi_q_matches_demsar_table_5(k):
    # to the printed precision: within one unit of the third decimal (the table's last digit is
    # not always rounded: k = 3 prints 2.343 for 2.34370, k = 7 prints 2.949 for 2.94832)
    assert nemenyi_q(k, 0.05) == pytest.approx(DEMSAR_Q05[k - 2], abs=1e-3)
    assert nemenyi_q(k, 0.10) == pytest.approx(DEMSAR_Q10[k - 2], abs=1e-3)


def test_demsar_worked_example():
    """Demsar 2006, section 3.2.2: k = 4 classifiers, N = 14 data sets, mean ranks 3.143, 2.000,
    2.893, 1.964: chi2_F = 9.28, F_F = 3.69, CD = 1.25 at alpha 0.05 and 1.12 at 0.10."""
    n, k, ranks = 14, 4, np.array([3.143, 2.000, 2.893, 1.964])
    chi2 = 12 * n / (k * (k + 1)) * (np.sum(ranks ** 2) - k * (k + 1) ** 2 / 4)
    assert round(chi2, 2) == 9.28
    assert round(iman_davenport(chi2, n, k)[0], 2) == 3.69
    assert round(nemenyi_cd(k, n, 0.05), 2) == 1.25
    assert round(nemenyi_cd(k, n, 0.10), 2) == 1.12


@pytest.mark.parametrize("seed", range(6))
def test_friedman_matches_scipy_with_and_without_ties(seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(7 + seed, 3 + seed % 3)) + np.arange(3 + seed % 3) * 0.4
    if seed % 2:
        scores = np.round(scores, 0)  # ties within settings
    mine = friedman(scores)
    chi2, p = sps.friedmanchisquare(*scores.T)
    assert mine.chi2 == pytest.approx(chi2, rel=1e-12)
    assert mine.p_chi2 == pytest.approx(p, rel=1e-10)


def test_iman_davenport_by_hand():
    # 3 settings x 3 methods; ranks (1 = largest): [1,2,3], [1,3,2], [1,2,3]
    scores = np.array([[3.0, 2.0, 1.0], [9.0, 1.0, 5.0], [0.3, 0.2, 0.1]])
    result = friedman(scores)
    # rank sums 3, 7, 8: chi2 = 12/(3*3*4) * (9 + 49 + 64) - 3*3*4 = 122/3 - 36 = 14/3
    assert result.chi2 == pytest.approx(14 / 3)
    # F = (N-1) chi2 / (N(k-1) - chi2) = 2 * 14/3 / (6 - 14/3) = 7 on (2, 4) df
    assert result.f == pytest.approx(7.0)
    assert (result.df1, result.df2) == (2, 4)
    assert result.p_f == pytest.approx(sps.f.sf(7.0, 2, 4))
    assert mean_ranks(scores) == pytest.approx([1.0, 7 / 3, 8 / 3])


def test_two_methods_friedman_is_the_sign_test_chi2():
    scores = np.array([[2.0, 1.0], [3.0, 1.0], [1.0, 2.0], [5.0, 0.0], [4.0, 1.0]])
    # 4 of 5 settings favour the first: chi2 = (4 - 1)^2 / 5 (McNemar-like sign statistic)
    assert friedman(scores).chi2 == pytest.approx((4 - 1) ** 2 / 5)


def test_nemenyi_p_matches_scikit_posthocs():
    sp = pytest.importorskip("scikit_posthocs")
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(12, 4)) + np.array([0.0, 0.5, 1.0, 1.5])
    theirs = sp.posthoc_nemenyi_friedman(scores).to_numpy()
    ranks = sps.rankdata(scores, axis=1).mean(axis=0)  # their rank direction; differences are the same
    n, k = scores.shape
    for i, j in pairs_of(k):
        assert nemenyi_p(ranks[i], ranks[j], k, n) == pytest.approx(theirs[i, j], abs=1e-6)


def test_mean_ranks_and_cd_match_autorank():
    autorank = pytest.importorskip("autorank")
    import pandas as pd

    rng = np.random.default_rng(5)
    scores = rng.normal(size=(15, 5)) + np.array([0.0, 0.3, 0.6, 0.9, 1.2])
    frame = pd.DataFrame(scores, columns=list("abcde"))
    result = autorank.autorank(frame, alpha=0.05, verbose=False, approach="frequentist", force_mode="nonparametric")
    assert result.omnibus == "friedman"
    theirs = result.rankdf["meanrank"].reindex(list("abcde")).to_numpy()
    # autorank ranks the largest value 1 in its 'descending' default, as we do
    assert mean_ranks(scores) == pytest.approx(theirs)
    # autorank's studentized-range quantile is its own numerical approximation (agrees to 1e-5)
    assert nemenyi_cd(5, 15, 0.05) == pytest.approx(result.cd, rel=1e-4)
    assert friedman(scores).p_chi2 == pytest.approx(result.pvalue, rel=1e-8)


def test_wilcoxon_holm_matches_scipy_and_statsmodels():
    rng = np.random.default_rng(7)
    scores = rng.normal(size=(9, 4)) + np.array([0.0, 0.2, 1.0, 1.1])
    raw, adjusted = wilcoxon_holm(scores)
    for (i, j), p in zip(pairs_of(4), raw):
        assert p == pytest.approx(sps.wilcoxon(scores[:, i] - scores[:, j]).pvalue)
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    assert adjusted == pytest.approx(multitest.multipletests(raw, method="holm")[1])


def test_smallest_wilcoxon_p_is_what_scipy_gives_when_all_differences_agree():
    for n in (3, 4, 5, 6):
        assert smallest_wilcoxon_p(n) == pytest.approx(sps.wilcoxon(np.arange(1.0, n + 1)).pvalue)


def test_mean_difference_interval_is_the_bonferroni_t_interval():
    d = np.array([0.4, 1.1, -0.2, 0.9, 0.7, 1.5])
    m = 6
    result = mean_difference_interval(d, 0.05, m)
    test = sps.ttest_1samp(d, 0.0)
    ci = test.confidence_interval(confidence_level=1 - 0.05 / m)
    assert (result.low, result.high) == pytest.approx((ci.low, ci.high))
    assert result.p_value == pytest.approx(test.pvalue)


def test_interval_decision():
    assert interval_decision(-0.2, 0.3, 0.5) == "equivalent"
    assert interval_decision(0.1, 0.9, 0.5) == "better"
    assert interval_decision(-0.9, -0.1, 0.5) == "worse"
    assert interval_decision(-0.1, 0.9, 0.5) == "inconclusive"
    assert interval_decision(-0.2, 0.3, 0.0) == "inconclusive"


def test_iqm_by_hand_and_against_scipy():
    assert iqm(np.arange(1.0, 9.0)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    x = np.random.default_rng(0).normal(size=40)
    assert iqm(x) == pytest.approx(np.mean(np.sort(x)[10:30]))


def test_performance_profile_by_hand():
    pooled = np.array([[1.0, 0.0], [2.0, 3.0], [3.0, 3.0], [4.0, -1.0]])
    profile = performance_profile(pooled, np.array([0.0, 2.5]))
    assert profile.tolist() == [[1.0, 0.5], [0.5, 0.5]]


def test_stratified_bootstrap_resamples_within_settings_only_and_is_seeded():
    # setting A: every unit 0; setting B: every unit 10: any resample keeps half the values at 10
    strata = [np.zeros((4, 2)), np.full((4, 2), 10.0)]
    point, low, high = stratified_bootstrap(strata, lambda x: x.mean(axis=-2), np.random.default_rng(0), 200)
    assert point == pytest.approx([5.0, 5.0]) and low == pytest.approx([5.0, 5.0]) and high == pytest.approx([5.0, 5.0])
    rng_strata = [np.random.default_rng(1).normal(size=(5, 3)), np.random.default_rng(2).normal(size=(3, 3))]
    first = stratified_bootstrap(rng_strata, iqm_of_columns, np.random.default_rng(9), 300)
    again = stratified_bootstrap(rng_strata, iqm_of_columns, np.random.default_rng(9), 300)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert np.all(first[1] <= first[0] + 1e-12) and np.all(first[0] <= first[2] + 1e-12)


def _bootstrap_one_resample_at_a_time(strata, statistic, rng, n_boot, confidence=0.95):
    """The reference: one `stratified_resample` and one 2-D statistic per resample."""
    point = np.asarray(statistic(np.vstack(strata)))
    draws = np.stack([np.asarray(statistic(np.vstack(stratified_resample(strata, rng)))) for _ in range(n_boot)])
    tail = (1.0 - confidence) / 2.0
    return point, np.quantile(draws, tail, axis=0), np.quantile(draws, 1.0 - tail, axis=0)


@pytest.mark.parametrize("trial", range(8))
def test_stacked_bootstrap_is_bit_for_bit_the_one_at_a_time_bootstrap_with_scipy_trim_mean(trial):
    g = np.random.default_rng(100 + trial)
    methods = int(g.integers(2, 9))
    strata = [g.normal(size=(int(g.integers(2, 40)), methods)) * 10.0 ** g.uniform(-3, 3)
              for _ in range(int(g.integers(2, 6)))]

    def scipy_iqm(pooled):
        return np.array([sps.trim_mean(pooled[:, j], 0.25) for j in range(pooled.shape[1])])

    n_boot = 130  # not a multiple of the chunk: the last chunk is partial
    old = _bootstrap_one_resample_at_a_time(strata, scipy_iqm, np.random.default_rng(trial), n_boot)
    new = stratified_bootstrap(strata, iqm_of_columns, np.random.default_rng(trial), n_boot)
    assert all(np.array_equal(a, b) for a, b in zip(old, new))
    thresholds = np.unique(np.vstack(strata))[::3]
    hand = lambda x: (x[None, :, :] > thresholds[:, None, None]).mean(axis=1)  # noqa: E731 (the comparisons, averaged)
    old = _bootstrap_one_resample_at_a_time(strata, hand, np.random.default_rng(trial), n_boot)
    new = stratified_bootstrap(strata, lambda x: performance_profile(x, thresholds), np.random.default_rng(trial), n_boot)
    assert all(np.array_equal(a, b) for a, b in zip(old, new))


def test_stratified_indices_are_the_draws_of_one_resample_at_a_time():
    g = np.random.default_rng(7)
    for trial in range(40):
        sizes = [int(n) for n in g.integers(1, 30, int(g.integers(1, 12)))]  # a stratum of 1 draws nothing
        n_boot = int(g.integers(1, 20))
        rows = stratified_indices(sizes, fast := np.random.default_rng(trial), n_boot)
        slow = np.random.default_rng(trial)
        strata = [np.arange(sum(sizes[:i]), sum(sizes[:i + 1]), dtype=float)[:, None] for i in range(len(sizes))]
        expected = [np.vstack(stratified_resample(strata, slow))[:, 0] for _ in range(n_boot)]
        assert np.array_equal(rows, np.array(expected, dtype=np.intp).reshape(n_boot, -1))
        assert fast.integers(0, 2 ** 62) == slow.integers(0, 2 ** 62)  # the generator goes on alike


def test_bad_matrices_are_refused():
    with pytest.raises(ValueError):
        friedman(np.ones((1, 3)))
    with pytest.raises(ValueError):
        friedman(np.array([[1.0, math.nan], [2.0, 1.0]]))
