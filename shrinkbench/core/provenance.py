"""What every record says about where and how it was made."""
from __future__ import annotations

import functools
import hashlib
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import torch

PACKAGE_ROOT = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """`git describe --always --dirty` of the checkout holding this package (the suffix
    `-dirty` marks uncommitted changes), or `shrinkbench-<version>` for an installed copy."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"],
                             cwd=PACKAGE_ROOT, capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return f"shrinkbench-{_version('shrinkbench')}"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__,
            **{p: _version(p) for p in ("torchvision", "numpy", "shrinkbench")}}


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()}"


def cpu_model() -> str | None:
    """The CPU's model name (Linux /proc/cpuinfo's first `model name`), None where unknown."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_capability() -> str | None:
    """The vector instruction set torch's CPU kernels dispatch to (`AVX512`, `AVX2`, `DEFAULT`):
    the same run on CPUs that differ in it may differ in the last bits of its numbers."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return None


def environment(device: torch.device) -> dict:
    return {
        "code_version": code_version(),
        "versions": library_versions(),
        "device": device_description(device),
        "threads": torch.get_num_threads(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_capability": cpu_capability(),
        "argv": sys.argv[:],
    }


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
