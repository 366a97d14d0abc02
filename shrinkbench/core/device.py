"""Devices: which one a run uses, deterministic kernels, mixed precision, freeing memory.

Device names: `auto` (the first CUDA device if there is one, else the CPU), `cpu`, `cuda`
or `cuda:N`. `check_device_name` only checks the spelling (the machine that launches a
sweep may have no GPU while its workers do); `resolve_device` runs on the worker and also
checks that the device exists there.

Deterministic mode (`RunConfig.deterministic`, on by default): inside
`deterministic_algorithms(True)` torch uses deterministic kernels where it has them
(`torch.use_deterministic_algorithms(True, warn_only=True)`), cuDNN does not benchmark
(`cudnn.benchmark = False`, `cudnn.deterministic = True`) and cuBLAS gets a fixed
workspace (`CUBLAS_WORKSPACE_CONFIG=:4096:8`; torch reads it when cuBLAS first starts, so
importing this module sets it where it is unset). Operations without a
deterministic kernel (on CUDA, e.g. the backward of adaptive average pooling) still run;
their names are collected so the record can say the run was not fully deterministic.
With `deterministic = false`, cuDNN benchmarks and picks the fastest kernels.

Mixed precision (`RunConfig.amp`): on CUDA, forward passes of training, evaluation and
latency run under `torch.autocast("cuda", dtype=torch.float16)` and training scales the
loss (`torch.amp.GradScaler`). On the CPU `amp` changes nothing; `precision` says which
one a run really used, and the record keeps it in its provenance.
"""
from __future__ import annotations

import contextlib
import os
import re
import warnings
from typing import Iterator

import torch

from shrinkbench.core.errors import ConfigError

DEVICE_NAME = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
CUBLAS_WORKSPACE = ":4096:8"
_NONDETERMINISTIC = re.compile(r"^(\S+) does not have a deterministic implementation")
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)


def check_device_name(name: str | None) -> str:
    """`name` if it is auto, cpu, cuda or cuda:N (None means auto); ConfigError otherwise."""
    name = "auto" if name is None else str(name).strip()
    if not DEVICE_NAME.match(name):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    return name


def resolve_device(name: str | None) -> torch.device:
    """The torch device for `name` on this machine; ConfigError if it is not here."""
    name = check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name} asked for, but this machine ({os.uname().nodename}) has no "
                              f"usable CUDA device; use --device cpu or auto")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device {name} asked for, but this machine has {count} CUDA device(s): "
                              f"cuda:0..cuda:{count - 1}")
    return device


def worker_device(name: str | None, assigned_gpus: int) -> str:
    """The device name inside a worker that was given `assigned_gpus` GPUs by a scheduler
    (Ray, Slurm, a pool slot), which then shows it only those as cuda:0..: `cuda:N` becomes
    `cuda`; `auto` and `cpu` stay as they are."""
    name = check_device_name(name)
    return "cuda" if assigned_gpus > 0 and name.startswith("cuda") else name


def slot_gpu(name: str | None, slot: int, gpu_count: int) -> str | None:
    """CUDA_VISIBLE_DEVICES for worker `slot` of a pool on a machine with `gpu_count` GPUs:
    one GPU per worker, round robin, when the sweep runs on `cuda` or `auto`; None (leave it
    as it is) on the CPU, for an explicit `cuda:N`, or with fewer than two GPUs."""
    name = check_device_name(name)
    if name not in ("auto", "cuda") or gpu_count < 2:
        return None
    return str(slot % gpu_count)


def precision(amp: bool, device: torch.device) -> str:
    """`float16-mixed` where `amp` is on and the device is CUDA, else `float32`."""
    return "float16-mixed" if amp and device.type == "cuda" else "float32"


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """float16 autocast on CUDA when `amp`; a no-op context otherwise."""
    if precision(amp, device) == "float16-mixed":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[set[str]]:
    """Deterministic kernels on (or off) inside the block; yields the set that collects the
    names of operations that ran without a deterministic kernel. Restores the previous
    settings afterwards. Other warnings pass through unchanged."""
    cudnn = torch.backends.cudnn
    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled(), cudnn.benchmark, cudnn.deterministic)
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    nondeterministic: set[str] = set()
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    cudnn.benchmark, cudnn.deterministic = not enabled, enabled
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield nondeterministic
            finally:
                others = []
                for w in caught:
                    hit = _NONDETERMINISTIC.match(str(w.message))
                    if hit:
                        nondeterministic.add(hit.group(1))
                    else:
                        others.append(w)
        for w in others:  # outside catch_warnings: shown (or filtered) as usual
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        cudnn.benchmark, cudnn.deterministic = before[2], before[3]


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA out-of-memory errors and the CPU allocator's "can't allocate memory"."""
    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def free_memory(device: torch.device) -> None:
    """Give cached CUDA blocks back after a run (most useful after an out-of-memory error)."""
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
