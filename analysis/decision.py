"""The one decision rule: statistics of one comparison, and the adjustment of one family.

`compare_values` turns the per-unit values of a method and of a baseline (each keyed by unit,
see `shrinkbench.analysis.units`) into the statistics of their difference: paired t on the
shared units when there are at least 2, Welch otherwise. `adjust_family` adjusts the rows of
ONE declared family together (Holm for the difference and for the equivalence test) and adds
the decision, so every output that states a verdict (compare, report, tables, plan-seeds,
paper_figures) decides the same way:

- `equivalent`: the Holm-adjusted TOST p < α (the difference is shown to lie inside ±rope);
- `better` / `worse`: otherwise, the Holm-adjusted p < α; `better` means better in the
  metric's own direction (higher accuracy, lower perplexity);
- `inconclusive`: neither; `underpowered` is set when the minimum detectable effect at the
  family's Bonferroni level α/m exceeds the rope (or fewer than 2 units exist).

Intervals beside a verdict: `ci_low`/`ci_high` is the UNADJUSTED interval of one comparison
(`difference ± t_{1-α/2, df} se`); `sim_low`/`sim_high` the simultaneous interval of the
family (Bonferroni: `difference ± t_{1-α/(2m), df} se`), which agrees with the decision: where
it excludes 0, the Holm decision is significant too (Holm rejects whatever Bonferroni rejects).
The converse can fail for all but the smallest p of a family (Holm's later steps are less
strict than Bonferroni); such rows are noted.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd

from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.power import minimum_detectable_effect
from shrinkbench.analysis.stats import (TestResult, cohens_d_av, cohens_dz, holm, paired_t,
                                        probability_of_improvement, t_quantile, tost_p_value, welch_t)
from shrinkbench.analysis.units import BASE_MODELS, ONLY_THESE_WEIGHTS, generalizes

DECISIONS = ("better", "equivalent", "worse", "inconclusive")
CONFOUNDERS = {
    "budget_epochs": "training budget (epochs after the starting weights)", "prune_steps": "pruning steps", "finetune_epochs": "fine-tuning epochs",
    "finetune_optimizer": "fine-tuning optimizer", "finetune_lr": "fine-tuning learning rate",
    "data_split": "dataset split", "code_version": "code version",
    "compute": "compute environment (device, threads, precision)",
}


def compare_values(a: Mapping | pd.Series, b: Mapping | pd.Series, options: AnalysisOptions) -> dict:
    """Statistics (before multiplicity adjustment) of method values `a` against baseline
    values `b`, each keyed by unit. Paired on the shared units when there are at least 2,
    Welch on all values otherwise. `difference` = mean(a) - mean(b) in the metric's unit."""
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
    improvement = probability_of_improvement(va, vb, paired)
    if not options.higher_is_better and math.isfinite(improvement):
        improvement = 1.0 - improvement
    return {
        "n_method": len(a), "n_baseline": len(b), "n_pairs": len(shared) if paired else 0,
        "mean_method": float(all_a.mean()) if len(a) else nan,
        "std_method": float(all_a.std(ddof=1)) if len(a) > 1 else nan,
        "mean_baseline": float(all_b.mean()) if len(b) else nan,
        "std_baseline": float(all_b.std(ddof=1)) if len(b) > 1 else nan,
        "difference": result.difference, "ci_low": result.ci_low, "ci_high": result.ci_high,
        "test": result.test, "df": result.df, "statistic": result.statistic, "p_value": result.p_value,
        "p_equivalence": tost_p_value(result, options.rope), "se": result.se,
        "effect_size": effect, "effect_size_kind": kind, "prob_improvement": improvement,
    }


def decide(p_adjusted: float, p_equivalence_adjusted: float, difference: float, alpha: float,
           higher_is_better: bool = True) -> str:
    """The decision of one comparison from its adjusted p-values (see module docstring)."""
    if p_equivalence_adjusted < alpha:
        return "equivalent"
    if p_adjusted < alpha:
        return "better" if (difference > 0) == higher_is_better else "worse"
    return "inconclusive"


def simultaneous_interval(difference, se, df, alpha: float, m: int) -> tuple[float, float]:
    """Bonferroni simultaneous interval of one of m comparisons: d ± t_{1-α/(2m), df} se."""
    if not (math.isfinite(se) and math.isfinite(df)) or df <= 0:
        return math.nan, math.nan
    half = float(t_quantile(1.0 - alpha / max(m, 1), df)) * se
    return difference - half, difference + half


def adjust_family(rows: pd.DataFrame, options: AnalysisOptions, family: str | None = None) -> pd.DataFrame:
    """Holm-adjust the rows of ONE family (named `family`, else by the rows' `family` column),
    add the simultaneous intervals, MDE, decision, the underpowered flag and whether each
    verdict speaks for the method in general (`general`: False where its units are the run
    seeds of one base model)."""
    rows = rows.copy()
    if family is not None:
        rows["family"] = family
    m = int(np.isfinite(rows["p_value"].to_numpy(float)).sum())
    rows["family_size"] = m
    rows["adjustment"] = "holm"
    rows["p_adjusted"] = holm(rows["p_value"].to_numpy(float))
    rows["p_equivalence_adjusted"] = holm(rows["p_equivalence"].to_numpy(float))
    bounds = [simultaneous_interval(d, se, df, options.alpha, m)
              for d, se, df in zip(rows["difference"], rows["se"], rows["df"])]
    rows["sim_low"] = [low for low, _ in bounds]
    rows["sim_high"] = [high for _, high in bounds]
    mde_alpha = options.alpha / max(m, 1)
    rows["mde_alpha"] = mde_alpha
    rows["mde"] = [minimum_detectable_effect(se, df, mde_alpha, options.power)
                   for se, df in zip(rows["se"], rows["df"])]
    rows["decision"] = [decide(p, q, d, options.alpha, options.higher_is_better) for p, q, d in
                        zip(rows["p_adjusted"], rows["p_equivalence_adjusted"], rows["difference"])]
    rows["underpowered"] = (rows["decision"] == "inconclusive") & ~(rows["mde"] <= options.rope)
    if "replication" not in rows.columns:
        rows["replication"] = BASE_MODELS
    rows["general"] = [generalizes(r) for r in rows["replication"]]
    notes = []
    for p, decision, low, high, general in zip(rows["p_adjusted"], rows["decision"], rows["sim_low"],
                                               rows["sim_high"], rows["general"]):
        note = []
        if p < options.alpha and decision == "equivalent":
            note.append(f"significant difference, but inside ±{options.rope:g}")
        if decision in ("better", "worse") and low <= 0 <= high:
            note.append("significant by Holm's step-down; the Bonferroni interval is wider")
        if not general:
            note.append(ONLY_THESE_WEIGHTS)
        notes.append("; ".join(note))
    rows["note"] = notes
    return rows


REVERSED = {"better": "worse", "worse": "better"}


def reversed_decision(decision: str) -> str:
    """The decision of a comparison read the other way round (baseline vs method)."""
    return REVERSED.get(decision, decision)


def decision_text(row) -> str:
    """`better`, `inconclusive (underpowered)`, `worse (these starting weights only)`."""
    text = row.decision + (" (underpowered)" if row.underpowered else "")
    return text if getattr(row, "general", True) else f"{text} ({ONLY_THESE_WEIGHTS})"


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
