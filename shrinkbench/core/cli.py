"""The command line's shared parts: argument types, the options every running command takes, and
how they are applied. The tracks' own commands (`prune`, `prune-llm`) and the generic ones
(`run`, `benchmark`) use them, so an option means one thing everywhere."""
from __future__ import annotations

import argparse
import json


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default="results", help="results folder (default: results)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default)")
    p.add_argument("--data-root", default=None, help="folder holding the datasets (must exist)")
    p.add_argument("--download", action="store_true", help="allow torchvision to download missing data")
    p.add_argument("--threads", type=positive_int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--save-pruned", action="store_true",
                   help="also write each run's deployed model (compacted for channel runs) to <store>/pruned/, "
                        "loadable with shrinkbench.vision.structured.saving.load_pruned")


def apply_threads(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


def data_options(args) -> dict:
    import os

    from shrinkbench.core.errors import DataNotFoundError

    data = {}
    if args.data_root:
        if not os.path.isdir(os.path.expanduser(args.data_root)):
            raise DataNotFoundError(f"--data-root {args.data_root!r} is not a folder; name the folder that holds "
                                    "the datasets")
        data["root"] = args.data_root
    if args.download:
        data["download"] = True
    return data


def torch_threads() -> int:
    """torch's intra-op thread count in this process (what a run computes with unless pinned)."""
    import torch

    return torch.get_num_threads()


def read_config_file(path: str) -> dict:
    """The settings of a TOML or JSON file (`--config`), or a one-line ConfigError."""
    import tomllib

    from shrinkbench.core.errors import ConfigError

    try:
        text = open(path).read()
        return json.loads(text) if path.endswith(".json") else tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {'JSON' if path.endswith('.json') else 'TOML'}: {exc}") from None
