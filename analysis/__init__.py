"""shrinkbench analysis: from the result store to what a researcher publishes.

Reads only the tidy table (see `analysis.schema`) and never imports torch. Modules:
`load` (store/CSV -> validated tidy frame), `runs` (one row per run, dense deltas),
`stats`, `power`, `resample` (pure statistics), `compare` (significance decisions),
`pareto`, `planner` (seeds needed), `bands` + `curves` (figures), `tables`,
`significance`, `report` (Markdown + HTML), `cli` (`report`, `compare`, `plan-seeds`,
`results`). Plotting modules are imported only when used.
"""
import importlib

from shrinkbench.analysis.errors import AnalysisError, StoreWarning

_LAZY = {"load_table": "load", "read_csv": "load", "read_store": "load", "scan_store": "load", "validate": "load",
         "AnalysisOptions": "options", "run_table": "runs", "summarize": "runs"}
"""Imported on first use, so that `import shrinkbench.analysis` (and the CLI's --help) stays light."""


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"shrinkbench.analysis.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'shrinkbench.analysis' has no attribute {name!r}")


__all__ = ["AnalysisError", "StoreWarning", *sorted(_LAZY)]
