"""Executors on this machine: `local` (this process) and `pool` (worker processes)."""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Sequence

from shrinkbench.config import RunConfig
from shrinkbench.executors.base import EXECUTORS
from shrinkbench.store import Store
from shrinkbench.sweep import RunOutcome, SweepReport, describe, pending, run_local, run_one


@EXECUTORS.decorator("local")
class LocalExecutor:
    name = "local"

    def run(self, configs, store, *, device=None, workers=1, retry_failed=False, progress=True):
        return run_local(configs, store, device=device, retry_failed=retry_failed, progress=progress)


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _pool_task(cfg_dict: dict, store_root: str, device, retry_failed: bool) -> RunOutcome:
    return run_one(RunConfig.from_dict(cfg_dict), store_root, device, retry_failed)


@EXECUTORS.decorator("pool")
class PoolExecutor:
    """`workers` processes (spawned), each with cores/workers torch threads."""

    name = "pool"

    def run(self, configs: Sequence[RunConfig], store: Store, *, device=None, workers=2,
            retry_failed=False, progress=True) -> SweepReport:
        from tqdm.auto import tqdm

        store.clean_leftovers()
        todo = pending(configs, store, retry_failed)
        report = SweepReport(total=len(configs))
        todo_ids = {c.run_id for c in todo}
        report.outcomes += [RunOutcome(c.run_id, "skipped") for c in configs if c.run_id not in todo_ids]
        if not todo:
            return report
        workers = max(1, min(workers, len(todo)))
        threads = max(1, (os.cpu_count() or 1) // workers)
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                 initargs=(threads,)) as pool, \
                tqdm(total=len(todo), disable=not progress, unit="run", file=sys.stderr) as bar:
            futures = {pool.submit(_pool_task, c.to_dict(), str(store.root), device, retry_failed): c
                       for c in todo}
            for fut in as_completed(futures):
                outcome = fut.result()
                report.outcomes.append(outcome)
                bar.set_description(describe(futures[fut]))
                if outcome.status == "failed":
                    bar.write(f"run {outcome.run_id} failed: {outcome.error}")
                bar.update(1)
        return report
