"""`shrinkbench prune` (one run from flags), `run` (a suite) and `benchmark` (the default
suite, then the report)."""
from __future__ import annotations

import argparse
import json
import sys

from shrinkbench.executors import add_arguments as add_executor_arguments


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default="results", help="results folder (default: results)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default)")
    p.add_argument("--data-root", default=None, help="folder holding the datasets (must exist)")
    p.add_argument("--download", action="store_true", help="allow torchvision to download missing data")
    p.add_argument("--threads", type=positive_int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--save-pruned", action="store_true",
                   help="also write each run's deployed model (compacted for channel runs) to <store>/pruned/, "
                        "loadable with shrinkbench.structured.saving.load_pruned")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prune", help="run one run (base model -> prune -> fine-tune -> evaluate)")
    p.add_argument("--model", required=True, help="a zoo model (`shrinkbench zoo` lists them), e.g. lenet5_caffe")
    p.add_argument("--dataset", default="fashion-mnist",
                   help="a registered dataset (`shrinkbench datasets` lists them; default: fashion-mnist)")
    p.add_argument("--strategy", required=True, help="registered name or module:Class or file.py:Class")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", default=None,
                   help="a parameter of the strategy, passed to its constructor and part of the run's identity "
                        "(repeatable; VALUE is read as JSON where it parses, e.g. --param power=3)")
    p.add_argument("--label", default=None, help="the name the analysis shows for this method (default: the strategy)")
    p.add_argument("--compression", type=float, required=True,
                   help="the target's value: params / nonzero params (default target), dense MACs / nonzero MACs "
                        "(--target speedup) or the fraction of prunable weights removed (--target sparsity)")
    p.add_argument("--target", default=None, choices=("compression", "speedup", "sparsity"),
                   help="what --compression is the value of (default: compression)")
    p.add_argument("--granularity", default=None,
                   help="what one pruned unit is: weight (default), channel, or N:M such as 2:4")
    p.add_argument("--seed", type=int, default=0,
                   help="run seed: scoring batches, random scores and fine-tuning order (default: 0)")
    p.add_argument("--base-seed", type=int, default=0,
                   help="seed of the base model's training: which starting weights (default: 0)")
    p.add_argument("--base-checkpoint", default=None, help="start from this state dict instead of training")
    p.add_argument("--base-epochs", type=int, default=None,
                   help="epochs of base-model training (default: the dataset's recipe)")
    p.add_argument("--base-lr", type=float, default=None,
                   help="learning rate of base-model training (default: the recipe's)")
    p.add_argument("--finetune-epochs", type=int, default=None,
                   help="epochs of fine-tuning after pruning (default: the recipe's; the run's whole budget is "
                        "recorded as budget_epochs)")
    p.add_argument("--finetune-lr", type=float, default=None,
                   help="learning rate of fine-tuning (default: the recipe's)")
    p.add_argument("--optimizer", default=None, choices=("sgd", "adam", "adamw"), help="fine-tuning optimizer")
    p.add_argument("--prune-steps", type=int, default=1, help="1 = one-shot, k = iterative in k steps")
    p.add_argument("--when", default=None, choices=("after_training", "at_init"),
                   help="prune the trained base model (default) or its initial weights, then train with the base "
                        "recipe")
    p.add_argument("--control", default=None, choices=("layerwise_shuffle", "reinit", "invert", "from_scratch"),
                   help="a control applied to the strategy's mask (see docs/methods.md)")
    p.add_argument("--schedule", default=None, choices=("one_shot", "gradual", "weight_rewinding", "lr_rewinding"),
                   help="when pruning happens during training (default: one_shot)")
    p.add_argument("--rewind-epoch", type=int, default=None,
                   help="the epoch of base training weight_rewinding / lr_rewinding go back to")
    p.add_argument("--split-budget", action="store_true",
                   help="with --prune-steps k > 1: split finetune epochs over the steps instead of fine-tuning "
                        "fully after each")
    p.add_argument("--config", default=None, help="TOML/JSON file with further RunConfig settings")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="what to print: text (default) or the run's record as JSON")
    _common(p)
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("run", help="run every missing run of a suite (TOML file or shipped name)")
    p.add_argument("suite", help="a suite file, or the name of a shipped suite (e.g. default)")
    p.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    p.add_argument("--dry-run", action="store_true", help="list what would run, run nothing")
    _add_strategy_argument(p)
    _common(p)
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
    _common(p)
    add_executor_arguments(p)
    p.set_defaults(func=cmd_benchmark)


def _add_strategy_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--add-strategy", action="append", default=None, metavar="STRATEGY",
                   help="run this strategy too (registered name, module:Class or file.py:Class; repeatable), with "
                        "the controls the suite lists in added_controls (e.g. `shrinkbench benchmark --suite methods "
                        "--add-strategy mine.py:Mine` puts a method against every baseline and its sanity checks)")


def _setup(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


def _data_overrides(args) -> dict:
    import os

    from shrinkbench.errors import DataNotFoundError

    data = {}
    if args.data_root:
        if not os.path.isdir(os.path.expanduser(args.data_root)):
            raise DataNotFoundError(f"--data-root {args.data_root!r} is not a folder; name the folder that holds "
                                    "the datasets")
        data["root"] = args.data_root
    if args.download:
        data["download"] = True
    return data


def cmd_prune(args) -> int:
    from shrinkbench.config import RunConfig
    from shrinkbench.params import parse_assignments
    from shrinkbench.store import Store
    from shrinkbench.sweep import run_one
    from shrinkbench.validate import validate_config

    _setup(args)
    raw: dict = _read_config_file(args.config) if args.config else {}
    raw.update(model=args.model, dataset=args.dataset, strategy=args.strategy,
               compression=args.compression, seed=args.seed, prune_steps=args.prune_steps)
    _set(raw, target=args.target, granularity=args.granularity, when=args.when, control=args.control)
    schedule = raw.setdefault("schedule", {})
    _set(schedule, kind=args.schedule, rewind_epoch=args.rewind_epoch)
    if args.split_budget:
        schedule["split_budget"] = True
    if args.param:
        raw["strategy_params"] = {**raw.get("strategy_params", {}), **parse_assignments(args.param).to_dict()}
    if args.label:
        raw["strategy_label"] = args.label
    base = raw.setdefault("base", {})
    base["seed"] = args.base_seed
    if args.base_checkpoint:
        base["checkpoint"] = args.base_checkpoint
    _set(base.setdefault("train", {}), epochs=args.base_epochs, lr=args.base_lr)
    _set(raw.setdefault("finetune", {}), epochs=args.finetune_epochs, lr=args.finetune_lr,
         optimizer=args.optimizer)
    raw.setdefault("data", {}).update(_data_overrides(args))
    cfg = validate_config(RunConfig.from_dict(raw, "command line"))
    store = Store(args.store).check_writable()
    check_save_pruned(args, store, (cfg,))
    outcome = run_one(cfg, str(store.root), args.device, save_pruned=args.save_pruned)
    record = store.read(cfg.run_id)
    if args.format == "json":
        json.dump(record, sys.stdout, indent=1)
        print()
        return 0 if outcome.status in ("ok", "skipped") else 1
    print(f"run {cfg.run_id}: {outcome.status}" + (" (already stored)" if outcome.status == "skipped" else "")
          + f"; record {store.root}/runs/{cfg.run_id}.json")
    if record and record["status"] == "ok":
        _print_run_summary(record)
    elif record:
        print(f"failed: {record['error']}")
    return 0 if record and record["status"] == "ok" else 1


def refuse_vision_options(args, configs) -> None:
    """Options of the vision runs that a language-model suite would ignore: one-line ConfigError."""
    from shrinkbench.errors import ConfigError

    if not any(getattr(c, "track", "vision") == "llm" for c in configs):
        return
    for flag, given, instead in (("--data-root", args.data_root, "its texts are named in [sweep] datasets"),
                                 ("--download", args.download, "set download = true in its [run] table"),
                                 ("--loader-workers", getattr(args, "loader_workers", 0), "it reads no images")):
        if given:
            raise ConfigError(f"{flag} acts on vision suites; this is a language-model suite ({instead}): leave "
                              f"{flag} out")


def check_save_pruned(args, store, configs) -> None:
    """--save-pruned acts on every run or is refused before any runs: the language-model track
    saves no models, a stored run does not run again (so would get none), and <store>/pruned
    must be a writable folder."""
    import os

    from shrinkbench.errors import ConfigError
    from shrinkbench.structured.saving import pruned_paths

    if not getattr(args, "save_pruned", False):
        return
    if any(getattr(c, "track", "vision") != "vision" for c in configs):
        raise ConfigError("--save-pruned writes vision models; the language-model track saves none: leave it out")
    stored = [c for c in configs if (store.read(c.run_id) or {}).get("status") == "ok"
              and not pruned_paths(store, c.run_id)[0].is_file()]
    if stored:
        raise ConfigError(f"--save-pruned: {len(stored)} of these runs are stored without a saved model (run "
                          f"{stored[0].run_id}) and will not run again; remove their records or leave "
                          f"--save-pruned out")
    folder = pruned_paths(store, "x")[0].parent
    if folder.exists() and not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
        raise ConfigError(f"--save-pruned: {folder} is not a writable folder")


def _set(d: dict, **values) -> None:
    d.update({k: v for k, v in values.items() if v is not None})


def _read_config_file(path: str) -> dict:
    import tomllib

    from shrinkbench.errors import ConfigError

    try:
        text = open(path).read()
        return json.loads(text) if path.endswith(".json") else tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {'JSON' if path.endswith('.json') else 'TOML'}: {exc}") from None


def _print_run_summary(record: dict) -> None:
    values = {(m["stage"], m["split"], m["metric"]): m["value"] for m in record["metrics"]}
    for stage in ("pre", "post"):
        print(f"  {stage:4s}  test top1 {values[(stage, 'test', 'top1')]:6.2f}%  "
              f"val top1 {values[(stage, 'val', 'top1')]:6.2f}%  "
              f"compression {values[(stage, 'none', 'compression_ratio')]:.2f}  "
              f"speedup {values[(stage, 'none', 'theoretical_speedup')]:.2f}")
    dense = (record.get("base") or {}).get("metrics") or {}
    if "test_top1" in dense:  # the starting model's own accuracy, beside the pruned one
        print(f"  dense test top1 {dense['test_top1']:6.2f}%  val top1 {dense.get('val_top1', float('nan')):6.2f}%  "
              f"(the base model {record['base'].get('id', '')}, before pruning)")


def _run_suite(args, suite_name: str):
    from shrinkbench.store import Store
    from shrinkbench.suite import load_suite
    from shrinkbench.sweep import pending, describe
    from shrinkbench.executors import executor_from_args, runtime_from_args

    _setup(args)
    runtime, executor = runtime_from_args(args), executor_from_args(args)
    suite = load_suite(suite_name, added=getattr(args, "add_strategy", None))
    configs = suite.configs
    refuse_vision_options(args, configs)
    overrides = _data_overrides(args)
    if overrides and all(getattr(c, "track", "vision") == "vision" for c in configs):
        from dataclasses import replace
        configs = tuple(c.replace(data=replace(c.data, **overrides)) for c in configs)
    store = Store(args.store).check_writable(create=not getattr(args, "dry_run", False))
    todo = pending(configs, store, getattr(args, "retry_failed", False))
    check_save_pruned(args, store, configs)
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


def _method_name(strategy: str) -> str:
    """The name the reports give an added strategy: a registered one's canonical name, else as written."""
    from shrinkbench.pruning import resolve_strategy

    return strategy if ":" in strategy else resolve_strategy(strategy).name


def cmd_benchmark(args) -> int:
    from pathlib import Path

    from shrinkbench.analysis.files import check_output

    check_output(Path(args.out) if args.out else Path(args.store) / "report", "folder")  # before any run
    suite, report = _run_suite(args, args.suite)
    from shrinkbench.analysis.benchmark import benchmark_summary

    from shrinkbench.analysis.options import AnalysisOptions

    out = Path(args.out) if args.out else Path(args.store) / "report"
    llm = [c for c in suite.configs if getattr(c, "track", "vision") == "llm"]
    if llm:  # the language-model track's response; its first added, else first pruned, method
        from shrinkbench.analysis.schema import strategy_name

        pruned = [c for c in llm if not c.is_dense]
        added = [c for c in pruned if args.add_strategy and c.strategy in args.add_strategy]
        method = args.method or next((strategy_name(c.to_dict()) for c in added or pruned), None)
        options = AnalysisOptions(metric="perplexity")
    else:
        options = AnalysisOptions()
        method = args.method or (_method_name(args.add_strategy[0]) if args.add_strategy else "global_magnitude")
    print(benchmark_summary(args.store, out, method=method, options=options))
    return 1 if report is not None and (report.count("failed") or report.count("lost")) else 0
