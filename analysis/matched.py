"""Comparisons at operating points that a shared target compression does not give.

1. **At a matched value of a measured x metric** (e.g. `theoretical_speedup`). Two methods
   reach a given speedup at different compressions, so each seed's curve `y(log2 x)` of its
   PRUNED runs is interpolated monotonically with PCHIP and read at `x0`; a seed contributes
   only where `x0` lies inside its measured pruned range (never extrapolated, and never
   interpolated from the dense run at 1x, where every method's difference is 0 by
   construction). The per-seed values are compared as `analysis.compare.compare_values`
   does (paired t on the units both methods share, Welch otherwise) and decided within a
   declared family by `analysis.decision.adjust_family` (simultaneous intervals, MDE,
   underpowered flag). The default grid is `x0 = 2^(k/s)` (`s` steps per octave) inside the
   range that every seed curve of both methods covers.
2. **Over a whole curve**: each seed's mean level `L = (1/(u_hi - u_lo)) ∫ PCHIP(u) du`,
   `u = log2 x`, over the pruned range every curve of the pair measured (`x_from`..`x_to`,
   stated with every row; `analysis.resample.mean_level`, the Bjontegaard-delta idea), compared
   as above: one test per pair and x metric, so a claim about a whole tradeoff curve gets one
   verdict instead of one per operating point. The dense point is never data here: with it,
   the levels of two methods share a forced zero difference at 1x and the interpolation from
   it pulls every difference (and its standard error) towards 0. A curve needs two pruned
   ratios.
3. **Against the dense model of the same base weights**: at each operating point, the
   paired t of `y` against `dense_y` (the same units), so the difference is the mean of the
   run table's `delta`; one family per method over its compressions.

Pure computation on the run table of `analysis.runs.run_table`; no plotting, no torch.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.interpolate import PchipInterpolator

from shrinkbench.analysis.decision import adjust_family, compare_values
from shrinkbench.analysis.errors import AnalysisError
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.resample import MIN_BOOTSTRAP_UNITS, Curve, _log2_curve, bootstrap_mean_difference, mean_level
from shrinkbench.analysis.runs import setting_label, settings
from shrinkbench.analysis.schema import DENSE_STRATEGY
from shrinkbench.analysis.units import UNIT, replication_of, unit_values, with_units

STAT_COLUMNS = ["n_method", "n_baseline", "n_pairs", "replication", "mean_method", "std_method", "mean_baseline",
                "std_baseline", "difference", "ci_low", "ci_high", "sim_low", "sim_high", "test", "df", "se",
                "statistic", "p_value", "p_adjusted", "family", "family_size", "p_equivalence",
                "p_equivalence_adjusted", "p_deciding", "p_deciding_test", "effect_size", "effect_size_kind", "share_better", "mde",
                "decision", "underpowered", "general", "note"]
AT_X_COLUMNS = ["model", "dataset", "x_metric", "x", "method", "baseline", "response"] + STAT_COLUMNS
LEVEL_COLUMNS = (["model", "dataset", "x_metric", "x_from", "x_to", "method", "baseline", "response"] + STAT_COLUMNS
                 + ["interval", "boot_low", "boot_high"])
DENSE_COLUMNS = ["model", "dataset", "strategy", "compression", "response"] + STAT_COLUMNS


def unit_curves(runs: pd.DataFrame, strategy: str, x_column: str, include_dense: bool = False) -> dict[str, Curve]:
    """Per unit: the (x, y) points of `strategy`, each the mean over the unit's runs at one
    target compression; the unit's dense point is added only when `include_dense` (for a
    drawing, never for a comparison: see the module docstring)."""
    chosen = runs["strategy"] == strategy
    if include_dense:
        chosen |= runs["strategy"] == DENSE_STRATEGY
    sub = runs[chosen].dropna(subset=[x_column, "y"])
    points = sub.groupby(UNIT + ["strategy", "compression"], sort=True)[[x_column, "y"]].mean().reset_index()
    curves = {}
    for (unit,), group in points.groupby(UNIT, sort=True):
        if (group["strategy"] == strategy).any():
            curves[unit] = (group[x_column].to_numpy(float), group["y"].to_numpy(float))
    return curves


def value_at(curve: Curve, x0: float) -> float:
    """PCHIP interpolation of `y` in `log2 x` at `x0`; NaN outside the curve's range."""
    log_curve = _log2_curve(*curve)
    if log_curve is None or not x0 > 0:
        return math.nan
    u, v = log_curve
    t = math.log2(x0)
    if t < u[0] - 1e-9 or t > u[-1] + 1e-9:
        return math.nan
    return float(PchipInterpolator(u, v, extrapolate=False)(min(max(t, u[0]), u[-1])))


def common_range(*curve_sets: dict[tuple, Curve]) -> tuple[float, float]:
    """(lowest, highest) x that every curve of every set covers; (nan, nan) if none."""
    spans = [(np.nanmin(x), np.nanmax(x)) for curves in curve_sets for x, _ in curves.values() if len(x)]
    if not spans:
        return math.nan, math.nan
    lo, hi = max(s[0] for s in spans), min(s[1] for s in spans)
    return (float(lo), float(hi)) if hi >= lo else (math.nan, math.nan)


def octave_grid(lo: float, hi: float, steps_per_octave: int = 2) -> list[float]:
    """`2^(k/steps_per_octave)` for every integer k with `lo <= x <= hi` and `x > 1`."""
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > 1.0):
        return []
    k_lo = math.ceil(math.log2(max(lo, 1.0)) * steps_per_octave - 1e-9)
    k_hi = math.floor(math.log2(hi) * steps_per_octave + 1e-9)
    return [2.0 ** (k / steps_per_octave) for k in range(max(k_lo, 1), k_hi + 1)]


def compare_at_x(runs: pd.DataFrame, pairs: list[tuple[str, str]], x_column: str, options: AnalysisOptions,
                 grid=None, steps_per_octave: int = 2, family_label=None) -> pd.DataFrame:
    """Each (method, baseline) pair at matched values of `x_column` (see module docstring),
    one row per setting x pair x x0. `grid` fixes the x0 values (default: the octave grid of
    the pair's common range). Families: by default one per pair and setting."""
    if x_column not in runs.columns:
        raise AnalysisError(f"the run table has no column {x_column!r}")
    runs = with_units(runs)
    if family_label is None:
        def family_label(method: str, baseline: str, label: str) -> str:
            return f"{method} vs {baseline} at matched {x_column}, {label}, {options.response}"
    families = []
    for model, dataset in settings(runs):
        sub = runs[(runs["model"] == model) & (runs["dataset"] == dataset)]
        by_family: dict[str, list[dict]] = {}
        for method, baseline in pairs:
            curves_a, curves_b = unit_curves(sub, method, x_column), unit_curves(sub, baseline, x_column)
            if not curves_a or not curves_b:
                continue
            xs = grid if grid is not None else octave_grid(*common_range(curves_a, curves_b), steps_per_octave)
            for x0 in xs:
                a = {k: v for k, v in ((k, value_at(c, x0)) for k, c in curves_a.items()) if math.isfinite(v)}
                b = {k: v for k, v in ((k, value_at(c, x0)) for k, c in curves_b.items()) if math.isfinite(v)}
                if a and b:
                    by_family.setdefault(family_label(method, baseline, setting_label(model, dataset)), []).append(
                        {"x": float(x0), "method": method, "baseline": baseline, **compare_values(a, b, options)})
        for family, rows in by_family.items():
            frame = pd.DataFrame(rows).assign(model=model, dataset=dataset, x_metric=x_column,
                                              response=options.response, family=family,
                                              replication=replication_of(sub))
            families.append(adjust_family(frame, options))
    if not families:
        return pd.DataFrame(columns=AT_X_COLUMNS)
    return pd.concat(families, ignore_index=True)[AT_X_COLUMNS]


def unit_levels(curves: dict[str, Curve], lo: float, hi: float) -> dict[str, float]:
    """Each curve's mean level over [lo, hi] (x units) in log2 x; curves of < 2 points are left out."""
    levels = {}
    for key, curve in curves.items():
        log_curve = _log2_curve(*curve)
        if log_curve is not None:
            levels[key] = mean_level(*log_curve, math.log2(lo), math.log2(hi))
    return levels


def _bootstrap_level_interval(a: dict, b: dict, options: AnalysisOptions, rng) -> tuple[float, float]:
    shared = [k for k in a if k in b]
    if len(shared) >= 2:
        return bootstrap_mean_difference(np.array([a[k] for k in shared]), np.array([b[k] for k in shared]), rng,
                                         True, options.n_boot, options.confidence)
    return bootstrap_mean_difference(np.array(list(a.values())), np.array(list(b.values())), rng, False,
                                     options.n_boot, options.confidence)


def compare_curve_levels(runs: pd.DataFrame, pairs: list[tuple[str, str]], x_columns, options: AnalysisOptions,
                         family_label=None, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Each (method, baseline) pair by the mean level of its unit curves along each of
    `x_columns` over the pruned range both cover (see module docstring). By default ONE family
    per setting holds every pair and x metric; `family_label(label)` names it otherwise.
    With `options.interval == "bootstrap"` the percentile bootstrap interval over units is
    added (`boot_low`, `boot_high`; drawn from `rng`)."""
    if family_label is None:
        def family_label(label: str) -> str:
            return f"curve levels along {' and '.join(x_columns)}, {label}, {options.response}"
    runs = with_units(runs)
    bootstrap = options.interval == "bootstrap"
    if bootstrap and rng is None:
        rng = np.random.default_rng(options.seed)
    families = []
    for model, dataset in settings(runs):
        sub = runs[(runs["model"] == model) & (runs["dataset"] == dataset)]
        rows = []
        cache: dict[tuple[str, str], dict] = {}  # a strategy's unit curves, built once per setting and x

        levels: dict[tuple, dict] = {}  # a strategy's unit levels over one range (shared by its pairs)

        def curves_of(strategy: str, x_column: str) -> dict:
            if (strategy, x_column) not in cache:
                cache[strategy, x_column] = unit_curves(sub, strategy, x_column)
            return cache[strategy, x_column]

        def levels_of(strategy: str, x_column: str, lo: float, hi: float) -> dict:
            if (strategy, x_column, lo, hi) not in levels:
                levels[strategy, x_column, lo, hi] = unit_levels(curves_of(strategy, x_column), lo, hi)
            return levels[strategy, x_column, lo, hi]

        for x_column in x_columns:
            for method, baseline in pairs:
                curves_a, curves_b = curves_of(method, x_column), curves_of(baseline, x_column)
                lo, hi = common_range(curves_a, curves_b)
                if not hi > lo:
                    continue
                a, b = levels_of(method, x_column, lo, hi), levels_of(baseline, x_column, lo, hi)
                boot = _bootstrap_level_interval(a, b, options, rng) if bootstrap else (math.nan, math.nan)
                rows.append({"x_metric": x_column, "x_from": lo, "x_to": hi, "method": method, "baseline": baseline,
                             **compare_values(a, b, options), "boot_low": boot[0], "boot_high": boot[1]})
        if rows:
            frame = pd.DataFrame(rows).assign(model=model, dataset=dataset, response=options.response,
                                              family=family_label(setting_label(model, dataset)),
                                              replication=replication_of(sub),
                                              interval="t" + (" + bootstrap" if bootstrap else ""))
            families.append(adjust_family(frame, options))
    if not families:
        return pd.DataFrame(columns=LEVEL_COLUMNS)
    return pd.concat(families, ignore_index=True)[LEVEL_COLUMNS]


def compare_with_dense(runs: pd.DataFrame, options: AnalysisOptions, strategies=None,
                       family_label=None) -> pd.DataFrame:
    """Every pruned operating point against the dense model of the same units (paired t of
    `y` vs `dense_y`), one family over the compressions of one strategy and setting."""
    if family_label is None:
        def family_label(strategy: str, label: str) -> str:
            return f"{strategy} vs its dense model, {label}, {options.response}"
    runs = with_units(runs)
    pruned = runs[(runs["strategy"] != DENSE_STRATEGY) & runs["dense_y"].notna()]
    if strategies is not None:
        pruned = pruned[pruned["strategy"].isin(list(strategies))]
    families = []
    for (model, dataset, strategy), sub in pruned.groupby(["model", "dataset", "strategy"], sort=True):
        rows = []
        for compression, point in sub.groupby("compression", sort=True):
            a, b = unit_values(point, "y"), unit_values(point, "dense_y")
            rows.append({"compression": float(compression), **compare_values(a, b, options)})
        frame = pd.DataFrame(rows).assign(model=model, dataset=dataset, strategy=strategy,
                                          response=options.response, replication=replication_of(sub),
                                          family=family_label(strategy, setting_label(model, dataset)))
        families.append(adjust_family(frame, options))
    if not families:
        return pd.DataFrame(columns=DENSE_COLUMNS)
    return pd.concat(families, ignore_index=True)[DENSE_COLUMNS]
