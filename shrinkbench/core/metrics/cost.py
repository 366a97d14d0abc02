"""Measured cost: what FLOPs do not show.

Latency is wall-clock time of one inference forward pass of a batch, measured `repeats`
times after `warmup` untimed passes, with the device synchronised around each timed pass
(CUDA); the median and the interquartile range are recorded. The settings (threads,
device, batch sizes, repeats) are part of every record's provenance.

Measured speedup: with a `reference` model (the dense model of the same architecture),
the reference and the measured model are timed in alternation, one pass each per round,
in the same process with the same settings, so that drift in the machine's load hits both
alike; `measured_speedup = median(reference times) / median(model times)`.
"""
from __future__ import annotations

import statistics
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from shrinkbench.core.metrics.registry import metric

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn


@dataclass(frozen=True)
class LatencySettings:
    batch_sizes: tuple[int, ...] = (1, 64)
    warmup: int = 5
    repeats: int = 30

    def __post_init__(self) -> None:
        if not self.batch_sizes or min(self.batch_sizes) < 1 or self.repeats < 3 or self.warmup < 0:
            raise ValueError("latency needs batch sizes >= 1, repeats >= 3 and warmup >= 0")


def _sync(device: "torch.device") -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def time_forward(model: nn.Module, x: torch.Tensor, warmup: int, repeats: int) -> list[float]:
    """Seconds of each of `repeats` timed forward passes on `x` (after `warmup` passes)."""
    import torch

    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            _sync(x.device)
            start = time.perf_counter()
            model(x)
            _sync(x.device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return times


@metric(unit="s", higher_is_better=False, kind="cost", stages=("post",), per_batch_size=True)
def latency(times: list[float]) -> float:
    """Median wall-clock seconds of one inference forward pass of a batch of B examples,
    over repeated timed passes after warm-up: latency_bB = median(t_1..t_R)."""
    return statistics.median(times)


@metric(unit="s", higher_is_better=False, kind="cost", stages=("post",), per_batch_size=True)
def latency_iqr(times: list[float]) -> float:
    """Spread of the latency: latency_iqr_bB = 75th - 25th percentile of t_1..t_R (linear
    interpolation), in seconds."""
    q75, q25 = np.percentile(times, [75, 25])
    return float(q75 - q25)


@metric(unit="ratio", higher_is_better=True, kind="cost", stages=("post",), per_batch_size=True)
def measured_speedup(reference_times: list[float], times: list[float]) -> float:
    """Measured speedup over the dense model at batch size B, timed in alternation in the
    same process: measured_speedup_bB = median(dense times) / median(times). A masked model
    on dense kernels measures about 1; a compacted (channel-pruned) model what it really gains."""
    return statistics.median(reference_times) / statistics.median(times)


@metric(unit="s", higher_is_better=None, kind="cost", stages=("post",), per_batch_size=True)
def latency_dense(reference_times: list[float]) -> float:
    """The dense model's latency at batch size B, timed in alternation with the run's model:
    latency_dense_bB = median(dense times); the reference of measured_speedup_bB."""
    return statistics.median(reference_times)


def time_alternating(model: "nn.Module", reference: "nn.Module", x: "torch.Tensor", warmup: int,
                     repeats: int) -> tuple[list[float], list[float]]:
    """(model times, reference times): `repeats` rounds, each one timed pass of each, after
    `warmup` untimed rounds."""
    import torch

    mine, theirs = [], []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            for net, out in ((reference, theirs), (model, mine)):
                _sync(x.device)
                start = time.perf_counter()
                net(x)
                _sync(x.device)
                if i >= warmup:
                    out.append(time.perf_counter() - start)
    return mine, theirs


@metric(unit="examples/s", higher_is_better=True, kind="cost", stages=("post",), per_batch_size=True)
def throughput(times: list[float], batch_size: int) -> float:
    """Examples per second at batch size B: throughput_bB = B / latency_bB."""
    return batch_size / latency(times)


def _memory_tracker(baseline: int):
    """A TorchDispatchMode that follows the bytes of tensor storages created under it, freed
    when they die (defined on first use: importing this module needs no torch)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class TensorMemoryTracker(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.current = baseline
            self.peak = baseline
            self._seen: set[int] = set()

        def _free(self, key: int, nbytes: int) -> None:
            self.current -= nbytes
            self._seen.discard(key)

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    storage = t.untyped_storage()
                    key = storage.data_ptr()
                    if key and key not in self._seen:
                        self._seen.add(key)
                        self.current += storage.nbytes()
                        self.peak = max(self.peak, self.current)
                        weakref.finalize(storage, self._free, key, storage.nbytes())
            return out

    return TensorMemoryTracker()


@metric(unit="bytes", higher_is_better=False, kind="cost", stages=("post",), per_batch_size=True)
def peak_memory(model: nn.Module, x: torch.Tensor) -> int:
    """Peak bytes of tensors alive during one inference forward pass of a batch of B:
    peak_memory_bB = bytes(parameters, buffers, input; a storage shared by tied weights once) +
    max over time of the bytes of live activation storages (CPU: tracked per tensor storage;
    CUDA: the allocator's peak, torch.cuda.max_memory_allocated)."""
    import torch

    with torch.inference_mode():
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
            torch.cuda.reset_peak_memory_stats(x.device)
            model(x)
            torch.cuda.synchronize(x.device)
            return int(torch.cuda.max_memory_allocated(x.device))
        storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                    for t in model.state_dict(keep_vars=True).values()}  # a tied weight counted once
        baseline = sum(storages.values()) + x.numel() * x.element_size()
        tracker = _memory_tracker(baseline)
        with tracker:
            model(x)
        return int(tracker.peak)


def measure_cost(model: nn.Module, input_shape: tuple[int, ...], settings: LatencySettings,
                 device: torch.device | str = "cpu", seed: int = 0,
                 reference: "nn.Module | None" = None) -> dict[str, float]:
    """latency, latency_iqr, throughput and peak memory at every batch size; with a dense
    `reference`, also latency_dense and measured_speedup (timed in alternation)."""
    import torch

    device = torch.device(device)
    was_training = model.training
    model.eval()
    if reference is not None:
        reference.eval()
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, float] = {}
    try:
        for b in settings.batch_sizes:
            x = torch.randn((b, *input_shape), generator=gen).to(device)
            if reference is None:
                times = time_forward(model, x, settings.warmup, settings.repeats)
            else:
                times, dense = time_alternating(model, reference, x, settings.warmup, settings.repeats)
                out[f"latency_dense_b{b}"] = latency_dense(dense)
                out[f"measured_speedup_b{b}"] = measured_speedup(dense, times)
            out[f"latency_b{b}"] = latency(times)
            out[f"latency_iqr_b{b}"] = latency_iqr(times)
            out[f"throughput_b{b}"] = throughput(times, b)
            out[f"peak_memory_b{b}"] = float(peak_memory(model, x))
    finally:
        model.train(was_training)
    return out
