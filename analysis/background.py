"""Figure files written by forked worker processes while the report goes on.

A figure is finished (every artist set) before it is saved, and saving it (drawing with Agg
for PNG, with the PDF backend for PDF, encoding, writing) neither changes it nor anything the
report computes afterwards. Inside `saving_in_background()`, `submit(write)` forks a child that
runs `write()` on its copy-on-write image of the process and exits, so the parent computes the
next statistics and figures meanwhile: at most `workers` children at once (default: the CPUs
this process may use). The files are byte for byte those of a sequential save
(tests/test_report_identity.py). Leaving the block waits for every child; a child that fails
raises its one-line error in the parent (AnalysisError). Where `os.fork` is missing, or
outside the block, `submit` runs `write()` at once.
"""
from __future__ import annotations

import contextlib
import gc
import os
import sys
import warnings
from typing import Callable, Iterator

from shrinkbench.analysis.errors import AnalysisError

_active: list["_Children"] = []


class _Children:
    def __init__(self, workers: int):
        self.workers = max(1, workers)
        self.running: dict[int, int] = {}  # pid -> read end of its error pipe
        self.errors: list[str] = []

    def start(self, write: Callable[[], object]) -> None:
        while len(self.running) >= self.workers:
            self._reap(next(iter(self.running)))
        sys.stdout.flush()
        sys.stderr.flush()
        read, send = os.pipe()
        with warnings.catch_warnings():
            # Python >= 3.12 warns when a process with threads forks (a lock another thread
            # holds stays held in the child): the child only draws with matplotlib and writes
            # its files, and touches no lock of torch's or numpy's threads.
            warnings.filterwarnings("ignore", message=r".*use of fork\(\) may lead to deadlocks",
                                    category=DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: write, report a failure through the pipe, never return
            gc.disable()  # a collection would touch (and so copy) every page of the parent's heap
            os.close(read)
            code = 0
            try:
                write()
            except BaseException as error:  # noqa: BLE001 (everything goes back to the parent)
                os.write(send, f"{type(error).__name__}: {error}".encode("utf-8", "replace")[:4000])
                code = 1
            finally:
                os._exit(code)
        os.close(send)
        self.running[pid] = read

    def _reap(self, pid: int) -> None:
        read = self.running.pop(pid)
        with os.fdopen(read, "rb") as pipe:
            message = pipe.read().decode("utf-8", "replace")
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            self.errors.append(message or f"a figure writer exited with status {os.waitstatus_to_exitcode(status)}")

    def wait(self) -> None:
        while self.running:
            self._reap(next(iter(self.running)))
        if self.errors:
            raise AnalysisError(f"writing a figure failed: {self.errors[0]}")


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@contextlib.contextmanager
def saving_in_background(workers: int | None = None) -> Iterator[None]:
    """Within the block, `submit` forks a writer per call (see the module docstring)."""
    if not hasattr(os, "fork") or _active:
        yield
        return
    children = _Children(default_workers() if workers is None else workers)
    _active.append(children)
    try:
        yield
    except BaseException:
        _active.pop()
        with contextlib.suppress(AnalysisError):
            children.wait()
        raise
    _active.pop()
    children.wait()


def submit(write: Callable[[], object]) -> None:
    """Run `write()` in a forked child inside `saving_in_background`, at once otherwise."""
    if _active:
        _active[-1].start(write)
    else:
        write()


def wait_for_writers() -> None:
    """Wait, inside `saving_in_background`, until every file submitted so far is written
    (raising a writer's failure); nothing to do outside it."""
    if _active:
        _active[-1].wait()
