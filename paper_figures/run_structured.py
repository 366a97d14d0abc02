"""Measured against theoretical speedup, from our own runs: channel pruning compacted into a
smaller network against weight masks on dense kernels, and the paper's global-versus-
layerwise claim re-tested at a fixed *measured* speedup.

The paper's warnings tested here: FLOPs (MACs) do not tell latency; a pruned model that keeps
dense shapes is not faster. And its finding that layerwise pruning wins at a fixed speedup,
here at the speedup measured on the machine rather than the theoretical one.

- weight masks measure no speedup: each weight-granularity method's measured speedup against
  the dense model's own (dense timed against a fresh dense model), TOST within ±0.1;
- channel pruning measures less than it saves in MACs: measured minus theoretical speedup of
  every channel operating point, paired over units;
- global against layerwise at a fixed measured speedup: the curve-level test of top-1 along
  the measured speedup (`shrinkbench.analysis.matched.compare_curve_levels`), one family.
Each claim is adjusted as one family of the tests it draws on.

    python paper_figures/run_structured.py [--store DIR] [--out DIR] [--rerun]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
import _findings  # noqa: E402
import _runs  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from shrinkbench.analysis.curves import draw_facet, strategy_styles  # noqa: E402
from shrinkbench.analysis.decision import adjust_family, compare_values  # noqa: E402
from shrinkbench.analysis.load import load_table  # noqa: E402
from shrinkbench.analysis.matched import compare_curve_levels  # noqa: E402
from shrinkbench.analysis.options import AnalysisOptions  # noqa: E402
from shrinkbench.analysis.render import fmt  # noqa: E402
from shrinkbench.analysis.runs import run_table, setting_label  # noqa: E402
from shrinkbench.analysis.schema import DENSE_STRATEGY  # noqa: E402
from shrinkbench.analysis.units import unit_values  # noqa: E402

FIGURE = "structured"
OPTIONS = AnalysisOptions()
SPEED = AnalysisOptions(metric="measured_speedup_b64", split="none", rope=0.1)
"""Measured speedup as the response: equivalence within ±0.1 (a 10% timing difference)."""
CHANNEL_PAIRS = (("global_l1", "layerwise_l1"), ("global_taylor", "layerwise_taylor"))


def is_channel(name: str) -> bool:
    return "[channel" in name


def draw(points: pd.DataFrame, runs: pd.DataFrame, title: str):
    """Left: theoretical vs measured speedup; right: top-1 vs measured speedup."""
    fig, axes = plt.subplots(1, 2, figsize=(14, 6))
    styles = strategy_styles(set(points["strategy"]) - {DENSE_STRATEGY})
    for strategy, sub in points[points["strategy"] != DENSE_STRATEGY].groupby("strategy"):
        axes[0].plot(sub["theoretical_speedup"], sub["measured_speedup"], linestyle="none",
                     marker=styles[strategy]["marker"], color=styles[strategy]["color"], label=strategy)
    top = float(points[["theoretical_speedup", "measured_speedup"]].max().max()) * 1.15
    axes[0].plot([1, top], [1, top], color="0.5", linestyle="--", linewidth=1, label="measured = theoretical")
    axes[0].axhline(1.0, color="black", linestyle=":", linewidth=1, label="no speedup")
    _common.ratio_axis(axes[0], "theoretical speedup (MACs / nonzero MACs)")
    axes[0].set_yscale("log", base=2)
    axes[0].yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}x"))
    axes[0].set_ylabel("measured speedup, batch 64 (dense / pruned latency)")
    axes[0].legend(fontsize=7, frameon=False)
    axes[0].set_title("what the MACs promise and what the machine gives", fontsize=10)
    draw_facet(axes[1], points, runs, "measured speedup", False, styles)
    axes[1].set_ylabel("top-1 accuracy, test (%)")
    axes[1].set_title("accuracy at the speedup measured", fontsize=10)
    fig.suptitle(f"{title}\nmean of the units (base models), dense model timed in alternation", fontsize=11)
    fig.tight_layout()
    return fig


def speed_runs(data: _runs.FigureData, run_ids) -> pd.DataFrame:
    """The run table with measured speedup (batch 64) as the response."""
    table = load_table(data.store).table
    return run_table(table[table["run_id"].isin(list(run_ids))], SPEED)


def findings(runs: pd.DataFrame, model: str, dataset: str, data: _runs.FigureData) -> tuple[str, str]:
    speed = speed_runs(data, runs["run_id"])
    dense = speed[speed["strategy"] == DENSE_STRATEGY]
    lines = [f"Setting: {setting_label(model, dataset)}. {data.summary()}.", ""]
    # weight masks: measured speedup equivalent to the dense model's own
    rows = []
    for (strategy, compression), point in speed[(speed["strategy"] != DENSE_STRATEGY)
                                                & ~speed["strategy"].map(is_channel)].groupby(["strategy", "compression"]):
        stats = compare_values(unit_values(point), unit_values(dense), SPEED)
        rows.append({"compression": compression, "method": strategy, "baseline": "dense", **stats,
                     "replication": point["replication"].iloc[0], "family": ""})
    masks = _findings.claim_rows([pd.DataFrame(rows)], "weight masks give no measured speedup", SPEED)
    held = len(masks) and (masks["decision"] == "equivalent").all()
    lines.append(f"- **Weight masks give no measured speedup on dense kernels — claim "
                 f"{'SUPPORTED' if held else 'NOT SHOWN'}** (measured speedup against the dense model's own, "
                 f"equivalence within ±{SPEED.rope:g}; claim family: {_findings.family_text(masks)}): "
                 + "; ".join(f"{r.method} at speedup target {r.compression:g}: {r.mean_method:.3f} vs "
                             f"{r.mean_baseline:.3f}, {r.decision}" for r in masks.itertuples()) + ".")
    # channel pruning: measured minus theoretical
    rows = []
    channel = speed[speed["strategy"].map(is_channel)]
    for (strategy, compression), point in channel.groupby(["strategy", "compression"]):
        measured = unit_values(point)
        theory = point.groupby("unit")["theoretical_speedup"].mean()
        stats = compare_values(measured, theory, SPEED)
        rows.append({"compression": compression, "method": strategy, "baseline": "theoretical", **stats,
                     "replication": point["replication"].iloc[0], "family": ""})
    gap = _findings.claim_rows([pd.DataFrame(rows)], "channel pruning measures less speedup than it saves in MACs",
                               SPEED)
    short = gap[gap["decision"] == "worse"]
    lines.append(f"- **Channel pruning measures less speedup than it saves in MACs — claim "
                 f"{_findings.verdict(gap, -1).upper()}** (measured − theoretical speedup, paired over base models; "
                 f"claim family: {_findings.family_text(gap)}): significantly short at {len(short)} of "
                 f"{len(gap)} operating points; measured / theoretical ranges "
                 f"{fmt((gap['mean_method'] / gap['mean_baseline']).min())}–"
                 f"{fmt((gap['mean_method'] / gap['mean_baseline']).max())}.")
    # global vs layerwise at a fixed measured speedup (top-1)
    names = set(runs["strategy"])
    pairs = [(g, lw) for g, lw in ((f"{a} [channel, speedup target]", f"{b} [channel, speedup target]")
                                   for a, b in CHANNEL_PAIRS) if g in names and lw in names]
    levels = compare_curve_levels(runs, pairs, ["measured_speedup"], OPTIONS,
                                  family_label=lambda label: f"claim: global vs layerwise at fixed measured speedup, {label}")
    for row in levels.itertuples():
        verdict = _findings.verdict(levels[levels["method"] == row.method], -1)
        lines.append(f"- **{row.method.split(' [')[0]} vs {row.baseline.split(' [')[0]} at a fixed measured speedup — "
                     f"layerwise more accurate: claim {verdict.upper()}**: {row.method} − {row.baseline} = "
                     f"{_findings.level_evidence(row, 'measured speedups')}.")
    for method, baseline in pairs:
        if not ((levels["method"] == method) & (levels["baseline"] == baseline)).any():
            lines.append(f"- **{method.split(' [')[0]} vs {baseline.split(' [')[0]} at a fixed measured speedup — "
                         "not testable**: their pruned curves share no range of measured speedup (the dense point "
                         "at 1x is no data for a curve level), so no speedup is measured for both.")
    lines += ["", reading(masks, gap, levels)]
    details = [_findings.options_line(OPTIONS), "",
               _findings.markdown_table(masks, "Weight masks: measured speedup against the dense model's own",
                                        "compression", "Speedup target"),
               _findings.markdown_table(gap, "Channel pruning: measured against theoretical speedup",
                                        "compression", "Speedup target")]
    return "\n".join(lines), "\n".join(details)


def reading(masks: pd.DataFrame, gap: pd.DataFrame, levels: pd.DataFrame) -> str:
    """The interpretation of the verdicts, generated from them."""
    parts = []
    if len(masks):
        parts.append(f"Masked weights run as fast as the dense model (measured speedups "
                     f"{fmt(masks['mean_method'].min())}–{fmt(masks['mean_method'].max())}), whatever their theoretical "
                     "speedup.")
    if len(gap):
        ratio = gap["mean_method"] / gap["mean_baseline"]
        parts.append(f"Compacted channel-pruned models are really faster, {fmt(gap['mean_method'].min())}–"
                     f"{fmt(gap['mean_method'].max())}x at batch 64, but each reaches only {fmt(ratio.min())}–"
                     f"{fmt(ratio.max())} of its theoretical speedup.")
    for row in levels.itertuples():
        parts.append(f"At a fixed measured speedup, {row.method.split(' [')[0]} is "
                     f"{'ahead of' if row.difference > 0 else 'behind'} {row.baseline.split(' [')[0]} by "
                     f"{abs(row.difference):.2f} points on average ({row.decision}).")
    return "**Reading (generated).** " + " ".join(parts)


def make_figure(data: _runs.FigureData, out: Path, formats=_common.FORMATS) -> _runs.FigureResult:
    return _runs.per_setting(data, out, formats, OPTIONS, "Structured pruning, measured", draw, findings)


def main(argv=None) -> int:
    return _runs.main(FIGURE, __doc__.splitlines()[0], make_figure, argv)


if __name__ == "__main__":
    sys.exit(main())
