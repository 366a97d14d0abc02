"""CIFAR-10 and CIFAR-100 in both of their published formats (Krizhevsky, 2009).

*Python version* (``cifar-10-batches-py``, ``cifar-100-python``): pickled dicts with
``data``, a uint8 array of N x 3072 (1024 red, then 1024 green, then 1024 blue values of a
32x32 image, row-major), and ``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100).
Read with `load_numpy_pickle`, never with unrestricted pickle.

*Binary version* (``cifar-10-batches-bin``, ``cifar-100-binary``): fixed-size records of
label byte(s) then the same 3072 pixel bytes. CIFAR-10 records are 1 + 3072 bytes;
CIFAR-100 records are 2 + 3072 bytes (coarse label, then fine label; we use the fine one).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shrinkbench.vision.data.safe_pickle import load_numpy_pickle
from shrinkbench.vision.data.spec import DataFormatError, TensorSplit

PIXELS = 3 * 32 * 32


@dataclass(frozen=True)
class CifarFiles:
    """File names and label conventions of one CIFAR variant."""

    num_classes: int
    python_train: tuple[str, ...]
    python_test: tuple[str, ...]
    python_label_key: str
    binary_train: tuple[str, ...]
    binary_test: tuple[str, ...]
    binary_label_bytes: int  # labels before the pixels in each record; the last one is used


CIFAR10 = CifarFiles(
    num_classes=10,
    python_train=tuple(f"data_batch_{i}" for i in range(1, 6)),
    python_test=("test_batch",),
    python_label_key="labels",
    binary_train=tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    binary_test=("test_batch.bin",),
    binary_label_bytes=1,
)
CIFAR100 = CifarFiles(
    num_classes=100,
    python_train=("train",),
    python_test=("test",),
    python_label_key="fine_labels",
    binary_train=("train.bin",),
    binary_test=("test.bin",),
    binary_label_bytes=2,
)


def _as_split(images: np.ndarray, labels: np.ndarray, num_classes: int, path: Path) -> TensorSplit:
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataFormatError(f"{path}: labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}")
    x = torch.from_numpy(np.ascontiguousarray(images).reshape(-1, 3, 32, 32))
    return TensorSplit(x, torch.from_numpy(labels.astype(np.int64)))


def _concat(splits: list[TensorSplit]) -> TensorSplit:
    return TensorSplit(torch.cat([s.x for s in splits]), torch.cat([s.y for s in splits]))


def read_python_batch(path: Path, label_key: str, num_classes: int) -> TensorSplit:
    """One pickled batch of the python version."""
    batch = load_numpy_pickle(path)
    if not isinstance(batch, dict):
        raise DataFormatError(f"{path}: a CIFAR python batch must be a dict, found {type(batch).__name__}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or label_key not in batch:
        raise DataFormatError(f"{path}: a CIFAR python batch needs keys 'data' and {label_key!r}, found {sorted(map(str, batch))}")
    data, labels = batch["data"], np.asarray(batch[label_key])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        shape = getattr(data, "shape", None)
        raise DataFormatError(f"{path}: 'data' must be a uint8 array of N x {PIXELS}, found {type(data).__name__} {shape}")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise DataFormatError(f"{path}: {label_key!r} must hold one integer per image ({len(data)})")
    return _as_split(data, labels, num_classes, path)


def read_binary_batch(path: Path, label_bytes: int, num_classes: int) -> TensorSplit:
    """One file of the binary version: records of `label_bytes` labels then 3072 pixels."""
    raw = np.fromfile(path, dtype=np.uint8)
    record = label_bytes + PIXELS
    if raw.size == 0 or raw.size % record:
        raise DataFormatError(f"{path}: size {raw.size} bytes is not a positive multiple of the {record}-byte CIFAR record")
    rows = raw.reshape(-1, record)
    return _as_split(rows[:, label_bytes:], rows[:, label_bytes - 1].astype(np.int64), num_classes, path)


def read_python(paths: dict[str, Path], files: CifarFiles) -> tuple[TensorSplit, TensorSplit]:
    """(train, test) from the python version; `paths` maps file names to their paths."""

    def read(names: tuple[str, ...]) -> TensorSplit:
        return _concat([read_python_batch(paths[n], files.python_label_key, files.num_classes) for n in names])

    return read(files.python_train), read(files.python_test)


def read_binary(paths: dict[str, Path], files: CifarFiles) -> tuple[TensorSplit, TensorSplit]:
    """(train, test) from the binary version."""

    def read(names: tuple[str, ...]) -> TensorSplit:
        return _concat([read_binary_batch(paths[n], files.binary_label_bytes, files.num_classes) for n in names])

    return read(files.binary_train), read(files.binary_test)
