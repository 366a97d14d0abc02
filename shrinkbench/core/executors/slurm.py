"""`slurm`: the runs go to Slurm as a job array, through submitit.

`cluster`: `slurm` (or `auto`, the default, when `srun` is on PATH), `local` (submitit's
local executor: each job is a subprocess on this machine; what the tests use) or `debug`
(in this process). Job files and logs go to `<store>/slurm-logs/`; the store must be on a
filesystem the compute nodes see at the same path (the path is made absolute here).

Jobs: first one job per base model that is not cached yet (waited for), then the runs, as
one array with `runs_per_job` runs per job (default: 1 on Slurm; on `local` and `debug`
the runs are dealt into `workers` jobs, which all start at once). Job resources:
`partition`, `time` (minutes, H:MM:SS or D-HH:MM:SS; default 24 hours), `gpus_per_node`
(default 1 when the device is cuda, else 0), `cpus_per_task` (default 1; also the torch
threads of the job), `mem_gb`, `array_parallelism` (most array jobs running at once).
A job that dies (killed, timed out, node lost) reports its unfinished runs `lost`: they
have no record, and the next sweep runs them.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import time
from typing import Any

from shrinkbench.core.errors import ConfigError, ShrinkBenchError
from shrinkbench.core.executors.base import (
    BASE, EXECUTORS, Plan, PlannedExecutor, Progress, RunOutcome, Runtime, after_worker_death, require, work_batch)
from shrinkbench.core.store import Store

CLUSTERS = ("auto", "slurm", "local", "debug")
DEFAULT_TIME_MIN = 24 * 60
POLL_S = 1.0
LOST = "job died before its run finished (killed, timed out or its node lost)"


def parse_time(text: str | int | None) -> int | None:
    """Minutes from `90`, `1:30:00`, `2-00:00:00` (Slurm's D-HH:MM:SS) or None."""
    if text is None or isinstance(text, int):
        return text
    hit = re.fullmatch(r"\s*(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?\s*", str(text))
    if not hit:
        raise ConfigError(f"--slurm-time must be minutes, H:MM:SS or D-HH:MM:SS, got {text!r}")
    days, first, second, third = hit.groups()
    if second is None:  # plain minutes (or D-HH with a day)
        minutes = int(first) * (60 if days else 1)
    else:
        hours, mins, secs = (int(first), int(second), int(third or 0))
        minutes = hours * 60 + mins + math.ceil(secs / 60)
    return int(days or 0) * 24 * 60 + minutes


def _job(items: list[tuple[str, dict]], store_root: str, runtime: Runtime, gpus: int) -> Any:
    """A job's body: its runs one after another. A user error comes back as the exception
    object (submitit would keep only its traceback text)."""
    if runtime.threads is None:
        cpus = int(os.environ.get("SLURM_CPUS_PER_TASK", "0")) or None
        runtime = dataclasses.replace(runtime, threads=cpus)
    try:
        return work_batch(items, store_root, runtime, gpus)
    except ShrinkBenchError as exc:
        return exc


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


@EXECUTORS.decorator("slurm")
class SlurmExecutor(PlannedExecutor):
    name = "slurm"
    runs_here = False

    def __init__(self, cluster: str | None = None, partition: str | None = None, time_limit: str | int | None = None,
                 gpus_per_node: int | None = None, cpus_per_task: int | None = None, mem_gb: float | None = None,
                 array_parallelism: int | None = None, runs_per_job: int | None = None):
        cluster = cluster or "auto"
        if cluster not in CLUSTERS:
            raise ConfigError(f"--slurm-cluster must be one of {', '.join(CLUSTERS)}, got {cluster!r}")
        for flag, value in (("--slurm-gpus-per-node", gpus_per_node), ("--slurm-cpus-per-task", cpus_per_task),
                            ("--slurm-array-parallelism", array_parallelism), ("--runs-per-job", runs_per_job)):
            if value is not None and value < (0 if flag == "--slurm-gpus-per-node" else 1):
                raise ConfigError(f"{flag} must be >= {0 if flag == '--slurm-gpus-per-node' else 1}, got {value}")
        if mem_gb is not None and mem_gb <= 0:
            raise ConfigError(f"--slurm-mem must be > 0 (GB), got {mem_gb}")
        self.timeout_min = parse_time(time_limit) or DEFAULT_TIME_MIN
        self.submitit = require("submitit", "slurm", "slurm")
        if cluster == "auto":
            if shutil.which("srun") is None:
                raise ShrinkBenchError("no Slurm on this machine (srun is not on PATH); submit from a Slurm "
                                       "login node, or use --slurm-cluster local to run the jobs here")
            cluster = "slurm"
        self.cluster = cluster
        self.partition, self.gpus_per_node, self.cpus_per_task = partition, gpus_per_node, cpus_per_task
        self.mem_gb, self.array_parallelism, self.runs_per_job = mem_gb, array_parallelism, runs_per_job

    def _executor(self, store: Store, runtime: Runtime):
        executor = self.submitit.AutoExecutor(folder=store.root.resolve() / "slurm-logs", cluster=self.cluster)
        gpus = self.gpus_per_node
        if gpus is None:
            gpus = 1 if runtime.device.startswith("cuda") else 0
        params = {"name": "shrinkbench", "timeout_min": self.timeout_min, "gpus_per_node": gpus,
                  "cpus_per_task": self.cpus_per_task or 1, "mem_gb": self.mem_gb,
                  "slurm_partition": self.partition, "slurm_array_parallelism": self.array_parallelism}
        executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
        return executor, gpus

    def threads_per_run(self, runtime: Runtime, workers: int | None) -> int:
        """`--threads`, else the job's CPUs (`--slurm-cpus-per-task`, default 1)."""
        return runtime.threads or self.cpus_per_task or 1

    def execute(self, work_plan: Plan, store: Store, runtime: Runtime, workers: int | None, progress: bool) -> None:
        report = work_plan.report
        executor, gpus = self._executor(store, runtime)
        runtime = dataclasses.replace(runtime, threads=self.threads_per_run(runtime, workers))
        store_root = str(store.root.resolve())
        with Progress(len(work_plan.runs), progress) as bar:
            if work_plan.bases:
                base_chunks = _chunks(work_plan.bases, self._job_size(len(work_plan.bases), workers, 1))
                for chunk, outcomes, why in self._submit(executor, BASE, base_chunks, store_root, runtime, gpus):
                    for cfg, outcome in zip(chunk, outcomes or [None] * len(chunk)):
                        if outcome is None or outcome.status != "ok":
                            bar.note(f"base model {cfg.base_id}: {outcome.error if outcome else why}; "
                                     f"its runs will try again")
            run_chunks = _chunks(work_plan.runs, self._job_size(len(work_plan.runs), workers, self.runs_per_job))
            for chunk, outcomes, why in self._submit(executor, "run", run_chunks, store_root, runtime, gpus):
                for cfg, outcome in zip(chunk, outcomes or [None] * len(chunk)):
                    outcome = outcome or after_worker_death(cfg, store, why)
                    report.outcomes.append(outcome)
                    bar.done(cfg, outcome)

    def _job_size(self, n: int, workers: int | None, on_slurm: int | None) -> int:
        """Items per job: `on_slurm` (or 1) on Slurm; locally, n / workers (the jobs all start
        at once), unless --runs-per-job says otherwise."""
        if self.cluster == "slurm":
            return on_slurm or 1
        return self.runs_per_job or math.ceil(n / max(1, workers or os.cpu_count() or 1))

    def _submit(self, executor, kind: str, chunks: list[list[Any]], store_root: str,
                runtime: Runtime, gpus: int):
        """Submit one job per chunk; yield (chunk, outcomes, "") as jobs end, or (chunk, None,
        why) for a job that died."""
        items = [[(kind, c.to_dict()) for c in chunk] for chunk in chunks]
        n = len(items)
        jobs = executor.map_array(_job, items, [store_root] * n, [runtime] * n, [gpus] * n)
        if self.cluster != "slurm":  # result files are local: no need to wait 15 s for a slow NFS
            for job in jobs:
                job._results_timeout_s = 1
        waiting = dict(zip(range(n), jobs))
        try:
            while waiting:
                for i, job in list(waiting.items()):
                    if not job.done():
                        continue
                    del waiting[i]
                    yield (chunks[i], *self._result(job))
                if waiting:
                    time.sleep(POLL_S)
        finally:
            for job in waiting.values():  # on an error or Ctrl-C: leave no job behind
                try:
                    job.cancel(check=False)
                except Exception:  # noqa: BLE001  (best effort: the job may have just ended)
                    pass

    def _result(self, job) -> tuple[list[RunOutcome] | None, str]:
        try:
            result = job.result()
        except self.submitit.core.utils.FailedJobError as exc:  # raised outside a run: say what it was
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            return None, f"job {job.job_id} failed: {lines[-1] if lines else type(exc).__name__}"[:300]
        except self.submitit.core.utils.UncompletedJobError:  # killed, timed out, node lost
            return None, f"job {job.job_id}: {LOST}"
        if isinstance(result, ShrinkBenchError):
            raise result
        return result, ""
