"""Errors of the analysis package.

Every mistake in the input (a missing column, an unknown method, an empty store, a bad
option) raises `AnalysisError` with a ONE-LINE message that says what was wrong and what is
allowed. The command line prints that line and exits with status 2. This module imports
nothing from `shrinkbench`, so the analysis stays usable (and torch-free) on its own.
"""
from __future__ import annotations


class AnalysisError(Exception):
    """A user-facing error of the analysis: one line, no traceback wanted."""


class StoreWarning(UserWarning):
    """A record file in the store was skipped (corrupt, partial or of the wrong schema)."""
