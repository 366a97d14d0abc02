"""Pareto labels read from the report's own decisions (after the ShrinkBench paper's tradeoff
analysis).

An operating point p (a strategy at a target compression, mean over units) is compared with
every other point q of the same setting that is at least as compressed (or fast) on the axis:
`x_q >= x_p (1 - tol)`. Labels, per axis:

- `dominated`: the report decided that such a q is BETTER than p (a row of `comparisons`,
  either direction of the pair, at the same target compression: the decision rule of
  `shrinkbench.analysis.decision`, the simultaneous interval of the row's family excluding 0);
  `dominated_by` names q;
- `pareto`: no such q has a higher mean (p is on the frontier of the means);
- `not separable`: some such q has a higher mean, but no verdict of the report says it is
  better (the report did not compare them, or its interval does not exclude 0).

So the table beside the verdicts cannot contradict them: it adds no test of its own, and a
point the report calls equivalent or inconclusive against q is never "dominated" by q.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from shrinkbench.analysis.runs import SETTING, settings
from shrinkbench.analysis.units import unit_means, with_units

AXES = {"compression": "compression_ratio", "speedup": "theoretical_speedup"}
X_TOLERANCE = 0.01
COLUMNS = SETTING + ["axis", "strategy", "compression", "x", "mean", "n", "label", "dominated_by"]


def _better_pairs(comparisons: pd.DataFrame | None, model: str, dataset: str) -> set[tuple]:
    """{(winner, loser, compression)} where the report decided `winner` better than `loser`."""
    if comparisons is None or comparisons.empty:
        return set()
    mine = comparisons[(comparisons["model"] == model) & (comparisons["dataset"] == dataset)]
    out = set()
    for r in mine.itertuples():
        if r.decision == "better":
            out.add((r.method, r.baseline, float(r.compression)))
        elif r.decision == "worse":
            out.add((r.baseline, r.method, float(r.compression)))
    return out


def pareto_labels(runs: pd.DataFrame, comparisons: pd.DataFrame | None = None,
                  higher_is_better: bool = True) -> pd.DataFrame:
    """One row per setting x axis x operating point with its label (see module docstring).
    `comparisons` are the decided rows of a report (`ComparisonReport.comparisons`); without
    them no point is `dominated`. Points are unit means (`shrinkbench.analysis.units`)."""
    out = []
    runs = with_units(runs)
    sign = 1.0 if higher_is_better else -1.0
    for model, dataset in settings(runs):
        sub = runs[(runs["model"] == model) & (runs["dataset"] == dataset)]
        per_unit = unit_means(sub, ["strategy", "compression"], ["y", *AXES.values()])
        stats = per_unit.groupby(["strategy", "compression"]).agg(
            mean=("y", "mean"), n=("y", "count"), **{axis: (col, "mean") for axis, col in AXES.items()})
        better = _better_pairs(comparisons, model, dataset)
        keys = list(stats.index)
        mean = sign * stats["mean"].to_numpy(float)
        for axis in AXES:
            x = stats[axis].to_numpy(float)
            for i, (strategy, compression) in enumerate(keys):
                if not np.isfinite(x[i]):
                    continue
                later = [j for j in range(len(keys)) if j != i and np.isfinite(x[j]) and x[j] >= x[i] * (1 - X_TOLERANCE)]
                winners = [keys[j] for j in later if (keys[j][0], strategy, float(compression)) in better
                           and np.isclose(keys[j][1], compression)]
                if winners:
                    label, by = "dominated", ", ".join(f"{s} @ {c:g}x" for s, c in winners)
                else:
                    label, by = ("not separable" if any(mean[j] > mean[i] for j in later) else "pareto"), ""
                out.append({"model": model, "dataset": dataset, "axis": axis, "strategy": strategy,
                            "compression": compression, "x": x[i], "mean": float(stats["mean"].iloc[i]),
                            "n": int(stats["n"].iloc[i]), "label": label, "dominated_by": by})
    return pd.DataFrame(out, columns=COLUMNS)
