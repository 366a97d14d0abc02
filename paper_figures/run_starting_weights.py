"""Two starting models ("weights A" and "weights B": one architecture trained with two
optimizer recipes) pruned by global and by layerwise magnitude with the same fine-tuning:
top-1 accuracy and its change against each model's own dense accuracy against the
compression ratio (top row), and the difference between the two methods (bottom row)
measured within one set of weights and across the two sets.

The paper's claim: different starting weights give different tradeoff curves, so comparing
a method run on one model with a method run on another can make one method erroneously
look better, and reporting the change in accuracy instead of the accuracy does not fix it.
Tested with `analysis.compare` at each target compression, Holm over the compressions of
each comparison: global against layerwise on the same weights (paired over seeds), and
across weights (global on A against layerwise on B and vice versa; Welch, as the base
weights differ), in absolute top-1 and in change against dense. A *flip* is two of these
comparisons reaching significant decisions in opposite directions at one compression.

    python paper_figures/run_starting_weights.py [--store DIR] [--out DIR] [--rerun]
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
import _findings  # noqa: E402
import _plots  # noqa: E402
import _runs  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from analysis.bands import curve_points  # noqa: E402
from analysis.compare import compare  # noqa: E402
from analysis.curves import draw_facet  # noqa: E402
from analysis.errors import AnalysisError  # noqa: E402
from analysis.options import AnalysisOptions  # noqa: E402
from analysis.render import fmt, fmt_p, mean_std_n  # noqa: E402
from analysis.runs import setting_label, settings  # noqa: E402
from analysis.schema import DENSE_STRATEGY  # noqa: E402
from analysis.stats import welch_t  # noqa: E402

FIGURE = "starting_weights"
METHOD, BASELINE = "global_magnitude", "layerwise_magnitude"
OPTIONS = AnalysisOptions()
WEIGHT_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")
DIFF_STYLES = {"within": "-", "across": "--"}


def weights_name(variant: str) -> str:
    """'weights_A' -> 'weights A'."""
    return variant.replace("_", " ") or "weights"


def label(strategy: str, variant: str) -> str:
    return f"{strategy}, {weights_name(variant)}"


@dataclass(frozen=True)
class Comparison:
    """One (method, baseline) comparison: which runs, and whether it stays within one set of weights."""

    method: str
    baseline: str
    kind: str  # "within" or "across"

    @property
    def name(self) -> str:
        return f"{self.method} − {self.baseline}"


def comparisons(variants: list[str]) -> list[Comparison]:
    out = [Comparison(label(METHOD, v), label(BASELINE, v), "within") for v in variants]
    out += [Comparison(label(METHOD, a), label(BASELINE, b), "across") for a in variants for b in variants if a != b]
    return out


def labelled(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """Pruned runs with strategies renamed '<strategy>, weights X' and `y` set to `column`."""
    pruned = runs[runs["strategy"].isin([METHOD, BASELINE])]
    return pruned.assign(strategy=[label(s, v) for s, v in zip(pruned["strategy"], pruned["variant"])],
                         y=pruned[column])


def run_comparisons(runs: pd.DataFrame, column: str, variants: list[str]) -> pd.DataFrame:
    """Every comparison of `comparisons(variants)` on `column` (y or delta), each its own Holm family."""
    table = labelled(runs, column)
    response = "top-1" if column == "y" else "change in top-1 vs dense"
    frames = []
    for c in comparisons(variants):
        report = compare(table, [(c.method, c.baseline)], OPTIONS, np.random.default_rng(OPTIONS.seed),
                         family_label=lambda m, lab, c=c: f"{c.name}, {lab}, {response}")
        frames.append(report.comparisons.assign(kind=c.kind, measure=response))
    return pd.concat(frames, ignore_index=True)


def flips(rows: pd.DataFrame) -> list[str]:
    """Pairs of comparisons at one compression with significant decisions in opposite directions."""
    out = []
    significant = rows[rows["decision"].isin(["better", "worse"])]
    for compression, at in significant.groupby("compression"):
        ups, downs = at[at["decision"] == "better"], at[at["decision"] == "worse"]
        for u in ups.itertuples():
            for d in downs.itertuples():
                out.append(f"at {compression:g}×: {u.method} beats {u.baseline} in {u.measure} "
                           f"({u.difference:+.2f} [{fmt(u.ci_low)}, {fmt(u.ci_high)}], {u.test}, Holm p = "
                           f"{fmt_p(u.p_adjusted)}) but {d.method} loses to {d.baseline} in {d.measure} "
                           f"({d.difference:+.2f} [{fmt(d.ci_low)}, {fmt(d.ci_high)}], {d.test}, Holm p = "
                           f"{fmt_p(d.p_adjusted)})")
    return out


def reversals(rows: pd.DataFrame) -> list[str]:
    """Compressions where the within-weights and across-weights mean differences have opposite
    signs (whether significant or not)."""
    out = []
    for compression, at in rows.groupby("compression"):
        if (at["difference"] > 0).any() and (at["difference"] < 0).any():
            signs = ", ".join(f"{r.method} − {r.baseline} ({r.measure}) {r.difference:+.2f}"
                              for r in at.itertuples())
            out.append(f"at {compression:g}×: {signs}")
    return out


def dense_line(runs: pd.DataFrame, variants: list[str]) -> str:
    dense = runs[runs["strategy"] == DENSE_STRATEGY]
    values = {v: dense[dense["variant"] == v].set_index("base_seed")["y"] for v in variants}
    parts = [f"{weights_name(v)} {mean_std_n(s.mean(), s.std(), len(s))}" for v, s in values.items()]
    text = "Dense top-1 (after the same fine-tuning): " + ", ".join(parts)
    if len(variants) == 2:
        a, b = (values[v] for v in variants)
        test = welch_t(b.to_numpy(float), a.to_numpy(float), OPTIONS.confidence)
        text += (f"; {weights_name(variants[1])} − {weights_name(variants[0])} = {test.difference:+.2f} "
                 f"points [95% CI {fmt(test.ci_low)}, {fmt(test.ci_high)}], {test.test} (different base "
                 f"weights), p = {fmt_p(test.p_value)}")
    return text + "."


def findings(runs: pd.DataFrame, rows: pd.DataFrame, variants: list[str], model: str, dataset: str,
             data: _runs.FigureData) -> tuple[str, str]:
    """(verdicts, tables) of one setting."""
    lines = [f"Setting: {setting_label(model, dataset)}. {data.summary()}.", "", dense_line(runs, variants), ""]
    for (kind, measure), part in rows.groupby(["kind", "measure"], sort=False):
        if kind == "within" and measure != "top-1":
            continue  # within one set of weights the change and the accuracy give the same differences
        for (method, baseline), sub in part.groupby(["method", "baseline"], sort=False):
            lines.append(f"- {kind} weights, {measure}: {method} vs {baseline}: "
                         f"{_findings.summary_sentence(sub, +1)}.")
    found = flips(rows)
    across = rows[rows["kind"] == "across"]
    within = rows[rows["kind"] == "within"]
    misleading = flips(pd.concat([within[within["measure"] == "top-1"], across]))
    delta_misleading = flips(pd.concat([within[within["measure"] == "top-1"],
                                        across[across["measure"] != "top-1"]]))
    verdict = "SUPPORTED" if misleading else "NOT SHOWN"
    lines += ["", f"**Claim (a comparison across starting weights can reverse the conclusion) — {verdict}.** "
              + (f"Significant flips: {'; '.join(misleading)}." if misleading else
                 "No two comparisons reach significant decisions in opposite directions at any compression."),
              "", f"**Claim (reporting the change against dense does not fix it) — "
              f"{'SUPPORTED' if delta_misleading else 'NOT SHOWN'}.** "
              + (f"Flips with the change in accuracy: {'; '.join(delta_misleading)}." if delta_misleading else
                 "With the change in accuracy no across-weights comparison contradicts a within-weights one "
                 "significantly.")]
    within_flip = flips(within[within["measure"] == "top-1"])
    lines.append("" if not within_flip else f"\nThe ranking flips even within one set of weights: {'; '.join(within_flip)}.")
    rev = reversals(rows)
    if rev and not found:
        lines += ["", "Mean differences with opposite signs (not significant): " + "; ".join(rev) + "."]
    details = [_findings.options_line(OPTIONS), ""]
    for measure, part in rows.groupby("measure", sort=False):
        details.append(_findings.markdown_table(part, f"Global vs layerwise magnitude, {measure}"))
    return "\n".join(lines), "\n".join(details)


def draw_differences(ax, rows: pd.DataFrame, colors: dict) -> None:
    for (method, baseline), sub in rows.groupby(["method", "baseline"], sort=False):
        sub = sub.sort_values("compression")
        kind = sub["kind"].iloc[0]
        color = colors[method.rsplit(", ", 1)[1]]
        line = "-" if kind == "within" else "--"
        other = baseline.rsplit(", ", 1)[1]
        name = (f"{method.rsplit(', ', 1)[1]} (within)" if kind == "within"
                else f"global on {method.rsplit(', ', 1)[1]} vs layerwise on {other}")
        ax.fill_between(sub["compression"], sub["ci_low"], sub["ci_high"], color=color, alpha=0.12 if kind == "within" else 0.06,
                        linewidth=0)
        ax.plot(sub["compression"], sub["difference"], linestyle=line, color=color, marker="o" if kind == "within" else "^",
                markersize=4, label=name, alpha=1.0 if kind == "within" else 0.8)
    ax.axhline(0.0, color="black", linewidth=0.8, linestyle=":")
    _common.ratio_axis(ax, "target compression ratio")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, frameon=False)


def draw(runs: pd.DataFrame, rows: pd.DataFrame, variants: list[str], title: str):
    colors = {weights_name(v): WEIGHT_COLORS[i % len(WEIGHT_COLORS)] for i, v in enumerate(variants)}
    styles = {}
    for v in variants:
        for strategy, (line, marker) in ((METHOD, ("-", "o")), (BASELINE, ("--", "s"))):
            styles[label(strategy, v)] = {"color": colors[weights_name(v)], "linestyle": line, "marker": marker}
    fig, axes = plt.subplots(2, 2, figsize=(12, 9.2))
    seeds = labelled(runs, "y")
    points = curve_points(seeds, OPTIONS, np.random.default_rng(OPTIONS.seed))
    for ax, delta in zip(axes[0], (False, True)):
        draw_facet(ax, points, seeds, "compression", delta, styles)
        ax.set_ylabel("change in top-1 vs own dense (points)" if delta else "top-1 accuracy, test (%)")
    dense = runs[runs["strategy"] == DENSE_STRATEGY]
    for v in variants:
        mean = dense.loc[dense["variant"] == v, "y"].mean()
        axes[0, 0].axhline(mean, color=colors[weights_name(v)], linestyle=":", linewidth=1.2)
    handles = [Line2D([], [], label=name, **{k: s[k] for k in ("color", "linestyle", "marker")}, markersize=4)
               for name, s in styles.items()]
    handles += [Line2D([], [], color=colors[weights_name(v)], linestyle=":", label=f"dense, {weights_name(v)}")
                for v in variants]
    axes[0, 0].legend(handles=handles, fontsize=8, frameon=False, loc="lower left")
    axes[0, 0].set_title("absolute accuracy", fontsize=10)
    axes[0, 1].set_title("change against each model's own dense accuracy", fontsize=10)
    for ax, measure in zip(axes[1], ("top-1", "change in top-1 vs dense")):
        draw_differences(ax, rows[rows["measure"] == measure], colors)
        ax.set_ylabel(f"global − layerwise ({'top-1' if measure == 'top-1' else 'change'}, points)")
        ax.set_title(f"the comparison measured in {measure} (band: 95% CI)", fontsize=10)
    n = int(seeds.groupby(["strategy", "compression"]).size().min())
    fig.suptitle(f"{title}\nmean of n = {n} seeds per model, band = 95% Student-t interval, dots = single runs",
                 fontsize=11)
    fig.tight_layout()
    return fig


def make_figure(data: _runs.FigureData, out: Path, formats=_common.FORMATS) -> _runs.FigureResult:
    variants = [v for v in data.spec.variants if (data.runs["variant"] == v).any()]
    if not variants:
        raise AnalysisError(f"suite {data.spec.name!r} has no runs in the store")
    keys = settings(data.runs)
    files, texts = [], []
    for model, dataset in keys:
        sub = data.runs[(data.runs["model"] == model) & (data.runs["dataset"] == dataset)]
        rows = pd.concat([run_comparisons(sub, column, variants) for column in ("y", "delta")], ignore_index=True)
        title = (f"Starting weights: {METHOD} vs {BASELINE}, {model} on {dataset} "
                 f"(our runs, suite {data.spec.name})")
        files += _common.save_figure(draw(sub, rows, variants, title), out,
                                     _plots.setting_stem(data.spec.name, model, dataset, len(keys) > 1), formats)
        texts.append(findings(sub, rows, variants, model, dataset, data))
    return _runs.finish(data.spec.name, out, files, texts)


def main(argv=None) -> int:
    return _runs.main(FIGURE, __doc__.splitlines()[0], make_figure, argv)


if __name__ == "__main__":
    sys.exit(main())
