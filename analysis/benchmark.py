"""What the default benchmark prints when it finishes, within 100 columns: the summary
(`shrinkbench.analysis.headline`) first, then the operating-point table, the verdicts of one
method against every baseline per ratio and over whole curves (compact: the full tables are
in the report), and where the report and its plots are."""
from __future__ import annotations

from pathlib import Path

from shrinkbench.analysis.headline import terminal_verdicts
from shrinkbench.analysis.load import load_table
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.report import write_report
from shrinkbench.analysis.tables import table_sections


def benchmark_summary(store: str | Path, out: str | Path, method: str = "global_magnitude",
                      options: AnalysisOptions = AnalysisOptions()) -> str:
    """Write the full report of `store` into `out` and return the text to print: the very
    comparisons and table of that report, not a second analysis."""
    out = Path(out)
    written = write_report(load_table(store, None), out, options, method=method)
    summary = written.summary
    parts = terminal_verdicts(written.significance, written.table, method, table_sections(written.table, options))
    figure = out / "figures" / f"{options.metric}_abs_vs_compression.png"
    parts.append(f"Tradeoff plot: {figure}\nFull report ({len(summary['files'])} files, {summary['runs']} runs, "
                 f"{summary['failed_runs']} failed, every table in full):\n  {out / 'report.html'}\n  {out / 'report.md'}")
    return "\n".join(parts)
