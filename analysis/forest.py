"""The forest plot: one method against many baselines, drawn with the intervals that decided.

Where a report puts one method against many baselines (the `methods` route: fifteen curves in
one panel are a tangle no reader follows), each baseline gets one row and each target ratio
one panel (plus one panel for the curve level over the pruned range, where the report has
it): the difference `method - baseline` in the response's unit with the family's
SIMULTANEOUS interval, the one the decision rule read (`shrinkbench.analysis.decision`), the
ROPE shaded around 0. Baselines are listed by group (`shrinkbench.analysis.groups`), the
sanity-check controls last; the marker says the verdict. Nothing is computed here: every
number is a row of the report.
"""
from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from shrinkbench.analysis.compare import BUDGET_MARK
from shrinkbench.analysis.curves import fit_legend
from shrinkbench.analysis.decision import reversed_decision
from shrinkbench.analysis.groups import GROUPS, baseline_group, display_name
from shrinkbench.analysis.runs import setting_label

VERDICT_STYLE = {
    "better": {"color": "#009E73", "marker": "o", "fillstyle": "full"},
    "worse": {"color": "#D55E00", "marker": "o", "fillstyle": "full"},
    "equivalent": {"color": "#0072B2", "marker": "D", "fillstyle": "full"},
    "inconclusive": {"color": "#555555", "marker": "o", "fillstyle": "none"},
}


def method_rows(rows: pd.DataFrame, method: str) -> pd.DataFrame:
    """The rows of `method` against each other method, read as method - other (flipped where
    the report holds the pair the other way round), with `other` and `group` columns."""
    direct = rows[rows["method"] == method].assign(other=lambda f: f["baseline"])
    reverse = rows[rows["baseline"] == method].copy()
    if len(reverse):
        reverse["other"] = reverse["method"]
        reverse["difference"] = -reverse["difference"]
        reverse["sim_low"], reverse["sim_high"] = -reverse["sim_high"], -reverse["sim_low"]
        reverse["decision"] = reverse["decision"].map(reversed_decision)
    out = pd.concat([direct, reverse], ignore_index=True)
    out["group"] = out["other"].map(baseline_group)
    return out


def _order(others) -> list[str]:
    """Baselines by group (GROUPS order, controls last), then by name."""
    def key(name: str):
        group = baseline_group(name)
        rank = len(GROUPS) + 1 if group == "controls" else (GROUPS.index(group) if group in GROUPS else len(GROUPS))
        return rank, name
    return sorted(set(others), key=key)


def forest_figure(comparisons: pd.DataFrame, curve_level: pd.DataFrame, method: str, rope: float,
                  unit: str, model: str, dataset: str) -> Figure | None:
    """The forest plot of `method` in one setting (see the module docstring); None when the
    report holds fewer than two baselines for it there."""
    def of_setting(frame: pd.DataFrame) -> pd.DataFrame:
        if frame is None or frame.empty:
            return pd.DataFrame(columns=["method", "baseline", "difference", "sim_low", "sim_high", "decision"])
        return frame[(frame["model"] == model) & (frame["dataset"] == dataset)]

    points = method_rows(of_setting(comparisons), method)
    if points["other"].nunique() < 2:
        return None
    levels = method_rows(of_setting(curve_level), method)
    panels = [(f"{c:g}×", points[np.isclose(points["compression"], c)]) for c in sorted(set(points["compression"]))]
    if len(levels):
        span = f"{levels['x_from'].min():.3g}–{levels['x_to'].max():.3g}×"
        panels.append((f"whole pruned range ({span})", levels))
    order = _order(points["other"])
    y = {name: len(order) - 1 - i for i, name in enumerate(order)}
    height = 0.26 * len(order) + 1.6
    left = 0.25 + 0.068 * (max(len(display_name(name)) for name in order) + 12)  # inches for the names
    fig = Figure(figsize=(2.5 * len(panels) + left + 0.3, height))
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    controls = [name for name in order if baseline_group(name) == "controls"]
    for ax, (title, rows) in zip(axes, panels):
        ax.axvspan(-rope, rope, color="0.9", linewidth=0)
        ax.axvline(0.0, color="0.3", linewidth=0.8)
        if controls and len(controls) < len(order):
            ax.axhline(y[controls[0]] + 0.5, color="0.6", linewidth=0.6, linestyle="--")
        for r in rows.itertuples():
            if r.other not in y or not np.isfinite(r.difference):
                continue
            style = VERDICT_STYLE.get(r.decision, VERDICT_STYLE["inconclusive"])
            if np.isfinite(r.sim_low) and np.isfinite(r.sim_high):
                ax.plot([r.sim_low, r.sim_high], [y[r.other]] * 2, color=style["color"], linewidth=1.4, gid="interval")
            ax.plot([r.difference], [y[r.other]], linestyle="none", markersize=5, **style)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"{display_name(method)} − baseline ({unit})", fontsize=8)
        ax.grid(True, axis="x", alpha=0.3, linewidth=0.6)
        ax.spines[["top", "right"]].set_visible(False)
    other_budget = {}  # a baseline decided in a family of another training budget: its budget beside it
    for r in points.itertuples():
        if BUDGET_MARK in str(r.family):
            other_budget[r.other] = str(r.family).split(BUDGET_MARK, 1)[1].split(" (", 1)[0]
    axes[0].set_yticks(list(y.values()), [display_name(name) + (f" ({other_budget[name]})" if name in other_budget else "")
                                          for name in y], fontsize=8)
    axes[0].set_ylim(-0.7, len(order) - 0.3)
    handles = [Line2D([], [], linestyle="-", label=verdict, **style) for verdict, style in VERDICT_STYLE.items()]
    handles.append(Line2D([], [], color="0.9", linewidth=6, label=f"ROPE ±{rope:g}"))
    title = textwrap.fill(
        f"{display_name(method)} against every baseline, {setting_label(model, dataset)}: differences with the "
        "simultaneous intervals that decided" + ("; controls below the dashed line" if controls else "")
        + ("; (n epochs): another training budget, decided in its own family" if other_budget else ""),
        int(fig.get_size_inches()[0] * 12))
    fig.suptitle(title, fontsize=9)
    top = 0.45 + 0.16 * (title.count("\n") + 1)

    def layout(legend_h: float) -> None:
        width, fig_height = fig.get_size_inches()
        fig.subplots_adjust(left=left / width, right=1 - 0.2 / width, top=1 - top / fig_height,
                            bottom=(legend_h + 0.55) / fig_height, wspace=0.08)

    fit_legend(fig, handles, layout)
    return fig
