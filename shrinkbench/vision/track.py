"""The vision track as the core sees it (`shrinkbench.core.tracks.Track`): image classifiers of the
zoo, trained base models, pruning, fine-tuning, top-1 accuracy. Registered through the entry
point `vision = "shrinkbench.vision.track:TRACK"` (pyproject.toml).

Everything here imports the track's modules lazily, so that the core can list tracks (and the
CLI build its parser) without torch.
"""
from __future__ import annotations

from typing import Any

from shrinkbench.core.tracks import Listing, Track


def _from_dict(data, where="config"):
    from shrinkbench.vision.config import RunConfig

    return RunConfig.from_dict(data, where)


def _execute(cfg, store, device=None, **kwargs):
    from shrinkbench.vision.runner import execute

    return execute(cfg, store, device, **kwargs)


def _prepare_base(cfg, store, device=None, loader_workers: int = 0):
    from shrinkbench.vision.runner import prepare_base

    return prepare_base(cfg, store, device, loader_workers)


def describe(cfg) -> str:
    """`lenet5_caffe/fashion-mnist global_l1 [channel] speedup 2 seed 0/0`: the method as the
    reports name it (`shrinkbench.analysis.schema.strategy_name`), its target and seeds."""
    from shrinkbench.analysis.schema import strategy_name

    if cfg.is_dense:
        name = "dense"
    else:
        config = cfg.to_dict()
        names = cfg.record_names()["method_tags"]
        tags = strategy_name(config, [t for t in names if t != f"{cfg.target} target"])  # the target is said after
        name = f"{tags} {cfg.target} {cfg.compression:g}"
    return f"{cfg.model}/{cfg.dataset} {name} seed {cfg.base.seed}/{cfg.seed}"


def _load_suite(data, where, path, added=None):
    from shrinkbench.vision.suite import load_vision_suite

    return load_vision_suite(data, where, path, added)


def _register_commands(sub) -> None:
    from shrinkbench.vision.cli import register

    register(sub)


def _with_data_options(cfg, options: dict[str, Any]):
    from dataclasses import replace

    return cfg.replace(data=replace(cfg.data, **options))


def _method_name(spec: str) -> str:
    from shrinkbench.vision.pruning import resolve_strategy

    return spec if ":" in spec else resolve_strategy(spec).name


def _benchmark_method(configs, added) -> str:
    """The first added strategy (as the reports name it), else global magnitude."""
    return _method_name(added[0]) if added else "global_magnitude"


def _check_save_pruned(store, configs) -> None:
    from shrinkbench.vision.cli import check_save_pruned

    check_save_pruned(store, configs)


def list_models(pattern: str = "*") -> list[dict[str, Any]]:
    """The zoo's entries matching `pattern`, with their golden counts (no torch)."""
    from shrinkbench.vision.models import describe_model
    from shrinkbench.vision.models import list_models as names

    return [describe_model(n) for n in names(pattern)]


def list_strategies() -> list[dict[str, Any]]:
    """Every registered vision strategy: name, granularities, scope, criterion, aliases, description."""
    from shrinkbench.vision.pruning import list_strategies as rows

    keys = ("name", "scope", "criterion", "aliases", "description", "granularity")
    return [dict(zip(keys, row)) for row in rows()]


def list_datasets(data_root: str | None = None) -> list[dict[str, Any]]:
    """Every registered dataset: shape, classes, validation size, augmentation, source, and the
    folders searched for its files."""
    from shrinkbench.vision.data import DATASETS, dataset_spec, describe_search

    rows = []
    for name in DATASETS:
        spec = dataset_spec(name)
        rows.append({"name": name, "input_shape": list(spec.input_shape), "num_classes": spec.num_classes,
                     "val_size": spec.val_size, "in_memory": spec.in_memory,
                     "augmentation": spec.augmentation, "source": spec.source,
                     "searched": describe_search(name, data_root)})
    return rows


def _load_metrics() -> None:
    import shrinkbench.vision.metrics  # noqa: F401  (registers top1, top5, loss)


TRACK = Track(
    name="vision",
    summary="image classifiers of the zoo: base model trained once, pruned, fine-tuned; top-1 accuracy",
    config_from_dict=_from_dict,
    execute=_execute,
    describe=describe,
    load_suite=_load_suite,
    listing=Listing(models=list_models, strategies=list_strategies, datasets=list_datasets,
                    load_metrics=_load_metrics),
    register_commands=_register_commands,
    prepare_base=_prepare_base,
    with_data_options=_with_data_options,
    response_metric="top1",
    benchmark_method=_benchmark_method,
    check_save_pruned=_check_save_pruned,
)
