"""Findings as text: comparison rows (from `shrinkbench.analysis.compare` or `shrinkbench.analysis.matched`) turned
into Markdown tables and into verdicts on a claim of the paper.

A claim is adjusted as a claim: `claim_rows` gathers EVERY test a finding draws on (a claim
"supported if any of k families shows a difference" draws on all k) into one declared
family named after the claim, and its verdict reads the decisions of that family (see
`shrinkbench.analysis.decision`: every row decided from the family's simultaneous interval):
`supported` when the claimed direction is significant somewhere and the opposite nowhere;
`contradicted` when only the opposite is; `mixed` when both are; `equivalent` when every
point is shown to lie inside the ROPE; otherwise `not shown` (no significant difference).
Every number in a sentence comes from a row: difference, its unadjusted 95% interval (for
reference), the family's simultaneous interval (the one that decided), the test, the
deciding adjusted p-value with its family size, and n.
"""
from __future__ import annotations

import math

import pandas as pd

from shrinkbench.analysis.decision import adjust_family
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.render import Table, fmt, fmt_p, mean_std_n
from shrinkbench.analysis.units import ONLY_THESE_WEIGHTS

VERDICTS = ("supported", "contradicted", "mixed", "equivalent", "not shown")


def join(items) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def x_text(value: float | str, unit: str = "×") -> str:
    """`4×` for a number; a named operating point (`2:4`, `70%`) as it is."""
    return f"{value}{unit}" if isinstance(value, str) else f"{value:.3g}{unit}"


def evidence(row, x_column: str = "compression", unit: str = "×") -> str:
    """One comparison as a sentence fragment with its test."""
    return f"at {x_text(getattr(row, x_column), unit)}: {row.difference:+.2f} points {tested(row)}"


def claim_rows(frames, claim: str, options: AnalysisOptions) -> pd.DataFrame:
    """Every test a claim draws on, decided together as ONE family named after the claim
    (the families the rows came from are kept in `source_family`)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["family", "family_size", "decision"])
    rows = pd.concat(frames, ignore_index=True)
    rows["source_family"] = rows["family"]
    return adjust_family(rows, options, family=f"claim: {claim}")


def n_text(row) -> str:
    units = "base models" if getattr(row, "general", True) else "run seeds of one base model"
    return (f"n = {int(row.n_pairs)} paired {units}" if row.n_pairs
            else f"n = {int(row.n_method)}/{int(row.n_baseline)} {units}")


def tested(row) -> str:
    """`[95% CI a, b unadjusted; simultaneous c, d], paired t, adjusted p = ... (family of m), n = ...`"""
    caveat = "" if getattr(row, "general", True) else f", {ONLY_THESE_WEIGHTS}"
    return (f"[95% CI {fmt(row.ci_low)}, {fmt(row.ci_high)} unadjusted; simultaneous over the family "
            f"{fmt(row.sim_low)}, {fmt(row.sim_high)}], {row.test}, adjusted {p_text(row.p_deciding)}"
            f"{' (equivalence test)' if getattr(row, 'p_deciding_test', '') == 'equivalence' else ''} "
            f"(family of {int(row.family_size)}), {n_text(row)}{caveat}")


def p_text(p) -> str:
    """`p = 0.012` or `p < 0.001`."""
    text = fmt_p(p)
    return f"p {text[0]} {text[1:]}" if text.startswith("<") else f"p = {text}"


def level_evidence(row, what: str) -> str:
    """A curve-level comparison (`shrinkbench.analysis.matched.compare_curve_levels`) as a sentence fragment;
    `what` names the x axis in the plural ("compressions")."""
    return (f"{row.difference:+.2f} points on average over {what} {x_text(row.x_from)}–{x_text(row.x_to)} "
            f"{tested(row)}; minimum detectable effect at 80% power {fmt(row.mde)} points")


def family_text(rows: pd.DataFrame) -> str:
    """`12 tests, simultaneous intervals` for the family of a claim's rows."""
    if not len(rows):
        return "no tests"
    m = int(rows["family_size"].iloc[0])
    return f"{m} test{'s' if m != 1 else ''}, simultaneous intervals"


def verdict(rows: pd.DataFrame, expected: int, any_direction: bool = True) -> str:
    """`expected` = +1 when the claim says the method beats the baseline, -1 when worse.
    With `any_direction` False the claim is existential ("X can happen"): supported when the
    claimed direction is significant somewhere, whatever the opposite does elsewhere."""
    if rows.empty:
        return "not shown"
    claimed = "better" if expected > 0 else "worse"
    opposite = "worse" if expected > 0 else "better"
    has_claimed = (rows["decision"] == claimed).any()
    has_opposite = (rows["decision"] == opposite).any()
    if not any_direction:
        return "supported" if has_claimed else "not shown"
    if has_claimed and has_opposite:
        return "mixed"
    if has_claimed:
        return "supported"
    if has_opposite:
        return "contradicted"
    if (rows["decision"] == "equivalent").all():
        return "equivalent"
    return "not shown"


def summary_sentence(rows: pd.DataFrame, expected: int, x_column: str = "compression", unit: str = "×") -> str:
    """Where the method is significantly better / worse / equivalent, with the strongest
    evidence for each direction spelled out."""
    parts = []
    for decision, word in (("better", "significantly higher"), ("worse", "significantly lower"),
                           ("equivalent", "equivalent within the ROPE")):
        chosen = rows[rows["decision"] == decision]
        if chosen.empty:
            continue
        where = ", ".join(x_text(v, unit) for v in chosen[x_column])
        strongest = chosen.loc[chosen["p_adjusted"].idxmin()] if decision != "equivalent" else None
        text = f"{word} at {where}"
        if strongest is not None:
            text += f" (strongest {evidence(strongest, x_column, unit)})"
        parts.append(text)
    rest = rows[rows["decision"] == "inconclusive"]
    if len(rest):
        under = int(rest["underpowered"].sum())
        parts.append(f"inconclusive at {', '.join(x_text(v, unit) for v in rest[x_column])}"
                     + (f" ({under} of them underpowered: the minimum detectable effect exceeds the ROPE)" if under else ""))
    return "; ".join(parts) if parts else "no comparison possible"


def markdown_table(rows: pd.DataFrame, title: str, x_column: str = "compression", x_label: str = "Ratio",
                   unit: str = "×") -> str:
    """The rows of one or more families as a Markdown table."""
    from shrinkbench.analysis.decision import decision_text

    body = [[x_text(getattr(r, x_column), unit), r.method, r.baseline, r.test,
             mean_std_n(r.mean_method, r.std_method, r.n_method),
             mean_std_n(r.mean_baseline, r.std_baseline, r.n_baseline),
             f"{r.difference:+.2f} [{fmt(r.ci_low)}, {fmt(r.ci_high)}]", f"[{fmt(r.sim_low)}, {fmt(r.sim_high)}]",
             fmt_p(r.p_value), fmt_p(r.p_deciding) + (" (eq.)" if r.p_deciding_test == "equivalence" else ""),
             fmt(r.mde), decision_text(r)]
            for r in rows.itertuples()]
    headers = [x_label, "Method", "Baseline", "Test", "Method mean ± std (n)", "Baseline mean ± std (n)",
               "Δ [95% CI, unadjusted]", "Simultaneous CI (decides)", "p (unadjusted)", "p (deciding)", "MDE",
               "Decision"]
    align = ["r", "l", "l", "l", "r", "r", "r", "r", "r", "r", "r", "l"]
    families = "; ".join(f"{f} (m={int(m)})" for f, m in rows[["family", "family_size"]].drop_duplicates().itertuples(index=False))
    return Table(title, headers, body, align, f"Families: {families}. Each verdict is decided by the simultaneous "
                 "interval beside it (inside ±ROPE: equivalent; excluding 0: better/worse).").markdown(level=4)


def llm_claim_line(claim: str, verdict_: str, model: str, rows: pd.DataFrame, where=lambda row: "",
                   empty: str = "") -> str:
    """`- **CLAIM — SUPPORTED for MODEL** (claim family: ...): each row as `method minus baseline:
    +d ppl, decision (its test)`` for a language-model figure; `where(row)` prefixes a row's
    setting, `empty` stands where there are no rows."""
    evidence = "; ".join(f"{where(r)}{r.method} minus {r.baseline}: {r.difference:+.2f} ppl, {r.decision} "
                         f"({tested(r)})" for r in rows.itertuples()) or empty
    return f"- **{claim} — {verdict_.upper()} for {model}** (claim family: {family_text(rows)}): {evidence}."


def llm_options_line(options: AnalysisOptions) -> str:
    """`options_line` for a language-model figure: perplexity points, calibration seeds as n."""
    return options_line(options).replace("points", "ppl").replace("n counts base models", "n counts calibration seeds")


def options_line(options: AnalysisOptions) -> str:
    return (f"Response {options.response}; α = {options.alpha:g}; ROPE ±{options.rope:g} points; "
            f"95% intervals (unadjusted, and simultaneous over each family by Bonferroni); decision rule of "
            f"`shrinkbench.analysis.decision` (every verdict from its family's simultaneous interval, MDE at 80% power); "
            f"n counts base models.")


def finite(value) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)
