"""Sparse against dense at equal size, on our own runs: a pruned large network against the dense
network of the same family made small by width, at exactly equal parameters and at exactly
equal MACs (the paper's section 3.3, "pruning vs. a smaller architecture", and its finding 4,
here measured rather than read from the corpus).

The suite prunes the large model to the parameter count, and (with a speedup target) to the
MACs, of each width-scaled dense variant in the zoo (`_w0.5`, `_w0.25`, `_w0.125`, exact
counts), and trains the variants with the same recipe and budget.

- the claim "a pruned large model beats the dense small model of the same size": pruned minus
  dense small at each width, strategy and measure of size (parameters, MACs), one family;
  the base models differ between the two architectures, so each test is Welch's on the base
  models (n = 3 each).

    python paper_figures/run_sparse_vs_dense.py [--store DIR] [--out DIR] [--rerun]
"""
from __future__ import annotations

import math
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

from shrinkbench.analysis.curves import strategy_styles  # noqa: E402
from shrinkbench.analysis.decision import compare_values  # noqa: E402
from shrinkbench.analysis.options import AnalysisOptions  # noqa: E402
from shrinkbench.analysis.render import fmt  # noqa: E402
from shrinkbench.analysis.runs import setting_label  # noqa: E402
from shrinkbench.analysis.schema import DENSE_STRATEGY  # noqa: E402
from shrinkbench.analysis.units import unit_values  # noqa: E402

FIGURE = "sparse_vs_dense"
OPTIONS = AnalysisOptions()
CLAIM = "a pruned large model beats the dense small model of the same size"
MEASURES = {"compression": ("params", "parameters"), "speedup": ("macs", "MACs")}
"""target -> (golden count, what is equal)."""


def golden(model: str):
    from shrinkbench.vision.models.catalog import GOLDEN

    return GOLDEN[model]


def width_of(model: str) -> str:
    return model.rsplit("_w", 1)[1] if "_w" in model else "1"


def matched_small(large: str, target: str, value: float, smalls: list[str]) -> str | None:
    """The dense small model whose size the operating point (target, value) equals."""
    count = MEASURES[target][0]
    for small in smalls:
        ratio = getattr(golden(large), count) / getattr(golden(small), count)
        if math.isclose(ratio, value, rel_tol=1e-5):
            return small
    return None


def comparison_rows(runs: pd.DataFrame, large: str, smalls: list[str]) -> pd.DataFrame:
    rows = []
    pruned = runs[(runs["model"] == large) & (runs["strategy"] != DENSE_STRATEGY)]
    for (strategy, target, value), point in pruned.groupby(["strategy", "target", "compression"]):
        small = matched_small(large, target, value, smalls)
        dense = runs[(runs["model"] == small) & (runs["strategy"] == DENSE_STRATEGY)] if small else pd.DataFrame()
        if small is None or dense.empty:
            continue
        stats = compare_values(unit_values(point), unit_values(dense), OPTIONS)
        rows.append({"compression": value, "method": f"{large} {strategy.split(' [')[0]}", "baseline": small,
                     "width": width_of(small), "equal": MEASURES[target][1], **stats,
                     "replication": point["replication"].iloc[0], "family": ""})
    return _findings.claim_rows([pd.DataFrame(rows)], CLAIM, OPTIONS)


def draw(runs: pd.DataFrame, large: str, smalls: list[str], title: str):
    """Top-1 against parameters (left) and nonzero MACs (right): the pruned large model's
    operating points by strategy, the dense small models, the dense large model."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), sharey=True)
    pruned = runs[(runs["model"] == large) & (runs["strategy"] != DENSE_STRATEGY)]
    styles = strategy_styles(set(pruned["strategy"].str.split(" [", regex=False).str[0]))
    for ax, (target, (count, label)) in zip(axes, MEASURES.items()):
        at = pruned[pruned["target"] == target]
        size_of = (lambda r: golden(large).params / r["compression_ratio"]) if target == "compression" else \
            (lambda r: golden(large).macs / r["theoretical_speedup"])
        for strategy, part in at.groupby(at["strategy"].str.split(" [", regex=False).str[0]):
            xs, means, lows, highs = [], [], [], []
            for value, point in sorted(part.groupby("compression"), key=lambda kv: -kv[0]):
                mean, low, high = _plots.unit_interval(unit_values(point), OPTIONS.confidence)
                xs.append(float(point.apply(size_of, axis=1).mean()))
                means.append(mean)
                lows.append(mean - low)
                highs.append(high - mean)
            ax.errorbar(xs, means, yerr=[lows, highs], marker=styles[strategy]["marker"], capsize=3,
                        color=styles[strategy]["color"], label=f"{large}, pruned by {strategy}")
        xs, means, lows, highs = [], [], [], []
        for model in [large] + smalls:
            dense = unit_values(runs[(runs["model"] == model) & (runs["strategy"] == DENSE_STRATEGY)])
            if not len(dense):
                continue
            mean, low, high = _plots.unit_interval(dense, OPTIONS.confidence)
            xs.append(getattr(golden(model), count))
            means.append(mean)
            lows.append(mean - low)
            highs.append(high - mean)
            ax.annotate(f"width {width_of(model)}", (xs[-1], mean), textcoords="offset points", xytext=(4, -12),
                        fontsize=7, color="0.3")
        ax.errorbar(xs, means, yerr=[lows, highs], color="black", marker="s", linestyle="--", capsize=3,
                    label="dense, scaled by width")
        ax.set_xscale("log")
        ax.set_xlabel(f"{label} (nonzero), log scale")
        ax.set_title(f"at equal {label}", fontsize=10)
        ax.set_ylabel("top-1 accuracy, test (%)")
    axes[0].legend(fontsize=7, frameon=False, loc="lower right")
    fig.suptitle(f"{title}\nmean of the base models with 95% t intervals; every model trained with the same recipe "
                 "and budget", fontsize=10)
    fig.tight_layout()
    return fig


def findings(rows: pd.DataFrame, large: str, dataset: str, data: _runs.FigureData) -> tuple[str, str]:
    lines = [f"Setting: {setting_label(large, dataset)} against its dense width variants. {data.summary()}.", ""]
    verdict = _findings.verdict(rows, +1)
    lines.append(f"- **A pruned large model beats the dense small model of the same size — claim {verdict.upper()}** "
                 f"(claim family: {_findings.family_text(rows)}; Welch's t on the base models of each architecture).")
    for equal, part in rows.groupby("equal", sort=False):
        lines.append(f"  - at equal {equal}: " + "; ".join(
            f"{r.method.split(' ', 1)[1]} vs width {r.width}: {r.difference:+.2f} points, {r.decision} "
            f"({_findings.tested(r)})" for r in part.itertuples()) + ".")
    lines += ["", reading(rows)]
    details = [_findings.options_line(OPTIONS), "",
               _findings.markdown_table(rows, "Pruned large against dense small at equal size", "compression",
                                        "Target")]
    return "\n".join(lines), "\n".join(details)


def reading(rows: pd.DataFrame) -> str:
    """The interpretation of the verdicts, generated from them."""
    if rows.empty:
        return "**Reading (generated).** No pruned operating point has a dense small model of its size."
    parts = []
    for equal, part in rows.groupby("equal", sort=False):
        better = part[part["decision"] == "better"]
        worse = part[part["decision"] == "worse"]
        parts.append(f"At equal {equal} the pruned model is {fmt(part['difference'].min())} to "
                     f"{fmt(part['difference'].max())} points from the dense small one: significantly ahead at "
                     f"{len(better)}, behind at {len(worse)} of {len(part)} points.")
    smallest = rows.loc[rows["width"].astype(float).idxmin()]
    parts.append(f"The gap is largest where the small model is smallest (width {smallest['width']}: "
                 f"{smallest['difference']:+.2f} points, {smallest['method'].split(' ', 1)[1]}, equal "
                 f"{smallest['equal']})." if abs(smallest["difference"]) >= rows["difference"].abs().max() - 1e-9
                 else "")
    return "**Reading (generated).** " + " ".join(p for p in parts if p)


def make_figure(data: _runs.FigureData, out: Path, formats=_common.FORMATS) -> _runs.FigureResult:
    """One figure per (large model, dataset); the dense small models are those of the suite's
    `dense_models` list."""
    runs = data.runs[data.runs["variant"] == next(iter(data.spec.variants))]
    smalls = list(data.spec.sweep.get("dense_models", []))
    keys = [(m, d) for m in data.spec.sweep["models"] for d in data.spec.sweep["datasets"]
            if ((runs["model"] == m) & (runs["dataset"] == d)).any()]
    files, texts = [], []
    for large, dataset in keys:
        sub = runs[runs["dataset"] == dataset]
        rows = comparison_rows(sub, large, smalls)
        heading = f"Sparse against dense at equal size, {large} on {dataset} (our runs, suite {data.spec.name})"
        stem = _plots.setting_stem(data.spec.name, large, dataset, len(keys) > 1)
        files += _common.save_figure(draw(sub, large, smalls, heading), out, stem, formats)
        texts.append(findings(rows, large, dataset, data))
    return _runs.finish(data.spec.name, out, files, texts)


def main(argv=None) -> int:
    return _runs.main(FIGURE, __doc__.splitlines()[0], make_figure, argv)


if __name__ == "__main__":
    sys.exit(main())
