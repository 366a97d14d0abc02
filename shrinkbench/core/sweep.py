"""Running many runs: skip what is stored, claim what is free, record what happens.

`run_one` is the unit of work every executor calls (in this process, a worker process, a
Ray task or a Slurm job): it claims the run in the store, executes it, writes its record
and releases the claim. The store is the only coordination, so any number of sweeps and
executors can work on one suite at once without duplicating or losing a run.

Outcomes: `ok` and `failed` runs have a record (a failed one says why: diverged, out of
memory, an error in the run); `skipped` ones were stored before; `busy` ones were being run
by another process; `lost` ones have no record because the worker running them died
(killed, crashed, its node lost): the next sweep runs them.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from shrinkbench.core.errors import ShrinkBenchError
from shrinkbench.core.store import Store


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    status: str  # "ok" | "failed" | "skipped" (already stored) | "busy" (another process has it)
    #              | "lost" (its worker died mid-run, no record)
    seconds: float = 0.0
    error: str = ""


@dataclass
class SweepReport:
    total: int
    outcomes: list[RunOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    def summary(self) -> str:
        done = self.count("ok")
        parts = [f"{self.total} runs in the sweep", f"{self.count('skipped')} already stored",
                 f"{done} run now", f"{self.count('failed')} failed"]
        if self.count("busy"):
            parts.append(f"{self.count('busy')} being run by another process")
        if self.count("lost"):
            parts.append(f"{self.count('lost')} lost (worker died; run the sweep again to complete them)")
        return ", ".join(parts)


def pending(configs: Sequence[Any], store: Store, retry_failed: bool = False) -> list[Any]:
    """The configs without a usable record, grouped so that runs sharing a base model are
    adjacent (the base model is then trained or loaded once)."""
    wanted = []
    for cfg in configs:
        state = store.state(cfg.run_id).status
        if state in ("missing", "corrupt") or (retry_failed and state == "failed"):
            wanted.append(cfg)
    first_seen: dict[str, int] = {}
    for i, cfg in enumerate(wanted):
        first_seen.setdefault(cfg.base_id, i)
    return sorted(wanted, key=lambda c: (first_seen[c.base_id], not c.is_dense))


def start(configs: Sequence[Any], store: Store,
          retry_failed: bool = False) -> tuple[SweepReport, list[Any]]:
    """The beginning of every sweep, whatever executes it: leftovers of killed writers
    cleaned up, a report that already counts the stored runs as skipped, and the pending
    configs (see `pending`)."""
    store.clean_leftovers()
    todo = pending(configs, store, retry_failed)
    report = SweepReport(total=len(configs))
    todo_ids = {c.run_id for c in todo}
    report.outcomes += [RunOutcome(c.run_id, "skipped") for c in configs if c.run_id not in todo_ids]
    return report, todo


def pin_threads(configs: Sequence[Any], threads: int) -> tuple:
    """The configs with `threads` set where they leave it open: the thread count each run will
    compute with is part of its identity (it changes the numbers in their last bits), so the sweep
    decides it before the run ids are compared with the store. A config that names its own count
    (a suite's `[run] threads`) keeps it."""
    if not isinstance(threads, int) or threads < 1:
        raise ShrinkBenchError(f"threads must be a whole number >= 1, got {threads!r}")
    return tuple(c.replace(threads=threads) if getattr(c, "threads", 0) is None else c for c in configs)


@contextmanager
def computing_with(threads: int | None):
    """torch's intra-op thread count set to `threads` inside (a pinned run), restored after."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def finish(store: Store) -> None:
    """The end of every sweep, whatever executed it: the store is left clean (`Store.tidy`)."""
    store.tidy()


def run_one(cfg: Any, store_root: str, device: str | None = None,
            retry_failed: bool = False, on_epoch: Callable[[dict], None] | None = None,
            loader_workers: int = 0, save_pruned: bool = False) -> RunOutcome:
    """Claim, execute and store one run. Safe to call from any process on any host that
    sees the store's folder."""
    from shrinkbench.core.tracks import config_from_dict, track_of

    if isinstance(cfg, dict):
        cfg = config_from_dict(cfg)
    track = track_of(cfg)
    store = Store(store_root)
    run_id = cfg.run_id
    state = store.state(run_id).status
    if state == "ok" or (state == "failed" and not retry_failed):
        return RunOutcome(run_id, "skipped")
    if not store.claim(run_id):
        return RunOutcome(run_id, "busy")
    start = time.perf_counter()
    try:
        state = store.state(run_id).status  # finished by someone else while we waited?
        if state == "ok" or (state == "failed" and not retry_failed):
            return RunOutcome(run_id, "skipped")
        try:
            with computing_with(getattr(cfg, "threads", None)):
                record = track.execute(cfg, store, device, on_epoch=on_epoch, loader_workers=loader_workers,
                                       save_pruned=save_pruned)
        except ShrinkBenchError:
            raise  # data missing, corrupt checkpoint: the user must act, every run would fail
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # a bug or out-of-memory in this run: record it, go on
            record = track.failure_record(cfg, exc, device)
        if record["status"] == "failed":
            _free_memory(device)  # the failed run's tensors are gone now; give CUDA's cache back
        store.write(record, replace=True)
        return RunOutcome(run_id, record["status"], time.perf_counter() - start, record.get("error") or "")
    finally:
        store.release(run_id)


def _free_memory(device: str | None) -> None:
    import gc

    from shrinkbench.core.device import free_memory, resolve_device

    gc.collect()
    free_memory(resolve_device(device))


def run_local(configs: Sequence[Any], store: Store, *, device: str | None = None,
              retry_failed: bool = False, progress: bool = True, loader_workers: int = 0,
              save_pruned: bool = False) -> SweepReport:
    """Run every pending config in this process, one after another, with a progress bar."""
    from tqdm.auto import tqdm

    report, todo = start(configs, store, retry_failed)
    live = sys.stderr.isatty()  # in a log file: a line every 30 s, no per-epoch redraws
    bar = tqdm(total=len(todo), disable=not progress or not todo, unit="run", dynamic_ncols=True,
               file=sys.stderr, smoothing=0.1, mininterval=0.1 if live else 30.0)
    note = (lambda e: bar.set_postfix_str(_epoch_note(e), refresh=True)) if live else None
    warned = False
    try:
        for cfg in todo:
            bar.set_description(describe(cfg), refresh=live)
            if not warned and (warning := contention_warning()):
                bar.write(warning)
                warned = True
            outcome = run_one(cfg, str(store.root), device, retry_failed, on_epoch=note,
                              loader_workers=loader_workers, save_pruned=save_pruned)
            report.outcomes.append(outcome)
            if outcome.status == "failed":
                bar.write(f"run {outcome.run_id} failed: {outcome.error}")
            bar.update(1)
    finally:
        bar.close()
        finish(store)
    return report


def contention_warning(load: float | None = None, cores: int | None = None, threads: int | None = None) -> str:
    """A one-line warning when other work competes for the cores while torch runs several
    threads per process (OpenMP threads then wait on each other: 10x slower and worse was
    measured on two cores), else "". `load` is the 1-minute load average (os.getloadavg),
    which counts this process too; busy means load > cores + 0.5 with threads > 1."""
    import os

    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # not available on this platform
            return ""
    cores = cores or os.cpu_count() or 1
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    if threads > 1 and load > cores + 0.5:
        return (f"warning: the machine is busy (load {load:.1f} on {cores} cores) and torch runs {threads} threads "
                "per process, which can make runs many times slower; --threads 1 avoids it (the thread count is "
                "recorded: numbers are bit-identical only at the same count)")
    return ""


def describe(cfg) -> str:
    """The run as its track names it in one line (`shrinkbench.core.tracks`)."""
    from shrinkbench.core.tracks import track_of

    return track_of(cfg).describe(cfg)


def _epoch_note(entry: dict) -> str:
    val = entry.get("val_top1")
    return f"{entry['phase']} ep {entry['epoch']}" + (f" val {val:.1f}%" if val is not None else "")
