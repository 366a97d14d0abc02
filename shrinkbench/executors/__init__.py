"""Executors: who runs a sweep's runs. All of them call `shrinkbench.sweep.run_one`, and the
store is the only coordination, so every executor gives the same run ids and records.

- `local`: one after another in this process (progress bar, ETA).
- `pool`: N worker processes on this machine.
"""
from __future__ import annotations

from shrinkbench.executors.base import EXECUTORS, Executor, get_executor  # noqa: F401
from shrinkbench.executors import local  # noqa: F401  (registers local and pool)

__all__ = ["EXECUTORS", "Executor", "get_executor"]
