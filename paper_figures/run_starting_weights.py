"""Two starting models ("weights A" and "weights B": one architecture trained with two
optimizer recipes) pruned by the same methods with the same fine-tuning. The figure shows the
paper's pair, global against layerwise magnitude: top-1 accuracy and its change against each
model's own dense accuracy against the compression ratio (top row), and the difference
between the two methods (bottom row) measured within one set of weights and across the two.

The paper's claim: different starting weights give different tradeoff curves, so comparing
a method run on one model with a method run on another can make one method erroneously
look better, and reporting the change in accuracy instead of the accuracy does not fix it.
Tested with `analysis.compare` at each target compression, one family over the compressions of
each comparison: each method on B against itself on A (do the curves differ?); and for
every pair of methods in the suite (the figure's pair first), the pair on the same weights
(paired over seeds) and across weights (method on A against baseline on B and vice versa;
Welch, as the base weights differ), in absolute top-1 and in change against dense. A *flip*
is two comparisons of one pair reaching significant decisions in opposite directions at one
compression. The families are per comparison; the search over pairs is not adjusted for, so
a flip found among many pairs is exploratory.

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

from shrinkbench.analysis.bands import curve_points  # noqa: E402
from shrinkbench.analysis.compare import compare  # noqa: E402
from shrinkbench.analysis.curves import draw_facet  # noqa: E402
from shrinkbench.analysis.errors import AnalysisError  # noqa: E402
from shrinkbench.analysis.options import AnalysisOptions  # noqa: E402
from shrinkbench.analysis.palette import context_colors  # noqa: E402
from shrinkbench.analysis.render import fmt, mean_std_n  # noqa: E402
from shrinkbench.analysis.runs import setting_label, settings  # noqa: E402
from shrinkbench.analysis.schema import DENSE_STRATEGY  # noqa: E402
from shrinkbench.analysis.stats import welch_t  # noqa: E402

FIGURE = "starting_weights"
METHOD, BASELINE = "global_magnitude", "layerwise_magnitude"
"""The pair the figure draws (the paper's); the findings test every pair of the suite."""
OPTIONS = AnalysisOptions()
DIFF_STYLES = {"within": "-", "across": "--"}


def weights_name(variant: str) -> str:
    """'weights_A' -> 'weights A'."""
    return variant.replace("_", " ") or "weights"


def label(strategy: str, variant: str) -> str:
    return f"{strategy}, {weights_name(variant)}"


@dataclass(frozen=True)
class Comparison:
    """One comparison of two labelled curves, within one set of weights or across two."""

    method: str
    baseline: str
    kind: str  # "within", "across" or "weights" (one method on two sets of weights)

    @property
    def name(self) -> str:
        return f"{self.method} − {self.baseline}"


def pair_comparisons(method: str, baseline: str, variants: list[str]) -> list[Comparison]:
    out = [Comparison(label(method, v), label(baseline, v), "within") for v in variants]
    out += [Comparison(label(method, a), label(baseline, b), "across") for a in variants for b in variants if a != b]
    return out


def weights_comparisons(strategies: list[str], variants: list[str]) -> list[Comparison]:
    """Each strategy on every later set of weights against itself on the first."""
    return [Comparison(label(s, v), label(s, variants[0]), "weights") for s in strategies for v in variants[1:]]


def labelled(runs: pd.DataFrame, column: str, strategies=None) -> pd.DataFrame:
    """Pruned runs with strategies renamed '<strategy>, weights X' and `y` set to `column`."""
    pruned = runs[runs["strategy"] != DENSE_STRATEGY]
    if strategies is not None:
        pruned = pruned[pruned["strategy"].isin(list(strategies))]
    return pruned.assign(strategy=[label(s, v) for s, v in zip(pruned["strategy"], pruned["variant"])],
                         y=pruned[column])


def run_comparisons(runs: pd.DataFrame, comparisons: list[Comparison]) -> pd.DataFrame:
    """Every comparison on top-1 and on the change against dense, each its own family."""
    frames = []
    for column, measure in (("y", "top-1"), ("delta", "change in top-1 vs dense")):
        table = labelled(runs, column)
        present = set(table["strategy"])
        for c in comparisons:
            if (c.kind == "within" and column == "delta") or not {c.method, c.baseline} <= present:
                continue  # on one set of weights the change and the accuracy differ by the same dense value
            report = compare(table, [(c.method, c.baseline)], OPTIONS, np.random.default_rng(OPTIONS.seed),
                             family_label=lambda m, lab, c=c, measure=measure: f"{c.name}, {lab}, {measure}")
            frames.append(report.comparisons.assign(kind=c.kind, measure=measure))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["method", "baseline", "kind",
                                                                                  "measure", "decision"])


def base_strategy(labelled_name: str) -> str:
    return labelled_name.rsplit(", ", 1)[0]


def flips(rows: pd.DataFrame) -> list[str]:
    """Comparisons of one pair of methods at one compression with significant decisions in
    opposite directions (`rows`: the comparisons of one pair)."""
    out = []
    significant = rows[rows["decision"].isin(["better", "worse"])]
    for compression, at in significant.groupby("compression"):
        ups, downs = at[at["decision"] == "better"], at[at["decision"] == "worse"]
        for u in ups.itertuples():
            for d in downs.itertuples():
                out.append(f"at {compression:g}×, {u.method} beats {u.baseline} in {u.measure} "
                           f"({u.difference:+.2f} [simultaneous {fmt(u.sim_low)}, {fmt(u.sim_high)}], {u.test}, adjusted "
                           f"{_findings.p_text(u.p_deciding)}) but {d.method} loses to {d.baseline} in "
                           f"{d.measure} ({d.difference:+.2f} [simultaneous {fmt(d.sim_low)}, {fmt(d.sim_high)}], {d.test}, adjusted "
                           f"{_findings.p_text(d.p_deciding)})")
    return out


def sign_changes(rows: pd.DataFrame) -> list[str]:
    """Compressions where the mean differences of one pair's comparisons have both signs."""
    out = []
    for compression, at in rows.groupby("compression"):
        if (at["difference"] > 0).any() and (at["difference"] < 0).any():
            out.append(f"{compression:g}×")
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
                 f"weights), {_findings.p_text(test.p_value)}")
    return text + "."


CURVES_CLAIM = "the starting weights change the tradeoff curves"
REVERSE_CLAIM = "a comparison of two methods run on different starting weights can reverse the conclusion"
CHANGE_CLAIM = "reporting the change against each model's dense accuracy does not fix it"


def _of_pair(rows: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """The rows of `rows` comparing strategy a with strategy b (on any weights)."""
    if rows.empty:
        return rows
    base_a, base_b = rows["method"].map(base_strategy), rows["baseline"].map(base_strategy)
    return rows[(base_a == a) & (base_b == b)]


def strategy_pairs(strategies: list[str]) -> list[tuple[str, str]]:
    """Every pair once, the figure's pair first."""
    pairs = [(a, b) for i, a in enumerate(strategies) for b in strategies[i + 1:]]
    pairs.sort(key=lambda p: set(p) != {METHOD, BASELINE})
    return [(METHOD, BASELINE) if set(p) == {METHOD, BASELINE} else p for p in pairs]


def findings(runs: pd.DataFrame, weights_rows: pd.DataFrame, pair_rows: dict, variants: list[str], model: str,
             dataset: str, data: _runs.FigureData) -> tuple[str, str]:
    """(verdicts, tables) of one setting."""
    lines = [f"Setting: {setting_label(model, dataset)}. {data.summary()}.", "", dense_line(runs, variants), ""]
    curves = _findings.claim_rows([weights_rows], CURVES_CLAIM, OPTIONS)
    curves_differ = curves["decision"].isin(["better", "worse"]).any()
    lines.append(f"- **The starting weights change the tradeoff curves — claim "
                 f"{'SUPPORTED' if curves_differ else 'NOT SHOWN'}** (each method on "
                 f"{', '.join(weights_name(v) for v in variants[1:])} against itself on {weights_name(variants[0])}; "
                 f"claim family: {_findings.family_text(curves)}):")
    for (method, baseline, measure), sub in curves.groupby(["method", "baseline", "measure"], sort=False):
        lines.append(f"  - {base_strategy(method)}, {measure}: {_findings.summary_sentence(sub, +1)}.")
    every = pd.concat(list(pair_rows.values()), ignore_index=True) if pair_rows else pd.DataFrame()
    reverse = _findings.claim_rows([every[every["measure"] == "top-1"]] if len(every) else [], REVERSE_CLAIM, OPTIONS)
    change = _findings.claim_rows([every[(every["kind"] == "within") | (every["measure"] != "top-1")]]
                                  if len(every) else [], CHANGE_CLAIM, OPTIONS)
    all_flips = [f for (a, b) in pair_rows for f in flips(_of_pair(reverse, a, b))]
    delta_flips = [f for (a, b) in pair_rows for f in flips(_of_pair(change, a, b))]
    figure_pair = _of_pair(reverse, METHOD, BASELINE)
    for (method, baseline, measure), sub in figure_pair.groupby(["method", "baseline", "measure"], sort=False):
        lines.append(f"- {method} vs {baseline} ({measure}): {_findings.summary_sentence(sub, +1)}.")
    lines += ["", f"**Claim: {REVERSE_CLAIM} — {'SUPPORTED' if all_flips else 'NOT SHOWN'}** (claim family: every "
              f"top-1 comparison of every pair, on each set of weights and across: {_findings.family_text(reverse)}). "
              + (f"Significant flips in top-1: {'; '.join(all_flips)}." if all_flips else
                 f"For none of the {len(pair_rows)} pairs of methods do two comparisons (on A, on B, or across) "
                 "reach significant decisions in opposite directions at any compression."),
              "", f"**Claim: {CHANGE_CLAIM} — {'SUPPORTED' if delta_flips else 'NOT SHOWN'}** (claim family: the "
              f"same-weights comparisons and the across-weights comparisons of the change: "
              f"{_findings.family_text(change)}). "
              + (f"Flips with the change in accuracy: {'; '.join(delta_flips)}." if delta_flips else
                 "No across-weights comparison of the change contradicts a same-weights comparison significantly."),
              "", reading(curves, all_flips, delta_flips, runs, variants),
              "", "Per pair of methods (every comparison: on each set of weights and across, top-1 and change; "
              "decisions in the two claim families above):"]
    for (a, b), rows in pair_rows.items():
        n_flips = len(flips(_of_pair(reverse, a, b))) + len(flips(_of_pair(change, a, b)))
        changes = sign_changes(rows)
        lines.append(f"- {a} vs {b}: {n_flips} significant flip(s)"
                     + (f"; the mean differences take both signs at {', '.join(changes)} (the significant "
                        "decisions there, if any, all point one way)"
                        if changes else "; every comparison has the same sign at every compression") + ".")
    details = [_findings.options_line(OPTIONS), "",
               _findings.markdown_table(weights_rows, "Each method on the other weights against itself")]
    for (a, b), rows in pair_rows.items():
        details.append(_findings.markdown_table(rows, f"{a} vs {b}, on the same weights and across"))
    return "\n".join(lines), "\n".join(details)


def reading(curves: pd.DataFrame, all_flips: list, delta_flips: list, runs: pd.DataFrame, variants: list[str]) -> str:
    """The interpretation of the verdicts, generated from them (so it cannot outrun them)."""
    significant = curves[curves["decision"].isin(["better", "worse"])]
    parts = []
    if len(curves):
        first = curves.loc[curves["p_value"].idxmin()]
        parts.append(f"Of the {int(curves['family_size'].iloc[0])} tests of a method against itself on the other "
                     f"weights, {len(significant)} {'is' if len(significant) == 1 else 'are'} significant after "
                     f"adjusting over the claim; the strongest is {base_strategy(first['method'])} in "
                     f"{first['measure']} at {first['compression']:g}× ({first['difference']:+.2f} points, raw "
                     f"{_findings.p_text(first['p_value'])}, adjusted {_findings.p_text(first['p_deciding'])}).")
    parts.append("Two comparisons of one pair of methods reach opposite significant conclusions "
                 + ("in top-1" if all_flips else "nowhere in top-1")
                 + (", and in the change against dense too." if delta_flips else
                    ", nor in the change against dense."))
    n = int(runs[runs["strategy"] == DENSE_STRATEGY].groupby("variant").size().min())
    parts.append(f"These are Welch comparisons across {n} base models per set of weights "
                 f"({_findings.join(weights_name(v) for v in variants)}); their minimum detectable effects are in "
                 "the tables of the findings file.")
    return "**Reading (generated).** " + " ".join(parts)


def draw_differences(ax, rows: pd.DataFrame, colors: dict) -> None:
    for (method, baseline), sub in rows.groupby(["method", "baseline"], sort=False):
        sub = sub.sort_values("compression")
        kind = sub["kind"].iloc[0]
        color = colors[method.rsplit(", ", 1)[1]]
        line = "-" if kind == "within" else "--"
        other = baseline.rsplit(", ", 1)[1]
        name = (f"{method.rsplit(', ', 1)[1]} (within)" if kind == "within" else
                f"{METHOD.split('_')[0]} on {method.rsplit(', ', 1)[1]} vs {BASELINE.split('_')[0]} on {other}")
        ax.fill_between(sub["compression"], sub["ci_low"], sub["ci_high"], color=color, alpha=0.12 if kind == "within" else 0.06,
                        linewidth=0)
        ax.plot(sub["compression"], sub["difference"], linestyle=line, color=color, marker="o" if kind == "within" else "^",
                markersize=4, label=name, alpha=1.0 if kind == "within" else 0.8)
    ax.axhline(0.0, color="black", linewidth=0.8, linestyle=":")
    _common.ratio_axis(ax, "target compression ratio")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, frameon=False)


def draw(runs: pd.DataFrame, rows: pd.DataFrame, variants: list[str], title: str):
    colors = context_colors([weights_name(v) for v in variants])
    styles = {}
    for v in variants:
        for strategy, (line, marker) in ((METHOD, ("-", "o")), (BASELINE, ("--", "s"))):
            styles[label(strategy, v)] = {"color": colors[weights_name(v)], "linestyle": line, "marker": marker}
    fig, axes = plt.subplots(2, 2, figsize=(12, 9.2))
    seeds = labelled(runs, "y", (METHOD, BASELINE))
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
        same_weights = rows["kind"] == "within"  # identical in both measures: drawn in both panels
        draw_differences(ax, rows[same_weights | ((rows["measure"] == measure) & ~same_weights)], colors)
        ax.set_ylabel(f"{METHOD.split('_')[0]} − {BASELINE.split('_')[0]} "
                      f"({'top-1' if measure == 'top-1' else 'change'}, points)")
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
        strategies = sorted(set(sub["strategy"]) - {DENSE_STRATEGY})
        weights_rows = run_comparisons(sub, weights_comparisons(strategies, variants))
        pair_rows = {(a, b): run_comparisons(sub, pair_comparisons(a, b, variants))
                     for a, b in strategy_pairs(strategies)}
        pair_rows = {pair: rows for pair, rows in pair_rows.items() if len(rows)}
        title = (f"Starting weights: {METHOD} vs {BASELINE}, {model} on {dataset} "
                 f"(our runs, suite {data.spec.name})")
        if (METHOD, BASELINE) in pair_rows:
            files += _common.save_figure(draw(sub, pair_rows[(METHOD, BASELINE)], variants, title), out,
                                         _plots.setting_stem(data.spec.name, model, dataset, len(keys) > 1), formats)
        texts.append(findings(sub, weights_rows, pair_rows, variants, model, dataset, data))
    return _runs.finish(data.spec.name, out, files, texts)


def main(argv=None) -> int:
    return _runs.main(FIGURE, __doc__.splitlines()[0], make_figure, argv)


if __name__ == "__main__":
    sys.exit(main())
