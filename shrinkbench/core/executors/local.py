"""Executors on this machine: `local` (this process) and `pool` (worker processes).

The pool has one single-process `ProcessPoolExecutor` per worker slot (spawned, with
cores / workers torch threads each, and on a machine with several GPUs one GPU per slot).
A worker that dies (killed, crashed) breaks only its own slot: its run is reported `lost`
(or by its record, if it was stored before the worker died), the slot gets a fresh
process, and the sweep goes on.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Sequence

from shrinkbench.core.executors.base import (
    BASE, EXECUTORS, Plan, PlannedExecutor, Progress, RunOutcome, Runtime, after_worker_death, default_threads, threads_per_run, work)
from shrinkbench.core.store import Store
from shrinkbench.core.sweep import SweepReport, run_local

LOST = "worker process died mid-run (killed or crashed)"


@EXECUTORS.decorator("local")
class LocalExecutor:
    """One run after another in this process, with a progress bar."""

    name = "local"
    runs_here = True  # its runs compute on this machine: the tracks' device checks apply before the sweep

    def threads_per_run(self, runtime: Runtime, workers: int | None) -> int:
        """`--threads`, else torch's count in this process."""
        import torch

        return runtime.threads or torch.get_num_threads()

    def run(self, configs: Sequence[Any], store: Store, runtime: Runtime = Runtime(), *,
            workers: int | None = None, progress: bool = True) -> SweepReport:
        if runtime.threads:
            import torch

            torch.set_num_threads(runtime.threads)
        return run_local(configs, store, device=runtime.device, retry_failed=runtime.retry_failed,
                         progress=progress, loader_workers=runtime.loader_workers,
                         save_pruned=runtime.save_pruned)


def _slot_init(threads: int, visible_gpu: str | None) -> None:
    if visible_gpu is not None:  # before torch initialises CUDA in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = visible_gpu
    import torch

    torch.set_num_threads(threads)


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class _Slot:
    """One worker process, restarted when it dies."""

    def __init__(self, index: int, threads: int, visible_gpu: str | None):
        self.index, self.threads, self.visible_gpu = index, threads, visible_gpu
        self.pool: ProcessPoolExecutor | None = None
        self.item: tuple[str, Any] | None = None

    def submit(self, item: tuple[str, Any], store_root: str, runtime: Runtime) -> Future:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=_slot_init,
                                            initargs=(self.threads, self.visible_gpu))
        self.item = item
        gpus = 1 if self.visible_gpu is not None else 0
        return self.pool.submit(work, item[0], item[1].to_dict(), store_root, runtime, gpus)

    def restart(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


@EXECUTORS.decorator("pool")
class PoolExecutor(PlannedExecutor):
    """`workers` processes on this machine (default: one per core)."""

    name = "pool"
    runs_here = True

    def threads_per_run(self, runtime: Runtime, workers: int | None) -> int:
        return threads_per_run(runtime, workers)

    def execute(self, work_plan: Plan, store: Store, runtime: Runtime, workers: int | None, progress: bool) -> None:
        report = work_plan.report
        workers = max(1, min(workers or os.cpu_count() or 1, len(work_plan.runs)))
        threads = runtime.threads or default_threads(workers)
        gpus = _gpu_count() if runtime.device in ("auto", "cuda") else 0
        from shrinkbench.core.device import slot_gpu

        slots = [_Slot(i, threads, slot_gpu(runtime.device, i, gpus)) for i in range(workers)]
        queue = work_plan.items
        making = {c.base_id for c in work_plan.bases}  # base models not made yet
        running: dict[Future, _Slot] = {}
        store_root = str(store.root.resolve())
        try:
            with Progress(len(work_plan.runs), progress) as bar:
                while queue or running:
                    for slot in [s for s in slots if s not in running.values()]:
                        ready = next((it for it in queue if it[0] == BASE or it[1].base_id not in making), None)
                        if ready is None:
                            break
                        queue.remove(ready)
                        running[slot.submit(ready, store_root, runtime)] = slot
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        slot = running.pop(future)
                        kind, cfg = slot.item
                        try:
                            outcome = future.result()
                        except BrokenProcessPool:
                            slot.restart()
                            outcome = RunOutcome(f"base:{cfg.base_id}", "lost") if kind == BASE else \
                                after_worker_death(cfg, store, LOST)
                        if kind == BASE:
                            making.discard(cfg.base_id)
                            if outcome.status != "ok":
                                bar.note(f"base model {cfg.base_id} {outcome.status}: {outcome.error or LOST}; "
                                         f"its runs will try again")
                            continue
                        report.outcomes.append(outcome)
                        bar.done(cfg, outcome)
        finally:
            for slot in slots:
                slot.close()
