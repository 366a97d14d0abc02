"""Power of the two-sided t-test, minimum detectable effect and the seed planner.

Under a true difference `δ` the t statistic follows a noncentral t with `df` degrees of
freedom and noncentrality `λ = δ / se`. The two-sided power at level α is
`P(T > t_c) + P(T < -t_c)` with `t_c = t_{1-α/2, df}`. The minimum detectable effect
(MDE) is the `δ` at which this power reaches the target (80% by default); the seed planner
is the smallest number of seeds whose MDE is at most a target difference.
"""
from __future__ import annotations

import math
from functools import lru_cache

from scipy import integrate, optimize
from scipy import stats as sps


def t_test_power(difference: float, se: float, df: float, alpha: float = 0.05) -> float:
    """Two-sided power `P(|T| > t_{1-α/2, df})`, `T ~ noncentral t(df, difference / se)`."""
    if not (se > 0 and df > 0):
        return math.nan
    crit = sps.t.ppf(1.0 - alpha / 2.0, df)
    ncp = abs(difference) / se
    # P(T_ncp < -c) = P(T_-ncp > c); scipy's nct.cdf returns NaN in parts of this tail
    return float(sps.nct.sf(crit, df, ncp) + sps.nct.sf(crit, df, -ncp))


@lru_cache(maxsize=4096)
def _detectable_ncp(df: float, alpha: float, power: float) -> float:
    """The noncentrality at which the two-sided test reaches `power`."""
    def gap(ncp: float) -> float:
        return t_test_power(ncp, 1.0, df, alpha) - power

    high = 4.0
    while gap(high) < 0:
        high *= 2.0
    return float(optimize.brentq(gap, 0.0, high, xtol=1e-10))


def minimum_detectable_effect(se: float, df: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest |δ| that a two-sided t-test with standard error `se` and `df` degrees of
    freedom detects with probability `power` at level α (NaN when undefined)."""
    if not (math.isfinite(se) and math.isfinite(df)) or df <= 0 or se < 0:
        return math.nan
    if se == 0:
        return 0.0
    return _detectable_ncp(round(float(df), 9), alpha, power) * se


def smallest_n(enough, max_seeds: int) -> int:
    """The smallest n >= 2 with `enough(n)` (monotone in n): doubling, then bisection; raises
    ValueError beyond `max_seeds`."""
    low, high = 1, 2
    while not enough(high):
        low, high = high, high * 2
        if low > max_seeds:
            raise ValueError(f"more than {max_seeds} seeds would be needed")
    while high - low > 1:  # enough(high) holds, enough(low) does not (or low = 1)
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return max(high, 2)


def seeds_needed(sd: float, difference: float, alpha: float = 0.05, power: float = 0.8,
                 paired: bool = True, max_seeds: int = 100_000) -> int:
    """Smallest number of seeds n >= 2 with power >= `power` to detect `difference`.

    Paired: `se = sd / sqrt(n)`, `df = n - 1`, where `sd` is the spread of the per-seed
    differences. Unpaired (n seeds per method, both with spread `sd`): `se = sd sqrt(2/n)`,
    `df = 2n - 2`. Raises ValueError when `difference` is not positive or more than
    `max_seeds` would be needed.
    """
    if not difference > 0:
        raise ValueError("the target difference must be positive")
    if not sd >= 0:
        raise ValueError("the standard deviation must be non-negative")
    if sd == 0:
        return 2

    def enough(n: int) -> bool:
        if paired:
            return t_test_power(difference, sd / math.sqrt(n), n - 1.0, alpha) >= power
        return t_test_power(difference, sd * math.sqrt(2.0 / n), 2.0 * n - 2.0, alpha) >= power

    return smallest_n(enough, max_seeds)


SD_CONFIDENCE = 0.8
"""One-sided confidence of the upper limit of a pilot's SD that the seed planner plans with."""


def sd_upper_limit(sd: float, df: float, confidence: float = SD_CONFIDENCE) -> float:
    """Upper one-sided `confidence` limit of a standard deviation estimated with `df` degrees
    of freedom: `sd · sqrt(df / χ²_{1-confidence, df})` (Browne 1995, "On the use of a pilot
    sample for sample size determination", Statistics in Medicine 14: planning with the 80%
    upper limit gives the target power at least about 80% of the time). With 2 degrees of
    freedom (3 seeds) the 80% limit is 2.1 times the pilot's SD."""
    if not (math.isfinite(sd) and df > 0):
        return math.nan
    return sd * math.sqrt(df / sps.chi2.ppf(1.0 - confidence, df))


def _design(sd: float, n: int, paired: bool) -> tuple[float, float]:
    """(standard error, df) of the difference of n seeds: paired, or n per method unpaired."""
    return (sd / math.sqrt(n), n - 1.0) if paired else (sd * math.sqrt(2.0 / n), 2.0 * n - 2.0)


def equivalence_power(rope: float, sd: float, n: int, alpha: float = 0.05, paired: bool = True,
                      difference: float = 0.0) -> float:
    """Probability that the two-sided (1 - alpha) interval `d ± t_{1-α/2, df} S_d` lies inside
    (-rope, +rope), the toolkit's `equivalent` at level alpha (= α/m in a family of m), when
    the true difference is `difference` and the true SD `sd`. Exact over the sampling
    distribution of the SD: with `W ~ χ²_df`, `k = t_{1-α/2, df} sqrt(W/df)`,
    `P = E_W[max(0, Φ((rope - d0)/se - k) - Φ((-rope - d0)/se + k))]`."""
    if not (sd > 0 and n >= 2 and rope > 0):
        return math.nan if not sd >= 0 else float(sd == 0 and abs(difference) < rope)
    se, df = _design(sd, n, paired)
    crit = float(sps.t.ppf(1.0 - alpha / 2.0, df))
    hi, lo = (rope - difference) / se, (-rope - difference) / se

    def integrand(w: float) -> float:
        k = crit * math.sqrt(w / df)
        return max(0.0, sps.norm.cdf(hi - k) - sps.norm.cdf(lo + k)) * sps.chi2.pdf(w, df)

    w_max = (df * (hi - lo) ** 2) / (4.0 * crit ** 2)  # beyond it the interval is wider than the ROPE
    return float(integrate.quad(integrand, 0.0, w_max, limit=200)[0])


def seeds_for_equivalence(sd: float, rope: float, alpha: float = 0.05, power: float = 0.8, paired: bool = True,
                          difference: float = 0.0, max_seeds: int = 100_000) -> int:
    """Smallest number of seeds n >= 2 at which `equivalence_power` reaches `power`; raises
    ValueError beyond `max_seeds` or when |difference| >= rope (equivalence cannot be shown)."""
    if not rope > abs(difference):
        raise ValueError("equivalence needs a true difference inside the ROPE")
    if sd == 0:
        return 2

    def enough(n: int) -> bool:
        return equivalence_power(rope, sd, n, alpha, paired, difference) >= power

    return smallest_n(enough, max_seeds)
