"""What a dataset is (`DatasetSpec`) and what loading one gives (`TensorSplit`, `DataSplits`).

Pixel conventions: in-memory images are stored as ``uint8`` in 0..255 (or ``float32`` in
0..1 for datasets that are not 8-bit, such as `digits`), channels first, N x C x H x W.
A batch is normalised per channel as ``x_norm = (x / 255 - mean) / std`` (uint8) or
``(x - mean) / std`` (float), where mean and std are the training-set pixel statistics
stated in the spec.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import torch
from torch.utils.data import Dataset

from shrinkbench.core.errors import ConfigError, ShrinkBenchError


class DataFormatError(ShrinkBenchError, ValueError):
    """A data file exists but is not in the format it claims (bad magic, truncated, unsafe)."""


def one_line(text: object) -> str:
    """`text` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


@dataclass(frozen=True)
class DatasetSpec:
    """The fixed facts of a dataset; the registry key is `name`.

    `crop_padding` and `flip_p` are the machine form of `augmentation` for in-memory data:
    a random crop of the input size taken after zero-padding the raw image by
    `crop_padding` pixels on each side (0 = no crop), then a horizontal flip with
    probability `flip_p`. On-disk datasets (imagenet) do their augmentation per image and
    leave both at 0; `augmentation` states what they do. `train_examples` is the size of
    the official training split where it is fixed (None for folders of any size), so a
    `val_size` that would leave no training data is refused before anything runs.
    """

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    val_size: int
    in_memory: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augmentation: str
    source: str
    crop_padding: int = 0
    flip_p: float = 0.0
    train_examples: int | None = None

    def __post_init__(self) -> None:
        where = f"dataset spec {self.name!r}"
        if not self.name:
            raise ConfigError("a dataset spec needs a non-empty name")
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ConfigError(f"{where}: input_shape must be (C, H, W) with positive sizes, got {self.input_shape}")
        if self.num_classes < 2:
            raise ConfigError(f"{where}: num_classes must be at least 2, got {self.num_classes}")
        if self.val_size < 0:
            raise ConfigError(f"{where}: val_size must be >= 0, got {self.val_size}")
        channels = self.input_shape[0]
        if len(self.mean) != channels or len(self.std) != channels:
            raise ConfigError(f"{where}: mean and std need one value per channel ({channels})")
        if not all(math.isfinite(s) and s > 0 for s in self.std):
            raise ConfigError(f"{where}: std values must be positive, got {self.std}")
        if self.crop_padding < 0 or not 0.0 <= self.flip_p <= 1.0:
            raise ConfigError(f"{where}: crop_padding must be >= 0 and flip_p in [0, 1]")
        if not self.augmentation or not self.source:
            raise ConfigError(f"{where}: augmentation and source must be written down")

    @property
    def augments(self) -> bool:
        """Whether in-memory batches change when `augment=True`."""
        return self.crop_padding > 0 or self.flip_p > 0


@dataclass(frozen=True, eq=False)
class TensorSplit:
    """An in-memory split: images `x` (N x C x H x W, uint8 or float32) and labels `y` (int64, N).

    The tensors may be shared with other splits or calls; treat them as read-only.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.ndim != 4 or self.y.ndim != 1 or len(self.x) != len(self.y):
            raise DataFormatError(
                f"a tensor split needs x of shape N x C x H x W and y of shape N, got {tuple(self.x.shape)} and {tuple(self.y.shape)}"
            )
        if self.x.dtype not in (torch.uint8, torch.float32) or self.y.dtype != torch.int64:
            raise DataFormatError(f"a tensor split needs uint8/float32 images and int64 labels, got {self.x.dtype} and {self.y.dtype}")

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, indices: torch.Tensor) -> "TensorSplit":
        """The examples at `indices`, in that order (copies)."""
        return TensorSplit(self.x[indices], self.y[indices])


Split = Union[TensorSplit, Dataset]


@dataclass(frozen=True, eq=False)
class DataSplits:
    """The three fixed splits of one dataset and where its files were found.

    `test` is the official test split; `val` holds `val_size` examples taken out of the
    official training split by `split_seed` (see `shrinkbench.vision.data.splits.hold_out`);
    `train` is the rest of the official training split.
    """

    spec: DatasetSpec
    train: Split
    val: Split
    test: Split
    location: str
    split_seed: int = 0

    @property
    def split_id(self) -> str:
        """A short stable name of the split protocol, e.g. ``fashion-mnist/val5000/seed0``."""
        return f"{self.spec.name}/val{len(self.val)}/seed{self.split_seed}"
