"""Calibration of the decision rule on whole families: every verdict of a family together.

A simulated study is what `shrinkbench compare --method M` decides in one setting: a method
and K baselines, each run on the same `n` units (base models), at the pruned ratios
`RATIOS` (the dense model at 1x is run too, and shared by all of them). Per unit `i` and
strategy `j` the accuracy at `u = log2(x)` is

    y[j, i](u) = dense_i - 0.6 u^1.5 + shift_j + c[j, i] + e[j, i](u)

with `dense_i ~ N(90, 1)`, a strategy x unit interaction `c ~ N(0, interaction_sd)` (constant
over the curve) and point noise `e ~ N(0, noise_sd)`. The method's true difference to
baseline k is `TRUE_DIFFERENCES[k] x rope` at every pruned ratio, so also over the whole
pruned range: two baselines that do not differ (a better/worse verdict against them is false,
"equivalent" is right) and two that differ by exactly the ROPE (just outside it: an
"equivalent" verdict is false).

Two families are decided with the toolkit's own functions (`compare_values`, then
`adjust_family`, the rule every output uses):

- **per ratio**: K x len(RATIOS) rows, one per baseline and ratio;
- **curve level**: K rows, each unit's mean level over the pruned range
  (`shrinkbench.analysis.matched.unit_levels`, PCHIP in log2 x, no dense point).

Counted per family: any false better/worse, any false equivalent, and any false verdict at
all; the rule keeps the last at most α. Beside it, the same studies decided as before
(issue 25): two Holm procedures, one over the difference tests and one over the
equivalence tests (TOST), each spending α, and at the curve level with the dense point at 1x
as data, averaged over 1x..max. That reading calls a method whose curve lies a ROPE above
its baseline over the whole pruned range "equivalent" (the forced zero at 1x pulls the
difference towards 0) and exceeds α.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shrinkbench.analysis.decision import adjust_family, compare_values
from shrinkbench.analysis.matched import unit_levels
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.stats import holm

RATIOS = np.array([4.0, 8.0, 16.0, 32.0])
"""The pruned ratios of a simulated study (the dense model at 1x is run too)."""
TRUE_DIFFERENCES = (0.0, 0.0, 1.0, -1.0)
"""The method's true difference to each baseline, in ROPEs."""
FAMILY_N = (3, 5, 10)
LEVELS = ("per ratio", "curve level")


@dataclass(frozen=True)
class FamilyRates:
    """Shares of simulated families with at least one false verdict of each kind."""

    level: str
    n: int
    m: int
    false_direction: float
    false_equivalent: float
    any_false: float
    any_false_before: float


def false_kinds(decisions, truth, rope: float) -> tuple[bool, bool]:
    """(any false better/worse, any false equivalent) among `decisions` (higher is better)
    given the true differences `truth`."""
    direction = any((d == "better" and t <= 0) or (d == "worse" and t >= 0) for d, t in zip(decisions, truth))
    equivalent = any(d == "equivalent" and abs(t) >= rope for d, t in zip(decisions, truth))
    return direction, equivalent


def previous_decisions(rows: pd.DataFrame, alpha: float) -> list[str]:
    """The rule before issue 25: equivalent where the Holm-adjusted TOST p < α, else
    better/worse where the Holm-adjusted difference p < α (two procedures, two budgets)."""
    p, q = holm(rows["p_value"].to_numpy(float)), holm(rows["p_equivalence"].to_numpy(float))
    return ["equivalent" if qi < alpha else ("better" if d > 0 else "worse") if pi < alpha else "inconclusive"
            for pi, qi, d in zip(p, q, rows["difference"])]


def _study(n: int, rng: np.random.Generator, rope: float, interaction_sd: float, noise_sd: float):
    """(per-strategy curves: strategy -> unit -> (x, y) of the pruned ratios, dense values)."""
    u = np.log2(RATIOS)
    dense = rng.normal(90.0, 1.0, n)
    shifts = (0.0,) + tuple(-t * rope for t in TRUE_DIFFERENCES)  # the method first, then the baselines
    curves = []
    for shift in shifts:
        offset = rng.normal(0.0, interaction_sd, n)
        y = dense[:, None] - 0.6 * u ** 1.5 + shift + offset[:, None] + rng.normal(0.0, noise_sd, (n, u.size))
        curves.append({i: (RATIOS, y[i]) for i in range(n)})
    return curves, dense


def _decide(rows: list[dict], options: AnalysisOptions, truth) -> tuple[bool, bool, bool]:
    frame = adjust_family(pd.DataFrame(rows), options, family="simulated")
    direction, equivalent = false_kinds(frame["decision"], truth, options.rope)
    before = any(false_kinds(previous_decisions(frame, options.alpha), truth, options.rope))
    return direction, equivalent, before


def family_rates(n: int, reps: int, rng: np.random.Generator, interaction_sd: float = 0.2, noise_sd: float = 0.05,
                 options: AnalysisOptions = AnalysisOptions()) -> tuple[FamilyRates, FamilyRates]:
    """The per-ratio and the curve-level rates at `n` units over `reps` simulated studies."""
    counts = {level: np.zeros(4) for level in LEVELS}
    truth_k = [t * options.rope for t in TRUE_DIFFERENCES]
    lo, hi = float(RATIOS[0]), float(RATIOS[-1])
    for _ in range(reps):
        curves, dense = _study(n, rng, options.rope, interaction_sd, noise_sd)
        method, baselines = curves[0], curves[1:]
        rows, truth = [], []
        for k, baseline in enumerate(baselines):
            for r in range(RATIOS.size):
                rows.append(compare_values({i: c[1][r] for i, c in method.items()},
                                           {i: c[1][r] for i, c in baseline.items()}, options))
                truth.append(truth_k[k])
        direction, equivalent, before = _decide(rows, options, truth)
        counts["per ratio"] += (direction, equivalent, direction or equivalent, before)
        levels = [unit_levels(c, lo, hi) for c in curves]
        rows = [compare_values(levels[0], b, options) for b in levels[1:]]
        direction, equivalent, _ = _decide(rows, options, truth_k)
        with_dense = [unit_levels({i: (np.r_[1.0, x], np.r_[dense[i], y]) for i, (x, y) in c.items()}, 1.0, hi)
                      for c in curves]
        frame = pd.DataFrame([compare_values(with_dense[0], b, options) for b in with_dense[1:]])
        before = any(false_kinds(previous_decisions(frame, options.alpha), truth_k, options.rope))
        counts["curve level"] += (direction, equivalent, direction or equivalent, before)
    sizes = {"per ratio": len(TRUE_DIFFERENCES) * RATIOS.size, "curve level": len(TRUE_DIFFERENCES)}
    rates = [FamilyRates(level, n, sizes[level], *(counts[level] / reps)) for level in LEVELS]
    return rates[0], rates[1]


def family_table_rows(reps: int, rng: np.random.Generator) -> list[FamilyRates]:
    """The rates of both levels at every n of FAMILY_N, per-ratio rows first."""
    pairs = [family_rates(n, reps, rng) for n in FAMILY_N]
    return [pair[0] for pair in pairs] + [pair[1] for pair in pairs]


def percent(rate: float) -> str:
    return f"{rate:.1%}" if math.isfinite(rate) else "–"
