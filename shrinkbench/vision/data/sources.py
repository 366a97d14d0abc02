"""The dataset registry: how each dataset is found on disk and read.

Adding a dataset is one decorated function that returns the file formats it can be read
from::

    @dataset(DatasetSpec(name="mnist", ...), folders=("MNIST/raw",), download=torchvision_download("MNIST"))
    def mnist() -> tuple[FileFormat, ...]:
        return (idx_format(num_classes=10),)

A dataset whose data ships inside a package (digits) uses `@builtin_dataset(spec)` on a
function returning ``(train, test, location)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from shrinkbench.vision.data.locate import SearchBase
from shrinkbench.vision.data.spec import DatasetSpec, Split, one_line
from shrinkbench.core.errors import DataNotFoundError
from shrinkbench.core.registry import Registry

Reader = Callable[[dict[str, Path]], tuple[Split, Split]]


@dataclass(frozen=True)
class FileFormat:
    """The files (or folders) that together hold a dataset, and how to read them.

    Each entry of `required` lists the alternative names of one file, e.g.
    ``("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte")``; `read` receives the
    found paths keyed by each entry's first name and returns ``(train, test)``.
    """

    name: str
    required: tuple[tuple[str, ...], ...]
    read: Reader

    def resolve(self, directory: Path) -> dict[str, Path] | None:
        found = {}
        for names in self.required:
            hit = next((directory / n for n in names if (directory / n).exists()), None)
            if hit is None:
                return None
            found[names[0]] = hit
        return found

    def missing(self, directory: Path) -> list[str]:
        return [" or ".join(names) for names in self.required if not any((directory / n).exists() for n in names)]


@dataclass(frozen=True)
class Place:
    """One folder where a dataset may lie, in any of its formats."""

    directory: Path
    origin: str
    formats: tuple[FileFormat, ...]

    def describe(self) -> str:
        return f"{self.directory} ({self.origin})"

    def find(self) -> tuple[FileFormat, dict[str, Path]] | None:
        for fmt in self.formats:
            paths = fmt.resolve(self.directory)
            if paths is not None:
                return fmt, paths
        return None

    def why_not(self) -> str:
        """Why nothing was found here: the folder is absent, or which files it lacks."""
        if not self.directory.is_dir():
            return "no such folder"
        lacks = [f"{fmt.name}: lacks {', '.join(fmt.missing(self.directory))}" for fmt in self.formats]
        return "; ".join(lacks)


@dataclass(frozen=True)
class DatasetSource:
    """A registered dataset: its spec and where and how its files are found."""

    spec: DatasetSpec
    formats: tuple[FileFormat, ...] = ()
    folders: tuple[str, ...] = ()
    download: Callable[[Path], None] | None = None
    fix: str = ""
    builtin: Callable[[], tuple[Split, Split, str]] | None = None
    builtin_place: str = ""

    def places(self, bases: list[SearchBase]) -> list[Place]:
        """Folders searched, in order: per base ``<base>/<name>``, then the torchvision
        folders under ``<base>/<name>`` and ``<base>``, then ``<base>`` itself if named by the user."""
        places: list[Place] = []
        for base in bases:
            named = base.path / self.spec.name
            folders = [named, *(named / f for f in self.folders), *(base.path / f for f in self.folders)]
            if base.explicit:
                folders.append(base.path)
            places.extend(Place(d, base.origin, self.formats) for d in folders)
        return places


DATASETS: Registry[DatasetSource] = Registry("dataset")


def dataset(
    spec: DatasetSpec,
    *,
    folders: tuple[str, ...] = (),
    download: Callable[[Path], None] | None = None,
    fix: str = "",
) -> Callable[[Callable[[], tuple[FileFormat, ...]]], Callable[[], tuple[FileFormat, ...]]]:
    """Register a dataset read from files; the decorated function returns its formats."""

    def wrap(formats: Callable[[], tuple[FileFormat, ...]]):
        DATASETS.register(spec.name, DatasetSource(spec, tuple(formats()), folders, download, fix))
        return formats

    return wrap


def builtin_dataset(spec: DatasetSpec, place: str):
    """Register a dataset shipped inside a package; the function returns (train, test, location)."""

    def wrap(load: Callable[[], tuple[Split, Split, str]]):
        DATASETS.register(spec.name, DatasetSource(spec, builtin=load, builtin_place=place))
        return load

    return wrap


def torchvision_download(class_name: str) -> Callable[[Path], None]:
    """A downloader that lets ``torchvision.datasets.<class_name>`` fetch both splits into a folder."""

    def fetch(directory: Path) -> None:
        import torchvision.datasets

        dataset_class = getattr(torchvision.datasets, class_name)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for train in (True, False):
                dataset_class(str(directory), train=train, download=True)
        except Exception as err:  # network, disk or checksum failures all end the same way
            raise DataNotFoundError(
                f"torchvision could not download {class_name} into {directory}: {type(err).__name__}: {one_line(err)}"
            ) from None

    return fetch
