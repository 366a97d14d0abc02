"""The paper's five baselines (global and layerwise magnitude, global and layerwise
gradient, random) from our own runs: top-1 accuracy and its change against the dense model
of the same base weights against the compression ratio, and top-1 against the theoretical
speedup; mean over seeds with 95% Student-t bands, every seed's run drawn as a point.

Claims of the paper tested here, each with `shrinkbench.analysis` functions:
- "many pruning methods outperform random pruning, at least at large compression": every
  method against random at each compression (`shrinkbench.analysis.compare`, paired t over seeds, one
  family over the compressions of one method);
- "for small amounts of compression, pruning can sometimes increase accuracy": each
  operating point against the dense model of the same seed (`shrinkbench.analysis.matched`,
  one family over every operating point at <= 4x of every method, the claim's family);
- no method is best everywhere: the operating-point table (`shrinkbench.analysis.tables`, the
  best mean is marked only where the decision rule calls it better than every other method).

Each claim is adjusted as a claim: every test it draws on forms one family.

    python paper_figures/run_five_baselines.py [--store DIR] [--out DIR] [--rerun]
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
from shrinkbench.analysis.matched import compare_with_dense  # noqa: E402
from shrinkbench.analysis.options import AnalysisOptions  # noqa: E402
from shrinkbench.analysis.runs import setting_label  # noqa: E402
from shrinkbench.analysis.schema import DENSE_STRATEGY  # noqa: E402
from shrinkbench.analysis.tables import operating_point_table, table_markdown  # noqa: E402

FIGURE = "five_baselines"
RANDOM = "random"
SMALL_COMPRESSION = 4.0
"""'Small amounts of compression' for the claim that pruning can increase accuracy: <= 4x."""
OPTIONS = AnalysisOptions()
PANELS = (("compression", False, "top-1 accuracy, test (%)"),
          ("compression", True, "change in top-1 vs dense (points)"),
          ("speedup", False, "top-1 accuracy, test (%)"))


def draw(points: pd.DataFrame, runs: pd.DataFrame, title: str):
    styles = strategy_styles(set(points["strategy"]) - {DENSE_STRATEGY})
    fig, axes = plt.subplots(1, len(PANELS), figsize=(16, 5.4))
    for ax, (axis, delta, label) in zip(axes, PANELS):
        draw_facet(ax, points, runs, axis, delta, styles)
        if not delta:
            note = _plots.cut_axis(ax, points, points.loc[points["strategy"] == DENSE_STRATEGY, "mean"].iloc[0])
            ax.set_title(note, fontsize=7, loc="left")  # above the panel, never over its data
        ax.set_ylabel(label)
    n = int(points.loc[points["strategy"] != DENSE_STRATEGY, "n"].min())
    fig.legend(handles=_plots.legend_handles(styles), loc="lower center", ncols=6, frameon=False, fontsize=9,
               bbox_to_anchor=(0.5, -0.01))
    fig.suptitle(f"{title}\nmean of n = {n} seeds (each its own base model), band = 95% Student-t interval, "
                 "dots = single runs", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def findings(runs: pd.DataFrame, model: str, dataset: str, data: _runs.FigureData) -> tuple[str, str]:
    """(verdicts, tables) of one setting."""
    rng = np.random.default_rng(OPTIONS.seed)
    methods = sorted(set(runs["strategy"]) - {DENSE_STRATEGY, RANDOM})
    lines = [f"Setting: {setting_label(model, dataset)}. {data.summary()}.", ""]
    vs_random, against_random = None, {}
    if RANDOM in set(runs["strategy"]) and methods:
        vs_random = compare(runs, [(m, RANDOM) for m in methods], OPTIONS, rng).comparisons
        for method in methods:
            claim = f"{method} beats random"
            rows = _findings.claim_rows([vs_random[vs_random["method"] == method]], claim, OPTIONS)
            against_random[method] = rows
            lines.append(f"- **{claim} — claim {_findings.verdict(rows, +1).upper()}** (claim family: "
                         f"{_findings.family_text(rows)}): {method} {_findings.summary_sentence(rows, +1)}.")
    dense = compare_with_dense(runs, OPTIONS)
    claim = f"pruning can increase accuracy at small compression (≤ {SMALL_COMPRESSION:g}×)"
    small = _findings.claim_rows([dense[dense["compression"] <= SMALL_COMPRESSION]], claim, OPTIONS)
    lines.append(f"- **{claim} — claim {_findings.verdict(small, +1, any_direction=False).upper()}** (claim family: "
                 f"{_findings.family_text(small)}): " + "; ".join(
                     f"{s} {_findings.summary_sentence(small[small['strategy'] == s], +1)}"
                     for s in sorted(set(small["strategy"]))) + ".")
    table = operating_point_table(runs, OPTIONS)
    best = table[table["best"]]
    lines.append(f"- **best method per compression** (marked in the table: the best mean, called better than every "
                 f"other method there by the decision rule; family {table['family'].iloc[0]}): "
                 + ("; ".join(f"{r.strategy} at {r.compression:g}× (largest adjusted p = {r.best_q:.3f})"
                              for r in best.itertuples()) or "no method is better than every other at any compression")
                 + ".")
    lines += ["", reading(against_random, small, best)]
    details = [_findings.options_line(OPTIONS), "", "#### Operating points", "",
               table_markdown(table, OPTIONS).replace("### ", "##### ")]
    if vs_random is not None:
        details.append(_findings.markdown_table(vs_random, "Each method against random pruning"))
    renamed = dense.rename(columns={"strategy": "method"}).assign(baseline="dense (same seed)")
    details.append(_findings.markdown_table(renamed, "Each operating point against the dense model of its seed"))
    return "\n".join(lines), "\n".join(details)


def reading(against_random: dict[str, pd.DataFrame], small: pd.DataFrame, best: pd.DataFrame) -> str:
    """The interpretation of the verdicts, generated from them (so it cannot outrun them)."""
    parts = []
    if against_random:
        everywhere = [m for m, rows in against_random.items() if (rows["decision"] == "better").all()]
        somewhere = [m for m, rows in against_random.items()
                     if m not in everywhere and (rows["decision"] == "better").any()]
        nowhere = [m for m in against_random if m not in everywhere + somewhere]
        text = []
        if everywhere:
            text.append(f"{_findings.join(everywhere)} beat{'s' if len(everywhere) == 1 else ''} random pruning at "
                        "every compression")
        if somewhere:
            text.append(f"{_findings.join(somewhere)} beat{'s' if len(somewhere) == 1 else ''} it at some")
        if nowhere:
            text.append(f"{_findings.join(nowhere)} at none")
        rows = pd.concat(against_random.values())
        margin = rows.groupby("compression")["difference"].mean()
        parts.append(f"{'; '.join(text)}; the mean margin over the methods grows from {margin.iloc[0]:+.1f} points at "
                     f"{margin.index[0]:g}× to {margin.iloc[-1]:+.1f} at {margin.index[-1]:g}×.")
    raised = small[small["decision"] == "better"]
    lowered = small[small["decision"] == "worse"]
    equivalent = small[small["decision"] == "equivalent"]
    listing = lambda rows: _findings.join(f"{r.strategy} at {r.compression:g}×" for r in rows.itertuples())  # noqa: E731
    parts.append((f"Pruning raised accuracy significantly for {listing(raised)}." if len(raised) else
                  "Pruning raised accuracy significantly nowhere at small compression.")
                 + (f" Significantly below the dense model there: {listing(lowered)}." if len(lowered) else "")
                 + (f" Equivalent to it within the ROPE: {listing(equivalent)}." if len(equivalent) else ""))
    parts.append(f"Best at a compression (better than every other method there): {listing(best)}." if len(best)
                 else "No method is better than every other method at any compression.")
    return "**Reading (generated).** " + " ".join(parts)


def make_figure(data: _runs.FigureData, out: Path, formats=_common.FORMATS) -> _runs.FigureResult:
    return _runs.per_setting(data, out, formats, OPTIONS, "The five baselines", draw, findings)


def main(argv=None) -> int:
    return _runs.main(FIGURE, __doc__.splitlines()[0], make_figure, argv)


if __name__ == "__main__":
    sys.exit(main())
