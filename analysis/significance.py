"""The significance report as tables (Markdown, HTML, terminal text) and machine output
(JSON, CSV): comparisons, curve-level differences, Pareto labels, seed plans."""
from __future__ import annotations

import numpy as np
import pandas as pd

from shrinkbench.analysis.compare import ComparisonReport
from shrinkbench.analysis.files import frame_records
from shrinkbench.analysis.render import Table, fmt, fmt_p, mean_std_n
from shrinkbench.analysis.runs import SETTING, setting_label

DECISION_RULE = ("Decision: equivalent if the Holm-adjusted TOST p < α (difference inside ±ROPE); "
                 "else better/worse if the Holm-adjusted p < α; else inconclusive, marked "
                 "underpowered when the minimum detectable effect (80% power at α/m) exceeds the ROPE.")


def _decision(row) -> str:
    text = row.decision + (" (underpowered)" if row.underpowered else "")
    return text + ("*" if row.note else "")


def comparison_tables(report: ComparisonReport) -> list[Table]:
    """One table per family (a setting and its declared set of comparisons)."""
    o = report.options
    tables = []
    for family, rows in report.comparisons.groupby("family", sort=False):
        body = []
        for r in rows.itertuples():
            body.append([
                f"{r.compression:g}×", r.method, r.baseline, r.test, f"{r.n_method}/{r.n_baseline}",
                mean_std_n(r.mean_method, r.std_method, r.n_method),
                mean_std_n(r.mean_baseline, r.std_baseline, r.n_baseline),
                f"{r.difference:+.2f} [{fmt(r.ci_low)}, {fmt(r.ci_high)}]", fmt_p(r.p_value),
                fmt_p(r.p_adjusted), f"{fmt(r.effect_size)} ({r.effect_size_kind})",
                fmt(r.prob_improvement), fmt(r.mde), _decision(r)])
        first = rows.iloc[0]
        notes = "; ".join(sorted({n for n in rows["note"] if n}))
        tables.append(Table(
            family, ["Ratio", "Method", "Baseline", "Test", "n", "Method mean", "Baseline mean",
                     f"Δ [{o.confidence:.0%} CI]", "p", "p (Holm)", "Effect", "P(better)", "MDE", "Decision"],
            body, ["r", "l", "l", "l", "r", "r", "r", "r", "r", "r", "r", "r", "r", "l"],
            f"Family: {family} (Holm, m={int(first['family_size'])}). ROPE ±{o.rope:g} points, "
            f"α={o.alpha:g}. {DECISION_RULE}" + (f" *{notes}." if notes else "")))
    return tables


def curve_level_table(report: ComparisonReport) -> Table:
    o = report.options
    body = [[setting_label(r.model, r.dataset), r.method, r.baseline,
             f"{r.difference:+.2f}" if np.isfinite(r.difference) else "no overlap",
             f"[{fmt(r.boot_low)}, {fmt(r.boot_high)}]", f"[{fmt(r.t_low)}, {fmt(r.t_high)}]",
             f"{fmt(r.compression_from)}–{fmt(r.compression_to)}×", f"{r.n_method}/{r.n_baseline}",
             "paired" if r.paired else "unpaired"]
            for r in report.curve_level.itertuples()]
    return Table("Curve level: mean difference over the shared log2-compression range",
                 ["Setting", "Method", "Baseline", "Δ curve", f"bootstrap {o.confidence:.0%}",
                  f"Student-t {o.confidence:.0%}", "Range", "n", "Design"], body,
                 ["l", "l", "l", "r", "r", "r", "r", "r", "l"],
                 "Each seed's curve is interpolated with PCHIP in log2(compression) and averaged over the "
                 "range every curve covers (never extrapolated); the bootstrap resamples whole seeds "
                 f"(B={o.n_boot}, generator seed {o.seed}).")


def pareto_table(labels: pd.DataFrame) -> Table:
    body = []
    for (model, dataset, axis, strategy), rows in labels.groupby(SETTING + ["axis", "strategy"], sort=True):
        def pick(label: str) -> str:
            chosen = rows[rows["label"] == label]
            if label == "dominated":
                return ", ".join(f"{c:g}× (by {b})" for c, b in zip(chosen["compression"], chosen["dominated_by"]))
            return ", ".join(f"{c:g}×" for c in chosen["compression"])
        body.append([setting_label(model, dataset), axis, strategy, pick("pareto"), pick("not separable"),
                     pick("dominated")])
    return Table("Pareto labels with uncertainty", ["Setting", "Axis", "Method", "Pareto-optimal",
                                                    "Not separable", "Dominated"], body,
                 note="A point is dominated when another point at least as compressed (or fast) is more "
                      "accurate with the lower bound of the difference's 95% interval above zero; "
                      "'not separable' means a more accurate point exists but its interval does not clear.")


def seed_plan_table(plan: pd.DataFrame) -> Table:
    body = [[setting_label(r.model, r.dataset), f"{r.compression:g}×", r.strategy, str(r.pilot_n), fmt(r.sd),
             r.design, fmt(r.current_power), "–" if not np.isfinite(r.seeds_needed) else f"{int(r.seeds_needed)}"]
            for r in plan.itertuples()]
    first = plan.iloc[0]
    return Table(f"Seeds needed to detect a difference of {first['target']:g} points",
                 ["Setting", "Ratio", "Method", "Pilot n", "SD", "Design", "Power now", "Seeds needed"], body,
                 ["l", "r", "l", "r", "r", "l", "r", "r"],
                 f"Two-sided t-test at α={first['alpha']:.3g}, target power {first['power']:.0%} "
                 "(noncentral t). Paired: SD of per-seed differences; unpaired: SD per method, n per method.")


def report_dict(report: ComparisonReport, pareto: pd.DataFrame, extra: dict | None = None) -> dict:
    """Everything as plain JSON-ready data."""
    return {"options": report.options.to_dict(), "generator_seed": report.options.seed,
            **(extra or {}), "comparisons": frame_records(report.comparisons),
            "curve_level": frame_records(report.curve_level), "pareto": frame_records(pareto),
            "warnings": list(report.warnings)}
