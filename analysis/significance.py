"""The significance report as tables (Markdown, HTML, terminal text) and machine output
(JSON, CSV): comparisons, curve-level differences, Pareto labels, seed plans."""
from __future__ import annotations

import numpy as np
import pandas as pd

from shrinkbench.analysis.groups import GROUPS
from shrinkbench.analysis.compare import ComparisonReport
from shrinkbench.analysis.decision import DECISION_RULE, decision_text
from shrinkbench.analysis.resample import MIN_BOOTSTRAP_UNITS
from shrinkbench.analysis.files import frame_records
from shrinkbench.analysis.render import TERMINAL_WIDTH, Table, fmt, fmt_p, mean_std_n
from shrinkbench.analysis.runs import SETTING, setting_label
from shrinkbench.analysis.units import BASE_MODELS, ONLY_THESE_WEIGHTS
from shrinkbench.analysis.schema import rope_unit

INTERVALS_NOTE = ("Δ: the unadjusted 95% interval of the one comparison, for reference only; simultaneous: "
                  "the interval over the family (1 − α/m) that decided the verdict. p (deciding): the adjusted "
                  "p-value that decided, min(1, m·p) of the difference test, or, marked (eq.), min(1, 2m·p) of "
                  "the equivalence test (TOST); it is below α exactly when the interval excludes 0 (inside ±ROPE). "
                  "Share better: the share of units where the method is better (a count, not a probability).")


def family_tag(row) -> str:
    """`m=5` (the family's name is the table's title)."""
    return f"m={int(row.family_size)}"


def deciding_p(row) -> str:
    """The adjusted p-value that decided the row: `0.012`, or `0.003 (eq.)` for equivalence."""
    text = fmt_p(row.p_deciding)
    return f"{text} (eq.)" if getattr(row, "p_deciding_test", "") == "equivalence" else text


def replication_text(rows: pd.DataFrame) -> str:
    """What n counts, e.g. 'n = base models (run seeds averaged within each)'."""
    kinds = set(rows["replication"]) if "replication" in rows.columns else {BASE_MODELS}
    if kinds == {BASE_MODELS}:
        return "n counts base models (the run seeds of one base model are averaged first)"
    return (f"n counts the run seeds of ONE base model: every verdict holds for {ONLY_THESE_WEIGHTS}")


def _grouped(row) -> str:
    """`lamp (layer allocation)`: a baseline with its group."""
    group = getattr(row, "baseline_group", "")
    return f"{row.baseline} ({group})" if group and group != "user" else row.baseline


def by_group(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with their baselines listed by group (analysis.groups), then as compared."""
    if "baseline_group" not in rows.columns:
        return rows
    order = rows["baseline_group"].map(lambda g: GROUPS.index(g) if g in GROUPS else len(GROUPS))
    return rows.assign(_order=order).sort_values("_order", kind="stable")


def comparison_tables(report: ComparisonReport) -> list[Table]:
    """One table per family (a setting and its declared set of comparisons)."""
    o = report.options
    tables = []
    for family, rows in report.comparisons.groupby("family", sort=False):
        body = []
        rows = by_group(rows)
        for r in rows.itertuples():
            body.append([
                f"{r.compression:g}×", r.method, _grouped(r), r.test, f"{r.n_method}/{r.n_baseline}",
                mean_std_n(r.mean_method, r.std_method, r.n_method),
                mean_std_n(r.mean_baseline, r.std_baseline, r.n_baseline),
                f"{r.difference:+.2f} [{fmt(r.ci_low)}, {fmt(r.ci_high)}]", f"[{fmt(r.sim_low)}, {fmt(r.sim_high)}]",
                fmt_p(r.p_value), deciding_p(r), f"{fmt(r.effect_size)} ({r.effect_size_kind})",
                fmt(r.share_better), fmt(r.mde), decision_text(r), family_tag(r)])
        first = rows.iloc[0]
        notes = "; ".join(sorted({n for n in rows["note"] if n and n != ONLY_THESE_WEIGHTS}))
        tables.append(Table(
            family, ["Ratio", "Method", "Baseline", "Test", "n", "Method mean", "Baseline mean",
                     f"Δ [{o.confidence:.0%} CI, unadjusted]", "Simultaneous CI (decides)", "p (unadjusted)",
                     "p (deciding)", "Effect", "Share better", "MDE", "Decision", "Family"],
            body, ["r", "l", "l", "l", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r", "l", "l"],
            f"Family: {family} (m={int(first['family_size'])}); {replication_text(rows)}. "
            f"ROPE ±{o.rope:g} {rope_unit(o.metric)}, α={o.alpha:g}. {DECISION_RULE} {INTERVALS_NOTE}"
            + (f" Notes: {notes}." if notes else "")))
    return tables


CURVE_RANGE_NOTE = ("Each unit's curve of pruned runs is interpolated with PCHIP in log2(compression) and averaged "
                    "over the range (stated) that every curve of the pair measured; the dense model at 1× is no "
                    "part of it and nothing is extrapolated.")

NAME_LIMIT = 24
"""A method name longer than this becomes a short key (m1, m2, ...) in a compact table that
would not fit the terminal, its full name in the table's note."""


def _short_names(names, limit: int | None) -> dict[str, str]:
    """name -> what the compact table shows: itself, or a key (m1, m2, ...) where it is longer
    than `limit` (None: no limit)."""
    keys, out = iter(range(1, 10_000)), {}
    for name in sorted(set(names)):
        out[name] = name if limit is None or len(name) <= limit else f"m{next(keys)}"
    return out


def _legend(short: dict[str, str]) -> str:
    pairs = [f"{key} = {name}" for name, key in sorted(short.items(), key=lambda kv: kv[1]) if key != name]
    return (" Names: " + "; ".join(pairs) + ".") if pairs else ""


def _fitted(build) -> Table:
    """`build(limit)` with the longest name limit (none, then NAME_LIMIT, 12, 0) at which it
    fits the terminal; the last try keys every name."""
    for limit in (None, NAME_LIMIT, 12, 0):
        table = build(limit)
        if max(len(line) for line in table.text(TERMINAL_WIDTH).splitlines()) <= TERMINAL_WIDTH:
            break
    return table


def compact_comparison_tables(report: ComparisonReport) -> list[Table]:
    """The comparisons for a terminal (within 100 columns: long method names become keys
    named in the note): ratio, baseline, n, the difference with the simultaneous interval that
    decided, the deciding p and the decision; the full tables are in the files."""
    tables = []
    for family, rows in report.comparisons.groupby("family", sort=False):
        def build(limit: int | None, rows=rows, family=family) -> Table:
            short = _short_names(rows["baseline"], limit)
            body, group, headings = [], None, set()
            for r in by_group(rows).itertuples():
                now = getattr(r, "baseline_group", "")
                if now and now != "user" and now != group:  # the baselines' group as a heading row
                    headings.add(len(body))
                    body.append(["", f"({now})", "", "", "", ""])
                group = now
                body.append([f"{r.compression:.3g}×", short[r.baseline], f"{r.n_method}/{r.n_baseline}",
                             f"{r.difference:+.2f} [{fmt(r.sim_low)}, {fmt(r.sim_high)}]", deciding_p(r),
                             decision_text(r)])
            return Table(f"{family} (m={int(rows['family_size'].iloc[0])})",
                         ["Ratio", "Baseline", "n", "Δ [sim. CI]", "p (deciding)", "Decision"], body,
                         ["r", "l", "r", "r", "r", "l"],
                         f"Δ [sim. CI]: the difference with the simultaneous interval that decided (equivalent: "
                         f"inside ±ROPE; better/worse: excludes 0). p (deciding): the adjusted p of the difference "
                         f"test, or (eq.) of the equivalence test. {replication_text(rows)}. "
                         f"ROPE ±{report.options.rope:g} {rope_unit(report.options.metric)}, "
                         f"α={report.options.alpha:g}.{_legend(short)}", headings=headings)
        tables.append(_fitted(build))
    return tables


def compact_curve_level_table(report: ComparisonReport) -> Table:
    """The curve-level comparisons for a terminal (within 100 columns, as above)."""
    levels = report.curve_level
    ranges = {(fmt(r.x_from, 0), fmt(r.x_to, 0)) for r in levels.itertuples()}
    one_range = len(ranges) == 1
    families = "; ".join(f"{f} (m={int(m)})" for f, m in levels[["family", "family_size"]].drop_duplicates()
                         .itertuples(index=False)) if len(levels) else "none"
    span = f" over {'–'.join(next(iter(ranges)))}×" if one_range else ""

    def build(limit: int | None) -> Table:
        short = _short_names(list(levels["method"]) + list(levels["baseline"]), limit)
        body = [[short[r.method], short[r.baseline], f"{r.difference:+.2f} [{fmt(r.sim_low)}, {fmt(r.sim_high)}]"]
                + ([] if one_range else [f"{fmt(r.x_from, 0)}–{fmt(r.x_to, 0)}×"]) + [deciding_p(r), decision_text(r)]
                for r in levels.itertuples()]
        return Table(f"Curve level: mean difference over the pruned range{span}",
                     ["Method", "Baseline", "Δ [sim. CI]"] + ([] if one_range else ["Range"]) + ["p (deciding)", "Decision"],
                     body, ["l", "l", "r"] + ([] if one_range else ["r"]) + ["r", "l"],
                     f"Δ [sim. CI]: the difference with the simultaneous interval that decided. {CURVE_RANGE_NOTE} "
                     f"Families: {families}.{_legend(short)}")
    return _fitted(build)


def curve_level_table(report: ComparisonReport) -> Table:
    o = report.options
    levels = report.curve_level
    bootstrap = o.interval == "bootstrap"
    body = []
    for r in levels.itertuples():
        row = [setting_label(r.model, r.dataset), r.method, r.baseline,
               f"{r.difference:+.2f} [{fmt(r.ci_low)}, {fmt(r.ci_high)}]", f"[{fmt(r.sim_low)}, {fmt(r.sim_high)}]"]
        if bootstrap:
            row.append(f"[{fmt(r.boot_low)}, {fmt(r.boot_high)}]")
        row += [f"{fmt(r.x_from)}–{fmt(r.x_to)}×", f"{r.n_method}/{r.n_baseline}", r.test, fmt_p(r.p_value),
                deciding_p(r), decision_text(r), family_tag(r)]
        body.append(row)
    headers = ["Setting", "Method", "Baseline", f"Δ curve [{o.confidence:.0%} Student-t CI, unadjusted]",
               "Simultaneous CI (decides)"]
    headers += [f"bootstrap {o.confidence:.0%} (valid from n = {MIN_BOOTSTRAP_UNITS})"] if bootstrap else []
    headers += ["Range", "n", "Test", "p (unadjusted)", "p (deciding)", "Decision", "Family"]
    families = "; ".join(f"{f} (m={int(m)})" for f, m in levels[["family", "family_size"]].drop_duplicates()
                         .itertuples(index=False)) if len(levels) else "none"
    note = (f"{CURVE_RANGE_NOTE} The per-unit levels are compared like one operating point. "
            f"Families: {families}. {DECISION_RULE}")
    if bootstrap:
        note += (f" The bootstrap resamples whole units (B={o.n_boot}, generator seed {o.seed}); below "
                 f"{MIN_BOOTSTRAP_UNITS} units it under-covers and the Student-t interval is the one to read.")
    return Table("Curve level: mean difference over the pruned log2-compression range", headers, body,
                 ["l", "l", "l", "r", "r"] + (["r"] if bootstrap else []) + ["r", "r", "l", "r", "r", "l", "l"], note)


def pareto_table(labels: pd.DataFrame) -> Table:
    body = []
    for (model, dataset, axis, strategy), rows in labels.groupby(SETTING + ["axis", "strategy"], sort=True):
        by_label = dict(tuple(rows.groupby("label", sort=False)))

        def pick(label: str) -> str:
            chosen = by_label.get(label, rows.iloc[:0])
            if label == "dominated":
                return ", ".join(f"{c:g}× (by {b})" for c, b in zip(chosen["compression"], chosen["dominated_by"]))
            return ", ".join(f"{c:g}×" for c in chosen["compression"])
        body.append([setting_label(model, dataset), axis, strategy, pick("pareto"), pick("not separable"),
                     pick("dominated")])
    return Table("Pareto labels with uncertainty", ["Setting", "Axis", "Method", "Pareto-optimal",
                                                    "Not separable", "Dominated"], body,
                 note="Read from the verdicts of the comparisons above, no test of its own: a point is "
                      "dominated where the decision rule called another method at the same target, at least as "
                      "compressed (or fast), better; 'not separable': a point at least as compressed (or fast) "
                      "has a higher mean, but no verdict says it is better.")


def seed_plan_table(plan: pd.DataFrame) -> Table:
    def seeds(value) -> str:
        return "–" if not np.isfinite(value) else f"{int(value)}"

    first = plan.iloc[0]
    level = f"{first['sd_confidence']:.0%}"
    body = [[setting_label(r.model, r.dataset), f"{r.compression:g}×", r.strategy, str(r.pilot_n), fmt(r.sd),
             fmt(r.sd_upper), r.design, fmt(r.current_power), seeds(r.seeds_needed), seeds(r.seeds_equivalence)]
            for r in plan.itertuples()]
    return Table(f"Seeds needed to detect a difference of {first['target']:g} points, or to show equivalence "
                 f"within ±{first['rope']:g}",
                 ["Setting", "Ratio", "Method", "Pilot n", "SD", f"SD, {level} upper limit", "Design", "Power now",
                  "Seeds: difference", "Seeds: equivalence"], body,
                 ["l", "r", "l", "r", "r", "r", "l", "r", "r", "r"],
                 f"Planned with the pilot SD's upper one-sided {level} confidence limit, SD·sqrt(df/χ²), not the "
                 f"SD itself (a 3-seed SD is often far too small). Level α/m = {first['alpha']:.3g} "
                 f"(α={first['alpha'] * first['family_size']:g}, m={int(first['family_size'])}: the level of the "
                 f"family `compare` decides in), target power {first['power']:.0%}. Difference: the simultaneous "
                 f"interval excludes 0 when the true difference is the target (noncentral t); power now: the pilot's "
                 f"n at the upper SD. Equivalence: the interval lies inside ±{first['rope']:g} when the true "
                 "difference is 0. Seeds are units of replication: base models, each with its own run seed. "
                 "Paired: SD of per-unit differences; unpaired: SD per method, n per method.")


def report_dict(report: ComparisonReport, pareto: pd.DataFrame, extra: dict | None = None) -> dict:
    """Everything as plain JSON-ready data."""
    return {"options": report.options.to_dict(), "generator_seed": report.options.seed,
            **(extra or {}), "comparisons": frame_records(report.comparisons),
            "curve_level": frame_records(report.curve_level), "pareto": frame_records(pareto),
            "warnings": list(report.warnings)}
