"""Figures of a ranking across settings (plotting only; numbers from `shrinkbench.analysis.across`):

- `cd_figure`: Demsar's critical-difference diagram: the methods' mean ranks on one axis
  (1 = best, at the left), a bar of length CD, and thick lines joining the groups of methods
  whose mean ranks differ by less than CD (Nemenyi cannot tell them apart).
- `distribution_figure`: the interquartile mean of each method with its stratified-bootstrap
  interval, and the performance profiles (fraction of setting x unit scores above each
  threshold) with their bands, as in rliable.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from shrinkbench.analysis.across import AcrossResult
from shrinkbench.analysis.palette import method_styles


def cliques(ranks: np.ndarray, cd: float) -> list[tuple[int, int]]:
    """Maximal runs [i, j] of rank-sorted methods with ranks[j] - ranks[i] < cd (j > i)."""
    spans = []
    for i in range(len(ranks)):
        j = i
        while j + 1 < len(ranks) and ranks[j + 1] - ranks[i] < cd:
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in spans):
            spans.append((i, j))
    return spans


def cd_figure(result: AcrossResult) -> Figure:
    """The critical-difference diagram of `result` (see the module docstring)."""
    methods, ranks, k = result.methods, result.ranks, len(result.methods)
    half = (k + 1) // 2
    fig = Figure(figsize=(7.5, 1.6 + 0.32 * half))
    ax = fig.add_axes((0.03, 0.02, 0.94, 0.96))
    lo, hi = 1, k
    ax.set_xlim(lo - 0.15 * (k - 1) - 1.4, hi + 0.15 * (k - 1) + 1.4)
    top = 0.0
    ax.hlines(top, lo, hi, color="black", lw=1.2)
    for r in range(lo, hi + 1):
        ax.vlines(r, top, top + 0.12, color="black", lw=1)
        ax.text(r, top + 0.18, str(r), ha="center", va="bottom", fontsize=9)
    cd = result.critical_difference
    if lo + cd <= hi:
        ax.hlines(top + 0.75, lo, lo + cd, color="black", lw=1.5)
        ax.vlines([lo, lo + cd], top + 0.68, top + 0.82, color="black", lw=1.5)
        ax.text(lo + cd / 2, top + 0.88, f"CD = {cd:.2f} (Nemenyi, α = {result.options.alpha:g})",
                ha="center", va="bottom", fontsize=8)
    else:
        ax.text(lo, top + 0.75, f"CD = {cd:.2f} (Nemenyi, α = {result.options.alpha:g}): longer than the axis",
                ha="left", va="bottom", fontsize=8)
    styles = method_styles(methods)
    step = 0.32
    for i, (name, rank) in enumerate(zip(methods, ranks)):
        left = i < half
        row = (i if left else k - 1 - i) + 1
        y = top - 0.35 - step * row
        x_text = ax.get_xlim()[0] + 0.1 if left else ax.get_xlim()[1] - 0.1
        color = styles[name]["color"]
        ax.plot([rank, rank, x_text], [top, y, y], color=color, lw=1.3, linestyle=styles[name]["linestyle"])
        ax.plot(rank, top, marker=styles[name]["marker"], color=color, ms=5)
        ax.text(x_text, y + 0.03, f"{name} ({rank:.2f})", ha="left" if left else "right", va="bottom",
                fontsize=8, color="black")
    for n, (i, j) in enumerate(cliques(ranks, cd)):
        y = top - 0.12 - 0.09 * (n % 3)
        ax.hlines(y, ranks[i] - 0.03, ranks[j] + 0.03, color="black", lw=3.5)
    ax.set_ylim(top - 0.5 - step * half, top + 1.15)
    ax.axis("off")
    return fig


def distribution_figure(result: AcrossResult) -> Figure:
    """IQM with intervals (left) and performance profiles with bands (right)."""
    if result.iqm is None or result.profile is None:
        raise ValueError("this ranking has no IQM or performance profile (fewer than two units per setting)")
    styles = method_styles(result.methods)
    fig = Figure(figsize=(10, 3.8))
    left = fig.add_axes((0.25, 0.14, 0.28, 0.76))
    right = fig.add_axes((0.62, 0.14, 0.36, 0.76))
    frame, profile = result.iqm, result.profile
    what = profile["what"]
    unit = "accuracy points" if result.options.metric.startswith("top") else result.options.metric
    y = np.arange(len(frame))[::-1]
    for yi, row in zip(y, frame.itertuples()):
        color = styles[row.method]["color"]
        left.hlines(yi, row.low, row.high, color=color, lw=6, alpha=0.45)
        left.plot(row.iqm, yi, marker="|", color="black", ms=14, mew=2)
    left.set_yticks(y)
    left.set_yticklabels(frame["method"], fontsize=8)
    left.set_xlabel(f"IQM of the {what} ({unit})", fontsize=9)
    left.set_title(f"IQM, {result.options.confidence:.0%} stratified bootstrap", fontsize=9)
    left.grid(axis="x", alpha=0.3)
    x = profile["thresholds"]
    for j, name in enumerate(result.methods):
        st = styles[name]
        right.plot(x, profile["fraction"][:, j], color=st["color"], linestyle=st["linestyle"], lw=1.6, label=name,
                   drawstyle="steps-post")
        right.fill_between(x, profile["low"][:, j], profile["high"][:, j], color=st["color"], alpha=0.15, lw=0,
                           step="post")
    if np.ptp(x) > 20:  # a wide range (random pruning far below the rest): linear within ±1, log beyond
        right.set_xscale("symlog", linthresh=1.0)
    better = "above" if profile["higher_is_better"] else "below"
    right.set_xlabel(f"threshold τ on the {what} ({unit})", fontsize=9)
    right.set_ylabel(f"fraction of setting x unit scores {better} τ", fontsize=9)
    right.set_ylim(-0.02, 1.02)
    right.set_title(f"Performance profiles ({profile['units']} setting x unit scores)", fontsize=9)
    right.grid(alpha=0.3)
    right.legend(fontsize=7, loc="lower left" if profile["higher_is_better"] else "lower right", frameon=True)
    return fig
