"""Statistics of a few seeds: intervals, two-sample tests, effect sizes, multiplicity.

Pure functions on arrays; nothing here knows about stores or data frames. Conventions:
`a` is the method, `b` the baseline, and every difference is `mean(a) - mean(b)`, so a
positive difference means the method scores higher. Standard deviations use `ddof=1`.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


def _clean(values) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    return array[np.isfinite(array)]


@dataclass(frozen=True)
class Interval:
    """`mean` with its two-sided `confidence` interval [low, high] from `n` values."""

    mean: float
    low: float
    high: float
    std: float
    n: int
    confidence: float


def t_quantile(confidence: float, df):
    """Two-sided Student-t critical value `t_{1-(1-confidence)/2, df}` (array-friendly; a
    scalar df is looked up once per process: a report asks for the same few thousand times)."""
    if np.ndim(df) == 0 and np.ndim(confidence) == 0:
        return _scalar_t_quantile(float(confidence), float(df))
    return sps.t.ppf(0.5 + confidence / 2.0, df)


@functools.lru_cache(maxsize=4096)
def _scalar_t_quantile(confidence: float, df: float):
    return sps.t.ppf(0.5 + confidence / 2.0, df)


def t_interval(values, confidence: float = 0.95) -> Interval:
    """Student-t interval: `mean ± t_{1-α/2, n-1} · s / sqrt(n)`; NaN bounds when n < 2."""
    x = _clean(values)
    n = x.size
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    if n < 2:
        return Interval(mean, math.nan, math.nan, std, n, confidence)
    half = float(t_quantile(confidence, n - 1)) * std / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, std, n, confidence)


def t_interval_from_summary(mean, std, n, confidence: float = 0.95):
    """Vectorised `t_interval` from per-group mean, std and count; NaN where n < 2."""
    mean, std, n = (np.asarray(v, dtype=float) for v in (mean, std, n))
    with np.errstate(invalid="ignore", divide="ignore"):
        half = np.where(n > 1, t_quantile(confidence, np.maximum(n - 1, 1)) * std / np.sqrt(n), np.nan)
    return mean - half, mean + half


@dataclass(frozen=True)
class TestResult:
    """A two-sample comparison of means.

    `difference` = mean(a) - mean(b); `se` its standard error; `statistic` = difference/se
    on `df` degrees of freedom; `p_value` two-sided; [ci_low, ci_high] the `confidence`
    interval `difference ± t_{df} · se`. `n_a`, `n_b` count the values used (equal for a
    paired test, where they are the number of pairs).
    """

    test: str
    n_a: int
    n_b: int
    difference: float
    se: float
    df: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float
    confidence: float

    @property
    def paired(self) -> bool:
        return self.test == PAIRED


PAIRED = "paired t"
WELCH = "Welch t"
AGAINST_CONSTANT = "one-sample t (against a seed-free value)"
EXACT = "exact (both seed-free)"


def _t_result(test, n_a, n_b, diff, se, df, confidence) -> TestResult:
    nan = math.nan
    if not (math.isfinite(se) and math.isfinite(df)) or df <= 0:
        return TestResult(test, n_a, n_b, diff, se, nan, nan, nan, nan, nan, confidence)
    if se == 0.0:  # every value identical within groups: a nonzero gap is certain
        stat = math.copysign(math.inf, diff) if diff != 0 else nan
        p = 0.0 if diff != 0 else 1.0
        return TestResult(test, n_a, n_b, diff, se, df, stat, p, diff, diff, confidence)
    stat = diff / se
    p = float(2.0 * sps.t.sf(abs(stat), df))
    half = float(t_quantile(confidence, df)) * se
    return TestResult(test, n_a, n_b, diff, se, df, stat, p, diff - half, diff + half, confidence)


def paired_t(a, b, confidence: float = 0.95) -> TestResult:
    """Paired t-test on `d_i = a_i - b_i` (pairs with a non-finite value are dropped):
    `t = mean(d) / (s_d / sqrt(n))`, `df = n - 1`."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError("paired samples must have equal length")
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    n = d.size
    if n < 2:
        return _t_result(PAIRED, n, n, float(d.mean()) if n else math.nan, math.nan, math.nan, confidence)
    return _t_result(PAIRED, n, n, float(d.mean()), float(d.std(ddof=1) / math.sqrt(n)), n - 1.0,
                     confidence)


def one_sample_t(a, constant: float, confidence: float = 0.95) -> TestResult:
    """One-sample t-test of `a` against a known constant (a method whose seeds all give one
    number, `seed_free`: its single value has no sampling variance): `d = mean(a) - c`,
    `se = s_a / sqrt(n)`, `df = n - 1` (scipy.stats.ttest_1samp). `n_b` is 1."""
    a = _clean(a)
    n = a.size
    diff = float(a.mean() - constant) if n and math.isfinite(constant) else math.nan
    if n < 2:
        return _t_result(AGAINST_CONSTANT, n, 1, diff, math.nan, math.nan, confidence)
    return _t_result(AGAINST_CONSTANT, n, 1, diff, float(a.std(ddof=1) / math.sqrt(n)), n - 1.0, confidence)


def exact_difference(a: float, b: float, confidence: float = 0.95) -> TestResult:
    """Two seed-free values: their difference is exact (no sampling variance on either side),
    `se = 0`, the interval is the point itself and `p` is 0 unless they are equal."""
    diff = float(a - b)
    if not math.isfinite(diff):
        return TestResult(EXACT, 1, 1, diff, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, confidence)
    stat = math.copysign(math.inf, diff) if diff != 0 else math.nan
    return TestResult(EXACT, 1, 1, diff, 0.0, math.inf, stat, 0.0 if diff != 0 else 1.0, diff, diff, confidence)


def welch_df(var_a, n_a, var_b, n_b):
    """Welch-Satterthwaite degrees of freedom:
    `(v_a/n_a + v_b/n_b)^2 / ((v_a/n_a)^2/(n_a-1) + (v_b/n_b)^2/(n_b-1))`."""
    qa, qb = var_a / n_a, var_b / n_b
    with np.errstate(invalid="ignore", divide="ignore"):
        return (qa + qb) ** 2 / (qa ** 2 / (n_a - 1) + qb ** 2 / (n_b - 1))


def welch_t(a, b, confidence: float = 0.95) -> TestResult:
    """Welch's unequal-variance t-test: `se = sqrt(s_a²/n_a + s_b²/n_b)`, Welch df."""
    a, b = _clean(a), _clean(b)
    na, nb = a.size, b.size
    diff = float(a.mean() - b.mean()) if na and nb else math.nan
    if na < 2 or nb < 2:
        return _t_result(WELCH, na, nb, diff, math.nan, math.nan, confidence)
    va, vb = float(a.var(ddof=1)), float(b.var(ddof=1))
    se = math.sqrt(va / na + vb / nb)
    df = float(welch_df(va, na, vb, nb)) if se > 0 else na + nb - 2.0
    return _t_result(WELCH, na, nb, diff, se, df, confidence)


def tost_p_value(result: TestResult, margin: float) -> float:
    """Two one-sided tests of equivalence within ±margin (Schuirmann):
    `p = max(P(T_df >= (d + margin)/se), P(T_df <= (d - margin)/se))`. Equivalence at
    level α holds exactly when the (1 - 2α) interval lies inside (-margin, +margin)."""
    d, se, df = result.difference, result.se, result.df
    if se == 0.0 and result.test == EXACT and math.isfinite(d) and margin > 0:
        return 0.0 if abs(d) < margin else 1.0
    if not (math.isfinite(se) and math.isfinite(df)) or margin <= 0:
        return math.nan if not math.isfinite(se) else 1.0
    if se == 0.0:
        return 0.0 if abs(d) < margin else 1.0
    p_lower = sps.t.sf((d + margin) / se, df)
    p_upper = sps.t.cdf((d - margin) / se, df)
    return float(max(p_lower, p_upper))


def _adjust(p_values, step) -> np.ndarray:
    """Apply `step(sorted finite p, m)` to the finite p-values; NaN stays NaN and is not
    counted in m; results are capped at 1 and returned in the input order."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size:
        order = ok[np.argsort(p[ok], kind="stable")]
        out[order] = np.minimum(1.0, step(p[order], ok.size))
    return out


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order. With the m finite p-values
    sorted ascending, `p~_(i) = max_{j<=i} min(1, (m - j + 1) p_(j))`; NaN stays NaN."""
    return _adjust(p_values, lambda p, m: np.maximum.accumulate((m - np.arange(m)) * p))


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the input order.
    With the m finite p-values sorted ascending, `q_(i) = min_{j>=i} min(1, m p_(j) / j)`."""
    return _adjust(p_values, lambda p, m: np.minimum.accumulate((m * p / np.arange(1, m + 1))[::-1])[::-1])


ADJUSTMENTS = {"holm": holm, "bh": benjamini_hochberg}


def cohens_dz(a, b) -> float:
    """Paired effect size `d_z = mean(d) / s_d` with `d = a - b` (NaN when n < 2 or s_d = 0)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return math.nan
    sd = d.std(ddof=1)
    return float(d.mean() / sd) if sd > 0 else math.nan


def cohens_d_av(a, b) -> float:
    """Unpaired effect size `d_av = (mean(a) - mean(b)) / sqrt((s_a² + s_b²) / 2)`."""
    a, b = _clean(a), _clean(b)
    if a.size < 2 or b.size < 2:
        return math.nan
    sd = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2.0)
    return float((a.mean() - b.mean()) / sd) if sd > 0 else math.nan


def share_better(a, b, paired: bool) -> float:
    """The share of units where the method's value is higher, ties counting one half (a
    description of the sample, not a probability: 3 of 3 pairs gives 1.00). Paired: the share
    of pairs with `a_i > b_i`. Unpaired: the share of all `n_a · n_b` pairs (x, y) with
    `x > y`, plus half the ties, i.e. the Mann-Whitney `U_a / (n_a n_b)`."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired:
        keep = np.isfinite(a) & np.isfinite(b)
        a, b = a[keep], b[keep]
        if a.size == 0:
            return math.nan
        return float(np.mean((a > b) + 0.5 * (a == b)))
    a, b = _clean(a), _clean(b)
    if a.size == 0 or b.size == 0:
        return math.nan
    gt = (a[:, None] > b[None, :]).mean()
    eq = (a[:, None] == b[None, :]).mean()
    return float(gt + 0.5 * eq)
