"""`shrinkbench report`: figures, tables and the significance report in one folder,
as Markdown and as ONE self-contained HTML page (figures embedded as base64 PNG), plus
the numbers as CSV and JSON for other tools.

Layout of `<out>/`: `report.md`, `report.html`, `summary.json`, `figures/*.png|pdf`,
`tables/operating_points.{md,tex,csv}`, `significance/{comparisons,curve_level,pareto}.csv`,
`significance/significance.{json,md}`.
"""
from __future__ import annotations

import base64
import functools
import html
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from shrinkbench.analysis.across_report import add_across_section
from shrinkbench.analysis.background import saving_in_background, wait_for_writers
from shrinkbench.analysis.bands import curve_points
from shrinkbench.analysis.compare import all_pairs_family, compare, method_pairs
from shrinkbench.analysis.ties import tie_warnings
from shrinkbench.analysis.curves import (AXES, MEASURED_AXES, build_and_save_figure, curve_figure, save_figure,
                                         speedup_gap_figure)
from shrinkbench.analysis.errors import AnalysisError
from shrinkbench.analysis.files import to_json, write_text
from shrinkbench.analysis.headline import add_summary, summarize_settings
from shrinkbench.analysis.load import StoreScan
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.pareto import pareto_labels
from shrinkbench.analysis.render import Table
from shrinkbench.analysis.resample import MIN_BOOTSTRAP_UNITS
from shrinkbench.analysis.runs import SETTING, failed_runs, run_table
from shrinkbench.analysis.significance import comparison_tables, curve_level_table, pareto_table, report_dict
from shrinkbench.analysis.tables import operating_point_table, table_csv, table_latex, table_markdown, table_sections
from shrinkbench.analysis.schema import rope_unit

MASKED_LATENCY_NOTE = (
    "No figures against measured latency or speedup: every model here is masked, not compacted, and runs the "
    "dense model's kernels, so its latency differs from the dense model's only by timing noise. Prune with "
    "--granularity channel (physically smaller layers) for latencies worth drawing; the measured numbers stay "
    "in the CSV and JSON files.")

TOP5_SATURATED = 99.5
"""Top-5 is drawn for a setting only where the dense model's mean top-5 is below this (%):
with few classes top-5 is ~100% and says nothing."""

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}h1,h2{border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}th,td{padding:3px 8px;border-bottom:1px solid #eee}
th{border-bottom:2px solid #999;text-align:left}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.note{font-size:12px;color:#555;max-width:60em}.scroll{overflow-x:auto}img{max-width:100%}
figure{margin:1em 0}figcaption{font-size:12px;color:#555}code{background:#f4f4f4;padding:0 3px}"""


@dataclass
class Document:
    """Report content as blocks, rendered to Markdown and to HTML from the same source."""

    blocks: list[tuple] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("h", level, text))

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def items(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("ul", items))

    def table(self, table: Table) -> None:
        self.blocks.append(("table", table))

    def figure(self, png: Path, relative: str, caption: str) -> None:
        self.blocks.append(("fig", png, relative, caption))

    def markdown(self) -> str:
        out = []
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                out.append(f"{'#' * block[1]} {block[2]}\n")
            elif kind == "p":
                out.append(block[1] + "\n")
            elif kind == "ul":
                out.append("\n".join(f"- {item}" for item in block[1]) + "\n")
            elif kind == "table":
                out.append(block[1].markdown())
            elif kind == "fig":
                out.append(f"![{block[3]}]({block[2]})\n\n*{block[3]}*\n")
        return "\n".join(out)

    def html(self, title: str) -> str:
        out = []
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                anchor = "-".join(block[2].lower().split())
                out.append(f'<h{block[1]} id="{html.escape(anchor)}">{html.escape(block[2])}</h{block[1]}>')
            elif kind == "p":
                out.append(f"<p>{html.escape(block[1])}</p>")
            elif kind == "ul":
                out.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in block[1]) + "</ul>")
            elif kind == "table":
                out.append(block[1].html())
            elif kind == "fig":
                data = base64.b64encode(Path(block[1]).read_bytes()).decode("ascii")
                out.append(f'<figure><img alt="{html.escape(block[3])}" src="data:image/png;base64,{data}">'
                           f"<figcaption>{html.escape(block[3])}</figcaption></figure>")
        return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
                f"</title><style>{CSS}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n")


def _top5_runs(table: pd.DataFrame, options: AnalysisOptions) -> pd.DataFrame | None:
    """Runs of top-5 restricted to settings where the dense top-5 is informative."""
    if options.metric != "top1":
        return None
    try:
        runs = run_table(table, replace(options, metric="top5"))
    except AnalysisError:
        return None
    dense = runs[runs["strategy"] == "none"].groupby(SETTING)["y"].mean()
    keep = dense[dense < TOP5_SATURATED].index
    runs = runs.set_index(SETTING).loc[lambda f: f.index.isin(keep)].reset_index()
    return runs if len(runs) else None


def write_figures(doc: Document, table: pd.DataFrame, runs: pd.DataFrame, options: AnalysisOptions,
                  rng: np.random.Generator, out: Path, per_seed: bool, formats) -> list[Path]:
    paths: list[Path] = []
    sets = [(options.metric, runs)]
    top5 = _top5_runs(table, options)
    if top5 is not None:
        sets.append(("top5", top5))
    masked_only = "granularity" in runs.columns and set(runs["granularity"].dropna()) <= {"weight"}
    for metric, metric_runs in sets:
        points = curve_points(metric_runs, replace(options, metric=metric), rng)
        label = {"top1": "Top-1", "top5": "Top-5"}.get(metric, metric)
        for axis, (column, _, _) in AXES.items():
            if not np.isfinite(points[column].to_numpy(float)).any():
                continue
            if axis in MEASURED_AXES and masked_only:  # masked models on dense kernels: timing noise only
                if metric == options.metric and axis == MEASURED_AXES[0]:
                    doc.para(MASKED_LATENCY_NOTE)
                continue
            if axis == "speedup" and repeats_compression(points):
                if metric == options.metric:
                    doc.para("No figures against theoretical speedup: it is within 10% of the compression ratio "
                             "at every operating point here (every weight is used once per input, as in an MLP), "
                             "so they would repeat the figures against compression.")
                continue
            for delta in (False, True):
                if delta and not np.isfinite(points["delta_mean"].to_numpy(float)).any():
                    continue
                build = functools.partial(curve_figure, points, axis, delta, label, points["band"].iloc[0],
                                          runs=metric_runs if per_seed else None)
                stem = f"{metric}_{'delta' if delta else 'abs'}_vs_{axis.replace(' ', '_')}"
                saved = build_and_save_figure(build, out / "figures" / stem, formats)
                paths += saved
                png = out / "figures" / f"{stem}.png"
                if png in saved:
                    what = f"{label} {'difference to dense' if delta else ''} vs {axis}".replace("  ", " ")
                    caption = f"{what} ({options.stage}/{options.split})"
                    doc.figure(png, f"figures/{stem}.png", caption)
    points = curve_points(runs, options, rng)
    if not masked_only and np.isfinite(points.get("measured_speedup", pd.Series(dtype=float)).to_numpy(float)).any():
        saved = build_and_save_figure(functools.partial(speedup_gap_figure, points),
                                      out / "figures" / "speedup_theoretical_vs_measured", formats)
        paths += saved
        if (out / "figures" / "speedup_theoretical_vs_measured.png") in saved:
            doc.figure(out / "figures" / "speedup_theoretical_vs_measured.png",
                       "figures/speedup_theoretical_vs_measured.png",
                       "Theoretical vs measured speedup (largest batch measured): on the dashed line every MAC "
                       "saved is time saved; masked weights stay near 1")
    return paths


def repeats_compression(points: pd.DataFrame, tolerance: float = 0.1) -> bool:
    """Whether theoretical speedup is the compression ratio at every operating point, to
    within `tolerance` relative (an MLP: MACs / nonzero MACs and params / nonzero params
    differ only by the unpruned biases, under 5% at 32x for LeNet-300-100): then figures
    against it repeat those against compression."""
    pairs = points[["compression_ratio", "theoretical_speedup"]].dropna().to_numpy(float)
    return len(pairs) > 0 and bool(np.allclose(pairs[:, 0], pairs[:, 1], rtol=tolerance, atol=0.0))


def _provenance(scan: StoreScan, runs: pd.DataFrame, failed: pd.DataFrame, options: AnalysisOptions) -> list[str]:
    return [f"Source: {scan.source} ({scan.records} record files read, {len(scan.table):,} tidy rows)",
            f"Runs analysed: {len(runs)} successful with {options.response}; failed runs: {len(failed)}",
            f"Response: {options.response}; α = {options.alpha:g}; intervals {options.confidence:.0%}; "
            f"ROPE ±{options.rope:g} {rope_unit(options.metric)}; power {options.power:.0%}; curve bands: {options.interval}",
            f"numpy Generator seed (every resampler): {options.seed}; bootstrap resamples: {options.n_boot}"]


@dataclass(frozen=True)
class WrittenReport:
    """What `write_report` wrote (`summary`, also summary.json) and the analysis behind it:
    the comparisons (None where no pair could be compared) and the operating-point table."""

    summary: dict
    significance: object
    table: pd.DataFrame


def build_report(scan: StoreScan, out_dir: str | Path, options: AnalysisOptions = AnalysisOptions(),
                 method: str | None = None, baselines=None, per_seed_points: bool = False,
                 formats=("png", "pdf")) -> dict:
    """Write the whole report to `out_dir`; returns a summary (also written as summary.json)."""
    return write_report(scan, out_dir, options, method, baselines, per_seed_points, formats).summary


def write_report(scan: StoreScan, out_dir: str | Path, options: AnalysisOptions = AnalysisOptions(),
                 method: str | None = None, baselines=None, per_seed_points: bool = False,
                 formats=("png", "pdf")) -> WrittenReport:
    """`build_report`, returning the comparisons and table too, for output beside the files.
    Figures are saved by forked writers while the statistics go on (`analysis.background`);
    all are written before report.html embeds the PNGs."""
    with saving_in_background():
        return _write_report(scan, out_dir, options, method, baselines, per_seed_points, formats)


def _write_report(scan: StoreScan, out_dir: str | Path, options: AnalysisOptions, method: str | None,
                  baselines, per_seed_points: bool, formats) -> WrittenReport:
    out = Path(out_dir)
    rng = np.random.default_rng(options.seed)
    runs = run_table(scan.table, options)
    failed = failed_runs(scan.table)
    doc = Document()  # the body; the header with the warnings is put in front at the end
    notes = [f"skipped {s.path}: {s.reason}" for s in scan.skipped]
    if len(failed):
        counts = failed.groupby(SETTING + ["strategy", "compression"]).size()
        notes += [f"failed runs excluded: {d}/{m} {s} at {c:g}x ({k})" for (m, d, s, c), k in counts.items()]
    files = write_figures_section(doc, scan, runs, options, rng, out, per_seed_points, formats)
    fewest = int(runs.groupby(["model", "dataset", "strategy", "compression"])["unit"].nunique().min())
    if options.interval == "bootstrap" and fewest < MIN_BOOTSTRAP_UNITS:
        notes.append(f"bootstrap bands with as few as {fewest} units per point under-cover "
                     "(about 75% instead of 95% at n = 3); prefer the Student-t bands below "
                     f"{MIN_BOOTSTRAP_UNITS} units")
    pairs = method_pairs(runs, method, baselines)
    family = None if method else (lambda _m, label: all_pairs_family(_m, label, options))
    significance = compare(runs, pairs, options, rng, family) if pairs else None
    table = operating_point_table(runs, options, significance.comparisons if significance is not None else None)
    files += [write_text(out / "tables" / "operating_points.md", table_markdown(table, options)),
              write_text(out / "tables" / "operating_points.tex",
                         table_latex(table, options, significance.comparisons if significance is not None else None,
                                     method)),
              write_text(out / "tables" / "operating_points.csv", table_csv(table))]
    doc.heading("Tables")
    for section in table_sections(table, options):
        doc.table(section)
    labels = pareto_labels(runs, significance.comparisons if significance is not None else None,
                           options.higher_is_better)
    doc.heading("Significance")
    if significance is not None and method is not None:
        files += write_forest(doc, significance, method, options, out, formats)
    if significance is not None:
        for section in comparison_tables(significance):
            doc.table(section)
        doc.table(curve_level_table(significance))
        notes += significance.warnings
        notes += tie_warnings(scan.table, significance.comparisons)
        files += write_significance(out / "significance", significance, labels)
    doc.table(pareto_table(labels))
    files += add_across_section(doc, runs, options, rng, out, formats)
    head = Document()
    head.heading("shrinkbench report", 1)
    add_summary(head, summarize_settings(significance, table, method))
    head.heading("Provenance")
    head.items(_provenance(scan, runs, failed, options))
    head.heading("Warnings")
    head.items(notes or ["none"])
    doc.blocks[:0] = head.blocks
    summary = {"source": scan.source, "records": scan.records, "rows": len(scan.table), "runs": len(runs),
               "failed_runs": len(failed), "skipped_files": [s.path for s in scan.skipped],
               "generator_seed": options.seed, "options": options.to_dict(), "warnings": notes}
    wait_for_writers()  # report.html embeds the PNGs
    files += [write_text(out / "report.md", doc.markdown()),
              write_text(out / "report.html", doc.html("shrinkbench report"))]
    summary["files"] = sorted(str(p.relative_to(out)) for p in files) + ["summary.json"]
    write_text(out / "summary.json", to_json(summary))
    return WrittenReport(summary, significance, table)


def write_figures_section(doc: Document, scan: StoreScan, runs, options, rng, out, per_seed, formats) -> list[Path]:
    doc.heading("Tradeoff curves")
    doc.para("Mean over seeds; bands as stated in each title; dotted line: the dense model; "
             "x positions are measured, points grouped by target compression.")
    return write_figures(doc, scan.table, runs, options, rng, out, per_seed, formats)


def write_forest(doc: Document, report, method: str, options: AnalysisOptions, out: Path, formats) -> list[Path]:
    """The forest plot of `method` against its baselines, per setting (`analysis.forest`)."""
    from shrinkbench.analysis.forest import forest_figure
    from shrinkbench.analysis.schema import unit_of

    paths = []
    rows = report.comparisons
    for model, dataset in rows[["model", "dataset"]].drop_duplicates().itertuples(index=False):
        unit = {"%": "points"}.get(unit_of(options.metric) or "", unit_of(options.metric) or "value")
        fig = forest_figure(rows, report.curve_level, method, options.rope, unit, model, dataset)
        if fig is None:
            continue
        stem = f"forest_{options.metric}_{dataset}_{model}".replace(" ", "_").replace("/", "_")
        saved = save_figure(fig, out / "figures" / stem, formats)
        paths += saved
        if out / "figures" / f"{stem}.png" in saved:
            doc.figure(out / "figures" / f"{stem}.png", f"figures/{stem}.png",
                       f"{method} minus each baseline per ratio and over the pruned range, with the simultaneous "
                       f"intervals that decided each verdict; grey: ROPE ±{options.rope:g}")
    return paths


def write_significance(folder: Path, report, labels: pd.DataFrame) -> list[Path]:
    """The comparison, curve-level and Pareto numbers as CSV, JSON and Markdown."""
    markdown = "\n".join(t.markdown() for t in comparison_tables(report))
    markdown += "\n" + curve_level_table(report).markdown() + "\n" + pareto_table(labels).markdown()
    return [write_text(folder / "comparisons.csv", report.comparisons.to_csv(index=False)),
            write_text(folder / "curve_level.csv", report.curve_level.to_csv(index=False)),
            write_text(folder / "pareto.csv", labels.to_csv(index=False)),
            write_text(folder / "significance.json", to_json(report_dict(report, labels))),
            write_text(folder / "significance.md", markdown)]
