"""Statistics of several methods over several settings, the settings being the units
(Demsar 2006): pure functions on a settings x methods matrix of scores, larger = better
(negate a lower-is-better response before calling them).

- `mean_ranks`: rank 1 = best in each setting, ties share the mean rank.
- `friedman`: Friedman's chi^2_F = 12N/(k(k+1)) [sum_j R_j^2 - k(k+1)^2/4], divided by the tie
  correction 1 - sum(t^3 - t)/(N(k^3 - k)) as scipy.stats.friedmanchisquare does (which needs
  k >= 3; k = 2 is computed here too), and Iman and Davenport's (1980) correction
  F_F = (N-1) chi^2_F / (N(k-1) - chi^2_F) on (k-1, (k-1)(N-1)) degrees of freedom.
- `nemenyi_q`, `nemenyi_cd`, `nemenyi_p`: the critical difference CD = q_alpha sqrt(k(k+1)/(6N))
  with q_alpha the studentized range quantile (infinite df) over sqrt 2 (Demsar's Table 5),
  and the single-step p of each pair, P(Q_{k,inf} >= sqrt 2 |R_i - R_j| / sqrt(k(k+1)/(6N))).
- `wilcoxon_holm`: Wilcoxon signed-rank of every pair over the settings, Holm-adjusted
  over the family of all pairs.
- `mean_difference_intervals`: the per-setting difference of each pair averaged over the
  settings, with a Bonferroni-simultaneous Student-t interval over the family of pairs:
  mean(d) ± t_{1-alpha/(2m), N-1} sd(d)/sqrt(N); the interval decides the verdict.
- `iqm`, `stratified_bootstrap`, `performance_profile`: rliable's interquartile mean and
  performance profiles (Agarwal et al. 2021) with a stratified bootstrap that resamples the
  units within each setting, the same units for every method (a seeded numpy Generator).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from shrinkbench.analysis.stats import holm, t_quantile


def _matrix(scores) -> np.ndarray:
    matrix = np.asarray(scores, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] < 2 or matrix.shape[1] < 2:
        raise ValueError(f"need a settings x methods matrix with at least 2 of each, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError("the settings x methods matrix has missing or infinite values")
    return matrix


def within_setting_ranks(scores) -> np.ndarray:
    """Ranks of the methods within each setting: 1 = the largest score, ties averaged."""
    return sps.rankdata(-_matrix(scores), axis=1)


def mean_ranks(scores) -> np.ndarray:
    """Each method's mean rank over the settings (1 = best)."""
    return within_setting_ranks(scores).mean(axis=0)


@dataclass(frozen=True)
class Friedman:
    n_settings: int
    n_methods: int
    chi2: float
    p_chi2: float
    f: float
    df1: int
    df2: int
    p_f: float


def friedman(scores) -> Friedman:
    """Friedman's test with the Iman-Davenport F (see the module docstring)."""
    matrix = _matrix(scores)
    n, k = matrix.shape
    ranks = within_setting_ranks(matrix)
    chi2 = 12.0 / (n * k * (k + 1)) * float((ranks.sum(axis=0) ** 2).sum()) - 3.0 * n * (k + 1)
    ties = sum(float((c ** 3 - c).sum()) for c in (np.unique(row, return_counts=True)[1] for row in ranks))
    correction = 1.0 - ties / (n * (k ** 3 - k))
    chi2 = chi2 / correction if correction > 0 else 0.0  # every setting ties all methods: no evidence
    p_chi2 = float(sps.chi2.sf(chi2, k - 1))
    f, p_f = iman_davenport(chi2, n, k)
    return Friedman(n, k, chi2, p_chi2, f, k - 1, (k - 1) * (n - 1), p_f)


def iman_davenport(chi2: float, n: int, k: int) -> tuple[float, float]:
    """F_F = (N-1) chi^2_F / (N(k-1) - chi^2_F) and its p on (k-1, (k-1)(N-1)) df; infinite
    (p = 0) where every setting ranks the methods alike."""
    denominator = n * (k - 1) - chi2
    if denominator <= 0:
        return math.inf, 0.0
    f = (n - 1) * chi2 / denominator
    return f, float(sps.f.sf(f, k - 1, (k - 1) * (n - 1)))


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """q_alpha of Demsar's (2006) Table 5: the studentized range quantile over sqrt 2."""
    return float(sps.studentized_range.ppf(1.0 - alpha, k, np.inf) / math.sqrt(2.0))


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Critical difference of mean ranks: q_alpha sqrt(k(k+1)/(6N))."""
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n))


def nemenyi_p(rank_a: float, rank_b: float, k: int, n: int) -> float:
    """Single-step Nemenyi p of the difference of two mean ranks (family: all k(k-1)/2 pairs)."""
    z = abs(rank_a - rank_b) / math.sqrt(k * (k + 1) / (6.0 * n))
    return float(sps.studentized_range.sf(z * math.sqrt(2.0), k, np.inf))


def pairs_of(k: int) -> list[tuple[int, int]]:
    """Every unordered pair (i, j), i < j, of k methods."""
    return [(i, j) for i in range(k) for j in range(i + 1, k)]


def wilcoxon_p(differences) -> float:
    """Two-sided Wilcoxon signed-rank p of per-setting differences (scipy's default: exact for
    small N without ties or zeros); 1 where every difference is zero."""
    d = np.asarray(differences, dtype=float)
    if not np.any(d != 0):
        return 1.0
    return float(sps.wilcoxon(d).pvalue)


def wilcoxon_holm(scores) -> tuple[np.ndarray, np.ndarray]:
    """Raw and Holm-adjusted signed-rank p of every pair of `pairs_of(k)` (in that order)."""
    matrix = _matrix(scores)
    raw = np.array([wilcoxon_p(matrix[:, i] - matrix[:, j]) for i, j in pairs_of(matrix.shape[1])])
    return raw, holm(raw)


def smallest_wilcoxon_p(n: int) -> float:
    """The smallest two-sided signed-rank p that N settings allow: 2 / 2^N (all N differences of
    one sign)."""
    return min(1.0, 2.0 / 2.0 ** n)


@dataclass(frozen=True)
class MeanDifference:
    """Mean over N settings of a pair's per-setting difference, with its simultaneous
    interval [low, high] (Bonferroni over `family_size` pairs) and its plain t test."""

    difference: float
    sd: float
    n: int
    low: float
    high: float
    p_value: float


def mean_difference_interval(differences, alpha: float, family_size: int) -> MeanDifference:
    """mean(d) ± t_{1-alpha/(2m), N-1} sd(d)/sqrt(N), and the two-sided one-sample t p."""
    d = np.asarray(differences, dtype=float)
    n = d.size
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    half = float(t_quantile(1.0 - alpha / max(family_size, 1), n - 1)) * se
    if se > 0:
        p = float(2.0 * sps.t.sf(abs(mean) / se, n - 1))
    else:
        p = 1.0 if mean == 0 else 0.0
    return MeanDifference(mean, sd, n, mean - half, mean + half, p)


def interval_decision(low: float, high: float, rope: float) -> str:
    """The one decision rule (scores larger = better): inside (-rope, rope): equivalent;
    above 0: better; below 0: worse; else inconclusive."""
    if -rope < low and high < rope:
        return "equivalent"
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "inconclusive"


def iqm(values) -> float:
    """Interquartile mean: the mean of the middle 50% (scipy.stats.trim_mean at 0.25)."""
    return float(sps.trim_mean(np.asarray(values, dtype=float).ravel(), 0.25))


def stratified_resample(strata: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """One stratified bootstrap sample: within each setting (an array units x methods), units
    drawn with replacement, the same units for every method."""
    return [s[rng.integers(0, s.shape[0], s.shape[0])] for s in strata]


def stratified_indices(sizes: list[int], rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """The rows of `n_boot` stratified resamples of the stacked strata (sizes: units per
    setting), shape (n_boot, sum(sizes)): the same draws from `rng`, in the same order, as
    `n_boot` calls of `stratified_resample` (numpy draws an array of bounds element by element
    from the same stream as it fills one bound's array; tests/test_across_stats.py checks
    both the rows and the generator's state afterwards against the calls one by one)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    offsets = np.repeat(np.cumsum(sizes) - sizes, sizes)
    bounds = np.tile(np.repeat(sizes, sizes), n_boot)
    return (rng.integers(0, bounds) + np.tile(offsets, n_boot)).reshape(n_boot, int(sizes.sum()))


BOOTSTRAP_CHUNK = 64  # resamples evaluated at once: bounds the memory of a stacked statistic


def stratified_bootstrap(strata: list[np.ndarray], statistic, rng: np.random.Generator, n_boot: int = 2000,
                         confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`statistic(pooled)` (pooled: all settings' units stacked, units x methods) with percentile
    intervals of the stratified bootstrap. `statistic` reduces the units axis (-2) of a stack
    (..., units, methods): it is called on chunks of resamples at once, shape
    (chunk, units, methods), and returns one result per resample (chunk, ...); for the
    point estimate it gets the 2-D pooled matrix."""
    pooled = np.vstack(strata)
    point = np.asarray(statistic(pooled))
    rows = stratified_indices([s.shape[0] for s in strata], rng, n_boot)
    draws = np.concatenate([np.asarray(statistic(pooled[rows[start:start + BOOTSTRAP_CHUNK]]))
                            for start in range(0, n_boot, BOOTSTRAP_CHUNK)])
    tail = (1.0 - confidence) / 2.0
    return point, np.quantile(draws, tail, axis=0), np.quantile(draws, 1.0 - tail, axis=0)


def iqm_of_columns(pooled: np.ndarray) -> np.ndarray:
    """`iqm` of every column (method) of units x methods, also of a stack (..., units, methods):
    bit for bit `iqm(pooled[:, j])` (the same partition, each column's middle 50% summed in
    its own contiguous row, as numpy's pairwise sum of a 1-D array does)."""
    columns = np.ascontiguousarray(np.swapaxes(np.asarray(pooled, dtype=float), -1, -2))
    n = columns.shape[-1]
    low = int(0.25 * n)
    high = n - low
    middle = np.partition(columns, (low, high - 1), axis=-1)[..., low:high]
    return np.mean(np.ascontiguousarray(middle), axis=-1)


def performance_profile(pooled: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Fraction of (setting, unit) scores above each threshold tau, per method:
    shape (len(thresholds), methods); of a stack (..., units, methods): (..., len(thresholds), methods).

    Counted on each column sorted once: #{x > tau} = n - searchsorted(sorted, tau, right), the
    same integer as the comparisons, over n (exactly the mean of the 0/1 indicators)."""
    columns = np.sort(np.swapaxes(np.asarray(pooled, dtype=float), -1, -2), axis=-1)  # (..., methods, units)
    thresholds = np.asarray(thresholds, dtype=float)
    n = columns.shape[-1]
    flat = columns.reshape(-1, n)
    at_or_below = np.stack([np.searchsorted(column, thresholds, side="right") for column in flat])
    above = (n - at_or_below).reshape(columns.shape[:-1] + thresholds.shape)  # (..., methods, thresholds)
    return np.swapaxes(above, -1, -2) / n
