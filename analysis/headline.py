"""The verdict first: a short summary of a significance report, one block per setting.

For each setting (model x dataset) the summary names

- the best method: the pruning strategy with the best mean (in the metric's direction) at
  the most target ratios (ties: the better mean over those ratios), and the ratios where the
  table marks it significantly best (better than every other method by the decision rule);
- the method of interest (the one a `--method` names, else that best method) and, from the
  report's own rows, what it is better than, equivalent to, worse than and inconclusive
  against, each baseline with the ratios of that verdict, inconclusive ones marked
  underpowered where the family's minimum detectable effect exceeds the ROPE;
- its curve-level verdicts (mean difference over whole curves) where the report has them;
- n (what the units are) and the family each verdict was adjusted in, with its size m.

Nothing here decides anything: every verdict is read from the rows that
`shrinkbench.analysis.decision` decided, so the summary cannot disagree with the tables below
it. Rendered as text wrapped to a width (the terminal: 100 columns) and as Document blocks.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shrinkbench.analysis.decision import decision_text, reversed_decision
from shrinkbench.analysis.render import TERMINAL_WIDTH, fmt
from shrinkbench.analysis.runs import SETTING, setting_label
from shrinkbench.analysis.schema import DENSE_STRATEGY
from shrinkbench.analysis.significance import compact_comparison_tables, compact_curve_level_table
from shrinkbench.analysis.units import BASE_MODELS, ONLY_THESE_WEIGHTS

VERDICT_ORDER = (("better", "better than"), ("equivalent", "equivalent to"), ("worse", "worse than"),
                 ("underpowered", "inconclusive, underpowered"), ("inconclusive", "inconclusive"))


@dataclass(frozen=True)
class SettingSummary:
    """What one setting's report says, in words (see the module docstring)."""

    label: str
    best: str
    best_ratios: tuple[float, ...]
    marked_ratios: tuple[float, ...]
    focus: str
    n_text: str
    general: bool
    verdicts: tuple[tuple[str, str], ...]  # (verdict label, "baseline (ratios); ...")
    families: tuple[str, ...]
    curve: tuple[str, ...]

    def lines(self) -> list[str]:
        """The block as unwrapped lines: a headline, then one item per verdict and family."""
        head = f"{self.label} ({self.n_text}): best mean {self.best} at {ratio_list(self.best_ratios)}"
        if self.marked_ratios:
            head += f", significantly best at {ratio_list(self.marked_ratios)}"
        items = [f"{self.focus} per ratio, {name}: {which}" for name, which in self.verdicts]
        if self.curve:
            items.append(f"{self.focus} over whole curves: " + "; ".join(self.curve))
        items += [f"family: {family}" for family in self.families]
        if not self.general:
            items.append(f"every verdict holds for {ONLY_THESE_WEIGHTS} (one base model)")
        return [head] + [f"  - {item}" for item in items]


def ratio_list(ratios) -> str:
    """`2–8×, 32×`: runs of consecutive ratios of the doubling ladder joined."""
    ratios = sorted(float(r) for r in ratios)
    if not ratios:
        return "no ratio"
    groups, start, previous = [], ratios[0], ratios[0]
    for r in ratios[1:]:
        if np.isclose(r, previous * 2):
            previous = r
            continue
        groups.append((start, previous))
        start = previous = r
    groups.append((start, previous))
    return ", ".join(f"{a:.3g}×" if a == b else f"{a:.3g}–{b:.3g}×" for a, b in groups)


def _budget_group(points: pd.DataFrame, focus: str | None) -> tuple[pd.DataFrame, str]:
    """The pruned points of one training budget (the focus method's, else the most common one)
    and, where the table holds several budgets, the words naming it: methods of different
    budgets are never ranked together."""
    pruned = points[points["strategy"] != DENSE_STRATEGY]
    if "budget" not in pruned.columns or pruned["budget"].nunique() <= 1:
        return pruned, ""
    mine = pruned.loc[pruned["strategy"] == focus, "budget"]
    budget = mine.iloc[0] if len(mine) else pruned.groupby("budget")["strategy"].nunique().idxmax()
    return pruned[pruned["budget"] == budget], f" among methods trained {budget}"


def _best_method(points: pd.DataFrame, higher_is_better: bool) -> tuple[str, tuple[float, ...]]:
    """The strategy with the best mean at the most ratios, and those ratios."""
    sign = 1.0 if higher_is_better else -1.0
    pruned = points[points["strategy"] != DENSE_STRATEGY]
    wins: dict[str, list[float]] = {}
    for compression, at in pruned.groupby("compression"):
        winner = at.loc[(sign * at["mean"]).idxmax(), "strategy"]
        wins.setdefault(winner, []).append(float(compression))
    level = pruned.groupby("strategy")["mean"].mean() * sign
    best = max(wins, key=lambda s: (len(wins[s]), level.get(s, -np.inf)))
    return best, tuple(wins[best])


def _rows_of(comparisons: pd.DataFrame, focus: str) -> pd.DataFrame:
    """The report's rows of `focus` against each other method, read as focus - other."""
    direct = comparisons[comparisons["method"] == focus].assign(other=lambda f: f["baseline"])
    reverse = comparisons[comparisons["baseline"] == focus].copy()
    if len(reverse):
        reverse["other"] = reverse["method"]
        reverse["decision"] = reverse["decision"].map(reversed_decision)
        reverse["difference"] = -reverse["difference"]
    return pd.concat([direct, reverse], ignore_index=True)


def _verdicts(rows: pd.DataFrame) -> tuple[tuple[str, str], ...]:
    kinds = np.where((rows["decision"] == "inconclusive") & rows["underpowered"].astype(bool),
                     "underpowered", rows["decision"])
    rows = rows.assign(kind=kinds)
    out = []
    for kind, label in VERDICT_ORDER:
        chosen = rows[rows["kind"] == kind]
        if len(chosen):
            parts = [f"{other} ({ratio_list(group['compression'])})"
                     for other, group in chosen.groupby("other", sort=True)]
            out.append((label, "; ".join(parts)))
    return tuple(out)


def _curve(levels: pd.DataFrame, focus: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    rows = _rows_of(levels, focus) if len(levels) else levels
    if not len(rows):
        return (), ()
    grouped: dict[str, list[str]] = {}  # verdict -> "other +d [low, high]", one entry per verdict
    for r in rows.sort_values("other").itertuples():
        low, high = (r.sim_low, r.sim_high) if r.method == focus else (-r.sim_high, -r.sim_low)
        grouped.setdefault(decision_text(r), []).append(f"{r.other} {r.difference:+.2f} [{fmt(low)}, {fmt(high)}]")
    order = {"better": 0, "equivalent": 1, "worse": 2}
    text = [f"{verdict}: {', '.join(items)}" for verdict, items in
            sorted(grouped.items(), key=lambda kv: (order.get(kv[0].split(" ")[0], 3), kv[0]))]
    families = tuple(f"{f} (m={int(m)})"
                     for f, m in rows[["family", "family_size"]].drop_duplicates().itertuples(index=False))
    return tuple(text), families


def summarize_settings(report, table: pd.DataFrame, method: str | None = None) -> list[SettingSummary]:
    """One `SettingSummary` per setting of `table` (an `operating_point_table`), its verdicts
    read from `report` (a `ComparisonReport`, or None when no pair could be compared)."""
    options = report.options if report is not None else None
    higher = options.higher_is_better if options is not None else True
    out = []
    for (model, dataset), points in table.groupby(SETTING, sort=True):
        if not (points["strategy"] != DENSE_STRATEGY).any():
            continue
        group, among = _budget_group(points, method)
        best, best_ratios = _best_method(group, higher)
        marked = tuple(float(c) for c in points.loc[points["best"] & (points["strategy"] == best), "compression"])
        focus = method if method is not None else best
        verdicts, families, curve, general, n_text = (), (), (), True, "no comparison"
        if report is not None:
            mine = report.comparisons[(report.comparisons["model"] == model) & (report.comparisons["dataset"] == dataset)]
            rows = _rows_of(mine, focus)
            if len(rows):
                verdicts = _verdicts(rows)
                families = tuple(f"{f} (m={int(m)})" for f, m in
                                 rows[["family", "family_size"]].drop_duplicates().itertuples(index=False))
                general = bool(rows["general"].all())
                n = int(np.minimum(rows["n_method"], rows["n_baseline"]).min())
                most = int(np.maximum(rows["n_method"], rows["n_baseline"]).max())
                what = "base models" if set(rows["replication"]) == {BASE_MODELS} else "run seeds of one base model"
                n_text = f"n = {n} {what}" if n == most else f"n = {n}–{most} {what}"
            levels = report.curve_level
            if len(levels):
                levels = levels[(levels["model"] == model) & (levels["dataset"] == dataset)]
            curve, curve_families = _curve(levels, focus)
            families += curve_families
        out.append(SettingSummary(setting_label(model, dataset), best + among, best_ratios, marked, focus, n_text,
                                  general, verdicts, families, curve))
    return out


def summary_text(summaries: list[SettingSummary], width: int = TERMINAL_WIDTH) -> str:
    """The summary for a terminal: every line wrapped to `width` columns."""
    lines = ["SUMMARY (verdicts of the decision rule; the tables below and the report give every number)"]
    for summary in summaries:
        for line in summary.lines():
            indent = "      " if line.startswith("  - ") else "    "
            lines += textwrap.wrap(line, width, subsequent_indent=indent, break_on_hyphens=False) or [""]
    return "\n".join(lines) + "\n"


def terminal_verdicts(report, table: pd.DataFrame, method: str | None, tables=()) -> list[str]:
    """What `compare` and the benchmark print, within TERMINAL_WIDTH columns: the summary,
    then `tables` (e.g. the operating points), the compact comparisons and the compact
    curve-level table of `report` (a `ComparisonReport`)."""
    parts = [summary_text(summarize_settings(report, table, method), TERMINAL_WIDTH)]
    parts += [t.text(TERMINAL_WIDTH) for t in [*tables, *compact_comparison_tables(report),
                                               compact_curve_level_table(report)]]
    return parts


def add_summary(doc, summaries: list[SettingSummary]) -> None:
    """The summary as Document blocks (a heading, then per setting a headline and its items)."""
    doc.heading("Summary")
    if not summaries:
        doc.para("No pruned runs to summarize.")
    for summary in summaries:
        head, *rest = summary.lines()
        doc.para(head)
        doc.items([line.removeprefix("  - ") for line in rest])
