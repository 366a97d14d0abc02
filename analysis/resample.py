"""Bootstrap over whole seeds, and the curve-level difference of two tradeoff curves.

A *unit* is one seed (a base-model seed and run seed pair). Resampling draws whole units
with replacement, so a unit's values at every compression ratio travel together, which
keeps the correlation between the points of one curve. Intervals are percentile intervals
of the resampled statistic. Every function takes the `numpy.random.Generator` to draw from.

Curve level (the Bjontegaard-delta idea): each unit's curve `y(log2 x)` is interpolated
monotonically with PCHIP and averaged over the range that EVERY curve covers,
`L = (1/(u_hi - u_lo)) ∫_{u_lo}^{u_hi} y(u) du` with `u = log2(compression)`; nothing is
extrapolated. The curve-level difference is `mean(L_method) - mean(L_baseline)`.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from scipy.interpolate import PchipInterpolator

from shrinkbench.analysis.stats import t_interval, welch_t


def bootstrap_column_means(matrix, rng: np.random.Generator, n_boot: int = 2000,
                           confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of each column's mean (NaN-aware), resampling whole rows.

    `matrix` has one row per unit and one column per operating point (NaN where a unit
    has no value). Rows are drawn jointly for all columns. Returns (low, high) per column.
    """
    values = np.asarray(matrix, dtype=float)
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError("matrix must be 2-D with at least one row")
    idx = rng.integers(0, values.shape[0], size=(n_boot, values.shape[0]))
    sample = values[idx]  # n_boot x units x columns
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN
        means = np.nanmean(sample, axis=1)
        tail = (1.0 - confidence) / 2.0
        low, high = np.nanquantile(means, [tail, 1.0 - tail], axis=0)
    few = np.sum(np.isfinite(values), axis=0) < 2
    low[few], high[few] = np.nan, np.nan
    return low, high


def bootstrap_mean_difference(a, b, rng: np.random.Generator, paired: bool, n_boot: int = 2000,
                              confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of `mean(a) - mean(b)`: paired resamples pairs (a_i, b_i);
    unpaired resamples each sample on its own."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired:
        d = a - b
        if d.size < 2:
            return math.nan, math.nan
        low, high = bootstrap_column_means(d[:, None], rng, n_boot, confidence)
        return float(low[0]), float(high[0])
    if a.size < 2 or b.size < 2:
        return math.nan, math.nan
    ia = rng.integers(0, a.size, size=(n_boot, a.size))
    ib = rng.integers(0, b.size, size=(n_boot, b.size))
    diffs = a[ia].mean(axis=1) - b[ib].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(diffs, [tail, 1.0 - tail])
    return float(low), float(high)


Curve = tuple[np.ndarray, np.ndarray]
"""(compression ratios, values) of one unit."""


def _log2_curve(x, y) -> Curve | None:
    """Sorted, deduplicated (mean over equal x) curve in u = log2(x); None if < 2 points."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    if keep.sum() < 2:
        return None
    u, inverse = np.unique(np.log2(x[keep]), return_inverse=True)
    if u.size < 2:
        return None
    v = np.bincount(inverse, weights=y[keep]) / np.bincount(inverse)
    return u, v


def mean_level(u, v, lo: float, hi: float) -> float:
    """`(1/(hi - lo)) ∫_lo^hi PCHIP(u, v) du`; requires `u[0] <= lo < hi <= u[-1]`."""
    if not (u[0] - 1e-12 <= lo < hi <= u[-1] + 1e-12):
        raise ValueError("the averaging range must lie inside the curve (no extrapolation)")
    return float(PchipInterpolator(u, v, extrapolate=False).integrate(lo, hi) / (hi - lo))


@dataclass(frozen=True)
class CurveDifference:
    """Mean difference between two families of curves over their common log2 range.

    `difference` = mean level of the method's curves minus the baseline's; `boot_low`,
    `boot_high`: percentile bootstrap interval over whole seeds; `t_low`, `t_high`: the
    Student-t interval of the same difference (paired or Welch); `low_x`, `high_x`: the
    compression range averaged over (NaN if the curves do not overlap).
    """

    difference: float
    boot_low: float
    boot_high: float
    t_low: float
    t_high: float
    n_method: int
    n_baseline: int
    paired: bool
    low_x: float
    high_x: float


def curve_difference(method: Mapping[object, Curve], baseline: Mapping[object, Curve],
                     rng: np.random.Generator, n_boot: int = 2000,
                     confidence: float = 0.95) -> CurveDifference:
    """Curve-level difference of `method` and `baseline`, each a mapping unit -> (x, y).

    Paired (per-unit level differences) when both share at least two units, using the
    shared ones; otherwise the two sets of levels are compared unpaired.
    """
    curves_a = {k: c for k, c in ((k, _log2_curve(*xy)) for k, xy in method.items()) if c is not None}
    curves_b = {k: c for k, c in ((k, _log2_curve(*xy)) for k, xy in baseline.items()) if c is not None}
    nan = math.nan
    if not curves_a or not curves_b:
        return CurveDifference(nan, nan, nan, nan, nan, len(curves_a), len(curves_b), False, nan, nan)
    shared = [k for k in curves_a if k in curves_b]
    paired = len(shared) >= 2
    if paired:
        curves_a = {k: curves_a[k] for k in shared}
        curves_b = {k: curves_b[k] for k in shared}
    every = list(curves_a.values()) + list(curves_b.values())
    lo = max(u[0] for u, _ in every)
    hi = min(u[-1] for u, _ in every)
    if not hi > lo:
        return CurveDifference(nan, nan, nan, nan, nan, len(curves_a), len(curves_b), paired, nan, nan)
    level_a = np.array([mean_level(u, v, lo, hi) for u, v in curves_a.values()])
    level_b = np.array([mean_level(u, v, lo, hi) for u, v in curves_b.values()])
    difference = float(level_a.mean() - level_b.mean())
    boot_low, boot_high = bootstrap_mean_difference(level_a, level_b, rng, paired, n_boot, confidence)
    if paired:
        interval = t_interval(level_a - level_b, confidence)
        t_low, t_high = interval.low, interval.high
    else:
        result = welch_t(level_a, level_b, confidence)
        t_low, t_high = result.ci_low, result.ci_high
    return CurveDifference(difference, boot_low, boot_high, t_low, t_high, level_a.size,
                           level_b.size, paired, float(2.0 ** lo), float(2.0 ** hi))
