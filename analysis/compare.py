"""Significance report: a method against baselines at every operating point and over whole
curves.

For each setting (model x dataset), target compression and baseline, the method's units are
compared with the baseline's (`shrinkbench.analysis.units`: base models where a setting has
several, else the run seeds of its one base model, whose verdicts then hold for those
starting weights only): paired t on the per-unit values when both share units, Welch
otherwise (`shrinkbench.analysis.decision.compare_values`). Every verdict belongs to ONE
declared family, named in every output with its size m, and is decided within it:

- the operating points: all compressions x baselines of one method in one setting for one
  response ("<method> vs baselines, ..."), or all pairs ("all pairwise, ...") when no method
  is named;
- the curve level: one test per (method, baseline) of the mean difference of their whole
  curves along the compression ratio over the pruned range both measured
  (`shrinkbench.analysis.matched.compare_curve_levels`: the dense point is no part of it,
  PCHIP in log2 x, Student-t interval), in its own family per method and setting ("<method>
  vs baselines over whole curves, ...").

The decision rule (`shrinkbench.analysis.decision`) is the same for both and for every other
output: from the family's simultaneous interval, equivalent when it lies inside ±ROPE, else
better/worse when it excludes 0, else inconclusive, marked underpowered when the minimum
detectable effect at α/m exceeds the ROPE; all verdicts of a family together are wrong at
most α of the time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shrinkbench.analysis.groups import baseline_group
from shrinkbench.analysis.decision import (CONFOUNDERS, DECISIONS, adjust_family, compare_values,  # noqa: F401
                                           confounder_warnings, decide)
from shrinkbench.analysis.errors import AnalysisError
from shrinkbench.analysis.matched import LEVEL_COLUMNS, compare_curve_levels
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.resample import MIN_BOOTSTRAP_UNITS
from shrinkbench.analysis.runs import setting_label, settings
from shrinkbench.analysis.schema import DENSE_STRATEGY
from shrinkbench.analysis.units import ONLY_THESE_WEIGHTS, UNIT, generalizes, replication_of, seed_free, with_units


class SettingIndex:
    """The runs of one setting split once by operating point: per-unit values (the mean over
    a unit's runs), confounder values, and what the units are."""

    def __init__(self, sub: pd.DataFrame):
        point = ["strategy", "compression"]
        values = sub.groupby(point + UNIT)["y"].mean()
        self.values: dict[tuple, dict] = {}
        for (strategy, compression, unit), value in zip(values.index, values.to_numpy()):
            self.values.setdefault((strategy, compression), {})[unit] = float(value)
        self.seed_free = {key: seed_free(group) for key, group in sub.groupby(point)}
        columns = list(CONFOUNDERS) + ["base_id"]
        sets = sub.groupby(point)[columns].agg(lambda s: set(s.tolist()))
        self.confounders = {key: row.to_dict() for key, row in sets.iterrows()}
        self.replication = replication_of(sub)

    def compressions(self, strategy: str) -> set[float]:
        return {c for s, c in self.values if s == strategy}


def _comparison_rows(index: SettingIndex, method: str, baseline: str, options: AnalysisOptions) -> list[dict]:
    rows = []
    for compression in sorted(index.compressions(method) & index.compressions(baseline)):
        a, b = (method, compression), (baseline, compression)
        notes = confounder_warnings(index.confounders[a], index.confounders[b], method, baseline)
        stats = compare_values(index.values[a], index.values[b], options, (index.seed_free[a], index.seed_free[b]))
        unpaired = stats["n_method"] + stats["n_baseline"] - 2 * stats["n_pairs"]
        if stats["n_pairs"] and unpaired:
            notes.append(f"{unpaired} unit(s) without a partner left out of the paired test")
        constant = [name for name, flag in ((method, index.seed_free[a]), (baseline, index.seed_free[b])) if flag]
        if constant:
            notes.append(f"{' and '.join(constant)}: one run the seed cannot change (data-free), a constant")
        elif min(stats["n_method"], stats["n_baseline"]) < 3:
            notes.append(f"n < 3 ({method} {stats['n_method']}, {baseline} {stats['n_baseline']})")
        rows.append({"compression": compression, "method": method, "baseline": baseline, **stats,
                     "replication": index.replication, "warnings": "; ".join(notes)})
    return rows


@dataclass
class ComparisonReport:
    """The comparisons (one row per setting x compression x method x baseline), the
    curve-level comparisons (one row per setting x method x baseline), and warnings."""

    comparisons: pd.DataFrame
    curve_level: pd.DataFrame
    options: AnalysisOptions
    warnings: list[str] = field(default_factory=list)

    def families(self) -> pd.DataFrame:
        """Every family of the report with its size: (family, family_size, kind)."""
        parts = [frame[["family", "family_size"]].drop_duplicates().assign(kind=kind)
                 for frame, kind in ((self.comparisons, "operating points"), (self.curve_level, "curve level"))
                 if len(frame)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["family", "family_size", "kind"])


COMPARISON_COLUMNS = [
    "model", "dataset", "compression", "method", "baseline", "response", "test", "replication",
    "n_method", "n_baseline", "n_pairs", "mean_method", "std_method", "mean_baseline", "std_baseline",
    "difference", "ci_low", "ci_high", "sim_low", "sim_high", "df", "se", "statistic", "p_value", "p_adjusted",
    "adjustment", "family", "family_size", "p_equivalence", "p_equivalence_adjusted", "p_deciding", "p_deciding_test", "effect_size",
    "effect_size_kind", "share_better", "mde", "mde_alpha", "rope", "decision", "underpowered", "general",
    "note", "warnings", "baseline_group",
]


BUDGET_MARK = ", baselines of "
"""What names a family of another training budget (`budget_family`)."""


def strategy_budgets(runs: pd.DataFrame) -> dict[str, tuple[float, ...]]:
    """Each strategy's training budget: the epochs its runs trained after their starting
    weights (`budget_epochs`), as the sorted tuple of the values its runs have."""
    if "budget_epochs" not in runs.columns:
        return {}
    return {s: tuple(sorted(set(g.dropna()))) for s, g in runs.groupby("strategy")["budget_epochs"]}


def budget_text(budget: tuple[float, ...]) -> str:
    """`2 epochs`, or `2/6 epochs` for a strategy whose runs trained different budgets."""
    return "/".join(f"{b:g}" for b in budget) + " epochs" if budget else "unknown budget"


def budget_family(family: str, method: str, baseline: str, budgets: dict) -> str:
    """`family` for a pair of one budget; for a pair of different budgets its own family,
    named with both budgets: methods of different budgets are never decided together."""
    a, b = budgets.get(method, ()), budgets.get(baseline, ())
    if a == b:
        return family
    return f"{family}{BUDGET_MARK}{budget_text(b)} (the method: {budget_text(a)})"


def operating_point_family(method: str, label: str, options: AnalysisOptions) -> str:
    return f"{method} vs baselines, {label}, {options.response}"


def all_pairs_family(_method: str, label: str, options: AnalysisOptions) -> str:
    return f"all pairwise, {label}, {options.response}"


def compare(runs: pd.DataFrame, pairs: list[tuple[str, str]], options: AnalysisOptions,
            rng: np.random.Generator, family_label=None) -> ComparisonReport:
    """Compare each (method, baseline) pair in every setting where both ran.

    `family_label(method, setting)` names the operating-point family; by default one family
    per method and setting: "<method> vs baselines, <dataset>/<model>, <response>". Pairs of
    different training budgets (`budget_epochs`) form a family of their own per budget
    (`budget_family`): a method is never decided in one family with, or ranked against,
    methods that trained longer or shorter. The curve-level tests of a family form the family
    "<that name> over whole curves".
    """
    if family_label is None:
        def family_label(method: str, label: str) -> str:
            return operating_point_family(method, label, options)
    runs = with_units(runs)
    known = set(runs["strategy"])
    for name in {n for pair in pairs for n in pair} - known:
        raise AnalysisError(f"unknown method {name!r}; the table has: {', '.join(sorted(known))}")
    pruned = runs[runs["strategy"] != DENSE_STRATEGY]
    families, levels = [], []
    for model, dataset in settings(pruned):
        index = SettingIndex(pruned[(pruned["model"] == model) & (pruned["dataset"] == dataset)])
        label = setting_label(model, dataset)
        budgets = strategy_budgets(pruned[(pruned["model"] == model) & (pruned["dataset"] == dataset)])
        by_family: dict[str, list[dict]] = {}
        pairs_of: dict[str, list[tuple[str, str]]] = {}
        for method, baseline in pairs:
            rows = _comparison_rows(index, method, baseline, options)
            if rows:
                family = budget_family(family_label(method, label), method, baseline, budgets)
                if family != family_label(method, label):  # the family names both budgets: no warning too
                    for row in rows:
                        row["warnings"] = "; ".join(w for w in row["warnings"].split("; ")
                                                    if w and not w.startswith(CONFOUNDERS["budget_epochs"]))
                by_family.setdefault(family, []).extend(rows)
                pairs_of.setdefault(family, []).append((method, baseline))
        setting_runs = runs[(runs["model"] == model) & (runs["dataset"] == dataset)]
        for family, rows in by_family.items():
            frame = pd.DataFrame(rows).assign(model=model, dataset=dataset, family=family,
                                              response=options.response, rope=options.rope)
            families.append(adjust_family(frame, options))
            level = compare_curve_levels(setting_runs, pairs_of[family], ["compression_ratio"], options,
                                         family_label=lambda _label, f=family: f"{f} over whole curves", rng=rng)
            if len(level):
                levels.append(level)
    if not families:
        raise AnalysisError(f"no operating point where {' / '.join(' vs '.join(p) for p in pairs[:3])} "
                            f"both have {options.response} values")
    comparisons = pd.concat(families, ignore_index=True)
    comparisons["baseline_group"] = comparisons["baseline"].map(baseline_group)
    comparisons = comparisons[COMPARISON_COLUMNS]
    curve_level = pd.concat(levels, ignore_index=True)[LEVEL_COLUMNS] if levels else pd.DataFrame(columns=LEVEL_COLUMNS)
    warnings = sorted({f"{r.dataset}/{r.model} {r.method} vs {r.baseline} at {r.compression:g}x: {w}"
                       for r in comparisons.itertuples() if r.warnings
                       for w in r.warnings.split("; ")})
    warnings += replication_warnings(comparisons)
    warnings += bootstrap_warnings(curve_level, options)
    return ComparisonReport(comparisons, curve_level, options, warnings)


def replication_warnings(comparisons: pd.DataFrame) -> list[str]:
    """One loud line per setting whose verdicts rest on one base model."""
    out = []
    for (model, dataset), rows in comparisons.groupby(["model", "dataset"], sort=True):
        if not generalizes(replication_of(rows)):
            out.append(f"{dataset}/{model}: every run starts from ONE base model, so the units are its run "
                       f"seeds and every verdict holds for {ONLY_THESE_WEIGHTS}; run several base seeds "
                       "(base_seeds in the suite) for a verdict about the method")
    return out


def bootstrap_warnings(curve_level: pd.DataFrame, options: AnalysisOptions) -> list[str]:
    """A warning wherever a bootstrap interval rests on fewer than MIN_BOOTSTRAP_UNITS units."""
    if options.interval != "bootstrap" or curve_level.empty:
        return []
    fewest = int(np.minimum(curve_level["n_method"], curve_level["n_baseline"]).min())
    if fewest >= MIN_BOOTSTRAP_UNITS:
        return []
    return [f"bootstrap intervals with as few as {fewest} units under-cover (a nominal 95% percentile interval "
            f"covers about 75% at n = 3, 84% at n = 5); the Student-t intervals beside them keep their level"]


def compare_method(runs: pd.DataFrame, method: str, baselines, options: AnalysisOptions) -> ComparisonReport:
    """`method` against `baselines` (default: every other strategy) in its default family,
    resampling (where asked to) with a fresh generator of `options.seed`: what `shrinkbench
    compare` and `shrinkbench.compare` report."""
    return compare(runs, method_pairs(runs, method, baselines), options, np.random.default_rng(options.seed))


def versions_of(strategies, name: str) -> list[str]:
    """`name` itself, or its versions `name@<version>` when the store holds several."""
    if name in strategies:
        return [name]
    return sorted(s for s in strategies if s.startswith(name + "@"))


def method_pairs(runs: pd.DataFrame, method: str | None, baselines=None) -> list[tuple[str, str]]:
    """(method, baseline) pairs: the method against the given baselines (default: every
    other pruning strategy), or with no method, every pair of strategies once. A method
    stored with several versions of its code is compared version by version."""
    strategies = sorted(set(runs["strategy"]) - {DENSE_STRATEGY})
    if method is None:
        return [(a, b) for i, a in enumerate(strategies) for b in strategies[i + 1:]]
    methods = versions_of(strategies, method)
    if not methods:
        raise AnalysisError(f"unknown method {method!r}; the table has: {', '.join(strategies)}")
    chosen = [v for b in baselines for v in versions_of(strategies, b) or [b]] if baselines else \
        [s for s in strategies if s not in methods]
    for name in chosen:
        if name not in strategies:
            raise AnalysisError(f"unknown baseline {name!r}; the table has: {', '.join(strategies)}")
    if not chosen:
        raise AnalysisError(f"no baseline to compare {method!r} with; the table has only {method!r}")
    return [(m, b) for m in methods for b in chosen if b != m]


__all__ = ["DECISIONS", "ComparisonReport", "SettingIndex", "adjust_family", "all_pairs_family", "compare", "compare_method",
           "compare_values", "decide", "method_pairs", "operating_point_family"]
