"""Where data is looked for, in order.

1. the `root` argument (the CLI's ``--data-root``);
2. every folder in the environment variable ``SHRINKBENCH_DATA`` (``os.pathsep``-separated);
3. known system locations: ``/usr/share/datasets`` (Debian's ``dataset-*`` packages, e.g.
   ``dataset-fashion-mnist`` installs ``/usr/share/datasets/fashion-mnist/*.gz``);
4. the download cache ``$XDG_CACHE_HOME/shrinkbench/data`` (default
   ``~/.cache/shrinkbench/data``), where earlier downloads went;
5. only when allowed (``download=True``, ``--download`` or ``SHRINKBENCH_DOWNLOAD=1``):
   torchvision's download into that cache.

Under each of these *bases* a dataset is looked for in the folders its registration names
(``<base>/<name>`` and the torchvision layouts such as ``<base>/FashionMNIST/raw``); files
lying directly in the base are accepted only for the `root` argument, because a shared
folder cannot say whether its ``train-images-idx3-ubyte.gz`` is MNIST or Fashion-MNIST.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shrinkbench.core.errors import ConfigError

DATA_ENV = "SHRINKBENCH_DATA"
DOWNLOAD_ENV = "SHRINKBENCH_DOWNLOAD"
SYSTEM_DATA_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class SearchBase:
    """A folder under which datasets are looked for, and why it is searched."""

    path: Path
    origin: str  # "root argument", "$SHRINKBENCH_DATA", "system", "download cache"

    @property
    def explicit(self) -> bool:
        """Whether the user named this folder for this call (files may lie directly in it)."""
        return self.origin == "root argument"


def download_dir() -> Path:
    """The folder torchvision downloads go to: ``$XDG_CACHE_HOME/shrinkbench/data``."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "shrinkbench" / "data"


def download_allowed(download: bool) -> bool:
    """`download`, or the environment variable SHRINKBENCH_DOWNLOAD set to a true word."""
    word = os.environ.get(DOWNLOAD_ENV, "").strip().lower()
    if word not in TRUE_WORDS + FALSE_WORDS:
        raise ConfigError(f"{DOWNLOAD_ENV}={word!r} is not understood; use 1 to allow downloads or 0 to forbid them")
    return download or word in TRUE_WORDS


def search_bases(root: str | os.PathLike | None) -> list[SearchBase]:
    """The bases in search order, without repeats."""
    bases = []
    if root is not None:
        bases.append(SearchBase(Path(root).expanduser(), "root argument"))
    for entry in os.environ.get(DATA_ENV, "").split(os.pathsep):
        if entry.strip():
            bases.append(SearchBase(Path(entry.strip()).expanduser(), f"${DATA_ENV}"))
    bases.extend(SearchBase(p, "system") for p in SYSTEM_DATA_DIRS)
    bases.append(SearchBase(download_dir(), "download cache"))
    unique: dict[Path, SearchBase] = {}
    for base in bases:
        unique.setdefault(base.path.absolute(), base)
    return list(unique.values())
