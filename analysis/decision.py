"""The one decision rule: statistics of one comparison, and the decision of one family.

`compare_values` turns the per-unit values of a method and of a baseline (each keyed by unit,
see `shrinkbench.analysis.units`) into the statistics of their difference: paired t on the
shared units when there are at least 2, Welch otherwise. `adjust_family` decides the rows of
ONE declared family of m comparisons together, every row from ONE interval, the family's
simultaneous (Bonferroni) interval `d ± t_{1-α/(2m), df} se`:

- `equivalent`: the interval lies inside (-rope, +rope);
- `better` / `worse`: otherwise, the interval excludes 0; `better` means better in the
  metric's own direction (higher accuracy, lower perplexity);
- `inconclusive`: neither; `underpowered` is set when the minimum detectable effect at the
  same level α/m (80% power) exceeds the rope (or fewer than 2 units exist).

Guarantee (one error budget for every verdict of a family): with probability at least
1 - α all m intervals cover their true differences together (Bonferroni's inequality). On
that event no verdict is wrong: an interval that excludes 0 has the true difference on its
side of 0, one inside ±rope has it inside ±rope. So the chance of ANY false verdict in the
family (better, worse or equivalent) is at most α; `python -m shrinkbench.analysis.calibration`
measures it. The p-value that decides is the one printed (`p_deciding`): for a better/worse or
an inconclusive row the Bonferroni-adjusted p of the difference `min(1, m p)` (< α exactly
when the interval excludes 0), for an equivalent row the adjusted equivalence (TOST) p
`min(1, 2 m p_TOST)` (< α exactly when the interval lies inside ±rope).

`ci_low`/`ci_high` is the UNADJUSTED interval of one comparison (`d ± t_{1-α/2, df} se`),
shown for reference only; `sim_low`/`sim_high` is the interval that decided.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np
import pandas as pd

from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.power import minimum_detectable_effect
from shrinkbench.analysis.stats import (TestResult, cohens_d_av, cohens_dz, exact_difference, one_sample_t, paired_t,
                                        share_better, t_quantile, tost_p_value, welch_t)
from shrinkbench.analysis.units import BASE_MODELS, ONLY_THESE_WEIGHTS, generalizes

DECISIONS = ("better", "equivalent", "worse", "inconclusive")
CONFOUNDERS = {
    "budget_epochs": "training budget (epochs after the starting weights)", "prune_steps": "pruning steps", "finetune_epochs": "fine-tuning epochs",
    "finetune_optimizer": "fine-tuning optimizer", "finetune_lr": "fine-tuning learning rate",
    "data_split": "dataset split", "code_version": "code version",
    "compute": "compute environment (device, threads, precision)",
    "protocol": "language-model protocol preset",
}


def compare_values(a: Mapping | pd.Series, b: Mapping | pd.Series, options: AnalysisOptions,
                   seed_free: tuple[bool, bool] = (False, False)) -> dict:
    """Statistics (before multiplicity adjustment) of method values `a` against baseline
    values `b`, each keyed by unit. Paired on the shared units when there are at least 2,
    Welch on all values otherwise. `difference` = mean(a) - mean(b) in the metric's unit.

    `seed_free` says which side is ONE value that no seed changes (a data-free language-model
    method, `record["seed_free"]`): it is a constant, not a sample of one, so the other side's
    units are tested against it (one-sample t, `stats.one_sample_t`), and two such values
    differ exactly (`stats.exact_difference`: a zero-width interval)."""
    a = dict(a.items()) if isinstance(a, pd.Series) else dict(a)
    b = dict(b.items()) if isinstance(b, pd.Series) else dict(b)
    shared = [key for key in a if key in b]
    constant_a, constant_b = (flag and len(side) == 1 for flag, side in zip(seed_free, (a, b)))
    paired = len(shared) >= 2 and not (constant_a or constant_b)
    all_a, all_b = np.fromiter(a.values(), float, len(a)), np.fromiter(b.values(), float, len(b))
    if constant_a or constant_b:
        va, vb = all_a, all_b
        if constant_a and constant_b:
            result = exact_difference(float(all_a[0]), float(all_b[0]), options.confidence)
        elif constant_b:
            result = one_sample_t(all_a, float(all_b[0]), options.confidence)
        else:  # a - b = -(b - a)
            flipped = one_sample_t(all_b, float(all_a[0]), options.confidence)
            result = dataclasses.replace(flipped, n_a=1, n_b=flipped.n_a, difference=-flipped.difference,
                                         statistic=-flipped.statistic, ci_low=-flipped.ci_high,
                                         ci_high=-flipped.ci_low)
        effect, kind = math.nan, "none (a seed-free value)"
    elif paired:
        va, vb = np.array([a[k] for k in shared], float), np.array([b[k] for k in shared], float)
        result: TestResult = paired_t(va, vb, options.confidence)
        effect, kind = cohens_dz(va, vb), "d_z"
    else:
        va, vb = all_a, all_b
        result = welch_t(va, vb, options.confidence)
        effect, kind = cohens_d_av(va, vb), "d_av"
    nan = math.nan
    improvement = share_better(va, vb, paired)  # the share of units where the method is better
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
        "effect_size": effect, "effect_size_kind": kind, "share_better": improvement,
    }


def decide(low: float, high: float, rope: float, higher_is_better: bool = True) -> str:
    """The decision of one comparison from its deciding (simultaneous) interval [low, high]:
    equivalent inside (-rope, rope), else better/worse where it excludes 0, else inconclusive."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "inconclusive"
    if -rope < low and high < rope:
        return "equivalent"
    if low > 0 or high < 0:
        return "better" if (high < 0) != higher_is_better else "worse"
    return "inconclusive"


def simultaneous_interval(difference, se, df, alpha: float, m: int) -> tuple[float, float]:
    """Bonferroni simultaneous interval of one of m comparisons: d ± t_{1-α/(2m), df} se."""
    if se == 0.0 and math.isfinite(difference) and df == math.inf:  # an exact difference (`stats.exact_difference`)
        return difference, difference
    if not (math.isfinite(se) and math.isfinite(df)) or df <= 0:
        return math.nan, math.nan
    half = float(t_quantile(1.0 - alpha / max(m, 1), df)) * se
    return difference - half, difference + half


def bonferroni(p_values, m: int, factor: float = 1.0) -> np.ndarray:
    """`min(1, factor · m · p)` per p-value (NaN stays NaN)."""
    return np.minimum(1.0, factor * max(m, 1) * np.asarray(p_values, dtype=float))


ADJUSTMENT = "Bonferroni (simultaneous intervals)"
DECISION_RULE = ("Decision from the simultaneous interval (1 − α/m) beside it: equivalent if it lies inside "
                 "±ROPE, else better/worse if it excludes 0, else inconclusive (underpowered when the minimum "
                 "detectable effect at 80% power and the same level exceeds the ROPE). All verdicts of a family "
                 "together are wrong at most α of the time.")


def adjust_family(rows: pd.DataFrame, options: AnalysisOptions, family: str | None = None) -> pd.DataFrame:
    """Decide the rows of ONE family (named `family`, else by the rows' `family` column) from
    their simultaneous intervals (see the module docstring): adds the intervals, the adjusted
    and the deciding p-values, the MDE, the decision, the underpowered flag and whether each
    verdict speaks for the method in general (`general`: False where its units are the run
    seeds of one base model)."""
    rows = rows.copy()
    if family is not None:
        rows["family"] = family
    m = int(np.isfinite(rows["p_value"].to_numpy(float)).sum())
    rows["family_size"] = m
    rows["adjustment"] = ADJUSTMENT
    rows["p_adjusted"] = bonferroni(rows["p_value"].to_numpy(float), m)
    rows["p_equivalence_adjusted"] = bonferroni(rows["p_equivalence"].to_numpy(float), m, 2.0)
    bounds = [simultaneous_interval(d, se, df, options.alpha, m)
              for d, se, df in zip(rows["difference"], rows["se"], rows["df"])]
    rows["sim_low"] = [low for low, _ in bounds]
    rows["sim_high"] = [high for _, high in bounds]
    mde_alpha = options.alpha / max(m, 1)
    rows["mde_alpha"] = mde_alpha
    rows["mde"] = [minimum_detectable_effect(se, df, mde_alpha, options.power)
                   for se, df in zip(rows["se"], rows["df"])]
    rows["decision"] = [decide(low, high, options.rope, options.higher_is_better)
                        for low, high in zip(rows["sim_low"], rows["sim_high"])]
    equivalent = rows["decision"] == "equivalent"
    rows["p_deciding"] = np.where(equivalent, rows["p_equivalence_adjusted"], rows["p_adjusted"])
    rows["p_deciding_test"] = np.where(equivalent, "equivalence", "difference")
    rows["underpowered"] = (rows["decision"] == "inconclusive") & ~(rows["mde"] <= options.rope)
    if "replication" not in rows.columns:
        rows["replication"] = BASE_MODELS
    rows["general"] = [generalizes(r) for r in rows["replication"]]
    notes = []
    for low, high, decision, general in zip(rows["sim_low"], rows["sim_high"], rows["decision"], rows["general"]):
        note = []
        if decision == "equivalent" and (low > 0 or high < 0):
            note.append(f"a nonzero difference, but inside ±{options.rope:g}")
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
