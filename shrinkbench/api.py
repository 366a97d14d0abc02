"""The Python entry points, the same operations as the command line (re-exported lazily by
`shrinkbench`, so `import shrinkbench` costs no torch until one is called).

    import shrinkbench as sb
    sb.list_models("cifar_resnet*")                      # zoo names
    model = sb.create_model("lenet5_caffe", seed=0)      # a fixed architecture
    record = sb.prune("lenet_300_100", "global_magnitude", 8, store="results")
    report = sb.run_suite("default", store="results", threads=1)
    table = sb.load_results("results")                   # the tidy table (pandas)
    verdicts = sb.compare("results", "global_magnitude") # a ComparisonReport

Errors are `shrinkbench.core.errors.ShrinkBenchError` (or `AnalysisError` for the analysis),
each with one line saying what was wrong and what is allowed.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence


def prune(model: str, strategy: str, compression: float, *, dataset: str = "fashion-mnist", store: str = "results",
          seed: int = 0, base_seed: int = 0, device: str | None = None, settings: Mapping[str, Any] | None = None,
          params: Mapping[str, Any] | None = None, label: str | None = None) -> dict:
    """One run (train or load the base model, prune to `compression`, fine-tune, evaluate),
    stored in `store` (skipped when already there) and returned as its record.

    `strategy`: a registered name, `module:Class` or `file.py:Class`; `params`: its
    constructor's parameters (part of the run's identity); `label`: the name the analysis
    shows; `settings`: any further RunConfig fields as nested dicts, e.g.
    `{"target": "speedup", "granularity": "channel", "finetune": {"epochs": 2}}`.
    """
    from shrinkbench.core.cli import torch_threads
    from shrinkbench.core.store import Store
    from shrinkbench.core.sweep import pin_threads, run_one
    from shrinkbench.vision.config import RunConfig
    from shrinkbench.vision.validate import validate_config

    raw: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in (settings or {}).items()}
    raw.update(model=model, dataset=dataset, strategy=strategy, compression=compression, seed=seed)
    raw.setdefault("base", {})["seed"] = base_seed
    if params:
        raw["strategy_params"] = dict(params)
    if label:
        raw["strategy_label"] = label
    cfg = validate_config(RunConfig.from_dict(raw, "shrinkbench.prune"))
    cfg = pin_threads((cfg,), torch_threads())[0]  # the thread count it computes with is part of its identity
    target = Store(store).check_writable()
    run_one(cfg, str(target.root), device)
    return target.read(cfg.run_id)


def run_suite(suite: str, *, store: str = "results", threads: int | None = None, executor: str = "local",
              workers: int | None = None, add_strategies: Sequence[str] = (), progress: bool = True,
              retry_failed: bool = False):
    """Run every run of `suite` (a shipped name or a TOML file) missing from `store`; returns
    the `SweepReport` (outcomes per run). `threads` sets torch's threads in this process
    (and in pool workers): one per process when cores are shared."""
    from shrinkbench.core.executors import Runtime, get_executor
    from shrinkbench.core.store import Store
    from shrinkbench.core.suite import load_suite
    from shrinkbench.core.sweep import pin_threads

    if threads:
        import torch

        torch.set_num_threads(threads)
    loaded = load_suite(suite, added=list(add_strategies) or None)
    runtime = Runtime(threads=threads, retry_failed=retry_failed)
    chosen = get_executor(executor)
    from shrinkbench.core.tracks import check_devices

    check_devices(loaded.configs, runtime.device, chosen)
    configs = pin_threads(loaded.configs, chosen.threads_per_run(runtime, workers))
    return chosen.run(configs, Store(store).check_writable(), runtime, workers=workers, progress=progress)


def load_results(store: str = "results"):
    """The store's tidy table as a pandas DataFrame: one row per run x metric x stage x split,
    with every run's config as `config.*` columns (what `shrinkbench results` exports)."""
    from shrinkbench.analysis.load import load_table

    return load_table(store, None).with_config_columns()


def compare(store: str, method: str, baselines: Sequence[str] | None = None, **options):
    """The significance report of `method` against `baselines` (default: every other
    strategy), as `shrinkbench compare` computes it; `options` are AnalysisOptions fields
    (metric, alpha, rope, confidence, ...). Returns a `ComparisonReport` whose
    `.comparisons` and `.curve_level` are DataFrames with a decision per row."""
    from shrinkbench.analysis.compare import compare_method
    from shrinkbench.analysis.load import load_table
    from shrinkbench.analysis.options import AnalysisOptions
    from shrinkbench.analysis.runs import run_table

    scan = load_table(store, None)
    chosen = AnalysisOptions(**_with_response(options, scan.table))
    from shrinkbench.analysis.ties import tie_warnings

    runs = run_table(scan.table, chosen)
    report = compare_method(runs, method, list(baselines) if baselines else None, chosen)
    report.warnings += tie_warnings(scan.table, report.comparisons)
    return report


def report(store: str, out: str | None = None, method: str | None = None, **options) -> dict:
    """Write the full report (figures, tables, significance, HTML) of `store` to `out`
    (default `<store>/report`); returns its summary (files, runs, warnings)."""
    from pathlib import Path

    from shrinkbench.analysis.load import load_table
    from shrinkbench.analysis.options import AnalysisOptions
    from shrinkbench.analysis.report import build_report

    scan = load_table(store, None)
    chosen = AnalysisOptions(**_with_response(options, scan.table))
    return build_report(scan, out or str(Path(store) / "report"), chosen, method=method)


def _with_response(options: dict, table) -> dict:
    """The options with the response metric the CLI picks where none is given (`auto`: top1 for
    vision runs, perplexity for language-model runs)."""
    from shrinkbench.analysis.cli import response_metric

    return {**options, "metric": response_metric(options.get("metric", "auto"), table)}
