"""Records every track writes the same way: the `failed` record of a run that raised.

A run that fails with an unexpected error (a bug, out of memory) gets a record with status
`failed`, the reason on one line (the exception and where it was raised; out of memory said
first), its config and provenance, so the sweep goes on and the failure is visible in the store.
"""
from __future__ import annotations

import traceback
from typing import Any


def failure_record(cfg, exc: BaseException, device: str | None) -> dict[str, Any]:
    """A `failed` record for an unexpected error inside a run (the sweep goes on). Out of
    memory (CUDA or CPU allocator) is said first: "out of memory: <the error>"."""
    from shrinkbench.analysis.schema import RECORD_SCHEMA
    from shrinkbench.core.device import is_out_of_memory, resolve_device
    from shrinkbench.core.provenance import environment, now_iso

    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:500] + where
    if is_out_of_memory(exc):
        reason = "out of memory: " + reason
    return {"schema": RECORD_SCHEMA, "run_id": cfg.run_id, "status": "failed", "error": reason,
            "config": cfg.to_dict(), **cfg.record_names(), "metrics": [], "epochs": [], "base": {"id": cfg.base_id},
            "provenance": {**environment(resolve_device(device)), "finished_at": now_iso()}}
