"""Calibration of the toolkit's own decision rule, by simulation: how often its verdicts are
false, for whole families and for single tests, and how often its intervals cover the truth.

    python -m shrinkbench.analysis.calibration [--reps 2000] [--seed 0]

1. **Whole families** (`shrinkbench.analysis.family_calibration`): a method against four
   baselines at four pruned ratios, decided per ratio (16 comparisons) and over the pruned
   curve (4 comparisons) by `adjust_family`, the rule every output uses, at n = 3, 5 and 10
   units. Two baselines do not differ from the method, two differ by exactly the ROPE.
   Printed: the share of families with any false better/worse, any false equivalent and any
   false verdict at all (at most α by the rule's construction), beside the rule used before
   (two Holm procedures; the curve level with the dense point as data).
2. **False verdicts and the unit of replication.** Two methods with NO difference on average,
   whose difference varies with the starting weights (a method x base-model interaction,
   sd `interaction_sd`) and with the run seed (sd `noise_sd`):
   `y[m, b, s] = base_b + run_{b,s} + i[m, b] + e[m, b, s]` with `i ~ N(0, interaction_sd)`,
   `e ~ N(0, noise_sd)`, both methods run on every (base model b, run seed s). The question a
   paper asks is about the method, not about one set of starting weights, so a verdict of
   better/worse is false. Rates are reported for three designs and three readings: "every
   run a unit" (the pseudo-replication the toolkit no longer does: a paired t over all
   (b, s) pairs), the toolkit's verdicts (`shrinkbench.analysis.units`: per-base-model means,
   or the run seeds of one base model), and its GENERAL verdicts (those not marked "these
   starting weights only"). One test (m = 1), ROPE 0: the decision rule's `decide` on the
   test's interval.
3. **Coverage of curve-level intervals.** `n` units, each with a method and a baseline curve
   over the pruned compressions 2-32x (unit offsets, noise per point, a true level difference
   `delta`); the curve-level difference of `shrinkbench.analysis.matched` (PCHIP levels in
   log2 x over the pruned range), its Student-t interval (paired t over the per-unit level
   differences, the toolkit's primary interval) and the percentile bootstrap over units.

Every number comes from the toolkit's own functions (`compare_values`, `adjust_family`,
`decide`, `unit_levels`, `mean_level`, `bootstrap_mean_difference`) fed with one seeded
`numpy.random.Generator`.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

import numpy as np

from shrinkbench.analysis.decision import compare_values, decide
from shrinkbench.analysis.family_calibration import FAMILY_N, RATIOS, TRUE_DIFFERENCES, family_table_rows, percent
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.render import TERMINAL_WIDTH, Table
from shrinkbench.analysis.resample import bootstrap_mean_difference, mean_level

DESIGNS = ((3, 3), (1, 5), (5, 1))
"""(base models, run seeds per base model) of the false-verdict table."""
COVERAGE_N = (3, 5, 10)
CURVE_X = np.array([2.0, 4.0, 8.0, 16.0, 32.0])
"""The pruned ratios of the coverage study (the dense point is no part of a curve level)."""


@dataclass(frozen=True)
class FalseVerdicts:
    bases: int
    seeds: int
    naive: float
    toolkit: float
    general: float


def _significant(a: dict, b: dict, options: AnalysisOptions) -> bool:
    stats = compare_values(a, b, options)  # one test: its simultaneous interval is its 1 - α interval
    return decide(stats["ci_low"], stats["ci_high"], options.rope, options.higher_is_better) in ("better", "worse")


def false_verdicts(bases: int, seeds: int, reps: int, rng: np.random.Generator, interaction_sd: float = 0.5,
                   noise_sd: float = 0.1, options: AnalysisOptions = AnalysisOptions(rope=0.0)) -> FalseVerdicts:
    """Rates of better/worse verdicts under a zero mean difference (see the module docstring)."""
    naive = toolkit = general = 0
    for _ in range(reps):
        base = rng.normal(0.0, 1.0, (bases, 1)) + rng.normal(0.0, 0.3, (bases, seeds))  # shared by both methods
        a = base + rng.normal(0.0, interaction_sd, (bases, 1)) + rng.normal(0.0, noise_sd, (bases, seeds))
        b = base + rng.normal(0.0, interaction_sd, (bases, 1)) + rng.normal(0.0, noise_sd, (bases, seeds))
        runs_a = {(i, j): a[i, j] for i in range(bases) for j in range(seeds)}
        runs_b = {(i, j): b[i, j] for i in range(bases) for j in range(seeds)}
        naive += _significant(runs_a, runs_b, options)
        if bases > 1:  # the unit is the base model: run seeds averaged within it
            hit = _significant(dict(enumerate(a.mean(axis=1))), dict(enumerate(b.mean(axis=1))), options)
            toolkit += hit
            general += hit
        else:  # one base model: the run seeds are the units, the verdict is for these weights only
            toolkit += _significant(runs_a, runs_b, options)
    return FalseVerdicts(bases, seeds, naive / reps, toolkit / reps, general / reps)


@dataclass(frozen=True)
class Coverage:
    n: int
    t: float
    bootstrap: float


def _levels(curves: np.ndarray) -> np.ndarray:
    u = np.log2(CURVE_X)
    return np.array([mean_level(u, v, u[0], u[-1]) for v in curves])


def curve_level_coverage(n: int, reps: int, rng: np.random.Generator, delta: float = 1.0, unit_sd: float = 1.0,
                         interaction_sd: float = 0.5, noise_sd: float = 0.3, n_boot: int = 1000,
                         options: AnalysisOptions = AnalysisOptions()) -> Coverage:
    """How often the 95% Student-t and percentile-bootstrap intervals of the curve-level
    difference contain the true difference `delta` (see the module docstring)."""
    shape = -0.6 * np.log2(CURVE_X) ** 1.5
    ramp = np.log2(CURVE_X) / np.log2(CURVE_X).mean()  # the method's gain grows with compression
    true = delta * _levels(ramp[None, :])[0]
    hits_t = hits_boot = 0
    for _ in range(reps):
        dense = rng.normal(90.0, unit_sd, (n, 1))
        gain = ramp[None, :] * (delta + rng.normal(0.0, interaction_sd, (n, 1)))
        a = dense + shape + gain + rng.normal(0.0, noise_sd, (n, CURVE_X.size))
        b = dense + shape + rng.normal(0.0, noise_sd, (n, CURVE_X.size))
        la, lb = _levels(a), _levels(b)
        stats = compare_values(dict(enumerate(la)), dict(enumerate(lb)), options)
        hits_t += stats["ci_low"] <= true <= stats["ci_high"]
        low, high = bootstrap_mean_difference(la, lb, rng, True, n_boot, options.confidence)
        hits_boot += low <= true <= high
    return Coverage(n, hits_t / reps, hits_boot / reps)


def family_table(reps: int, rng: np.random.Generator) -> Table:
    """The first table: false verdicts of whole families (see the module docstring)."""
    rows = family_table_rows(reps, rng)
    return Table(
        "False verdicts of whole families (the decision rule of every output)",
        ["Level", "n", "m", "False better/worse", "False equivalent", "Any false verdict",
         "Before: any false"],
        [[r.level, str(r.n), str(r.m), percent(r.false_direction), percent(r.false_equivalent), percent(r.any_false),
          percent(r.any_false_before)] for r in rows],
        ["l", "r", "r", "r", "r", "r", "r"],
        f"Share of simulated families with at least one false verdict of each kind; α = 0.05 for the whole family, "
        f"ROPE ±0.5. A method against {len(TRUE_DIFFERENCES)} baselines (true differences "
        f"{', '.join(f'{t:+g}' for t in TRUE_DIFFERENCES)} ROPE) at {', '.join(f'{x:g}x' for x in RATIOS)}, "
        f"n units each (FAMILY_N = {', '.join(map(str, FAMILY_N))}), interaction sd 0.2, point noise sd 0.05; "
        f"{reps} families per row. False equivalent: 'equivalent' where the true difference is the ROPE (just "
        "outside it). Rule before: Holm over the difference tests and Holm over the equivalence tests, and at the "
        "curve level the dense point at 1x as data (column \"Before: any false\").")


def tables(reps: int, seed: int) -> list[Table]:
    rng = np.random.default_rng(seed)
    families = family_table(reps, rng)
    verdicts = [false_verdicts(b, s, reps, rng) for b, s in DESIGNS]
    first = Table(
        "False better/worse verdicts when the methods do not differ on average",
        ["Design", "Every run a unit", "Toolkit: any verdict", "Toolkit: general verdict"],
        [[f"{v.bases} base model{'s' if v.bases > 1 else ''} x {v.seeds} run seed{'s' if v.seeds > 1 else ''}",
          f"{v.naive:.1%}", f"{v.toolkit:.1%}" + ("" if v.bases > 1 else " (these weights only)"),
          f"{v.general:.1%}"] for v in verdicts],
        ["l", "r", "r", "r"],
        f"Nominal 5% (α = 0.05, one test). Method x base-model interaction sd 0.5, run noise sd 0.1; {reps} "
        f"simulated studies per design, generator seed {seed}. With one base model a verdict can only be about "
        "those starting weights, and the toolkit says so beside it; it is never a general verdict.")
    coverage = [curve_level_coverage(n, reps, rng) for n in COVERAGE_N]
    second = Table(
        "Coverage of nominal 95% curve-level intervals",
        ["Units (n)", "Student-t (the toolkit's)", "Percentile bootstrap over units"],
        [[str(c.n), f"{c.t:.1%}", f"{c.bootstrap:.1%}"] for c in coverage], ["r", "r", "r"],
        f"{reps} simulated studies per n; pruned curves over 2-32x, true level difference from a method gain that grows "
        "with compression, interaction sd 0.5, point noise sd 0.3, 1000 bootstrap resamples.")
    return [families, first, second]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shrinkbench.analysis.calibration",
        description="Calibration of the toolkit's own decision rule, by simulation: how often its verdicts are "
                    "false, for whole families and for single tests, and how often its intervals cover the truth.",
        epilog="Prints three tables. (1) Whole families decided by the rule every output uses (simultaneous "
               "intervals), per ratio and at the curve level, n = 3, 5 and 10 units: the share of families with a "
               "false better/worse, a false equivalent (true difference just outside the ROPE) and any false "
               "verdict, which the rule keeps at most α = 0.05, beside the rule used before. (2) False better/worse "
               "verdicts when the unit of replication is wrong (every run a unit) or right (base models). (3) "
               "Coverage of nominal 95% curve-level intervals, Student-t and percentile bootstrap. Model and "
               "parameters: the module docstring of shrinkbench.analysis.calibration and "
               "shrinkbench.analysis.family_calibration, and docs/statistics.md.")
    parser.add_argument("--reps", type=int, default=2000, help="simulated studies per row (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the numpy Generator (default: 0)")
    parser.add_argument("--across", action="store_true", help="also the across-settings rows (family-wise error "
                                                              "and power at 5, 10, 20 settings)")
    args = parser.parse_args(argv)
    if args.reps < 10:
        print("error: --reps must be at least 10", file=sys.stderr)
        return 2
    print("\n".join(t.text(TERMINAL_WIDTH) for t in tables(args.reps, args.seed)))
    if args.across:
        from shrinkbench.analysis.across_calibration import across_tables
        print("\n".join(t.text() for t in across_tables(args.reps, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
