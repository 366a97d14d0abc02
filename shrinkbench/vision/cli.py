"""`shrinkbench prune`: one vision run from flags (base model -> prune -> fine-tune -> evaluate)."""
from __future__ import annotations

import argparse
import json
import sys

from shrinkbench.core.cli import add_common_options, apply_threads, data_options, read_config_file, torch_threads
from shrinkbench.core.sweep import pin_threads


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
    p.add_argument("--round-to", type=int, default=None, metavar="R",
                   help="channel granularity: every pruned layer keeps a multiple of R channels (e.g. 8 or 16, "
                        "widths the CPU kernels vectorise; default 1: as the exact-target selection gives them)")
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
    add_common_options(p)
    p.set_defaults(func=cmd_prune)


def cmd_prune(args) -> int:
    from shrinkbench.vision.config import RunConfig
    from shrinkbench.core.params import parse_assignments
    from shrinkbench.core.store import Store
    from shrinkbench.core.sweep import run_one
    from shrinkbench.vision.validate import validate_config

    apply_threads(args)
    raw: dict = read_config_file(args.config) if args.config else {}
    raw.update(model=args.model, dataset=args.dataset, strategy=args.strategy,
               compression=args.compression, seed=args.seed, prune_steps=args.prune_steps)
    _set(raw, target=args.target, granularity=args.granularity, when=args.when, control=args.control,
         round_to=args.round_to)
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
    _refuse_finetune_without_finetuning(args, raw)
    _set(raw.setdefault("finetune", {}), epochs=args.finetune_epochs, lr=args.finetune_lr,
         optimizer=args.optimizer)
    raw.setdefault("data", {}).update(data_options(args))
    cfg = validate_config(RunConfig.from_dict(raw, "command line"))
    cfg = pin_threads((cfg,), args.threads or torch_threads())[0]  # the count it computes with: its identity
    store = Store(args.store).check_writable()
    if args.save_pruned:
        check_save_pruned(store, (cfg,))
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


def _refuse_finetune_without_finetuning(args, raw: dict) -> None:
    """Pruning at initialisation and the from_scratch control train with the base recipe
    (`shrinkbench.vision.plans`): a fine-tuning option would not act, so it is refused
    (one line, exit 2) instead of silently training the base recipe's epochs."""
    from shrinkbench.core.errors import ConfigError

    given = [flag for flag, value in (("--finetune-epochs", args.finetune_epochs), ("--finetune-lr", args.finetune_lr),
                                      ("--optimizer", args.optimizer)) if value is not None]
    if not given:
        return
    if raw.get("when") == "at_init":
        why = "--when at_init trains the pruned initial weights with the base recipe"
    elif raw.get("control") == "from_scratch":
        why = "--control from_scratch trains the pruned architecture with the base recipe"
    else:
        return
    raise ConfigError(f"{why}; {', '.join(given)} would not act: set its training with --base-epochs / "
                      f"--base-lr (or [base.train] in --config)")


def _set(d: dict, **values) -> None:
    d.update({k: v for k, v in values.items() if v is not None})


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


def check_save_pruned(store, configs) -> None:
    """--save-pruned acts on every run or is refused before any runs: a stored run does not run
    again (so would get no saved model), and <store>/pruned must be a writable folder."""
    import os

    from shrinkbench.core.errors import ConfigError
    from shrinkbench.vision.structured.saving import pruned_paths

    stored = [c for c in configs if (store.read(c.run_id) or {}).get("status") == "ok"
              and not pruned_paths(store, c.run_id)[0].is_file()]
    if stored:
        raise ConfigError(f"--save-pruned: {len(stored)} of these runs are stored without a saved model (run "
                          f"{stored[0].run_id}) and will not run again; remove their records or leave "
                          f"--save-pruned out")
    folder = pruned_paths(store, "x")[0].parent
    if folder.exists() and not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
        raise ConfigError(f"--save-pruned: {folder} is not a writable folder")

