"""Significance report: a method against baselines at every operating point.

For each setting (model x dataset), target compression and baseline, the method's runs are
compared with the baseline's: paired t on the per-seed differences when both share units
(same base weights and run seed), Welch otherwise. Holm adjusts the p-values of one family,
declared and named: all compressions x baselines of one method in one setting for one
response. Equivalence is tested with two one-sided tests (TOST) against the region of
practical equivalence ±rope, Holm-adjusted in the same family. Decision:

- `equivalent`: adjusted TOST p < α (the difference is shown to lie inside ±rope);
- `better` / `worse`: otherwise, adjusted p < α with a positive / negative difference;
- `inconclusive`: neither; `underpowered` is set when the minimum detectable effect at the
  family's Bonferroni level α/m exceeds the rope (or fewer than 2 seeds exist).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from shrinkbench.analysis.errors import AnalysisError
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.power import minimum_detectable_effect
from shrinkbench.analysis.resample import curve_difference
from shrinkbench.analysis.runs import UNIT, setting_label, settings
from shrinkbench.analysis.schema import DENSE_STRATEGY
from shrinkbench.analysis.stats import (TestResult, cohens_d_av, cohens_dz, holm, paired_t,
                            probability_of_improvement, tost_p_value, welch_t)

DECISIONS = ("better", "equivalent", "worse", "inconclusive")
CONFOUNDERS = {
    "prune_steps": "pruning steps", "finetune_epochs": "fine-tuning epochs",
    "finetune_optimizer": "fine-tuning optimizer", "finetune_lr": "fine-tuning learning rate",
    "data_split": "dataset split", "code_version": "code version",
    "compute": "compute environment (device, threads, precision)",
}


def compare_values(a: Mapping | pd.Series, b: Mapping | pd.Series, options: AnalysisOptions) -> dict:
    """Statistics (before multiplicity adjustment) of method values `a` against baseline
    values `b`, each keyed by pairing key (unit). Paired on the shared keys when there are
    at least 2, Welch on all values otherwise."""
    a = dict(a.items()) if isinstance(a, pd.Series) else dict(a)
    b = dict(b.items()) if isinstance(b, pd.Series) else dict(b)
    shared = [key for key in a if key in b]
    paired = len(shared) >= 2
    all_a, all_b = np.fromiter(a.values(), float, len(a)), np.fromiter(b.values(), float, len(b))
    if paired:
        va, vb = np.array([a[k] for k in shared], float), np.array([b[k] for k in shared], float)
        result: TestResult = paired_t(va, vb, options.confidence)
        effect, kind = cohens_dz(va, vb), "d_z"
    else:
        va, vb = all_a, all_b
        result = welch_t(va, vb, options.confidence)
        effect, kind = cohens_d_av(va, vb), "d_av"
    nan = math.nan
    return {
        "n_method": len(a), "n_baseline": len(b), "n_pairs": len(shared) if paired else 0,
        "mean_method": float(all_a.mean()) if len(a) else nan,
        "std_method": float(all_a.std(ddof=1)) if len(a) > 1 else nan,
        "mean_baseline": float(all_b.mean()) if len(b) else nan,
        "std_baseline": float(all_b.std(ddof=1)) if len(b) > 1 else nan,
        "difference": result.difference, "ci_low": result.ci_low, "ci_high": result.ci_high,
        "test": result.test, "df": result.df, "statistic": result.statistic, "p_value": result.p_value,
        "p_equivalence": tost_p_value(result, options.rope), "se": result.se,
        "effect_size": effect, "effect_size_kind": kind,
        "prob_improvement": probability_of_improvement(va, vb, paired),
    }


def decide(p_adjusted: float, p_equivalence_adjusted: float, difference: float, alpha: float) -> str:
    """The decision of one comparison from its adjusted p-values (see module docstring)."""
    if p_equivalence_adjusted < alpha:
        return "equivalent"
    if p_adjusted < alpha:
        return "better" if difference > 0 else "worse"
    return "inconclusive"


def adjust_family(rows: pd.DataFrame, options: AnalysisOptions) -> pd.DataFrame:
    """Holm-adjust the rows of ONE family, add MDE, decision and the underpowered flag."""
    rows = rows.copy()
    m = int(np.isfinite(rows["p_value"].to_numpy(float)).sum())
    rows["family_size"] = m
    rows["adjustment"] = "holm"
    rows["p_adjusted"] = holm(rows["p_value"].to_numpy(float))
    rows["p_equivalence_adjusted"] = holm(rows["p_equivalence"].to_numpy(float))
    mde_alpha = options.alpha / max(m, 1)
    rows["mde_alpha"] = mde_alpha
    rows["mde"] = [minimum_detectable_effect(se, df, mde_alpha, options.power)
                   for se, df in zip(rows["se"], rows["df"])]
    rows["decision"] = [decide(p, q, d, options.alpha) for p, q, d in
                        zip(rows["p_adjusted"], rows["p_equivalence_adjusted"], rows["difference"])]
    rows["underpowered"] = (rows["decision"] == "inconclusive") & ~(rows["mde"] <= options.rope)
    significant = (rows["p_adjusted"] < options.alpha) & (rows["decision"] == "equivalent")
    rows.loc[significant, "note"] = f"significant difference, but inside ±{options.rope:g}"
    return rows


PAIR_KEYS = UNIT + ["base_id"]
"""Runs pair only when they share the unit (base seed, run seed) AND the base weights."""


def values_by_unit(group: pd.DataFrame) -> pd.Series:
    """The response of one operating point indexed by the pairing key."""
    return group.groupby(PAIR_KEYS)["y"].mean()


def confounder_warnings(a: dict[str, set], b: dict[str, set], method: str, baseline: str) -> list[str]:
    """Messages for settings that differ between (or within) two sets of runs, each given
    as {column: set of values}."""
    out = []
    for column, label in CONFOUNDERS.items():
        if len(a[column] | b[column]) > 1:
            out.append(f"{label} differs: {method} {sorted(map(str, a[column]))}, "
                       f"{baseline} {sorted(map(str, b[column]))}")
    if a["base_id"] != b["base_id"]:
        out.append(f"base weights differ between {method} and {baseline}")
    return out


class SettingIndex:
    """The runs of one setting split once by operating point: values by pairing key,
    confounder values, and each strategy's per-unit curves."""

    def __init__(self, sub: pd.DataFrame):
        point = ["strategy", "compression"]
        values = sub.groupby(point + PAIR_KEYS)["y"].mean()
        self.values: dict[tuple, dict] = {}
        for (strategy, compression, *key), value in zip(values.index, values.to_numpy()):
            self.values.setdefault((strategy, compression), {})[tuple(key)] = float(value)
        columns = list(CONFOUNDERS) + ["base_id"]
        sets = sub.groupby(point)[columns].agg(lambda s: set(s.tolist()))
        self.confounders = {key: row.to_dict() for key, row in sets.iterrows()}
        self.curves = {strategy: {unit: (g["compression_ratio"].to_numpy(), g["y"].to_numpy())
                                  for unit, g in runs.groupby(UNIT)}
                       for strategy, runs in sub.groupby("strategy")}

    def compressions(self, strategy: str) -> set[float]:
        return {c for s, c in self.values if s == strategy}


def _comparison_rows(index: SettingIndex, method: str, baseline: str, options: AnalysisOptions) -> list[dict]:
    rows = []
    for compression in sorted(index.compressions(method) & index.compressions(baseline)):
        a, b = (method, compression), (baseline, compression)
        notes = confounder_warnings(index.confounders[a], index.confounders[b], method, baseline)
        stats = compare_values(index.values[a], index.values[b], options)
        unpaired = stats["n_method"] + stats["n_baseline"] - 2 * stats["n_pairs"]
        if stats["n_pairs"] and unpaired:
            notes.append(f"{unpaired} run(s) without a partner left out of the paired test")
        if min(stats["n_method"], stats["n_baseline"]) < 3:
            notes.append(f"n < 3 ({method} {stats['n_method']}, {baseline} {stats['n_baseline']})")
        rows.append({"compression": compression, "method": method, "baseline": baseline, **stats,
                     "warnings": "; ".join(notes)})
    return rows


@dataclass
class ComparisonReport:
    """The comparisons (one row per setting x compression x method x baseline), the
    curve-level differences (one row per setting x method x baseline), and warnings."""

    comparisons: pd.DataFrame
    curve_level: pd.DataFrame
    options: AnalysisOptions
    warnings: list[str] = field(default_factory=list)


COMPARISON_COLUMNS = [
    "model", "dataset", "compression", "method", "baseline", "response", "test",
    "n_method", "n_baseline", "n_pairs", "mean_method", "std_method", "mean_baseline", "std_baseline",
    "difference", "ci_low", "ci_high", "df", "statistic", "p_value", "p_adjusted", "adjustment",
    "family", "family_size", "p_equivalence", "p_equivalence_adjusted", "effect_size",
    "effect_size_kind", "prob_improvement", "mde", "mde_alpha", "rope", "decision", "underpowered",
    "note", "warnings",
]


def _curve_row(index: SettingIndex, method: str, baseline: str, options: AnalysisOptions,
               rng: np.random.Generator) -> dict:
    diff = curve_difference(index.curves[method], index.curves[baseline], rng, options.n_boot,
                            options.confidence)
    return {"method": method, "baseline": baseline, "response": options.response,
            "difference": diff.difference, "boot_low": diff.boot_low, "boot_high": diff.boot_high,
            "t_low": diff.t_low, "t_high": diff.t_high, "n_method": diff.n_method,
            "n_baseline": diff.n_baseline, "paired": diff.paired,
            "compression_from": diff.low_x, "compression_to": diff.high_x}


def compare(runs: pd.DataFrame, pairs: list[tuple[str, str]], options: AnalysisOptions,
            rng: np.random.Generator, family_label=None) -> ComparisonReport:
    """Compare each (method, baseline) pair in every setting where both ran.

    `family_label(method, setting)` names a family; by default one family per method and
    setting: "<method> vs baselines, <dataset>/<model>, <response>".
    """
    if family_label is None:
        def family_label(method: str, label: str) -> str:
            return f"{method} vs baselines, {label}, {options.response}"
    known = set(runs["strategy"])
    for name in {n for pair in pairs for n in pair} - known:
        raise AnalysisError(f"unknown method {name!r}; the table has: {', '.join(sorted(known))}")
    pruned = runs[runs["strategy"] != DENSE_STRATEGY]
    families, curve_rows = [], []
    for model, dataset in settings(pruned):
        index = SettingIndex(pruned[(pruned["model"] == model) & (pruned["dataset"] == dataset)])
        label = setting_label(model, dataset)
        by_family: dict[str, list[dict]] = {}
        for method, baseline in pairs:
            rows = _comparison_rows(index, method, baseline, options)
            by_family.setdefault(family_label(method, label), []).extend(rows)
            if rows:
                curve_rows.append({"model": model, "dataset": dataset,
                                   **_curve_row(index, method, baseline, options, rng)})
        for family, rows in by_family.items():
            if rows:
                frame = pd.DataFrame(rows).assign(model=model, dataset=dataset, family=family,
                                                   response=options.response, rope=options.rope, note="")
                families.append(adjust_family(frame, options))
    if not families:
        raise AnalysisError(f"no operating point where {' / '.join(' vs '.join(p) for p in pairs[:3])} "
                            f"both have {options.response} values")
    comparisons = pd.concat(families, ignore_index=True)[COMPARISON_COLUMNS]
    warnings = sorted({f"{r.dataset}/{r.model} {r.method} vs {r.baseline} at {r.compression:g}x: {w}"
                       for r in comparisons.itertuples() if r.warnings
                       for w in r.warnings.split("; ")})
    return ComparisonReport(comparisons, pd.DataFrame(curve_rows), options, warnings)


def method_pairs(runs: pd.DataFrame, method: str | None, baselines=None) -> list[tuple[str, str]]:
    """(method, baseline) pairs: the method against the given baselines (default: every
    other pruning strategy), or with no method, every pair of strategies once."""
    strategies = sorted(set(runs["strategy"]) - {DENSE_STRATEGY})
    if method is None:
        return [(a, b) for i, a in enumerate(strategies) for b in strategies[i + 1:]]
    if method not in strategies:
        raise AnalysisError(f"unknown method {method!r}; the table has: {', '.join(strategies)}")
    chosen = list(baselines) if baselines else [s for s in strategies if s != method]
    for name in chosen:
        if name not in strategies:
            raise AnalysisError(f"unknown baseline {name!r}; the table has: {', '.join(strategies)}")
    if not chosen:
        raise AnalysisError(f"no baseline to compare {method!r} with; the table has only {method!r}")
    return [(method, b) for b in chosen if b != method]
