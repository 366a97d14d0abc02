"""Checking a model folder before any run: what would otherwise fail half-way through a run.

For a local folder (`ModelSource.kind == "folder"`):

- weights: at least one weight file (`*.safetensors`, `*.bin`); every shard an index file
  (`*.index.json`) names is there; a safetensors file is as long as its header says (8 bytes
  of header length, the JSON header, then the data up to the largest `data_offsets` end), so a
  truncated copy is named; every tensor is finite (a NaN weight is the folder's fault, not the
  strategy's).
- `config.json`: a `model_type` this `transformers` knows.

For every model (a folder, or the cached float32 folder of a GGUF), from its configuration
alone (the model built on the `meta` device, no weights read):

- the window fits: `seq_len` <= the model's positions (`max_position_embeddings`, GPT-2's
  `n_positions`);
- the layers: the model has transformer blocks of `nn.Linear` layers, every `exclude`
  pattern matches at least one of them, something is left to prune, and for an N:M pattern
  every pruned layer's input width is a multiple of M.

Each failure is one ConfigError naming the folder and what to do.
"""
from __future__ import annotations

import fnmatch
import functools
import json
import struct
from pathlib import Path

from shrinkbench.core.errors import ConfigError

WEIGHT_PATTERNS = ("*.safetensors", "*.bin")


def check_weight_files(folder: Path) -> None:
    """The weights of a Hugging Face folder are all there, whole and finite."""
    files = sorted(p for pattern in WEIGHT_PATTERNS for p in folder.glob(pattern) if p.is_file())
    for index in folder.glob("*.index.json"):
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(f"model folder {folder}: {index.name} is not a readable weight index") from None
        missing = sorted(s for s in shards if not (folder / s).is_file())
        if missing:
            raise ConfigError(f"model folder {folder}: weight file {missing[0]} named in {index.name} is missing")
    if not files:
        raise ConfigError(f"model folder {folder} holds no weights (model.safetensors or pytorch_model.bin); copy "
                          f"the model's weight files into it")
    for file in files:
        if file.suffix == ".safetensors":
            _check_safetensors(file)
        else:
            _check_torch_bin(file)


def _check_safetensors(file: Path) -> None:
    size = file.stat().st_size
    try:
        with file.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > size:
                raise ValueError
            header = json.loads(f.read(length))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (struct.error, ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError):
        raise ConfigError(f"model weights {file} are not a readable safetensors file") from None
    if 8 + length + end != size:
        raise ConfigError(f"model weights {file} are truncated or padded: {size:,} bytes where its header says "
                          f"{8 + length + end:,}; copy the file again")
    from safetensors import safe_open

    with safe_open(str(file), framework="pt") as weights:
        for name in weights.keys():
            _finite(weights.get_tensor(name), name, file)


def _check_torch_bin(file: Path) -> None:
    import torch

    try:
        state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        raise ConfigError(f"model weights {file} are not a readable torch weights file: "
                          f"{type(exc).__name__}") from None
    for name, tensor in (state.items() if isinstance(state, dict) else ()):
        if isinstance(tensor, torch.Tensor):
            _finite(tensor, name, file)


def _finite(tensor, name: str, file: Path) -> None:
    import torch

    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise ConfigError(f"model weights {file}: tensor {name} holds NaN or inf values; the model is broken, not "
                          f"prunable")


def model_config(where: str, local: bool):
    """The model's transformers configuration, or a one-line ConfigError."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(where, local_files_only=local)
    except (ValueError, KeyError) as exc:
        try:
            model_type = json.loads((Path(where) / "config.json").read_text()).get("model_type")
        except (OSError, ValueError, AttributeError):
            model_type = None
        import transformers

        raise ConfigError(f"model {where}: its config.json names model_type {model_type!r}, which transformers "
                          f"{transformers.__version__} does not know ({type(exc).__name__})") from None
    except OSError as exc:
        raise ConfigError(f"model {where}: no readable configuration ({' '.join(str(exc).split())[:160]})") from None


def positions(config) -> int | None:
    """The longest window the model was built for (None where its configuration does not say)."""
    for key in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


@functools.lru_cache(maxsize=32)
def check_model(where: str, local: bool, is_folder: bool, seq_len: int, exclude: tuple[str, ...], nm) -> None:
    """Every check of the module docstring for the model at `where` (a folder, or the cached
    float32 folder of a GGUF); `is_folder` adds the checks of the weight files."""
    if is_folder:
        check_weight_files(Path(where))
    config = model_config(where, local)
    longest = positions(config)
    if longest is not None and seq_len > longest:
        raise ConfigError(f"model {where} takes at most {longest} positions, but seq_len is {seq_len}; use a "
                          f"seq_len of {longest} or less")
    check_layers(config, where, exclude, nm)


def check_layers(config, where: str, exclude: tuple[str, ...], nm) -> None:
    """Blocks, exclude patterns and N:M widths from the model built on the meta device."""
    from shrinkbench.llm.engine import check_nm_widths, pruned_layers

    model = meta_model(config, where)
    every = pruned_layers(model, ())
    for pattern in exclude:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in every):
            example = next(iter(every))
            raise ConfigError(f"exclude pattern {pattern!r} matches none of the {len(every)} pruned layers of model "
                              f"{where} (full names such as {example!r})")
    check_nm_widths(pruned_layers(model, exclude), nm)


def meta_model(config, where: str):
    """The causal LM of `config` built on the meta device (no weights), or a one-line ConfigError."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(config)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"model {where}: transformers cannot build a causal LM from its configuration "
                          f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]})") from None


@functools.lru_cache(maxsize=32)
def layer_names(where: str, local: bool, exclude: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the pruned layers' full names, every nn.Linear's full name) of the model at `where`,
    built on the meta device: what a refinement's `skip` and LoRA's target modules are checked
    against before any run."""
    from torch import nn

    from shrinkbench.llm.engine import pruned_layers

    model = meta_model(model_config(where, local), where)
    linears = tuple(n for n, m in model.named_modules() if isinstance(m, nn.Linear))
    return tuple(pruned_layers(model, exclude)), linears
