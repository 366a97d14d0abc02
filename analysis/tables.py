"""Comparison tables in the literature's style: method x operating point.

Each row: the method, its target compression, the measured parameter and MAC reductions
(`params / nonzero params`, `MACs / nonzero MACs`, seed means), the response as
`mean ± std (n)` over units (`shrinkbench.analysis.units`) and its difference to the dense
model of the same base weights (paired per unit). At each compression the best mean (in the
metric's direction) is marked only where the decision rule of every other output
(`shrinkbench.analysis.decision`) calls it `better` than EVERY other method there: the tests
of the best against each other method at each ratio form one family per setting
("best vs rest per ratio", named in the output), except that at every ratio where the
caller's report (its comparisons) holds all those pairs, for example where the best is the
report's `--method`, the marks are read from those very rows, so the table and the report
beside it cannot disagree. The family of each mark is named in the table's note. Renders to Markdown, LaTeX (booktabs) and CSV.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from shrinkbench.analysis.compare import budget_text, strategy_budgets
from shrinkbench.analysis.decision import adjust_family, compare_values, reversed_decision
from shrinkbench.analysis.groups import display_name, is_control
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.render import Table, fmt, latex_escape, mean_std_n
from shrinkbench.analysis.runs import SETTING, setting_label, settings, summarize
from shrinkbench.analysis.schema import DENSE_STRATEGY
from shrinkbench.analysis.units import replication_of, seed_free, unit_values, with_units

TABLE_COLUMNS = SETTING + ["strategy", "compression", "n", "mean", "std", "low", "high", "delta_n", "delta_mean",
                           "delta_std", "params_reduction", "macs_reduction", "best", "best_q", "family", "budget"]


def best_vs_rest_rows(sub: pd.DataFrame, summary: pd.DataFrame, options: AnalysisOptions,
                      compressions=None) -> pd.DataFrame:
    """The tests of the best method at each ratio (of `compressions`, default all) against
    each other method there, one family per setting (rows as
    `shrinkbench.analysis.decision.adjust_family` gives them)."""
    rows = []
    sign = 1.0 if options.higher_is_better else -1.0
    for compression, points in summary[summary["strategy"] != DENSE_STRATEGY].groupby("compression"):
        if len(points) < 2 or (compressions is not None and compression not in compressions):
            continue
        best = points.loc[(sign * points["mean"]).idxmax(), "strategy"]
        at = sub[sub["compression"] == compression]
        best_runs = at[at["strategy"] == best]
        best_values = unit_values(best_runs)
        for other in points["strategy"]:
            if other != best:
                other_runs = at[at["strategy"] == other]
                stats = compare_values(best_values, unit_values(other_runs), options,
                                       (seed_free(best_runs), seed_free(other_runs)))
                rows.append({"compression": compression, "method": best, "baseline": other, **stats,
                             "replication": replication_of(at)})
    return adjust_family(pd.DataFrame(rows), options) if rows else pd.DataFrame()


def _marks(rows: pd.DataFrame) -> dict:
    """{(compression, best strategy): the largest adjusted p of its tests} where every test of
    the best (one per budget group) says `better`."""
    marked = {}
    for (compression, best), of_best in rows.groupby(["compression", "method"]):
        if (of_best["decision"] == "better").all():
            marked[(compression, best)] = float(of_best["p_adjusted"].max())
    return marked


def _rows_from_report(comparisons: pd.DataFrame, summary: pd.DataFrame,
                      options: AnalysisOptions) -> tuple[pd.DataFrame, list[float]]:
    """The report's own rows of best vs every other at each ratio (either direction of a
    pair, flipped to read best - other), and the ratios where the report lacks one of them."""
    out, missing = [], []
    sign = 1.0 if options.higher_is_better else -1.0
    for compression, points in summary[summary["strategy"] != DENSE_STRATEGY].groupby("compression"):
        if len(points) < 2:
            continue
        best = points.loc[(sign * points["mean"]).idxmax(), "strategy"]
        at = comparisons[np.isclose(comparisons["compression"], compression)]
        first: dict[tuple, int] = {}  # (method, baseline) -> position of its first row
        for position, pair in enumerate(zip(at["method"], at["baseline"])):
            first.setdefault(pair, position)
        found = []
        for other in points["strategy"]:
            if other == best:
                continue
            if (best, other) in first:
                found.append(at.iloc[first[(best, other)]].to_dict())
            elif (other, best) in first:
                row = at.iloc[first[(other, best)]].to_dict()
                row.update(method=best, baseline=other, difference=-row["difference"],
                           decision=reversed_decision(row["decision"]))
                found.append(row)
            else:
                missing.append(compression)
                break
        else:
            out += found
    return pd.DataFrame(out), missing


def operating_point_table(runs: pd.DataFrame, options: AnalysisOptions = AnalysisOptions(),
                          comparisons: pd.DataFrame | None = None) -> pd.DataFrame:
    """The numbers of the table (one row per setting x strategy x compression). With
    `comparisons` (a report's rows), the best marks at each ratio where those rows hold every
    pair of the best come from them; the other ratios form the best-vs-rest family."""
    runs = with_units(runs)
    summary = summarize(runs, options.confidence)
    frames = []
    for model, dataset in settings(runs):
        mask = (summary["model"] == model) & (summary["dataset"] == dataset)
        points = summary[mask].copy()
        sub = runs[(runs["model"] == model) & (runs["dataset"] == dataset)]
        label = setting_label(model, dataset)
        budgets = strategy_budgets(sub[sub["strategy"] != DENSE_STRATEGY])
        groups = sorted(set(budgets.values()))
        parts = []
        for budget in groups:  # the best is ranked among methods of one training budget only
            chosen = points[points["strategy"].map(budgets.get) == budget]
            name = f"best vs rest per ratio, {label}, {options.response}"
            name += f", {budget_text(budget)}" if len(groups) > 1 else ""
            missing = None
            if comparisons is not None:
                mine = comparisons[(comparisons["model"] == model) & (comparisons["dataset"] == dataset)]
                from_report, missing = _rows_from_report(mine, chosen, options)
                parts.append(from_report)
            if missing is None or missing:
                parts.append(best_vs_rest_rows(sub, chosen, options, missing).assign(family=name))
        rows = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) \
            else pd.DataFrame()
        family = "; ".join(f"{f} (m={int(m)})" for f, m in
                           rows[["family", "family_size"]].drop_duplicates().itertuples(index=False)) \
            if len(rows) else "none"
        marked = _marks(rows) if len(rows) else {}
        points["best"] = [(c, s) in marked for s, c in zip(points["strategy"], points["compression"])]
        points["best_q"] = [marked.get((c, s), np.nan) for s, c in zip(points["strategy"], points["compression"])]
        points["family"] = family
        points["budget"] = points["strategy"].map(lambda name: budget_text(budgets.get(name, ())))
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
    interval = f"[{fmt(row.low)}, {fmt(row.high)}]" if row.n > 1 else "–"
    return ["dense" if dense else row.strategy, f"{row.compression:g}×", fmt(row.params_reduction) + "×",
            fmt(row.macs_reduction) + "×", accuracy, interval, delta]


HEADERS = ["Method", "Target", "Params ↓", "MACs ↓", "{metric} ({unit})", "{confidence} CI", "Δ dense"]


def _headers(options: AnalysisOptions) -> list[str]:
    from shrinkbench.analysis.schema import unit_of

    return [h.format(metric=options.metric, unit=unit_of(options.metric) or "value",
                     confidence=f"{options.confidence:.0%}") for h in HEADERS]


def _legend(options: AnalysisOptions) -> str:
    return (f"{options.response}, mean ± std (n units: base models, or the run seeds of one base model); "
            f"CI: the Student-t {options.confidence:.0%} interval of the mean over the units. "
            f"Δ dense: paired difference to the dense model of the same base weights. Marked best: the best "
            f"mean at that ratio, called better than every other method there by the decision rule "
            f"(its simultaneous interval excludes 0 at α = {options.alpha:g}, the family named below).")


def table_sections(table: pd.DataFrame, options: AnalysisOptions) -> list[Table]:
    """One `Table` per setting, the significantly best accuracy cells in bold."""
    out = []
    for (model, dataset), rows in table.groupby(SETTING, sort=True):
        body, bold = [], set()
        for i, row in enumerate(rows.itertuples()):
            body.append(_cells(row))
            if row.best:
                bold.add((i, 4))
        out.append(Table(setting_label(model, dataset), _headers(options), body, ["l", "r", "r", "r", "r", "r", "r"],
                         f"{_legend(options)} Family: {rows['family'].iloc[0]}.", bold))
    return out


def table_markdown(table: pd.DataFrame, options: AnalysisOptions) -> str:
    return "\n".join(section.markdown() for section in table_sections(table, options))


LATEX_NAME_WIDTH = 30
"""Longer method names are set on two lines in LaTeX (name, then its tags), so the table keeps
the line width without scaling."""
LATEX_MARKS = {"better": r"$^{+}$", "worse": r"$^{-}$", "equivalent": r"$^{\approx}$"}
"""The verdict of the focus method against a row's method, as a superscript on that row's cell."""


def _verdict_marks(comparisons: pd.DataFrame | None, method: str | None, model: str, dataset: str) -> dict:
    """{(other method, compression): decision of `method` against it} from the report's rows."""
    if comparisons is None or method is None or comparisons.empty:
        return {}
    mine = comparisons[(comparisons["model"] == model) & (comparisons["dataset"] == dataset)]
    out = {}
    for r in mine.itertuples():
        if r.method == method:
            out[(r.baseline, float(r.compression))] = r.decision
        elif r.baseline == method:
            out[(r.method, float(r.compression))] = reversed_decision(r.decision)
    return out


def _latex_row(row, marks: dict, with_n: bool, keep: tuple[int, ...]) -> str:
    """One LaTeX row: name for a reader, target, reductions, `mean ± std` (with `(n)` where
    the table's n varies), the difference to dense; bold for the best, the verdict mark."""
    dense = row.strategy == DENSE_STRATEGY
    n = (lambda k: f" ({int(k)})") if with_n else (lambda k: "")
    accuracy = f"{row.mean:.2f} ± {fmt(row.std)}{n(row.n)}" if np.isfinite(row.mean) else "–"
    delta = "–"
    if not dense and row.delta_n:
        delta = f"{row.delta_mean:+.2f} ± {fmt(row.delta_std)}{n(row.delta_n)}"
    cells = [latex_escape(c) for c in ("dense" if dense else display_name(row.strategy), f"{row.compression:g}×",
                                       f"{row.params_reduction:.1f}×", f"{row.macs_reduction:.1f}×", accuracy, delta)]
    name = display_name(row.strategy)
    if len(name) > LATEX_NAME_WIDTH and " [" in name:  # a long name: its tags on a second line
        base, tags = name.split(" [", 1)
        cells[0] = rf"\begin{{tabular}}[t]{{@{{}}l@{{}}}}{latex_escape(base)}\\{{}}[{latex_escape(tags)}\end{{tabular}}"
    if row.best:
        cells[4] = rf"\textbf{{{cells[4]}}}"
    mark = marks.get((row.strategy, float(row.compression)))
    if mark in LATEX_MARKS:
        cells[4] += LATEX_MARKS[mark]
    return " & ".join(cells[i] for i in keep) + r" \\"


def _latex_float(rows: pd.DataFrame, options: AnalysisOptions, comparisons, method, model: str, dataset: str,
                 where: str) -> str:
    """One booktabs table (a float) of `rows` of one setting; `where` ends its caption's subject."""
    marks = _verdict_marks(comparisons, method, model, dataset)
    metric = latex_escape(_headers(options)[4])
    counts = set(rows["n"]) | set(rows.loc[rows["delta_n"] > 0, "delta_n"])
    with_n = len(counts) > 1
    over = "(n)" if with_n else f"over {int(next(iter(counts)))} {'units' if counts != {1} else 'unit'}"
    caption = (f"{metric} on {latex_escape(setting_label(model, dataset), breakable=True)}{where}: "
               f"mean $\\pm$ std {over}.")
    if rows["best"].any():
        caption += " Bold: best at its ratio, better than every other method."
    if marks:
        caption += (f" Marks: the verdict of {latex_escape(display_name(method))} against that method, "
                    "$^{+}$ better, $^{-}$ worse, $^{\\approx}$ equivalent.")
    # the target is the parameter reduction (met exactly) unless the targets were speedups
    target = not np.allclose(rows["params_reduction"], rows["compression"], rtol=0.02)
    macs = not np.allclose(rows["macs_reduction"], rows["params_reduction"], rtol=0.1)  # an MLP: the same
    keep = (0,) + ((1,) if target else ()) + (2,) + ((3,) if macs else ()) + (4, 5)
    headers = [h for i, h in enumerate(h for j, h in enumerate(_headers(options)) if j != 5) if i in keep]
    if not macs:
        caption += " MACs fall with the parameters (within 10\\%)."
    columns = len(headers)
    lines = ["% shrinkbench operating-point table; needs \\usepackage{booktabs}",
             f"% {_legend(options)}", f"% Family: {rows['family'].iloc[0]}.",
             r"\begin{table}[t]", r"\centering", rf"\caption{{{caption}}}", r"\setlength{\tabcolsep}{3pt}",
             rf"\begin{{tabular}}{{l{'r' * (columns - 1)}}}",
             r"\toprule", " & ".join(latex_escape(h) for h in headers) + r" \\", r"\midrule"]
    controls = rows["strategy"].map(is_control)
    for part, chosen in (("methods", rows[~controls]), ("controls", rows[controls])):
        if not len(chosen):
            continue
        if part == "controls":
            lines += [r"\midrule", rf"\multicolumn{{{columns}}}{{l}}{{\textit{{Controls}}}} \\"]
        previous = None
        for row in chosen.itertuples():
            if previous is not None and row.compression != previous:
                lines.append(r"\addlinespace")
            previous = row.compression
            lines.append(_latex_row(row, marks, with_n, keep))
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


FLOAT_ROWS = 34
"""A setting whose rows take more lines than this is set as one table per ratio: a float taller
than a page does not compile into one (about 45 lines of a page's body, less its caption and
rules). A long name set on two lines (`_latex_row`) counts two."""


def _latex_lines(rows: pd.DataFrame) -> int:
    """The lines `rows` take in a LaTeX table: two for a long name with tags, else one."""
    names = [display_name(s) for s in rows["strategy"]]
    return sum(2 if len(n) > LATEX_NAME_WIDTH and " [" in n else 1 for n in names)


def table_latex(table: pd.DataFrame, options: AnalysisOptions, comparisons: pd.DataFrame | None = None,
                method: str | None = None) -> str:
    """One booktabs `table` per setting (per setting and ratio where its rows take more than
    `FLOAT_ROWS` lines), to paste into a paper (needs only
    \\usepackage{booktabs}; the document's own font size; no scaling). Methods are listed by
    ratio, the sanity-check controls after them under their own rule; the significantly best
    mean is bold, and with `comparisons` and `method` (a report about one method) each other
    method's cell carries the verdict of `method` against it (+ better, − worse, ≈ equivalent).
    The short caption says what the marks mean; the family and the rule are in % comments."""
    parts = []
    for (model, dataset), rows in table.groupby(SETTING, sort=True):
        if _latex_lines(rows) <= FLOAT_ROWS:
            parts.append(_latex_float(rows, options, comparisons, method, model, dataset, ""))
            continue
        for compression, at in rows.groupby("compression", sort=True):  # one float per ratio fits a page
            parts.append(_latex_float(at, options, comparisons, method, model, dataset,
                                      f" at {compression:g}$\\times$"))
    return "\n".join(parts)


def table_csv(table: pd.DataFrame) -> str:
    return table.to_csv(index=False)
