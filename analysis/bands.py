"""The numbers behind the tradeoff curves: one row per operating point with its band.

Per setting, strategy and target compression: the seed mean of the response (`y`) and of
its difference to dense (`delta`), with a band that is either the Student-t interval
(default) or a percentile bootstrap over whole seeds, drawn jointly across every
compression ratio of the curve. x positions are seed means of the measured metrics.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.resample import bootstrap_column_means
from shrinkbench.analysis.runs import POINT, SETTING, summarize, unit_matrix


def _bootstrap_bands(runs: pd.DataFrame, column: str, options: AnalysisOptions,
                     rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for key, curve in runs.groupby(SETTING + ["strategy"], sort=True):
        matrix = unit_matrix(curve, column)
        if matrix.empty:
            continue
        low, high = bootstrap_column_means(matrix.to_numpy(float), rng, options.n_boot, options.confidence)
        for compression, lo, hi in zip(matrix.columns, low, high):
            rows.append((*key, compression, lo, hi))
    return pd.DataFrame(rows, columns=POINT + ["low", "high"])


def curve_points(runs: pd.DataFrame, options: AnalysisOptions, rng: np.random.Generator) -> pd.DataFrame:
    """`summarize(runs)` with `low`/`high` (and `delta_low`/`delta_high`) replaced by the
    bootstrap band when `options.interval == "bootstrap"`; column `band` says which."""
    points = summarize(runs, options.confidence)
    points["band"] = f"{options.confidence:.0%} Student-t interval"
    if options.interval != "bootstrap":
        return points
    for column, prefix in (("y", ""), ("delta", "delta_")):
        boot = _bootstrap_bands(runs.dropna(subset=[column]), column, options, rng)
        boot = boot.rename(columns={"low": f"{prefix}low", "high": f"{prefix}high"})
        points = points.drop(columns=[f"{prefix}low", f"{prefix}high"]).merge(boot, on=POINT, how="left")
    points["band"] = f"{options.confidence:.0%} bootstrap over seeds (B={options.n_boot})"
    return points
