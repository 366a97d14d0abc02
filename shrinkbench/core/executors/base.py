"""What every executor shares: the protocol and registry, the runtime settings that travel
to the workers, the plan of a sweep (what is stored, which base models to make first),
the function a worker calls, and how a dead worker's run is reported.

A parallel sweep has two kinds of work items: `("base", cfg)` makes the base model of
`cfg` (trained or loaded, then cached in the store) and `("run", cfg)` is one run. Items
for base models that are not cached yet come first, and runs that need one wait for it;
so N workers never train the same base model N times or wait on each other for it.
"""
from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from shrinkbench.core.errors import ShrinkBenchError
from shrinkbench.core.registry import Registry
from shrinkbench.core.store import Store
from shrinkbench.core.sweep import RunOutcome, SweepReport, computing_with, describe, finish, run_one, start
from shrinkbench.core.tracks import config_from_dict, track_of

BASE, RUN = "base", "run"


@dataclass(frozen=True)
class Runtime:
    """How runs execute on a worker; none of it is part of a run's identity.

    device: auto, cpu, cuda or cuda:N, as seen by the worker. threads: torch intra-op
    threads per worker (None: the executor's default, cores / workers). loader_workers:
    DataLoader worker processes for datasets on disk (pinned memory is used on CUDA).
    save_pruned: also write each run's deployed (compacted) model beside its record.
    """

    device: str = "auto"
    threads: int | None = None
    loader_workers: int = 0
    retry_failed: bool = False
    save_pruned: bool = False


class Executor(Protocol):
    name: str
    runs_here: bool
    """Whether its runs compute on this machine (local, pool), so a track can check this
    machine's device before the sweep (`Track.check_device`); Ray and Slurm run elsewhere."""

    def threads_per_run(self, runtime: Runtime, workers: int | None) -> int:
        """The torch threads each run of this executor computes with (pinned in its config)."""

    def run(self, configs: Sequence[Any], store: Store, runtime: Runtime, *,
            workers: int | None = None, progress: bool = True) -> SweepReport: ...


EXECUTORS: Registry[type] = Registry("executor")


def get_executor(name: str, **options: Any) -> Executor:
    """An executor by registered name, built with its own options (e.g. `address` for ray)."""
    return EXECUTORS.get(name)(**options)


def require(module: str, extra: str, executor: str):
    """Import `module` or raise a one-line error saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ShrinkBenchError(f"the {executor} executor needs the {module} package, which is not "
                               f"installed: pip install 'shrinkbench[{extra}]'") from None


@dataclass
class Plan:
    """A sweep's work: `report` already holds the skipped runs; `bases` are the configs whose
    (distinct, uncached) base models are made first; `runs` are the runs to do."""

    report: SweepReport
    bases: list[Any]
    runs: list[Any]

    @property
    def items(self) -> list[tuple[str, Any]]:
        return [(BASE, c) for c in self.bases] + [(RUN, c) for c in self.runs]


def plan(configs: Sequence[Any], store: Store, retry_failed: bool) -> Plan:
    report, todo = start(configs, store, retry_failed)
    bases: dict[str, Any] = {}
    for cfg in todo:
        if track_of(cfg).needs_base and cfg.base_id not in bases and not store.has_base(cfg.base_id):
            bases[cfg.base_id] = cfg
    return Plan(report, list(bases.values()), todo)


class PlannedExecutor:
    """Base of the parallel executors: `run` plans the sweep and hands what is pending to
    `execute`, which adds an outcome per run to `work_plan.report`."""

    name = ""

    def run(self, configs: Sequence[Any], store: Store, runtime: Runtime = Runtime(), *,
            workers: int | None = None, progress: bool = True) -> SweepReport:
        work_plan = plan(configs, store, runtime.retry_failed)
        try:
            if work_plan.runs:
                self.execute(work_plan, store, runtime, workers, progress)
        finally:
            finish(store)
        return work_plan.report

    def execute(self, work_plan: Plan, store: Store, runtime: Runtime, workers: int | None,
                progress: bool) -> None:
        raise NotImplementedError


def threads_per_run(runtime: Runtime, workers: int | None) -> int:
    """The default of the executors that share this machine: `--threads`, else cores // workers
    (workers: default one per core)."""
    return runtime.threads or default_threads(workers or os.cpu_count() or 1)


def default_threads(workers: int) -> int:
    """Intra-op threads per worker when `workers` share this machine: cores // workers."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def work(kind: str, cfg: dict, store_root: str, runtime: Runtime, assigned_gpus: int = 0) -> RunOutcome:
    """One work item, in a worker process (pool, Ray task, Slurm job).

    `cfg` travels as a plain dict (its track's `config_from_dict(cfg.to_dict())` keeps the run id).
    `assigned_gpus`: how many GPUs the scheduler made visible to this worker (then `cuda:N`
    means `cuda`). A base item gives the outcome `base:<base_id>` with status `ok`, or
    `failed` when making it failed: the runs that need it then record why.
    """
    import torch

    from shrinkbench.core.device import worker_device

    if runtime.threads:
        torch.set_num_threads(runtime.threads)
    device = worker_device(runtime.device, assigned_gpus)
    config = config_from_dict(cfg)
    if kind == RUN:
        return run_one(config, store_root, device, runtime.retry_failed, loader_workers=runtime.loader_workers,
                       save_pruned=runtime.save_pruned)
    key = f"base:{config.base_id}"
    try:
        with computing_with(getattr(config, "threads", None)):
            track_of(config).prepare_base(config, Store(store_root), device, runtime.loader_workers)
    except ShrinkBenchError as exc:
        from shrinkbench.core.errors import TrainingDivergedError

        if not isinstance(exc, TrainingDivergedError):
            raise  # missing data, bad checkpoint: every run would fail the same way
        return RunOutcome(key, "failed", error=str(exc))
    except Exception as exc:  # the runs that need it will record the error
        return RunOutcome(key, "failed", error=f"{type(exc).__name__}: {exc}")
    return RunOutcome(key, "ok")


def work_batch(items: list[tuple[str, dict]], store_root: str, runtime: Runtime,
               assigned_gpus: int = 0) -> list[RunOutcome]:
    """Several work items one after another in one worker (a Slurm job holding a chunk)."""
    return [work(kind, cfg, store_root, runtime, assigned_gpus) for kind, cfg in items]


def after_worker_death(cfg: Any, store: Store, why: str) -> RunOutcome:
    """The outcome of a run whose worker died (`why`): the record's status if the run was
    finished and stored before the worker died, else `lost` (the store has no partial
    record; its claim is taken over by the next sweep)."""
    state = store.state(cfg.run_id)
    if state.status in ("ok", "failed"):
        return RunOutcome(cfg.run_id, state.status, error=state.reason)
    return RunOutcome(cfg.run_id, "lost", error=f"{why}; no record was written, the next sweep runs it")


class Progress:
    """A progress bar over the runs of a sweep (bases are not counted) that prints a line
    for every failed or lost run."""

    def __init__(self, total: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, disable=not enabled or total == 0, unit="run", file=sys.stderr,
                        dynamic_ncols=True, mininterval=0.1 if sys.stderr.isatty() else 30.0)

    def done(self, cfg: Any, outcome: RunOutcome) -> None:
        self.bar.set_description(describe(cfg), refresh=False)
        if outcome.status in ("failed", "lost"):
            self.bar.write(f"run {outcome.run_id} ({describe(cfg)}) {outcome.status}: {outcome.error}")
        self.bar.update(1)

    def note(self, text: str) -> None:
        self.bar.write(text)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
