"""`load_splits`: find a dataset (see `shrinkbench.vision.data.locate` for the search order), read
it, and split it into train / validation / test.

Split protocol: test is the official test split (for digits, which has none, a fixed
297-example split, see `shrinkbench.vision.data.catalog`). Validation is `val_size` examples held
out of the official training split by `hold_out` with `split_seed`; train is the rest.
"""
from __future__ import annotations

import dataclasses
import os

import torch
from torch.utils.data import Subset

from shrinkbench.vision.data.locate import DATA_ENV, DOWNLOAD_ENV, SearchBase, download_allowed, download_dir, search_bases
from shrinkbench.vision.data.sources import DATASETS, DatasetSource, Place
from shrinkbench.vision.data.spec import DatasetSpec, DataSplits, Split
from shrinkbench.core.errors import ConfigError, DataNotFoundError


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of a registered dataset (unknown names: `UnknownNameError` with close matches)."""
    return DATASETS.get(name).spec


def hold_out_indices(n: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) indices: with ``p = randperm(n, generator=Generator().manual_seed(seed))``,
    val = sorted(p[:val_size]) and train = sorted(p[val_size:]). Disjoint, covering 0..n-1."""
    if not 0 <= val_size < n:
        raise ConfigError(f"data.val_size must be between 0 and {n - 1} (the training split has {n} examples), "
                          f"got {val_size}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[val_size:].sort().values, order[:val_size].sort().values


def subset(split: Split, indices: torch.Tensor) -> Split:
    """The examples of `split` at `indices` (a copy for tensors, a view for datasets on disk)."""
    if hasattr(split, "subset"):
        return split.subset(indices)
    return Subset(split, indices.tolist())


def hold_out(train: Split, val_size: int, seed: int) -> tuple[Split, Split]:
    """Split the official training split into (train, validation); see `hold_out_indices`."""
    keep, held = hold_out_indices(len(train), val_size, seed)
    return subset(train, keep), subset(train, held)


def describe_search(name: str, root: str | os.PathLike | None = None) -> list[str]:
    """Every place `load_splits(name, root=root)` would look, in order."""
    source = DATASETS.get(name)
    if source.builtin is not None:
        return [source.builtin_place]
    places = [p.describe() for p in source.places(search_bases(root))]
    if source.download is not None:
        places.append(f"torchvision download into {download_dir()} (only with --download or {DOWNLOAD_ENV}=1)")
    return places


def _read_first(places: list[Place]) -> tuple[Split, Split, str] | None:
    for place in places:
        hit = place.find()
        if hit is not None:
            fmt, paths = hit
            train, test = fmt.read(paths)
            return train, test, f"{place.directory} ({fmt.name})"
    return None


def _not_found(source: DatasetSource, places: list[Place], may_download: bool) -> DataNotFoundError:
    name = source.spec.name
    looked = ", ".join(f"{p.describe()} [{p.why_not()}]" for p in places)
    holding = " or ".join(f"{f.name} files ({', '.join(r[0] for r in f.required)})" for f in source.formats)
    fixes = [f"pass --data-root DIR or set {DATA_ENV}=DIR where DIR/{name}/ holds {holding}"]
    if source.fix:
        fixes.append(source.fix)
    if source.download is not None and not may_download:
        fixes.append(f"allow torchvision's download into {download_dir()} with --download or {DOWNLOAD_ENV}=1")
    return DataNotFoundError(f"{name} data not found; looked in: {looked}; to fix: {', or '.join(fixes)}")


def find_official(name: str, root: str | os.PathLike | None = None, download: bool = False) -> tuple[Split, Split, str]:
    """The official (train, test) splits of `name` and a description of where they were found."""
    source = DATASETS.get(name)
    may_download = download_allowed(download)
    if source.builtin is not None:
        return source.builtin()
    places = source.places(search_bases(root))
    found = _read_first(places)
    if found is None and may_download and source.download is not None:
        target = download_dir()
        source.download(target)
        found = _read_first(source.places([SearchBase(target, "download cache")]))
    if found is None:
        raise _not_found(source, places, may_download)
    return found


def load_splits(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    download: bool = False,
    val_size: int | None = None,
    split_seed: int = 0,
) -> DataSplits:
    """Train / validation / test splits of a registered dataset.

    `val_size` defaults to the spec's; `split_seed` picks the held-out validation examples.
    For image folders the returned spec's `num_classes` is the number of class folders found.
    """
    if isinstance(split_seed, bool) or not isinstance(split_seed, int):
        raise ConfigError(f"split_seed must be an integer, got {split_seed!r}")
    spec = dataset_spec(name)
    train, test, location = find_official(name, root, download)
    classes = getattr(train, "classes", None)
    if classes is not None and len(classes) != spec.num_classes:
        spec = dataclasses.replace(spec, num_classes=len(classes))
    train, val = hold_out(train, spec.val_size if val_size is None else val_size, split_seed)
    return DataSplits(spec, train, val, test, location, split_seed)

