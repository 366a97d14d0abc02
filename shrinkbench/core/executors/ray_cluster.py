"""`ray`: every run is one Ray task, on a running Ray cluster or on a local one started for
the sweep.

Cluster: `address` (`--ray-address`, or the RAY_ADDRESS environment variable) connects to
a running cluster (`ray.init(address=...)`); a process already connected (`ray.init()`
called before) uses that connection; otherwise a local cluster with `workers` CPUs is
started and shut down afterwards. The store must be on a filesystem every node sees at the
same path (the path is made absolute here).

Tasks: one per base model that is not cached yet, then one per pending run, which Ray
starts only after its base model's task has finished. Each task asks for `cpus_per_run`
CPUs (default 1; its torch threads: the same number, or cores / workers on a local
cluster) and `gpus_per_run` GPUs (default: 1 when the device is cuda, or auto and the
cluster has GPUs; fractions share a GPU). Ray shows a task only its GPUs, so `cuda:N`
becomes `cuda` inside it. Tasks are not retried (`max_retries=0`): a task whose worker
dies is reported `lost`, and the next sweep runs it.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

from shrinkbench.core.errors import ConfigError, ShrinkBenchError
from shrinkbench.core.executors.base import (
    BASE, EXECUTORS, RUN, Plan, PlannedExecutor, Progress, RunOutcome, Runtime, after_worker_death, default_threads,
    require, work)
from shrinkbench.core.store import Store


def _task(kind: str, cfg: dict, store_root: str, runtime: Runtime, _after: Any = None) -> RunOutcome:
    """The body of a Ray task (`_after`: the base model's result, only there to wait for it)."""
    import ray

    return work(kind, cfg, store_root, runtime, assigned_gpus=len(ray.get_gpu_ids()))


@EXECUTORS.decorator("ray")
class RayExecutor(PlannedExecutor):
    name = "ray"
    runs_here = False  # its workers are other machines: their devices are checked where they run

    def __init__(self, address: str | None = None, gpus_per_run: float | None = None,
                 cpus_per_run: int | None = None):
        if gpus_per_run is not None and gpus_per_run < 0:
            raise ConfigError(f"--gpus-per-run must be >= 0, got {gpus_per_run}")
        if cpus_per_run is not None and cpus_per_run < 1:
            raise ConfigError(f"--cpus-per-run must be >= 1, got {cpus_per_run}")
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.gpus_per_run, self.cpus_per_run = gpus_per_run, cpus_per_run
        self.ray = require("ray", "ray", "ray")

    def execute(self, work_plan: Plan, store: Store, runtime: Runtime, workers: int | None, progress: bool) -> None:
        started_here = self._connect(self.ray, workers or os.cpu_count() or 1)
        try:
            self._run(self.ray, work_plan, store, runtime, started_here, workers, progress)
        finally:
            if started_here:
                self.ray.shutdown()

    def threads_per_run(self, runtime: Runtime, workers: int | None) -> int:
        """`--threads`, else cores // workers on a cluster started here, else the task's CPUs."""
        return self._threads(runtime, workers, local=not (self.address or os.environ.get("RAY_ADDRESS")))

    def _threads(self, runtime: Runtime, workers: int | None, local: bool) -> int:
        return runtime.threads or (default_threads(workers or os.cpu_count() or 1) if local else self.cpus_per_run or 1)

    def _connect(self, ray, workers: int) -> bool:
        """Connect to (or start) a cluster; True if it was started here."""
        quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
        if ray.is_initialized():
            return False
        if self.address:
            try:
                ray.init(address=self.address, **quiet)
            except ConnectionError as exc:
                raise ShrinkBenchError(f"cannot connect to the Ray cluster at {self.address}: "
                                       f"{' '.join(str(exc).split())[:200]}") from None
            return False
        ray.init(num_cpus=workers, include_dashboard=False, **quiet)
        return True

    def _run(self, ray, work_plan: Plan, store: Store, runtime: Runtime, local: bool, workers: int | None,
             progress: bool) -> None:
        report = work_plan.report
        gpus = self.gpus_per_run
        if gpus is None:
            cuda = runtime.device.startswith("cuda") or (
                runtime.device == "auto" and ray.cluster_resources().get("GPU", 0) > 0)
            gpus = 1 if cuda else 0
        runtime = dataclasses.replace(runtime, threads=self._threads(runtime, workers, local))
        cpus = self.cpus_per_run or 1
        task = ray.remote(_task).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
        store_root = str(store.root.resolve())
        base_refs = {c.base_id: task.remote(BASE, c.to_dict(), store_root, runtime) for c in work_plan.bases}
        refs = {task.remote(RUN, c.to_dict(), store_root, runtime, base_refs.get(c.base_id)): c for c in work_plan.runs}
        with Progress(len(refs), progress) as bar:
            pending_refs = list(refs)
            while pending_refs:
                ready, pending_refs = ray.wait(pending_refs, num_returns=1)
                cfg = refs[ready[0]]
                try:
                    outcome = ray.get(ready[0])
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, ShrinkBenchError):
                        for ref in pending_refs:
                            ray.cancel(ref, force=True)
                        raise cause from None
                    outcome = after_worker_death(cfg, store, _first_line(exc))
                except ray.exceptions.RayError as exc:  # worker or node died, task cancelled
                    outcome = after_worker_death(cfg, store, f"Ray worker died: {_first_line(exc)}")
                report.outcomes.append(outcome)
                bar.done(cfg, outcome)


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0].strip() if lines else ''}"[:300]
