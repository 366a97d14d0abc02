"""shrinkbench analysis: from the result store to what a researcher publishes.

Reads only the tidy table (see `analysis.schema`) and never imports torch. Modules:
`load` (store/CSV -> validated tidy frame), `runs` (one row per run, dense deltas),
`stats`, `power`, `resample` (pure statistics), `compare` (significance decisions),
`pareto`, `planner` (seeds needed), `bands` + `curves` (figures), `tables`,
`significance`, `report` (Markdown + HTML), `cli` (`report`, `compare`, `plan-seeds`,
`results`). Plotting modules are imported only when used.
"""
from shrinkbench.analysis.errors import AnalysisError, StoreWarning
from shrinkbench.analysis.load import load_table, read_csv, read_store, scan_store, validate
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.runs import run_table, summarize

__all__ = ["AnalysisError", "StoreWarning", "AnalysisOptions", "load_table", "read_csv", "read_store",
           "scan_store", "validate", "run_table", "summarize"]
