"""`batches`: normalised float32 (x, y) batches of a split, reproducible from a generator.

In-memory splits (`TensorSplit`) are batched by tensor indexing in the calling process:
no DataLoader, no workers, no per-example PIL images. Per pass, in this order, the
generator gives the permutation (when `shuffle`) and then, batch by batch, the
augmentation draws (when `augment` and the spec augments). Every example appears exactly
once per pass; the last partial batch is kept unless `drop_last`.

On-disk splits go through a `torch.utils.data.DataLoader` whose sampler draws the
permutation and one seed per example from the generator; each image's random transform is
seeded with its own seed, so batches do not depend on `num_workers`.

Normalisation: ``(x / 255 - mean) / std`` for uint8 images, ``(x - mean) / std`` for float
images in 0..1, computed as ``x * scale + shift`` per channel.
"""
from __future__ import annotations

import math
from typing import Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from shrinkbench.vision.data.augment import pad_crop_flip
from shrinkbench.vision.data.spec import DatasetSpec, Split, TensorSplit
from shrinkbench.core.errors import ConfigError

Batch = tuple[torch.Tensor, torch.Tensor]


def normaliser(spec: DatasetSpec, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift), each 1 x C x 1 x 1, with ``x_norm = x * scale + shift``."""
    mean = torch.tensor(spec.mean, dtype=torch.float64)
    std = torch.tensor(spec.std, dtype=torch.float64)
    pixel_max = 255.0 if dtype == torch.uint8 else 1.0
    scale, shift = 1 / (pixel_max * std), -mean / std
    return scale.to(torch.float32).view(1, -1, 1, 1), shift.to(torch.float32).view(1, -1, 1, 1)


def normalise(x: torch.Tensor, spec: DatasetSpec) -> torch.Tensor:
    """A new float32 tensor ``x * scale + shift`` (never modifies `x`)."""
    scale, shift = normaliser(spec, x.dtype)
    return (x * scale).add_(shift)


class TensorBatches:
    """Re-iterable batches of an in-memory split; ``len()`` is the number of batches."""

    def __init__(self, split: TensorSplit, batch_size: int, shuffle: bool, generator: torch.Generator | None,
                 augment: bool, spec: DatasetSpec, drop_last: bool, pin_memory: bool):
        self.split, self.batch_size, self.shuffle, self.generator = split, batch_size, shuffle, generator
        self.augment = augment and spec.augments
        self.spec, self.drop_last, self.pin_memory = spec, drop_last, pin_memory and torch.cuda.is_available()
        self.scale, self.shift = normaliser(spec, split.x.dtype)

    def __len__(self) -> int:
        n = len(self.split)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        n, size = len(self.split), self.batch_size
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        for start in range(0, len(self) * size, size):
            if order is None:
                x, y = self.split.x[start : start + size], self.split.y[start : start + size]
            else:
                index = order[start : start + size]
                x, y = self.split.x.index_select(0, index), self.split.y.index_select(0, index)
            if self.augment:
                x = pad_crop_flip(x, self.spec.crop_padding, self.spec.flip_p, self.generator)
            x = (x * self.scale).add_(self.shift)
            if self.pin_memory:
                x, y = x.pin_memory(), y.pin_memory()
            yield x, y


class SeededSampler(Sampler):
    """Yields ``(index, seed)`` per example: a permutation when shuffling (else 0..n-1), then
    seeds ``randint(0, 2**63 - 1)`` when augmenting (else None), both from the generator."""

    def __init__(self, n: int, shuffle: bool, augment: bool, generator: torch.Generator | None, with_seeds: bool):
        self.n, self.shuffle, self.augment, self.generator, self.with_seeds = n, shuffle, augment, generator, with_seeds

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator).tolist() if self.shuffle else range(self.n)
        if not self.with_seeds:
            yield from order
            return
        seeds = torch.randint(0, 2**63 - 1, (self.n,), generator=self.generator).tolist() if self.augment else None
        for k, index in enumerate(order):
            yield index, (seeds[k] if seeds is not None else None)


class LoaderBatches:
    """Normalised batches of a DataLoader over an on-disk split."""

    def __init__(self, loader: DataLoader, spec: DatasetSpec):
        self.loader, self.spec = loader, spec

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Batch]:
        for x, y in self.loader:
            yield normalise(x, self.spec), y


def batches(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None,
    augment: bool,
    spec: DatasetSpec,
    drop_last: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> Iterable[Batch]:
    """Normalised float32 batches of `split`; see the module docstring for the draw order.

    `generator=None` draws from torch's default generator (not reproducible unless the
    caller seeds it). `num_workers` applies to on-disk splits only. An on-disk split that is
    not an `ImageFolderSplit` must yield unnormalised (uint8 image, label) items.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    if num_workers < 0:
        raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
    if isinstance(split, TensorSplit):
        if split.x.shape[1] != len(spec.mean):
            raise ConfigError(f"split has {split.x.shape[1]} channels but dataset {spec.name!r} has {len(spec.mean)}")
        return TensorBatches(split, batch_size, shuffle, generator, augment, spec, drop_last, pin_memory)
    seeded = hasattr(split, "with_augmentation")
    dataset = split.with_augmentation(augment) if seeded else split
    sampler = SeededSampler(len(dataset), shuffle, augment, generator, with_seeds=seeded)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                        num_workers=num_workers, pin_memory=pin_memory, generator=generator)
    return LoaderBatches(loader, spec)
