"""The executor protocol and registry."""
from __future__ import annotations

from typing import Protocol, Sequence

from shrinkbench.config import RunConfig
from shrinkbench.registry import Registry
from shrinkbench.store import Store
from shrinkbench.sweep import SweepReport


class Executor(Protocol):
    name: str

    def run(self, configs: Sequence[RunConfig], store: Store, *, device: str | None,
            workers: int, retry_failed: bool, progress: bool) -> SweepReport: ...


EXECUTORS: Registry[type] = Registry("executor")


def get_executor(name: str) -> Executor:
    return EXECUTORS.get(name)()
