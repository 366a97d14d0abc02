"""What the default benchmark prints when it finishes, within 100 columns: the summary
(`shrinkbench.analysis.headline`) first, then the operating-point table, the verdicts of one
method against every baseline per ratio and over whole curves (compact: the full tables are
in the report), and where the report and its plots are."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from shrinkbench.analysis.compare import compare, method_pairs
from shrinkbench.analysis.headline import TERMINAL_WIDTH, summarize_settings, summary_text
from shrinkbench.analysis.load import load_table
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.report import build_report
from shrinkbench.analysis.runs import run_table
from shrinkbench.analysis.significance import compact_comparison_tables, compact_curve_level_table
from shrinkbench.analysis.tables import operating_point_table, table_sections


def benchmark_summary(store: str | Path, out: str | Path, method: str = "global_magnitude",
                      options: AnalysisOptions = AnalysisOptions()) -> str:
    """Write the full report of `store` into `out` and return the text to print."""
    scan = load_table(store, None)
    out = Path(out)
    summary = build_report(scan, out, options, method=method)
    runs = run_table(scan.table, options)
    verdict = compare(runs, method_pairs(runs, method, None), options, np.random.default_rng(options.seed))
    table = operating_point_table(runs, options, verdict.comparisons)
    parts = [summary_text(summarize_settings(verdict, table, method), TERMINAL_WIDTH)]
    parts += [t.text(TERMINAL_WIDTH) for t in table_sections(table, options)]
    parts += [t.text(TERMINAL_WIDTH) for t in compact_comparison_tables(verdict)]
    parts.append(compact_curve_level_table(verdict).text(TERMINAL_WIDTH))
    figure = out / "figures" / f"{options.metric}_abs_vs_compression.png"
    parts.append(f"Tradeoff plot: {figure}\nFull report ({len(summary['files'])} files, {summary['runs']} runs, "
                 f"{summary['failed_runs']} failed, every table in full):\n  {out / 'report.html'}\n  {out / 'report.md'}")
    return "\n".join(parts)
