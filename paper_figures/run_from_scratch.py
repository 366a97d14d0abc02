"""Pruned and fine-tuned against the same pruned architecture trained from scratch (Liu, Sun,
Zhou, Huang, Darrell 2019, "Rethinking the Value of Network Pruning"), on our own runs.

The paper's literature review (its finding 3) reads the corpus as saying that fine-tuning a
pruned model and training its architecture from scratch are rarely compared; Liu et al. found
them equal for structured pruning, the lottery-ticket line found the pruned weights matter at
high sparsity. Here the `from_scratch` control keeps each run's mask (its channels, or its
weights), draws new initial weights with the run seed and trains the base recipe's budget.

- the claim "from scratch matches pruning + fine-tuning": from scratch minus fine-tuned, paired
  over base models at every operating point of both granularities, one family; it holds
  (`EQUIVALENT`) only where every point is shown to lie inside the ROPE by TOST; where from
  scratch is significantly worse the claim is contradicted.
The budgets differ by design and are stated: fine-tuning trains `finetune` epochs after the
base model's training, from scratch trains the base recipe's epochs from initial weights.

    python paper_figures/run_from_scratch.py [--store DIR] [--out DIR] [--rerun]
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

from shrinkbench.analysis.decision import compare_values  # noqa: E402
from shrinkbench.analysis.options import AnalysisOptions  # noqa: E402
from shrinkbench.analysis.palette import context_colors  # noqa: E402
from shrinkbench.analysis.render import fmt  # noqa: E402
from shrinkbench.analysis.runs import setting_label  # noqa: E402
from shrinkbench.analysis.schema import DENSE_STRATEGY  # noqa: E402
from shrinkbench.analysis.units import unit_values  # noqa: E402

FIGURE = "from_scratch"
OPTIONS = AnalysisOptions()
CLAIM = "training the pruned architecture from scratch matches pruning and fine-tuning"
COLORS = context_colors(["none", "from_scratch"])  # controls are not methods: colours no method uses
NAMES = {"none": "pruned + fine-tuned", "from_scratch": "same mask, trained from scratch"}


def pruned(runs: pd.DataFrame) -> pd.DataFrame:
    sub = runs[runs["strategy"] != DENSE_STRATEGY].copy()
    sub["method"] = [s.replace(", from scratch]", "]").replace(" [from scratch]", "") for s in sub["strategy"]]
    return sub


def scratch_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """From scratch against fine-tuned at each operating point, one family (the claim)."""
    sub = pruned(runs)
    rows = []
    for (method, compression), point in sub.groupby(["method", "compression"]):
        tuned, scratch = point[point["control"] == "none"], point[point["control"] == "from_scratch"]
        if tuned.empty or scratch.empty:
            continue
        stats = compare_values(unit_values(scratch), unit_values(tuned), OPTIONS)
        rows.append({"compression": compression, "method": f"{method}, from scratch", "baseline": method,
                     "granularity": point["granularity"].iloc[0], "budget_scratch": scratch["budget_epochs"].iloc[0],
                     "budget_tuned": tuned["budget_epochs"].iloc[0], **stats,
                     "replication": point["replication"].iloc[0], "family": ""})
    return _findings.claim_rows([pd.DataFrame(rows)], CLAIM, OPTIONS)


def draw(points: pd.DataFrame, runs: pd.DataFrame, title: str):
    """One panel per granularity: top-1 against the speedup target, fine-tuned and from
    scratch (mean of the base models, 95% t interval), and the dense model."""
    sub = pruned(runs)
    methods = sorted(sub["method"].unique())
    fig, axes = plt.subplots(1, len(methods), figsize=(6.2 * len(methods), 5), sharey=True, squeeze=False)
    dense = unit_values(runs[runs["strategy"] == DENSE_STRATEGY])
    for ax, method in zip(axes[0], methods):
        for control in ("none", "from_scratch"):
            at = sub[(sub["method"] == method) & (sub["control"] == control)]
            xs = sorted(at["compression"].unique())
            stats = [_plots.unit_interval(unit_values(at[np.isclose(at["compression"], x)]), OPTIONS.confidence)
                     for x in xs]
            means = [m for m, _, _ in stats]
            ax.plot(xs, means, marker="o", color=COLORS[control], label=NAMES[control])
            ax.fill_between(xs, [lo for _, lo, _ in stats], [hi for _, _, hi in stats], color=COLORS[control],
                            alpha=0.2, linewidth=0)
        if len(dense):
            mean, low, high = _plots.unit_interval(dense, OPTIONS.confidence)
            ax.axhline(mean, color="0.3", linestyle=":", label="dense")
            ax.axhspan(low, high, color="0.85", alpha=0.6)
        _common.ratio_axis(ax, "theoretical speedup target (dense MACs / nonzero MACs)")
        ax.set_title(method, fontsize=10)
        ax.set_ylabel("top-1 accuracy, test (%)")
    axes[0][0].legend(fontsize=8, frameon=False)
    fig.suptitle(f"{title}\nmean of the base models, bands: 95% t intervals", fontsize=10)
    fig.tight_layout()
    return fig


def findings(runs: pd.DataFrame, model: str, dataset: str, data: _runs.FigureData) -> tuple[str, str]:
    rows = scratch_rows(runs)
    lines = [f"Setting: {setting_label(model, dataset)}. {data.summary()}.", ""]
    verdict = _findings.verdict(rows, +1)
    word = {"supported": "CONTRADICTED (from scratch significantly better)",
            "contradicted": "CONTRADICTED (from scratch significantly worse)", "mixed": "MIXED",
            "equivalent": "EQUIVALENT (supported)", "not shown": "NOT SHOWN"}[verdict]
    budgets = ""
    if len(rows):
        budgets = (f"; budgets: fine-tuning {fmt(rows['budget_tuned'].iloc[0])} epochs after base training, from "
                   f"scratch {fmt(rows['budget_scratch'].iloc[0])} epochs from initial weights")
    lines.append(f"- **From scratch matches pruning + fine-tuning (Liu et al. 2019) — {word}** (claim family: "
                 f"{_findings.family_text(rows)}, ROPE ±{OPTIONS.rope:g} points{budgets}): "
                 + "; ".join(f"{r.baseline} at speedup {r.compression:g}: {r.difference:+.2f} points, {r.decision} "
                             f"({_findings.tested(r)})" for r in rows.itertuples()) + ".")
    lines += ["", reading(rows)]
    details = [_findings.options_line(OPTIONS), "",
               _findings.markdown_table(rows, "From scratch against pruned + fine-tuned", "compression",
                                        "Speedup target")]
    return "\n".join(lines), "\n".join(details)


def reading(rows: pd.DataFrame) -> str:
    """The interpretation of the verdicts, generated from them."""
    if rows.empty:
        return "**Reading (generated).** No operating point has both a fine-tuned and a from-scratch run."
    parts = []
    for granularity, part in rows.groupby("granularity"):
        decisions = _findings.join(sorted(set(part["decision"])))
        parts.append(f"With {granularity} pruning, training the pruned architecture from scratch is "
                     f"{fmt(part['difference'].min())} to {fmt(part['difference'].max())} points from fine-tuning "
                     f"({decisions}).")
    worse = rows[rows["decision"] == "worse"]
    if len(worse):
        parts.append("Where it is significantly worse, the pruned weights carry what the new initial weights lack "
                     "within the base recipe's budget (the lottery-ticket reading).")
    elif (rows["decision"] == "equivalent").all():
        parts.append("The architecture, not the weights, carries the result here (the Liu et al. reading).")
    else:
        parts.append("These runs cannot separate the two readings.")
    return "**Reading (generated).** " + " ".join(parts)


def make_figure(data: _runs.FigureData, out: Path, formats=_common.FORMATS) -> _runs.FigureResult:
    return _runs.per_setting(data, out, formats, OPTIONS, "Pruned weights against training from scratch", draw,
                             findings)


def main(argv=None) -> int:
    return _runs.main(FIGURE, __doc__.splitlines()[0], make_figure, argv)


if __name__ == "__main__":
    sys.exit(main())
