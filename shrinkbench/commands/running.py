"""`shrinkbench run` (a suite of any track) and `benchmark` (the default suite, then the report).
The tracks' one-run commands (`prune`, `prune-llm`) are their own (`Track.register_commands`)."""
from __future__ import annotations

import argparse
import sys

from shrinkbench.core.cli import add_common_options, apply_threads, data_options
from shrinkbench.core.executors import add_arguments as add_executor_arguments


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run every missing run of a suite (TOML file or shipped name)")
    p.add_argument("suite", help="a suite file, or the name of a shipped suite (e.g. default)")
    p.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    p.add_argument("--dry-run", action="store_true", help="list what would run, run nothing")
    _add_strategy_argument(p)
    add_common_options(p)
    add_executor_arguments(p)  # --executor, --workers, --loader-workers, Ray and Slurm settings
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("benchmark", help="the default benchmark: run the default suite, then the report")
    p.add_argument("--suite", default="default",
                   help="the suite to run: a shipped name or a TOML file (default: default)")
    p.add_argument("--out", default=None, help="report folder (default: <store>/report)")
    p.add_argument("--method", default=None,
                   help="the method whose verdict against every baseline is printed (default: the first "
                        "--add-strategy, else global_magnitude)")
    _add_strategy_argument(p)
    add_common_options(p)
    add_executor_arguments(p)
    p.set_defaults(func=cmd_benchmark)


def _add_strategy_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--add-strategy", action="append", default=None, metavar="STRATEGY",
                   help="run this strategy too (registered name, module:Class or file.py:Class; repeatable), with "
                        "the controls the suite lists in added_controls (e.g. `shrinkbench benchmark --suite methods "
                        "--add-strategy mine.py:Mine` puts a method against every baseline and its sanity checks)")


def _run_suite(args, suite_name: str):
    from shrinkbench.core.executors import executor_from_args, runtime_from_args
    from shrinkbench.core.store import Store
    from shrinkbench.core.suite import load_suite
    from shrinkbench.core.sweep import describe, pending, pin_threads

    apply_threads(args)
    runtime, executor = runtime_from_args(args), executor_from_args(args)
    suite = load_suite(suite_name, added=getattr(args, "add_strategy", None))
    configs = suite.configs
    tracks = _tracks_of(configs)
    for track in tracks:
        if track.check_run_options is not None:
            track.check_run_options(args)
    from shrinkbench.core.tracks import check_devices

    check_devices(configs, runtime.device, executor)  # what this machine's device cannot compute: refused now
    overrides = data_options(args)
    if overrides:
        configs = tuple(_with_data_options(c, overrides) for c in configs)
    configs = pin_threads(configs, executor.threads_per_run(runtime, getattr(args, "workers", None)))
    store = Store(args.store).check_writable(create=not getattr(args, "dry_run", False))
    todo = pending(configs, store, getattr(args, "retry_failed", False))
    if getattr(args, "save_pruned", False):
        check_save_pruned(store, configs)
    import textwrap

    from shrinkbench.analysis.render import TERMINAL_WIDTH

    print(f"suite {suite.name}: {len(configs)} runs, {len(configs) - len(todo)} already stored, {len(todo)} to run\n"
          f"  suite file: {suite.path}\n  store: {store.root}", file=sys.stderr)
    print(textwrap.fill(suite.design, TERMINAL_WIDTH, subsequent_indent="    ", break_on_hyphens=False), file=sys.stderr)
    if getattr(args, "dry_run", False):
        for cfg in todo:
            print(f"{cfg.run_id}  {describe(cfg)}")
        return suite, None
    report = executor.run(configs, store, runtime, workers=getattr(args, "workers", None), progress=not args.quiet)
    print(report.summary(), file=sys.stderr)
    return suite, report


def cmd_run(args) -> int:
    suite, report = _run_suite(args, args.suite)
    if report is None:
        return 0
    return 1 if report.count("failed") or report.count("lost") else 0


def _with_data_options(cfg, options: dict):
    """`cfg` with --data-root / --download applied as its track defines, or a one-line refusal."""
    from shrinkbench.core.errors import ConfigError
    from shrinkbench.core.tracks import track_of

    track = track_of(cfg)
    if track.with_data_options is None:
        raise ConfigError(f"--data-root and --download do not apply to runs of the {track.name} track")
    return track.with_data_options(cfg, options)


def _tracks_of(configs) -> list:
    """The tracks of a suite's runs, in the order they first appear."""
    from shrinkbench.core.tracks import track_of

    return list({id(t): t for t in map(track_of, configs)}.values())


def check_save_pruned(store, configs) -> None:
    """--save-pruned acts on every run or is refused before any run: each track says whether and
    how it saves its runs' models (`Track.check_save_pruned`; none: it saves none)."""
    from shrinkbench.core.errors import ConfigError
    from shrinkbench.core.tracks import track_of

    for track in _tracks_of(configs):
        if track.check_save_pruned is None:
            raise ConfigError(f"--save-pruned writes the deployed models of the tracks that save them; the "
                              f"{track.title} saves none: leave it out")
        track.check_save_pruned(store, [c for c in configs if track_of(c) is track])


def cmd_benchmark(args) -> int:
    from pathlib import Path

    from shrinkbench.analysis.files import check_output

    from shrinkbench.analysis.benchmark import benchmark_summary
    from shrinkbench.analysis.options import AnalysisOptions

    out = Path(args.out) if args.out else Path(args.store) / "report"
    check_output(out, "folder")  # before any run
    suite, report = _run_suite(args, args.suite)
    track = _tracks_of(suite.configs)[0] if suite.configs else None
    options, method = AnalysisOptions(), args.method
    if track is not None:
        if track.response_metric != options.metric:
            options = AnalysisOptions(metric=track.response_metric)
        method = method or track.benchmark_method(suite.configs, args.add_strategy or [])
    print(benchmark_summary(args.store, out, method=method, options=options))
    return 1 if report is not None and (report.count("failed") or report.count("lost")) else 0
