"""Tradeoff-curve figures: accuracy (or its difference to dense) against compression,
theoretical speedup or measured latency, one facet per model x dataset.

Plotting only: the numbers come from `analysis.bands.curve_points` (already aggregated,
so drawing stays fast at any store size). Uses `matplotlib.figure.Figure` directly (no
pyplot, no global backend switch); files are written atomically.
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

from shrinkbench.analysis.background import submit
from shrinkbench.analysis.files import write_atomic
from shrinkbench.analysis.groups import display_name
from shrinkbench.analysis.palette import DENSE_COLOR, method_styles
from shrinkbench.analysis.runs import SETTING, setting_label
from shrinkbench.analysis.schema import DENSE_STRATEGY

AXES = {
    "compression": ("compression_ratio", 1.0, "Compression ratio (params / nonzero params)"),
    "speedup": ("theoretical_speedup", 1.0, "Theoretical speedup (MACs / nonzero MACs)"),
    "measured speedup": ("measured_speedup", 1.0, "Measured speedup, largest batch (dense latency / latency)"),
    "latency": ("latency_b1", 1e3, "Measured latency, batch 1 (ms)"),
}
MEASURED_AXES = ("latency", "measured speedup")
"""Axes whose x is measured per run (noisy, not monotone in compression): drawn as points
with interval bars instead of lines with bands."""


def strategy_styles(strategies) -> dict[str, dict]:
    """Colour, line style and marker per strategy, the same in every figure
    (`shrinkbench.analysis.palette`): colour by method, layerwise dashed."""
    return method_styles(strategies)


def _log2_axis(ax, values) -> None:
    """Log2 x axis; ticks at powers of two, or at ~5 plain values when the data span less
    than two octaves (measured latencies often do)."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if not finite.size:
        return
    lo, hi = finite.min(), finite.max()
    octaves = math.log2(hi / lo) if hi > lo else 0.0
    pad = 2 ** (0.08 * max(octaves, 1.0))
    ax.set_xlim(lo / pad, hi * pad)
    ax.xaxis.set_major_locator(LogLocator(base=2) if octaves >= 2 else MaxNLocator(nbins=5))


def draw_facet(ax, points: pd.DataFrame, runs: pd.DataFrame | None, axis: str, delta: bool,
               styles: dict[str, dict]) -> None:
    """One model x dataset facet: a line with band per strategy, the dense reference."""
    column, scale, label = AXES[axis]
    prefix = "delta_" if delta else ""
    mean_col = "delta_mean" if delta else "mean"
    dense = points[points["strategy"] == DENSE_STRATEGY]
    xs = [points[column] * scale]
    for strategy, curve in points[points["strategy"] != DENSE_STRATEGY].groupby("strategy"):
        curve = curve.dropna(subset=[column, mean_col]).sort_values(column)
        if curve.empty:
            continue
        style = styles[strategy]
        x = curve[column].to_numpy(float) * scale
        if axis in MEASURED_AXES:  # a measured x is not ordered by compression: points, no line
            y = curve[mean_col].to_numpy(float)
            err = np.vstack([y - curve[f"{prefix}low"].to_numpy(float), curve[f"{prefix}high"].to_numpy(float) - y])
            xerr = None
            if f"{column}_min" in curve.columns:  # the measured x's own spread: its range over units
                xerr = np.vstack([x - curve[f"{column}_min"].to_numpy(float) * scale,
                                  curve[f"{column}_max"].to_numpy(float) * scale - x])
                xerr = np.clip(np.nan_to_num(xerr, nan=0.0), 0.0, None)  # rounding; one unit: no bar
            ax.errorbar(x, y, yerr=err, xerr=xerr, color=style["color"], marker=style["marker"], markersize=4,
                        linestyle="none", elinewidth=1.0, capsize=2, alpha=0.85)
        else:
            ax.fill_between(x, curve[f"{prefix}low"], curve[f"{prefix}high"], color=style["color"],
                            alpha=0.15, linewidth=0)
            ax.plot(x, curve[mean_col], color=style["color"], linestyle=style["linestyle"],
                    marker=style["marker"], markersize=4, linewidth=1.6)
        if runs is not None:
            seeds = runs[runs["strategy"] == strategy].dropna(subset=[column])
            ax.scatter(seeds[column] * scale, seeds["delta" if delta else "y"], s=7,
                       color=style["color"], alpha=0.35, linewidths=0)
    if delta:
        ax.axhline(0.0, color=DENSE_COLOR, linewidth=1.0, linestyle=":")
    elif not dense.empty:
        row = dense.iloc[0]
        ax.axhspan(row["low"], row["high"], color=DENSE_COLOR, alpha=0.07, linewidth=0)
        ax.axhline(row["mean"], color=DENSE_COLOR, linewidth=1.0, linestyle=":")
        if math.isfinite(row[column]):
            ax.plot([row[column] * scale], [row["mean"]], marker="*", markersize=10, color=DENSE_COLOR,
                    linestyle="none")
    _log2_axis(ax, pd.concat(xs))
    ax.set_xlabel(label)
    ax.grid(True, which="major", alpha=0.3, linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)


CUT_BELOW_DENSE = 12.0
"""Accuracy panels show at most this many points below the dense mean (below 0 on change
panels); the operating points below the cut are named in the panel, so one collapsed method
does not squeeze the others into a thin band."""


def cut_axis(ax, points: pd.DataFrame, reference: float, mean_col: str = "mean", listed: int = 4) -> str:
    """Limit a panel to `CUT_BELOW_DENSE` below `reference` (the dense mean, or 0 for the
    change to dense) when a curve's mean lies lower; returns the line naming the points cut
    off ('' if none), which the caller sets OUTSIDE the data area (under the panel's title)."""
    floor = reference - CUT_BELOW_DENSE
    pruned = points[points["strategy"] != DENSE_STRATEGY]
    below = pruned[pruned[mean_col] < floor]
    if below.empty:
        return ""
    ax.set_ylim(floor, ax.get_ylim()[1])
    names = [f"{display_name(r.strategy)} {r.compression:g}× ({getattr(r, mean_col):.1f})" for r in below.itertuples()]
    if len(names) > listed:
        names = names[:listed] + [f"{len(names) - listed} more"]
    return textwrap.fill(f"below the cut at {floor:.0f}: " + ", ".join(names), 70)


def _fixed_layout(fig: Figure, nrows: int, ncols: int, legend_h: float, title_h: float = 0.0) -> None:
    """Margins in inches, set once: far cheaper than a constrained layout on big grids.
    `title_h`: extra room above each panel for the lines under its title."""
    width, height = fig.get_size_inches()
    left, right, top, bottom = 0.75, 0.2, 0.8 + title_h, legend_h + 0.55
    gap_w, gap_h = 0.8, 0.85 + title_h
    axis_w = (width - left - right - (ncols - 1) * gap_w) / ncols
    axis_h = (height - top - bottom - (nrows - 1) * gap_h) / nrows
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height,
                        bottom=bottom / height, wspace=gap_w / axis_w, hspace=gap_h / axis_h)


def curve_figure(points: pd.DataFrame, axis: str, delta: bool, metric_label: str, band: str,
                 runs: pd.DataFrame | None = None) -> Figure:
    """A figure with one facet per model x dataset. `runs` adds per-seed points."""
    keys = points[SETTING].drop_duplicates().sort_values(SETTING).itertuples(index=False)
    keys = [tuple(k) for k in keys]
    ncols = min(3, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    width = max(4.4 * ncols, 7.0)
    fig = Figure(figsize=(width, 3.3 * nrows + 1.1))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    styles = strategy_styles(set(points["strategy"]) - {DENSE_STRATEGY})
    notes = []
    for ax, (model, dataset) in zip(axes, keys):
        mask = (points["model"] == model) & (points["dataset"] == dataset)
        seeds = None
        if runs is not None:
            seeds = runs[(runs["model"] == model) & (runs["dataset"] == dataset)]
        draw_facet(ax, points[mask], seeds, axis, delta, styles)
        note = ""
        if delta:
            note = cut_axis(ax, points[mask], 0.0, "delta_mean")
        else:
            dense = points[mask & (points["strategy"] == DENSE_STRATEGY)]
            if len(dense):
                note = cut_axis(ax, points[mask], float(dense["mean"].iloc[0]))
        notes.append(note)
        title = setting_label(model, dataset) + (f"\n{note}" if note else "")
        ax.set_title(title, fontsize=10 if not note else 8, y=1.01)  # fixed y: no auto placement
        ax.set_ylabel(f"Δ {metric_label} vs dense (points)" if delta else f"{metric_label} (%)")
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=s["color"], linestyle=s["linestyle"], marker=s["marker"],
                      markersize=4, label=display_name(name)) for name, s in styles.items()]
    handles.append(Line2D([], [], color=DENSE_COLOR, linestyle=":", marker=None if delta else "*",
                          label="dense (same base weights)" if delta else "dense"))
    title_lines = max((note.count("\n") + 1 for note in notes if note), default=0)
    fit_legend(fig, handles, lambda legend_h: _fixed_layout(fig, nrows, ncols, legend_h, 0.14 * title_lines))
    shown = "vertical bars" if axis in MEASURED_AXES else "band"
    extra = ", horizontal bars = range over units" if axis in MEASURED_AXES else ""
    fig.suptitle(f"{metric_label}{' difference to dense' if delta else ''} vs {axis}\n"
                 f"mean over seeds, {shown} = {band}{extra}", fontsize=10)
    return fig


def fit_legend(fig: Figure, handles, layout, fontsize: float = 8):
    """The figure's legend in a band at its bottom, INSIDE the canvas: as many columns as fit
    the figure's width (measured, not guessed), the figure made taller where the band needs
    it; `layout(legend_height_inches)` then lays out the panels above it."""
    canvas = FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    legend = None
    for ncols in range(min(len(handles), 5), 0, -1):
        legend = fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.01), ncols=ncols,
                            frameon=False, fontsize=fontsize)
        if legend.get_window_extent(renderer).width <= 0.97 * fig.bbox.width or ncols == 1:
            break
        legend.remove()
    needed = legend.get_window_extent(renderer).height / fig.dpi + 0.1
    width, height = fig.get_size_inches()
    fig.set_size_inches(width, height + needed)
    layout(needed)
    return legend


def speedup_gap_figure(points: pd.DataFrame, column: str = "measured_speedup") -> Figure:
    """Theoretical against measured speedup, one facet per model x dataset: each method's
    operating points (unit means, bars = the measured speedup's interval over units when the
    points carry it), the line y = x where the MACs saved would all be time saved, and y = 1
    where nothing is. A masked model on dense kernels sits at y = 1 whatever its x."""
    keys = [tuple(k) for k in points[SETTING].drop_duplicates().sort_values(SETTING).itertuples(index=False)]
    ncols = min(3, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    fig = Figure(figsize=(max(4.8 * ncols, 8.0), 4.2 * nrows + 1.0))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    styles = strategy_styles(set(points["strategy"]) - {DENSE_STRATEGY})
    for ax, (model, dataset) in zip(axes, keys):
        sub = points[(points["model"] == model) & (points["dataset"] == dataset)].dropna(
            subset=["theoretical_speedup", column])
        top = max(2.0, float(np.nanmax(sub[["theoretical_speedup", column]].to_numpy(float))) * 1.15) if len(sub) else 2.0
        ax.plot([1, top], [1, top], color="0.5", linestyle="--", linewidth=1.0)
        ax.axhline(1.0, color=DENSE_COLOR, linestyle=":", linewidth=1.0)
        for strategy, curve in sub[sub["strategy"] != DENSE_STRATEGY].groupby("strategy"):
            style = styles[strategy]
            curve = curve.sort_values("theoretical_speedup")
            ax.plot(curve["theoretical_speedup"], curve[column], color=style["color"], linestyle="none",
                    marker=style["marker"], markersize=5)
        for ax_set in (ax.set_xscale, ax.set_yscale):
            ax_set("log", base=2)
        ax.set_xlim(0.9, top)
        ax.set_ylim(min(0.5, float(sub[column].min()) * 0.9) if len(sub) else 0.5, top)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_title(setting_label(model, dataset), fontsize=10, y=1.01)
        ax.set_xlabel("Theoretical speedup (MACs / nonzero MACs)")
        ax.set_ylabel("Measured speedup, largest batch measured")
        ax.grid(True, alpha=0.3, linewidth=0.6)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=s["color"], marker=s["marker"], linestyle="none", label=display_name(n))
               for n, s in styles.items()]
    handles += [Line2D([], [], color="0.5", linestyle="--", label="measured = theoretical"),
                Line2D([], [], color=DENSE_COLOR, linestyle=":", label="no speedup")]
    fit_legend(fig, handles, lambda legend_h: _fixed_layout(fig, nrows, ncols, legend_h))
    fig.suptitle("Theoretical vs measured speedup\nmean over units; the dense model timed in alternation", fontsize=10)
    return fig


def build_and_save_figure(build: Callable[[], Figure], stem: str | Path, formats=("png", "pdf"),
                          dpi: int = 150) -> list[Path]:
    """`save_figure(build(), stem, formats, dpi)`, the figure built where it is saved: inside
    `analysis.background.saving_in_background` a forked child builds and writes it while the
    report process goes on (`build` must not change anything the report computes afterwards:
    the figure functions draw from tables already computed and use no random generator)."""
    paths = [Path(f"{stem}.{fmt}") for fmt in formats]

    def write() -> None:
        fig = build()
        for path, fmt in zip(paths, formats):
            write_atomic(path, lambda tmp, fmt=fmt: fig.savefig(tmp, format=fmt, dpi=dpi))

    submit(write)
    return paths


def save_figure(fig: Figure, stem: str | Path, formats=("png", "pdf"), dpi: int = 150) -> list[Path]:
    """Write `stem.<fmt>` for each format atomically; returns the paths. Inside
    `analysis.background.saving_in_background` the files are written by a forked child and
    exist once the block has ended."""
    paths = [Path(f"{stem}.{fmt}") for fmt in formats]

    def write() -> None:
        for path, fmt in zip(paths, formats):
            write_atomic(path, lambda tmp, fmt=fmt: fig.savefig(tmp, format=fmt, dpi=dpi))

    submit(write)
    return paths
