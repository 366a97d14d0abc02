"""Drawing helpers the run figures share (the curves themselves come from `analysis.curves`)."""
from __future__ import annotations

import _common
import pandas as pd
from matplotlib.lines import Line2D

from shrinkbench.analysis.curves import CUT_BELOW_DENSE, cut_axis  # noqa: F401 (the figures' shared cut)
from shrinkbench.analysis.palette import DENSE_COLOR
from shrinkbench.analysis.schema import DENSE_STRATEGY

def setting_stem(name: str, model: str, dataset: str, several: bool) -> str:
    """File stem of a figure: the suite's name, plus the setting when a suite has several."""
    return f"{name}_{_common.slug(dataset)}_{_common.slug(model)}" if several else name


def legend_handles(styles: dict[str, dict]) -> list[Line2D]:
    handles = [Line2D([], [], color=s["color"], linestyle=s["linestyle"], marker=s["marker"], markersize=4,
                      label=name) for name, s in styles.items()]
    handles.append(Line2D([], [], color=DENSE_COLOR, linestyle=":", marker="*",
                          label="dense model (band: 95% t interval)"))
    return handles


def unit_interval(values: pd.Series, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of per-unit values and its t interval (the mean alone where n < 2; NaN where n = 0)."""
    from shrinkbench.analysis.stats import t_interval_from_summary

    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(values.mean())
    if len(values) < 2:
        return mean, mean, mean
    low, high = t_interval_from_summary(mean, float(values.std(ddof=1)), len(values), confidence)
    return mean, float(low), float(high)
