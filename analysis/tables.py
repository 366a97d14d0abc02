"""Comparison tables in the literature's style: method x operating point.

Each row: the method, its target compression, the measured parameter and MAC reductions
(`params / nonzero params`, `MACs / nonzero MACs`, seed means), the response as
`mean ± std (n)` and its difference to the dense model of the same base weights (paired
per seed). At each compression the best mean is marked only where it is significantly
better than EVERY other method there: paired t (Welch without shared seeds), with the
Benjamini-Hochberg adjustment over all such tests of the table (an exploratory family,
named in the output). Renders to Markdown, LaTeX (booktabs) and CSV.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from shrinkbench.analysis.compare import compare_values, values_by_unit
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.render import Table, fmt, latex_escape, mean_std_n
from shrinkbench.analysis.runs import SETTING, setting_label, settings, summarize
from shrinkbench.analysis.schema import DENSE_STRATEGY
from shrinkbench.analysis.stats import benjamini_hochberg

TABLE_COLUMNS = SETTING + ["strategy", "compression", "n", "mean", "std", "delta_n", "delta_mean",
                           "delta_std", "params_reduction", "macs_reduction", "best", "best_q", "family"]


def _mark_best(sub: pd.DataFrame, summary: pd.DataFrame, options: AnalysisOptions) -> tuple[dict, dict]:
    """{compression: best strategy} where it is significantly best, and the largest
    adjusted p of its tests (BH over the whole table)."""
    tests = []  # (compression, best, p, difference)
    for compression, points in summary[summary["strategy"] != DENSE_STRATEGY].groupby("compression"):
        if len(points) < 2:
            continue
        best = points.loc[points["mean"].idxmax(), "strategy"]
        at = sub[sub["compression"] == compression]
        best_values = values_by_unit(at[at["strategy"] == best])
        for other in points["strategy"]:
            if other != best:
                stats = compare_values(best_values, values_by_unit(at[at["strategy"] == other]), options)
                tests.append((compression, best, stats["p_value"], stats["difference"]))
    if not tests:
        return {}, {}
    q = benjamini_hochberg([t[2] for t in tests])
    worst: dict[float, float] = {}
    winner: dict[float, str] = {}
    for (compression, best, _, diff), qi in zip(tests, q):
        ok = np.isfinite(qi) and diff > 0
        worst[compression] = max(worst.get(compression, 0.0), qi if ok else np.inf)
        winner[compression] = best
    marked = {c: winner[c] for c, qmax in worst.items() if qmax < options.alpha}
    return marked, worst


def operating_point_table(runs: pd.DataFrame, options: AnalysisOptions = AnalysisOptions()) -> pd.DataFrame:
    """The numbers of the table (one row per setting x strategy x compression)."""
    summary = summarize(runs, options.confidence)
    frames = []
    for model, dataset in settings(runs):
        mask = (summary["model"] == model) & (summary["dataset"] == dataset)
        points = summary[mask].copy()
        sub = runs[(runs["model"] == model) & (runs["dataset"] == dataset)]
        marked, worst = _mark_best(sub, points, options)
        points["best"] = [marked.get(c) == s for s, c in zip(points["strategy"], points["compression"])]
        points["best_q"] = [worst.get(c, np.nan) if b else np.nan for b, c in zip(points["best"], points["compression"])]
        points["family"] = f"best vs rest per ratio, {setting_label(model, dataset)}, {options.response} (BH)"
        frames.append(points)
    table = pd.concat(frames, ignore_index=True).rename(
        columns={"compression_ratio": "params_reduction", "theoretical_speedup": "macs_reduction"})
    table["order"] = (table["strategy"] != DENSE_STRATEGY).astype(int)
    table = table.sort_values(SETTING + ["compression", "order", "strategy"]).drop(columns="order")
    return table[TABLE_COLUMNS].reset_index(drop=True)


def _cells(row) -> list[str]:
    """Plain-text cells of one row (`**...**` marks the significantly best)."""
    dense = row.strategy == DENSE_STRATEGY
    delta = "–"
    if not dense and row.delta_n:
        delta = ("+" if row.delta_mean >= 0 else "") + mean_std_n(row.delta_mean, row.delta_std, row.delta_n)
    accuracy = mean_std_n(row.mean, row.std, row.n)
    return ["dense" if dense else row.strategy, f"{row.compression:g}×", fmt(row.params_reduction) + "×",
            fmt(row.macs_reduction) + "×", accuracy, delta]


HEADERS = ["Method", "Target", "Params ↓", "MACs ↓", "{metric} (%)", "Δ dense"]


def _headers(options: AnalysisOptions) -> list[str]:
    return [h.format(metric=options.metric) for h in HEADERS]


def _legend(options: AnalysisOptions) -> str:
    return (f"{options.response}, mean ± std (n seeds). Δ dense: paired difference to the dense model "
            f"of the same base weights. Bold: best at that ratio and significantly better than every "
            f"other method there (paired t / Welch, Benjamini-Hochberg over the table, q < {options.alpha:g}).")


def table_sections(table: pd.DataFrame, options: AnalysisOptions) -> list[Table]:
    """One `Table` per setting, the significantly best accuracy cells in bold."""
    out = []
    for (model, dataset), rows in table.groupby(SETTING, sort=True):
        body, bold = [], set()
        for i, row in enumerate(rows.itertuples()):
            body.append(_cells(row))
            if row.best:
                bold.add((i, 4))
        out.append(Table(setting_label(model, dataset), _headers(options), body, ["l", "r", "r", "r", "r", "r"],
                         f"{_legend(options)} Family: {rows['family'].iloc[0]}.", bold))
    return out


def table_markdown(table: pd.DataFrame, options: AnalysisOptions) -> str:
    return "\n".join(section.markdown() for section in table_sections(table, options))


def table_latex(table: pd.DataFrame, options: AnalysisOptions) -> str:
    """One booktabs `table` environment per setting (needs \\usepackage{booktabs})."""
    parts = []
    for (model, dataset), rows in table.groupby(SETTING, sort=True):
        caption = latex_escape(f"{setting_label(model, dataset)}: {_legend(options)}")
        header = " & ".join(latex_escape(h) for h in _headers(options))
        lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{caption}}}",
                 r"\begin{tabular}{llrrrr}", r"\toprule", header + r" \\", r"\midrule"]
        previous = None
        for row in rows.itertuples():
            if previous is not None and row.compression != previous:
                lines.append(r"\addlinespace")
            previous = row.compression
            cells = [latex_escape(c) for c in _cells(row)]
            if row.best:
                cells[4] = rf"\textbf{{{cells[4]}}}"
            lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
        parts.append("\n".join(lines))
    return "\n".join(parts)


def table_csv(table: pd.DataFrame) -> str:
    return table.to_csv(index=False)
