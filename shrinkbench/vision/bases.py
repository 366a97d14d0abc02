"""Base models: trained once from their own config and seed, or loaded from a checkpoint,
then cached in the store and reused by every run that names them.

Cache: `<store>/bases/<base_id>.pt` (a state dict, read with weights_only=True) and
`<base_id>.json` (how it was made: config, training log, validation and test accuracy,
provenance, sha256 of the .pt file). Two processes that need the same base model do not
both train it: one claims it, the other waits for the file.
"""
from __future__ import annotations

import io
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from shrinkbench.vision.config import RunConfig
from shrinkbench.core.errors import CheckpointError
from shrinkbench.core.store import Store, temporary_path, write_json_atomic

WAIT_FOR_OTHER_S = 6 * 3600.0


@dataclass(frozen=True)
class BaseModel:
    state: dict[str, torch.Tensor]
    info: dict[str, Any]


_MEMORY: "OrderedDict[tuple[str, str], BaseModel]" = OrderedDict()


def read_state_dict(path: Path, model: nn.Module, what: str) -> dict[str, torch.Tensor]:
    """Load a state dict that fits `model` from `path`, or raise a one-line CheckpointError."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        first = " ".join(str(exc).split())[:200]
        raise CheckpointError(f"cannot read {what} {path}: not a readable torch weights file ({first})") from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{what} {path} does not hold a state dict of tensors")
    obj = {k.removeprefix("module."): v for k, v in obj.items()}
    broken = [k for k, v in obj.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        raise CheckpointError(f"{what} {path} holds non-finite values (nan or inf) in {', '.join(broken[:3])}"
                              f"{' ...' if len(broken) > 3 else ''}; it cannot be a starting model")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(obj))
    unexpected = sorted(set(obj) - set(expected))
    wrong = [k for k in expected if k in obj and tuple(obj[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}")
        if wrong:
            k = wrong[0]
            parts.append(f"{k} has shape {tuple(obj[k].shape)}, model needs {tuple(expected[k].shape)}")
        raise CheckpointError(f"{what} {path} does not fit the model: {'; '.join(parts)}")
    return obj


def obtain_base(cfg: RunConfig, store: Store, build: Callable[[], nn.Module],
                train_base: Callable[..., dict[str, Any]], epoch: int | None = None) -> BaseModel:
    """The base model of `cfg`: from memory, the store's cache, the user's checkpoint, or
    trained now by `train_base(model)` (which returns the info to keep). With `epoch`, the
    weights after that many epochs of the same base training (the first `epoch` epochs of its
    schedule, seeded alike, so they are the trained model's own past: what weight rewinding
    goes back to), cached as `<base_id>-epoch<k>`."""
    key = (str(store.root.resolve()), cfg.base_id if epoch is None else f"{cfg.base_id}-epoch{epoch}")
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        return _MEMORY[key]
    base = _from_cache_or_make(cfg, store, build, train_base, epoch)
    _MEMORY[key] = base
    while len(_MEMORY) > 2:
        _MEMORY.popitem(last=False)
    return base


def _from_cache_or_make(cfg, store, build, train_base, epoch: int | None = None) -> BaseModel:
    base_id = cfg.base_id if epoch is None else f"{cfg.base_id}-epoch{epoch}"
    weights = store.bases / f"{base_id}.pt"
    meta = store.bases / f"{base_id}.json"
    claimed = False
    deadline = time.monotonic() + WAIT_FOR_OTHER_S
    try:
        while True:
            cached = _read_cache(weights, meta, build)
            if cached is not None:
                return cached
            if claimed or store.claim(f"base-{base_id}"):
                claimed = True
                break
            if time.monotonic() > deadline:
                raise CheckpointError(f"gave up waiting for another process to make base model {base_id}")
            time.sleep(1.0)
        model = build()
        if epoch is not None:
            if cfg.base.checkpoint is not None:
                raise CheckpointError("weight rewinding needs the base model's own training (its epoch-k weights); "
                                      "a checkpoint base has none")
            info = {"source": f"trained, first {epoch} epochs", **train_base(model, train=True, stop_after=epoch)}
        elif cfg.base.checkpoint is not None:
            model.load_state_dict(read_state_dict(Path(cfg.base.checkpoint).expanduser(), model, "checkpoint"))
            info = {"source": "checkpoint", "checkpoint": cfg.base.checkpoint,
                    "checkpoint_sha256": cfg.base.checkpoint_sha256, **train_base(model, train=False)}
        else:
            info = {"source": "trained", **train_base(model, train=True)}
        store.bases.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()  # saved to memory first: the file's bytes do not depend on its (temporary) name
        torch.save(model.state_dict(), buffer)
        tmp = temporary_path(weights)
        try:
            tmp.write_bytes(buffer.getvalue())
            tmp.replace(weights)
        finally:
            tmp.unlink(missing_ok=True)
        from shrinkbench.core.provenance import file_sha256

        info = {"id": base_id, "identity": cfg.base_identity(), **info, "sha256": file_sha256(weights)}
        write_json_atomic(meta, info)
        return BaseModel({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, info)
    finally:
        if claimed:
            store.release(f"base-{base_id}")


def _read_cache(weights: Path, meta: Path, build) -> BaseModel | None:
    if not (weights.exists() and meta.exists()):
        return None
    try:
        info = json.loads(meta.read_text())
        from shrinkbench.core.provenance import file_sha256

        if info.get("sha256") != file_sha256(weights):
            raise CheckpointError("hash mismatch")
        state = read_state_dict(weights, build(), "cached base model")
    except (ValueError, CheckpointError) as exc:
        import warnings

        warnings.warn(f"cached base model {weights} is unusable ({' '.join(str(exc).split())[:120]}); making it again")
        weights.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
        return None
    return BaseModel(state, info)
