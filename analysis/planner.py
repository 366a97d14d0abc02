"""Seed planner: how many seeds a target difference needs, from a pilot's spread.

"Seeds" are units of replication (`shrinkbench.analysis.units`): base models where the pilot
has several (each with its own run seed), else the run seeds of its one base model. With a
baseline, the spread is that of the per-unit differences method - baseline (paired, the
design every comparison here uses when units are shared); without one, the spread of each
strategy's unit means, planned as an unpaired comparison of two methods with that spread.

The level is α / m, the Bonferroni level at which `compare` computes its minimum detectable
effect, with m the size of the family that `compare --method M` adjusts over (every other
strategy x shared compression in the setting) unless a family size is given: so a plan that
says "n seeds suffice" is one that `compare` would not call underpowered.

A pilot of 3 seeds estimates its SD badly (2 degrees of freedom: the true SD is more than
twice the estimate one time in five), so the plan uses the pilot SD's upper one-sided
confidence limit (`shrinkbench.analysis.power.sd_upper_limit`, 80% by default, Browne 1995),
stated in every output, never the point estimate. Each row plans two verdicts at the same
level α/m: a difference of `target` (better/worse: noncentral t power), and equivalence within
±ROPE when the true difference is 0 (`equivalence_power`: the simultaneous interval inside
±ROPE, exact over the SD's sampling distribution).
"""
from __future__ import annotations

import math

import pandas as pd

from shrinkbench.analysis.errors import AnalysisError
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.power import (SD_CONFIDENCE, equivalence_power, sd_upper_limit, seeds_for_equivalence,
                                        seeds_needed, t_test_power)
from shrinkbench.analysis.runs import SETTING, UNIT
from shrinkbench.analysis.schema import DENSE_STRATEGY
from shrinkbench.analysis.units import unit_means, with_units


def compare_family_size(pruned: pd.DataFrame, method: str | None) -> int:
    """The size of the largest family `compare --method <method>` would form in a setting:
    (other strategies) x (compressions both have). Without a method: the largest over methods."""
    sizes = [1]
    methods = [method] if method is not None else sorted(set(pruned["strategy"]))
    for _, sub in pruned.groupby(SETTING):
        points = {s: set(g["compression"]) for s, g in sub.groupby("strategy")}
        for m in methods:
            if m in points:
                sizes.append(sum(len(points[m] & c) for s, c in points.items() if s != m))
    return max(sizes)


def _plan_row(sd: float, n: int, paired: bool, target: float, alpha: float, options: AnalysisOptions,
              sd_confidence: float) -> dict:
    design = "paired" if paired else "unpaired"
    nan = math.nan
    if not (n >= 2 and math.isfinite(sd)):
        return {"sd": sd, "sd_upper": nan, "design": design, "current_power": nan, "seeds_needed": nan,
                "equivalence_power": nan, "seeds_equivalence": nan}
    pilot_df = n - 1.0 if paired else 2.0 * n - 2.0
    upper = sd_upper_limit(sd, pilot_df, sd_confidence)
    se = upper / math.sqrt(n) if paired else upper * math.sqrt(2.0 / n)
    try:
        needed = seeds_needed(upper, target, alpha, options.power, paired)
    except ValueError:
        needed = math.inf
    try:
        equivalent = seeds_for_equivalence(upper, options.rope, alpha, options.power, paired) if options.rope > 0 else nan
    except ValueError:
        equivalent = math.inf
    return {"sd": sd, "sd_upper": upper, "design": design,
            "current_power": t_test_power(target, se, pilot_df, alpha) if se > 0 else 1.0,
            "seeds_needed": needed,
            "equivalence_power": equivalence_power(options.rope, upper, n, alpha, paired) if options.rope > 0 else nan,
            "seeds_equivalence": equivalent}


def plan_seeds(runs: pd.DataFrame, target: float, options: AnalysisOptions, method: str | None = None,
               baseline: str | None = None, family_size: int | None = None,
               sd_confidence: float = SD_CONFIDENCE) -> pd.DataFrame:
    """One row per setting x compression (x strategy without a baseline): the pilot's n, its
    SD and that SD's upper `sd_confidence` limit, and with that limit the power the pilot's n
    has now for `target`, the seeds needed for `options.power` to detect `target`, and those
    needed to show equivalence within ±`options.rope` when nothing differs, all at level α/m
    (m = `family_size`, by default that of `compare`, see the module docstring)."""
    if not 0.5 <= sd_confidence < 1.0:
        raise AnalysisError(f"the SD's confidence level must lie in [0.5, 1), got {sd_confidence}")
    if not (target > 0 and math.isfinite(target)):
        raise AnalysisError(f"the target difference must be a positive finite number, got {target}")
    if family_size is not None and family_size < 1:
        raise AnalysisError(f"family size must be at least 1, got {family_size}")
    if baseline is not None and method is None:
        raise AnalysisError("--baseline needs --method")
    pruned = with_units(runs)
    pruned = pruned[pruned["strategy"] != DENSE_STRATEGY]
    if family_size is None:
        family_size = compare_family_size(pruned, method)
    alpha = options.alpha / family_size
    names = set(pruned["strategy"])
    for name in (method, baseline):
        if name is not None and name not in names:
            raise AnalysisError(f"unknown method {name!r}; the table has: {', '.join(sorted(names))}")
    rows = []
    if baseline is not None:
        keys = UNIT
        for (model, dataset, compression), group in pruned.groupby(SETTING + ["compression"]):
            a = group[group["strategy"] == method].groupby(keys)["y"].mean()
            b = group[group["strategy"] == baseline].groupby(keys)["y"].mean()
            if a.empty or b.empty:
                continue
            d = (a - b).dropna()
            paired = len(d) >= 2
            sd = float(d.std(ddof=1)) if paired else math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
            n = len(d) if paired else min(len(a), len(b))
            rows.append({"model": model, "dataset": dataset, "compression": compression,
                         "strategy": f"{method} vs {baseline}", "pilot_n": n,
                         **_plan_row(sd, n, paired, target, alpha, options, sd_confidence)})
    else:
        chosen = pruned if method is None else pruned[pruned["strategy"] == method]
        chosen = unit_means(chosen, SETTING + ["strategy", "compression"], ["y"])
        for (model, dataset, strategy, compression), group in chosen.groupby(SETTING + ["strategy", "compression"]):
            n = int(group["y"].count())
            sd = float(group["y"].std(ddof=1)) if n > 1 else math.nan
            rows.append({"model": model, "dataset": dataset, "compression": compression,
                         "strategy": strategy, "pilot_n": n,
                         **_plan_row(sd, n, False, target, alpha, options, sd_confidence)})
    if not rows:
        raise AnalysisError(f"no operating point has runs of both {method} and {baseline}")
    frame = pd.DataFrame(rows)
    frame["target"], frame["alpha"], frame["power"] = target, alpha, options.power
    frame["family_size"] = family_size
    frame["sd_confidence"], frame["rope"] = sd_confidence, options.rope
    return frame
