"""Checking a run config against the registries before anything runs.

`validate_config` returns the canonical config (registered names instead of aliases, the
dataset's default validation size filled in, a checkpoint's hash filled in) or raises a
one-line `ShrinkBenchError` that says what is wrong and what is allowed.
"""
from __future__ import annotations

import dataclasses
import functools
import os

from shrinkbench.config import RunConfig
from shrinkbench.errors import CheckpointError, ConfigError


@functools.lru_cache(maxsize=64)
def _prunable_counts(model_name: str, exclude: tuple[str, ...] | None):
    """Meta-device model and its prunable weights (no memory, no init cost)."""
    from shrinkbench.models import build_on_meta, model_spec
    from shrinkbench.pruning import prunable_weights

    model = build_on_meta(model_name)
    excluded = model_spec(model_name).excluded if exclude is None else exclude
    return model, prunable_weights(model, excluded)


@functools.lru_cache(maxsize=256)
def _checkpoint_hash(path: str, mtime: float, size: int) -> str:
    from shrinkbench.provenance import file_sha256

    return file_sha256(path)


def validate_config(cfg: RunConfig) -> RunConfig:
    from shrinkbench.data import DATASETS, dataset_spec
    from shrinkbench.models import MODELS, model_spec
    from shrinkbench.pruning import keep_count, resolve_strategy

    model = MODELS.canonical(cfg.model)
    dataset = DATASETS.canonical(cfg.dataset)
    mspec, dspec = model_spec(model), dataset_spec(dataset)
    if tuple(mspec.input_shape) != tuple(dspec.input_shape) or mspec.num_classes != dspec.num_classes:
        raise ConfigError(
            f"model {model} takes {'x'.join(map(str, mspec.input_shape))} inputs with {mspec.num_classes} "
            f"classes but dataset {dataset} has {'x'.join(map(str, dspec.input_shape))} with "
            f"{dspec.num_classes}; pick a matching variant (see `shrinkbench zoo`)")
    strategy = cfg.strategy
    if not cfg.is_dense:
        resolved = resolve_strategy(cfg.strategy)  # fails early for unknown names or files
        strategy = cfg.strategy if ":" in cfg.strategy else resolved.name
    exclude = cfg.exclude
    if exclude is not None:
        exclude = tuple(sorted(set(exclude)))
    meta_model, prunable = _prunable_counts(model, exclude)
    if not cfg.is_dense:
        keep_count(meta_model, prunable, cfg.compression)  # raises with the largest reachable ratio
    data = cfg.data
    if data.val_size is None:
        data = dataclasses.replace(data, val_size=dspec.val_size)
    base = cfg.base
    if base.checkpoint is not None:
        path = os.path.expanduser(base.checkpoint)
        if not os.path.isfile(path):
            raise CheckpointError(f"checkpoint {base.checkpoint} does not exist")
        st = os.stat(path)
        digest = _checkpoint_hash(os.path.abspath(path), st.st_mtime, st.st_size)
        if base.checkpoint_sha256 not in (None, digest):
            raise CheckpointError(f"checkpoint {base.checkpoint} has sha256 {digest}, "
                                  f"but the config asks for {base.checkpoint_sha256}")
        base = dataclasses.replace(base, checkpoint_sha256=digest)
    return cfg.replace(model=model, dataset=dataset, strategy=strategy, exclude=exclude,
                       data=data, base=base)
