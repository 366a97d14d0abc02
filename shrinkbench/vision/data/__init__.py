"""Datasets with fixed train / validation / test splits.

    splits = load_splits("fashion-mnist")            # finds, reads and splits the data
    for x, y in batches(splits.train, 128, shuffle=True, generator=g, augment=True, spec=splits.spec):
        ...

Modules: `spec` (what a dataset is), `locate` (where data is looked for), `sources` (the
registry and file formats), `catalog` (the registered datasets), `load` (finding and
splitting), `batching` (reproducible batches), `augment`, and the format readers `idx`,
`cifar` (with `safe_pickle`) and `imagefolder`.
"""
from shrinkbench.vision.data import catalog as _catalog  # noqa: F401  (registers the datasets)
from shrinkbench.vision.data.batching import batches, normalise
from shrinkbench.vision.data.load import dataset_spec, describe_search, find_official, hold_out, hold_out_indices, load_splits
from shrinkbench.vision.data.sources import DATASETS, FileFormat, builtin_dataset, dataset
from shrinkbench.vision.data.spec import DataFormatError, DatasetSpec, DataSplits, TensorSplit


def __getattr__(name: str):
    if name == "ImageFolderSplit":  # torchvision and PIL are imported only where image folders are read
        from shrinkbench.vision.data.imagefolder import ImageFolderSplit

        return ImageFolderSplit
    raise AttributeError(f"module 'shrinkbench.vision.data' has no attribute {name!r}")

__all__ = [
    "DATASETS",
    "DataFormatError",
    "DataSplits",
    "DatasetSpec",
    "FileFormat",
    "ImageFolderSplit",
    "TensorSplit",
    "batches",
    "builtin_dataset",
    "dataset",
    "dataset_spec",
    "describe_search",
    "find_official",
    "hold_out",
    "hold_out_indices",
    "load_splits",
    "normalise",
]
