"""Checking a run config against the registries before anything runs.

`validate_config` returns the canonical config (registered names instead of aliases, the
dataset's default validation size filled in, a checkpoint's hash and a user strategy's source
hash filled in) or raises a one-line `ShrinkBenchError` that says what is wrong and what is
allowed. A user's strategy is also dry-run once per (strategy, source, parameters, model):
built with its parameters and asked to score a freshly initialised model on a random batch of
two examples, so that a strategy that cannot import, has a bad scope, or returns scores of the
wrong shape or non-finite scores is refused before the sweep starts (`preflight_strategy`).
"""
from __future__ import annotations

import dataclasses
import functools
import os

from shrinkbench.vision.config import RunConfig
from shrinkbench.core.errors import CheckpointError, ConfigError, DataNotFoundError, StrategyError
from shrinkbench.core.params import Params

PREFLIGHT_BATCH = 2
"""Examples of the random batch a user's strategy is dry-run on."""


@functools.lru_cache(maxsize=64)
def _prunable_counts(model_name: str, exclude: tuple[str, ...] | None):
    """Meta-device model and its prunable weights (no memory, no init cost)."""
    from shrinkbench.vision.models import build_on_meta, model_spec
    from shrinkbench.vision.pruning import prunable_weights

    model = build_on_meta(model_name)
    excluded = model_spec(model_name).excluded if exclude is None else exclude
    return model, prunable_weights(model, excluded)


@functools.lru_cache(maxsize=256)
def _checkpoint_hash(path: str, mtime: float, size: int) -> str:
    from shrinkbench.core.provenance import file_sha256

    return file_sha256(path)


_PREFLIGHTED: set[tuple] = set()


def preflight_strategy(cfg: RunConfig) -> None:
    """Dry-run a user's strategy (see the module docstring) at the config's target, once per
    (strategy, source, parameters, model, exclusions, granularity) in a process; a
    misbehaving one is a one-line ConfigError naming what it did."""
    key = (cfg.strategy, cfg.strategy_sha256, cfg.strategy_params, cfg.model, cfg.exclude, cfg.granularity)
    if key in _PREFLIGHTED:
        return
    _dry_run(cfg.strategy, cfg.strategy_params, cfg.model, cfg.exclude, cfg.granularity, cfg.target, cfg.compression)
    _PREFLIGHTED.add(key)


def _dry_run(strategy: str, params: Params, model_name: str, exclude, granularity_name: str, target: str,
             value: float) -> None:
    import torch

    from shrinkbench.vision.pruning.granularity import granularity

    from shrinkbench.vision.models import create_model, model_spec
    from shrinkbench.vision.pruning import resolve_strategy

    spec = model_spec(model_name)
    model = create_model(model_name, seed=0)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((PREFLIGHT_BATCH, *spec.input_shape), generator=generator)
    y = torch.randint(0, spec.num_classes, (PREFLIGHT_BATCH,), generator=generator)
    excluded = spec.excluded if exclude is None else exclude
    from shrinkbench.core.device import is_out_of_memory
    from shrinkbench.vision.pruning.context import RunInfo

    # the scoring context offers the run's info as in a run; the initial weights of this random
    # model are its own (the dry run checks shapes and values, not which weights are initial)
    run = RunInfo({"model": model_name, "strategy": strategy, "target": target, "compression": value}, 0, 0,
                  lambda: create_model(model_name, seed=0).state_dict())

    try:
        with torch.random.fork_rng(devices=[]):
            granularity(granularity_name).prune(model, _DryRun(resolve_strategy(strategy, params)), target, value,
                                                excluded=excluded, batches=[(x, y)], generator=generator,
                                                input_shape=spec.input_shape, run=run)
    except StrategyError as error:
        raise ConfigError(f"dry run of strategy {strategy} on {model_name} (a random batch of {PREFLIGHT_BATCH}) "
                          f"failed: {error}") from None
    except Exception as error:  # out of memory on this machine says nothing of the run's device
        if not is_out_of_memory(error):
            raise


class _DryRun:
    """A strategy as the dry run shows it to the toolkit: `ctx.dry_run` is True in its scoring."""

    def __init__(self, strategy):
        self._strategy = strategy

    def __getattr__(self, name):
        return getattr(self._strategy, name)

    def score(self, ctx):
        ctx.dry_run = True
        return self._strategy.score(ctx)

    def score_groups(self, ctx):
        ctx.dry_run = True
        return self._strategy.score_groups(ctx)


def _check_data(dspec, data) -> None:
    if data.root is not None and not os.path.isdir(os.path.expanduser(data.root)):
        raise DataNotFoundError(f"data root {data.root!r} (--data-root or data.root) is not a folder; name the "
                                "folder that holds the datasets")
    n = dspec.train_examples
    if n is not None and data.val_size is not None and not 0 <= data.val_size < n:
        raise ConfigError(f"data.val_size must be between 0 and {n - 1} ({dspec.name}'s official training split "
                          f"has {n} examples), got {data.val_size}")


def validate_config(cfg: RunConfig) -> RunConfig:
    from shrinkbench.vision.data import DATASETS, dataset_spec
    from shrinkbench.vision.models import MODELS, model_spec
    from shrinkbench.vision.pruning import keep_count, resolve_strategy, strategy_source

    model = MODELS.canonical(cfg.model)
    dataset = DATASETS.canonical(cfg.dataset)
    mspec, dspec = model_spec(model), dataset_spec(dataset)
    if tuple(mspec.input_shape) != tuple(dspec.input_shape) or mspec.num_classes != dspec.num_classes:
        raise ConfigError(
            f"model {model} takes {'x'.join(map(str, mspec.input_shape))} inputs with {mspec.num_classes} "
            f"classes but dataset {dataset} has {'x'.join(map(str, dspec.input_shape))} with "
            f"{dspec.num_classes}; pick a matching variant (see `shrinkbench zoo`)")
    from shrinkbench.vision.pruning.granularity import granularity

    strategy, sha = cfg.strategy, cfg.strategy_sha256
    unit = granularity(cfg.granularity)
    if not cfg.is_dense:
        resolved = resolve_strategy(cfg.strategy, cfg.strategy_params)  # fails early for unknown names or files
        strategy = cfg.strategy if ":" in cfg.strategy else resolved.name
        source = strategy_source(strategy)
        if source is not None:
            if sha is not None and sha != source[1]:
                raise ConfigError(f"strategy file {source[0]} has sha256 {source[1][:12]}, but the config asks for "
                                  f"{sha[:12]} (the file changed)")
            sha = source[1]
    exclude = cfg.exclude
    if exclude is not None:
        exclude = tuple(sorted(set(exclude)))
    meta_model, prunable = _prunable_counts(model, exclude)
    if not cfg.is_dense:
        unit.check(model, exclude, resolved, cfg.target, cfg.compression, cfg.round_to)
        if unit.name == "weight" and cfg.target == "compression":
            keep_count(meta_model, prunable, cfg.compression)  # raises with the largest reachable ratio
        elif unit.name not in ("weight", "channel"):
            from shrinkbench.vision.pruning.nm import check_nm_layers

            check_nm_layers(prunable, unit.m)
    data = cfg.data
    if data.val_size is None:
        data = dataclasses.replace(data, val_size=dspec.val_size)
    _check_data(dspec, data)
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
    checked = cfg.replace(model=model, dataset=dataset, strategy=strategy, exclude=exclude,
                          data=data, base=base, strategy_sha256=sha, granularity=unit.name)
    from shrinkbench.vision.plans import check_plan

    check_plan(checked)
    if not cfg.is_dense and sha is not None:
        preflight_strategy(checked)
    return checked
