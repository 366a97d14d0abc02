"""Pareto labels with uncertainty (after the ShrinkBench paper's tradeoff analysis).

An operating point p (a strategy at a target compression, mean over seeds) is compared
with every other point q of the same setting that is at least as compressed (or fast):
`x_q >= x_p (1 - tol)`. Point q *dominates* p when the lower bound of the confidence
interval of `acc_q - acc_p` is above zero (paired over shared seeds when there are >= 2,
Welch from the summaries otherwise). Labels, per axis:

- `dominated`: some q dominates p (`dominated_by` names the one with the highest bound);
- `pareto`: no q has a higher mean accuracy (p is on the frontier of the means);
- `not separable`: some q has a higher mean, but none clears p's interval.

The intervals are unadjusted: the labels describe the curves, they are not tests.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from shrinkbench.analysis.runs import SETTING, UNIT, settings
from shrinkbench.analysis.units import unit_means, with_units
from shrinkbench.analysis.stats import t_quantile, welch_df

AXES = {"compression": "compression_ratio", "speedup": "theoretical_speedup"}
X_TOLERANCE = 0.01


def _lower_bounds(matrix: np.ndarray, mean: np.ndarray, std: np.ndarray, n: np.ndarray,
                  confidence: float) -> np.ndarray:
    """low[p, q]: lower confidence bound of acc_q - acc_p."""
    diff = matrix[:, None, :] - matrix[:, :, None]  # units x p x q
    count = np.isfinite(diff).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pairs without shared seeds
        d_mean = np.nanmean(diff, axis=0)
        d_std = np.nanstd(diff, axis=0, ddof=1)
        paired = d_mean - t_quantile(confidence, np.maximum(count - 1, 1)) * d_std / np.sqrt(count)
        var = std ** 2 / n
        se = np.sqrt(var[:, None] + var[None, :])
        df = welch_df(std[:, None] ** 2, n[:, None], std[None, :] ** 2, n[None, :])
        welch = (mean[None, :] - mean[:, None]) - t_quantile(confidence, df) * se
    return np.where(count >= 2, paired, welch)


def pareto_labels(runs: pd.DataFrame, confidence: float = 0.95, higher_is_better: bool = True) -> pd.DataFrame:
    """One row per setting x axis x operating point with its label (see module docstring).
    Points are unit means (`shrinkbench.analysis.units`); "more accurate" follows the
    metric's direction."""
    out = []
    runs = with_units(runs)
    sign = 1.0 if higher_is_better else -1.0
    for model, dataset in settings(runs):
        sub = runs[(runs["model"] == model) & (runs["dataset"] == dataset)]
        per_unit = unit_means(sub.assign(y=sign * sub["y"]), ["strategy", "compression"], ["y", *AXES.values()])
        points = per_unit.groupby(["strategy", "compression"])
        stats = points.agg(mean=("y", "mean"), std=("y", "std"), n=("y", "count"),
                           **{axis: (col, "mean") for axis, col in AXES.items()})
        matrix = per_unit.pivot_table(index=UNIT, columns=["strategy", "compression"],
                                      values="y", aggfunc="mean").reindex(columns=stats.index)
        mean, std, n = (stats[c].to_numpy(float) for c in ("mean", "std", "n"))
        low = _lower_bounds(matrix.to_numpy(float), mean, std, n, confidence)
        names = [f"{s} @ {c:g}x" for s, c in stats.index]
        for axis in AXES:
            x = stats[axis].to_numpy(float)
            later = (x[None, :] >= x[:, None] * (1.0 - X_TOLERANCE)) & ~np.eye(len(x), dtype=bool)
            later &= np.isfinite(x)[None, :] & np.isfinite(x)[:, None]
            beats = later & (low > 0)
            higher = later & (mean[None, :] > mean[:, None])
            for i, (strategy, compression) in enumerate(stats.index):
                if not np.isfinite(x[i]):
                    continue
                if beats[i].any():
                    best = np.flatnonzero(beats[i])[np.argmax(low[i, beats[i]])]
                    label, by = "dominated", names[best]
                else:
                    label, by = ("not separable" if higher[i].any() else "pareto"), ""
                out.append({"model": model, "dataset": dataset, "axis": axis, "strategy": strategy,
                            "compression": compression, "x": x[i], "mean": sign * mean[i], "n": int(n[i]),
                            "label": label, "dominated_by": by})
    return pd.DataFrame(out, columns=SETTING + ["axis", "strategy", "compression", "x", "mean", "n",
                                                "label", "dominated_by"])
