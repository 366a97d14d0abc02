"""The standardized metrics registry: every metric registered once, with its definition.

Each metric has a name, a unit, a direction (higher or lower is better; None where neither
is better, e.g. a raw parameter count of the dense model), the stages it is measured at
(`pre` = after pruning, before fine-tuning; `post` = after fine-tuning), a kind (what it is
computed from) and a definition: the docstring of its function, formula included.
Metrics measured at several batch sizes are recorded as `<name>_b<N>`.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from shrinkbench.core.registry import Registry

KINDS = ("structure", "accuracy", "cost")


@dataclass(frozen=True)
class MetricInfo:
    name: str
    unit: str
    higher_is_better: bool | None
    stages: tuple[str, ...]
    kind: str
    per_batch_size: bool
    definition: str
    fn: Callable = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name}: kind must be one of {KINDS}")
        if not self.definition:
            raise ValueError(f"metric {self.name} needs a docstring stating its definition")

    def recorded_names(self, batch_sizes: tuple[int, ...]) -> list[str]:
        return [f"{self.name}_b{b}" for b in batch_sizes] if self.per_batch_size else [self.name]

    def as_dict(self) -> dict:
        return {"name": self.name, "unit": self.unit, "higher_is_better": self.higher_is_better,
                "stage": list(self.stages), "kind": self.kind,
                "per_batch_size": self.per_batch_size, "definition": self.definition}


METRICS: Registry[MetricInfo] = Registry("metric")


def metric(unit: str, higher_is_better: bool | None, kind: str, stages=("pre", "post"),
           per_batch_size: bool = False, name: str | None = None):
    """Register the decorated pure function as a metric; its docstring is the definition."""

    def wrap(fn: Callable) -> Callable:
        key = name or fn.__name__
        METRICS.register(key, MetricInfo(key, unit, higher_is_better, tuple(stages), kind,
                                         per_batch_size, inspect.cleandoc(fn.__doc__ or ""), fn))
        return fn

    return wrap


def metric_info(name: str) -> MetricInfo:
    """Info of a registered metric, also for recorded names like `latency_b64`."""
    from shrinkbench.analysis.schema import base_metric

    return METRICS.get(base_metric(name) if base_metric(name) in METRICS else name)
