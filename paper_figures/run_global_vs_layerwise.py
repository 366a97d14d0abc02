"""Global versus layerwise pruning, magnitude versus gradient scores, from our own runs:
top-1 accuracy (and its change against the dense model of the same base weights) against
the compression ratio and against the theoretical speedup, mean over seeds with Student-t
bands and every seed's run drawn as a point.

The paper's claim: global pruning is more accurate at a fixed model size (compression),
layerwise pruning at a fixed theoretical speedup. Tested per criterion (magnitude,
gradient): global against layerwise at each target compression (`analysis.compare`: paired
t over seeds, one family over the compressions), and at matched theoretical speedups, where each
seed's curve is interpolated monotonically in log2 speedup (`analysis.matched`, one family
over the speedups); plus the mean difference over the shared log2 range of each axis.

    python paper_figures/run_global_vs_layerwise.py [--store DIR] [--out DIR] [--rerun]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
import _findings  # noqa: E402
import _plots  # noqa: E402
import _runs  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from shrinkbench.analysis.compare import compare  # noqa: E402
from shrinkbench.analysis.curves import draw_facet, strategy_styles  # noqa: E402
from shrinkbench.analysis.matched import compare_at_x, compare_curve_levels  # noqa: E402
from shrinkbench.analysis.options import AnalysisOptions  # noqa: E402
from shrinkbench.analysis.render import fmt  # noqa: E402
from shrinkbench.analysis.runs import setting_label  # noqa: E402
from shrinkbench.analysis.schema import DENSE_STRATEGY  # noqa: E402

FIGURE = "global_vs_layerwise"
PAIRS = (("global_magnitude", "layerwise_magnitude"), ("global_gradient", "layerwise_gradient"))
"""(global, layerwise) per criterion; the first of each pair is the 'method' in the tests."""
OPTIONS = AnalysisOptions()
AXES = {"size": "compression_ratio", "speedup": "theoretical_speedup"}


def pairs_present(runs: pd.DataFrame) -> list[tuple[str, str]]:
    have = set(runs["strategy"])
    return [p for p in PAIRS if set(p) <= have]


def draw(points: pd.DataFrame, runs: pd.DataFrame, title: str):
    """2 x 2 panels: rows absolute top-1 / change vs dense; columns compression / speedup."""
    styles = strategy_styles(set(points["strategy"]) - {DENSE_STRATEGY})
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.6))
    for row, delta in enumerate((False, True)):
        for col, axis in enumerate(("compression", "speedup")):
            ax = axes[row, col]
            draw_facet(ax, points, runs, axis, delta, styles)
            if not delta:
                note = _plots.cut_axis(ax, points, points.loc[points["strategy"] == DENSE_STRATEGY, "mean"].iloc[0])
                ax.set_title(note, fontsize=7, loc="left")  # above the panel, never over its data
            ax.set_ylabel("change in top-1 vs dense (points)" if delta else "top-1 accuracy, test (%)")
    n = int(points.loc[points["strategy"] != DENSE_STRATEGY, "n"].min())
    axes[0, 0].set_title("at a fixed model size", fontsize=10)
    axes[0, 1].set_title("at a fixed theoretical speedup", fontsize=10)
    fig.legend(handles=_plots.legend_handles(styles), loc="lower center", ncols=5, frameon=False, fontsize=9,
               bbox_to_anchor=(0.5, -0.01))
    fig.suptitle(f"{title}\nmean of n = {n} seeds (each its own base model), band = 95% Student-t "
                 "interval, dots = single runs", fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def findings(runs: pd.DataFrame, model: str, dataset: str, data: _runs.FigureData) -> tuple[str, str]:
    """(verdicts, tables) of one setting. The verdict on each claim is its primary test: the
    mean difference of the whole curves (`compare_curve_levels`, one family holding every
    criterion x axis); the tests at each compression and at each matched speedup follow."""
    pairs = pairs_present(runs)
    levels = compare_curve_levels(runs, pairs, list(AXES.values()), OPTIONS)
    at_size = compare(runs, pairs, OPTIONS, np.random.default_rng(OPTIONS.seed)).comparisons
    at_speed = compare_at_x(runs, pairs, AXES["speedup"], OPTIONS)
    lines = [f"Setting: {setting_label(model, dataset)}. {data.summary()}.", ""]
    verdicts = {}
    for method, baseline in pairs:
        criterion = method.split("_", 1)[1]
        for axis, claim, expected, points, x_column, unit in (
                ("size", "global more accurate than layerwise at the same compression", +1, at_size,
                 "compression", "×"),
                ("speedup", "layerwise more accurate than global at the same theoretical speedup", -1, at_speed,
                 "x", "× speedup")):
            level = levels[(levels["method"] == method) & (levels["x_metric"] == AXES[axis])]
            pointwise = points[(points["method"] == method) & (points["baseline"] == baseline)]
            name = "model size" if axis == "size" else "speedup"
            if level.empty:
                lines.append(f"- **{criterion}, fixed {name}**: the curves do not overlap; no test.")
                continue
            verdicts[(criterion, axis)] = (_findings.verdict(level, expected), level.iloc[0], pointwise)
            lines.append(f"- **{criterion}, fixed {name} — claim {_findings.verdict(level, expected).upper()}** "
                         f"({claim}): {method} − {baseline} = {_findings.level_evidence(level.iloc[0], 'compressions' if axis == 'size' else 'speedups')}. "
                         f"Point by point, global is "
                         f"{_findings.summary_sentence(pointwise, expected, x_column, unit)}.")
    speedups = runs[runs["strategy"] != DENSE_STRATEGY].groupby("strategy")["theoretical_speedup"].agg(["min", "max"])
    lines += ["", "Theoretical speedup reached (lowest–highest over the pruned runs): " + "; ".join(
        f"{s} {fmt(r['min'])}–{fmt(r['max'])}×" for s, r in speedups.iterrows()) + ".", "",
              reading(verdicts, speedups)]
    details = [_findings.options_line(OPTIONS) + " Curve levels: each seed's curve is interpolated with PCHIP "
               "in log2 x (its dense run included) and averaged over the range both methods cover, never "
               "extrapolated.", "",
               _findings.markdown_table(at_size, "Global vs layerwise at the same target compression"),
               _findings.markdown_table(at_speed, "Global vs layerwise at the same theoretical speedup (interpolated)",
                                        "x", "Speedup", "×")]
    return "\n".join(lines), "\n".join(details)


def reading(verdicts: dict, speedups: pd.DataFrame) -> str:
    """The interpretation of the verdicts, generated from them (so it cannot outrun them)."""
    parts = []
    for axis, name, favoured in (("size", "a fixed model size", "global"),
                                 ("speedup", "a fixed theoretical speedup", "layerwise")):
        chosen = {c: v for (c, a), v in verdicts.items() if a == axis}
        if not chosen:
            continue
        held = [c for c, (v, _, _) in chosen.items() if v == "supported"]
        rest = {c: (v, row) for c, (v, row, _) in chosen.items() if v != "supported"}
        text = f"At {name} the paper's claim ({favoured} more accurate) "
        text += f"holds over the whole curve for {_findings.join(held)}" if held else "is not shown for either criterion"
        if rest:
            text += ("; " if held else ": ") + _findings.join(
                f"for {c} the mean curve difference favours {'global' if row.difference > 0 else 'layerwise'} "
                f"({row.difference:+.2f} points, {v}; minimum detectable effect {fmt(row.mde)} points with "
                f"n = {int(row.n_pairs or row.n_method)})" for c, (v, row) in rest.items())
        column = "compression" if axis == "size" else "x"
        ahead = sorted({x for _, _, rows in chosen.values() for x in rows.loc[rows["decision"] == "better", column]})
        behind = sorted({x for _, _, rows in chosen.values() for x in rows.loc[rows["decision"] == "worse", column]})
        where = lambda xs: ", ".join(_findings.x_text(x) for x in xs) or "no point"  # noqa: E731
        text += f". Point by point, global is significantly ahead at {where(ahead)} and behind at {where(behind)}."
        parts.append(text)
    global_top = speedups.loc[[s for s in speedups.index if s.startswith("global")], "max"]
    layer_top = speedups.loc[[s for s in speedups.index if s.startswith("layerwise")], "max"]
    if len(global_top) and len(layer_top):
        parts.append(f"Over the same compressions global pruning reaches at most {fmt(global_top.max())}× theoretical "
                     f"speedup and layerwise pruning up to {fmt(layer_top.max())}×.")
    return "**Reading (generated).** " + " ".join(parts)


def make_figure(data: _runs.FigureData, out: Path, formats=_common.FORMATS) -> _runs.FigureResult:
    return _runs.per_setting(data, out, formats, OPTIONS, "Global vs layerwise pruning", draw, findings)


def main(argv=None) -> int:
    return _runs.main(FIGURE, __doc__.splitlines()[0], make_figure, argv)


if __name__ == "__main__":
    sys.exit(main())
