"""What the default benchmark prints when it finishes: the comparison table, the verdict of
one method against every baseline, and where the report and its plots are."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from shrinkbench.analysis.compare import compare, method_pairs
from shrinkbench.analysis.load import load_table
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.report import build_report
from shrinkbench.analysis.runs import run_table
from shrinkbench.analysis.significance import comparison_tables, curve_level_table
from shrinkbench.analysis.tables import operating_point_table, table_sections


def benchmark_summary(store: str | Path, out: str | Path, method: str = "global_magnitude",
                      options: AnalysisOptions = AnalysisOptions()) -> str:
    """Write the full report of `store` into `out` and return the text to print."""
    scan = load_table(store, None)
    out = Path(out)
    summary = build_report(scan, out, options, method=method)
    runs = run_table(scan.table, options)
    verdict = compare(runs, method_pairs(runs, method, None), options, np.random.default_rng(options.seed))
    parts = [t.text() for t in table_sections(operating_point_table(runs, options), options)]
    parts += [t.text() for t in comparison_tables(verdict)]
    parts.append(curve_level_table(verdict).text())
    figure = out / "figures" / f"{options.metric}_abs_vs_compression.png"
    parts.append(f"Tradeoff plot: {figure}\nFull report ({len(summary['files'])} files, "
                 f"{summary['runs']} runs, {summary['failed_runs']} failed): {out / 'report.html'} "
                 f"and {out / 'report.md'}")
    return "\n".join(parts)
