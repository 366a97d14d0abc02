"""`shrinkbench prune-llm`: one one-shot pruning run of a causal language model from flags."""
from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    from shrinkbench.core.cli import positive_int
    from shrinkbench.llm.config import DEFAULT_SEQ_LEN

    p = sub.add_parser("prune-llm", help="prune one causal language model one-shot and measure its perplexity "
                                         "(the LLM track; docs/llm.md)")
    p.add_argument("--model", default="smollm2-135m",
                   help="a registered model (smollm2-135m, the default), a local Hugging Face folder of a causal LM, "
                        "or a hub name with --download")
    p.add_argument("--tokenizer", default=None, help="a tokenizer folder (default: the model's own)")
    p.add_argument("--protocol", default="offline",
                   help="the protocol preset: offline (default: KJV, 256-token windows, nothing downloaded), wanda, "
                        "sparsegpt (WikiText-2 at the model's context, C4 calibration), llm-pruner (128 tokens); "
                        "docs/llm.md has each one's settings")
    p.add_argument("--text", default=None,
                   help="evaluation text: kjv (the offline preset's, Debian bible-kjv-text), wikitext2, c4 (the hub's "
                        "files) or file:<path>; default: the preset's")
    p.add_argument("--calib-text", default=None,
                   help="calibration source: kjv, wikitext2, c4 or file:<path>; default: the preset's (offline: the "
                        "evaluation text)")
    from shrinkbench.llm.allocation import ALLOCATIONS
    from shrinkbench.llm.methods import LLM_STRATEGIES
    from shrinkbench.llm.refine import LLM_REFINEMENTS
    from shrinkbench.llm.structured.catalog import DEPTH_CRITERIA, WIDTH_CRITERIA

    p.add_argument("--strategy", default="magnitude",
                   help=f"{', '.join(LLM_STRATEGIES.names())} (the default: magnitude), or your own as module:Class or "
                        f"file.py:Class (an LLMStrategy); `shrinkbench strategies --track llm` lists each one's "
                        f"parameters")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", default=None,
                   help="a parameter of the strategy (repeatable; VALUE read as JSON where it parses)")
    p.add_argument("--allocation", default=None,
                   help=f"layer allocation: {registered_help(ALLOCATIONS, '--allocation-param')} (default uniform: "
                        f"every layer at the sparsity), or your own as file.py:Class (a LayerAllocation)")
    p.add_argument("--allocation-param", action="append", metavar="NAME=VALUE", default=None,
                   help="a parameter of the allocation (repeatable), e.g. lam=0.1")
    p.add_argument("--ties", default=None, choices=("low_index", "seeded"),
                   help="how selections break ties: low_index (default: keep the lower index) or seeded (a random "
                        "order drawn from --seed; then the seeds of a data-free method differ)")
    p.add_argument("--unit", default="weight", choices=("weight", "blocks", "heads", "channels", "width"),
                   help="weight (default) or a structured unit: blocks (depth), heads (GQA head groups), channels "
                        f"(MLP), width (both); then --strategy is its criterion ({', '.join(DEPTH_CRITERIA)}; "
                        f"{', '.join(WIDTH_CRITERIA)}) and --sparsity the fraction of units removed")
    p.add_argument("--save", default=None, metavar="FOLDER",
                   help="structured units: save the compacted model there (save_pretrained, safetensors)")
    p.add_argument("--scope", default=None, choices=("row", "layer", "block", "global", "uniform"),
                   help="where the kept count is exact: per output row, per layer, per 128-column block (sparsegpt), "
                        "over all layers (data-free strategies); default: the strategy's published scope; for width "
                        "units the allocation: uniform (default) or global")
    p.add_argument("--sparsity", type=float, default=None,
                   help="fraction of the pruned layers' weights set to zero, in (0, 1) (default 0.5; an N:M pattern "
                        "sets it, --strategy none takes none)")
    p.add_argument("--pattern", default="unstructured",
                   help="unstructured (default) or N:M such as 2:4 or 4:8 (N kept of every M inputs; sets the sparsity)")
    p.add_argument("--seed", type=int, default=0, help="run seed: draws the calibration windows")
    p.add_argument("--seq-len", type=positive_int, default=None,
                   help=f"tokens per window (default {DEFAULT_SEQ_LEN}); at most the model's positions")
    p.add_argument("--calib-sequences", type=positive_int, default=None,
                   help="calibration windows drawn from the train split, for calibrated strategies (wanda, "
                        "sparsegpt; default 16)")
    p.add_argument("--eval-windows", type=_windows, default=None,
                   help="held-out windows perplexity is measured on, or 'all' (default: the preset's, offline 16)")
    p.add_argument("--exclude", action="append", default=None, metavar="PATTERN",
                   help="leave these layers dense (fnmatch on full names, e.g. '*.mlp.down_proj'; repeatable)")
    p.add_argument("--finetune-steps", type=int, default=None,
                   help="recovery fine-tune: AdamW steps after pruning, masks kept (default 0: one-shot)")
    p.add_argument("--finetune-lr", type=float, default=None,
                   help="learning rate of the recovery fine-tune, with --finetune-steps (default 1e-5)")
    p.add_argument("--finetune-method", default=None, choices=("full", "lora"),
                   help="recovery fine-tune: full (default; AdamW on every weight) or lora (adapters through peft, "
                        "merged with the masks so pruned weights stay zero); needs --finetune-steps")
    p.add_argument("--lora-rank", type=int, default=None, help="LoRA rank r (default 8), with --finetune-method lora")
    p.add_argument("--lora-alpha", type=float, default=None,
                   help="LoRA alpha (default 16; the update is alpha / r * B A), with --finetune-method lora")
    p.add_argument("--lora-dropout", type=float, default=None,
                   help="dropout on the adapters' input (default 0.05), with --finetune-method lora")
    p.add_argument("--lora-target", action="append", default=None, metavar="MODULE",
                   help="a module LoRA adapts, by name or its last part (repeatable; default q_proj and v_proj)")
    p.add_argument("--refine", default=None,
                   help=f"a mask refinement after the strategy's mask, for strategies that score (not sparsegpt): "
                        f"{registered_help(LLM_REFINEMENTS, '--refine-param')}, or your own as file.py:Class (a "
                        f"MaskRefinement)")
    p.add_argument("--refine-param", action="append", metavar="NAME=VALUE", default=None,
                   help="a parameter of the refinement (repeatable; VALUE read as JSON where it parses, e.g. "
                        "skip='[\"*.mlp.*\"]')")
    p.add_argument("--tasks", default=None, metavar="TASK[:METRIC],...",
                   help="zero-shot accuracy through lm-evaluation-harness on the pruned model, 0-shot: boolq, rte, "
                        "hellaswag, winogrande, arc_easy, arc_challenge, openbookqa, piqa, lambada_openai, "
                        "storycloze_2016, each as task or task:acc / task:acc_norm (the metric zeroshot_mean takes; a "
                        "bare name takes acc); 'none' for no tasks; default: the preset's (offline none; wanda, "
                        "sparsegpt, llm-pruner their papers' tasks); data from the datasets cache, --task-root, or the "
                        "hub with --download")
    p.add_argument("--task-root", default=None, metavar="FOLDER",
                   help="zero-shot task data as FOLDER/<task>/<split>.jsonl in the hub dataset's fields")
    p.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"),
                   help="load, prune and evaluate the model in this dtype (default: the preset's: offline float32; "
                        "wanda, sparsegpt, llm-pruner float16)")
    p.add_argument("--store", default="results", help="results folder (default: results)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default)")
    p.add_argument("--text-root", default=None, help="the datasets cache folder of wikitext2 or c4")
    p.add_argument("--download", action="store_true",
                   help="allow downloading a hub model, a hub text (wikitext2, c4) or zero-shot task data; refused "
                        "where the run reads nothing from the hub")
    p.add_argument("--threads", type=positive_int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or the record as JSON")
    p.set_defaults(func=cmd_prune_llm)


def _tasks(text: str | None) -> tuple[str, ...] | None:
    """`--tasks`: None (left out: the preset's), `none` -> () (no tasks, a recorded change of a
    preset that has some), else the comma-separated entries."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return ()
    return tuple(t for t in text.split(",") if t.strip())


def registered_help(registry, flag: str) -> str:
    """Each registered entry as `name (paper; FLAG a=1 b=2)`, from the registry and the classes'
    constructors (`shrinkbench.core.params.constructor_parameters`), so the help cannot drift."""
    from shrinkbench.core.params import constructor_parameters

    parts = []
    for name, cls in registry.items():
        params = " ".join(f"{p['name']}={p['default']}" for p in constructor_parameters(cls))
        inner = "; ".join(x for x in (getattr(cls, "paper", ""), f"{flag} {params}" if params else "") if x)
        parts.append(f"{name} ({inner})" if inner else name)
    return ", ".join(parts)


def _windows(text: str) -> int:
    """`all` -> 0 (every whole window); else a whole number >= 1."""
    from shrinkbench.core.cli import positive_int

    return 0 if text == "all" else positive_int(text)


def cmd_prune_llm(args) -> int:
    import torch

    from shrinkbench.core.errors import ConfigError
    from shrinkbench.llm.config import LLMRunConfig
    from shrinkbench.llm.runner import validate_llm_config
    from shrinkbench.core.params import parse_assignments
    from shrinkbench.core.store import Store
    from shrinkbench.core.cli import torch_threads
    from shrinkbench.core.sweep import pin_threads, run_one

    if args.threads:
        torch.set_num_threads(args.threads)
    given = dict(scope=args.scope, sparsity=args.sparsity, seq_len=args.seq_len, calib_sequences=args.calib_sequences,
                 eval_windows=args.eval_windows, finetune_steps=args.finetune_steps, finetune_lr=args.finetune_lr,
                 text_root=args.text_root, allocation=args.allocation, ties=args.ties,
                 finetune_method=args.finetune_method, lora_rank=args.lora_rank,
                 lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                 lora_targets=tuple(args.lora_target) if args.lora_target else None, refine=args.refine,
                 dataset=args.text, calib_text=args.calib_text, task_root=args.task_root, dtype=args.dtype,
                 tasks=_tasks(args.tasks))
    raw = dict(model=args.model, tokenizer=args.tokenizer, protocol=args.protocol, strategy=args.strategy,
               pattern=args.pattern, seed=args.seed, exclude=tuple(args.exclude or ()), download=args.download, unit=args.unit,
               save_to=args.save,
               **{k: v for k, v in given.items() if v is not None})  # left out: the config's one default
    if args.param:
        raw["strategy_params"] = parse_assignments(args.param).to_dict()
    if args.allocation_param:
        raw["allocation_params"] = parse_assignments(args.allocation_param).to_dict()
    if args.refine_param:
        raw["refine_params"] = parse_assignments(args.refine_param).to_dict()
    refuse_idle_options(args)
    cfg = validate_llm_config(LLMRunConfig.from_dict(raw, "command line"))
    if cfg.seed != args.seed:  # `seed_free`: one run whatever the seed
        print(f"note: --seed {args.seed} changes none of this run's numbers (no calibration draw, ties by index, no "
              f"fine-tune), so it is the one run of seed {cfg.seed}", file=sys.stderr)
    cfg = pin_threads((cfg,), args.threads or torch_threads())[0]  # the count it computes with: its identity
    if args.calib_sequences is not None and not cfg.is_dense:
        from shrinkbench.llm.runner import calibrates

        if not calibrates(cfg):
            raise ConfigError(f"--calib-sequences: strategy {cfg.strategy} is data-free and draws no calibration "
                              f"windows; leave it out")
    from shrinkbench.core.device import resolve_device

    from shrinkbench.llm.placement import check_run_dtype

    check_run_dtype(cfg, resolve_device(args.device))  # a device this machine lacks, or its dtype, refused first
    store = Store(args.store).check_writable()
    outcome = run_one(cfg, str(store.root), args.device)
    record = store.read(cfg.run_id)
    if args.format == "json":
        json.dump(record, sys.stdout, indent=1)
        print()
        return 0 if record and record["status"] == "ok" else 1
    print(f"run {cfg.run_id}: {outcome.status}" + (" (already stored)" if outcome.status == "skipped" else "")
          + f"; record {store.root}/runs/{cfg.run_id}.json")
    if record and record["status"] == "ok":
        for line in result_lines(record):
            print("  " + line)
    elif record:
        print(f"failed: {record['error']}")
    return 0 if record and record["status"] == "ok" else 1


def result_lines(record: dict) -> list[str]:
    """What `prune-llm` prints of a finished record: each perplexity as dense -> pruned (the
    change), the protocol, sparsity and speed."""
    values = {(m["stage"], m["metric"]): m["value"] for m in record["metrics"]}
    text = record["text"]
    dense = (record.get("dense") or {}).get("metrics", {})
    protocol = (record.get("protocol") or {}).get("label", "offline@v1")
    lines = []
    for metric, what in (("perplexity", f"{text['name']}"), ("perplexity_c4", "C4 validation")):
        if ("post", metric) not in values:
            continue
        pruned = values[("post", metric)]
        if metric in dense:
            change = pruned - dense[metric]
            lines.append(f"perplexity on {what}: dense {dense[metric]:.3f} -> pruned {pruned:.3f} ({change:+.3f}, "
                         f"x{pruned / dense[metric]:.3f})")
        else:
            lines.append(f"perplexity on {what}: {pruned:.3f}")
    lines.append(f"protocol {protocol}: {text['eval_windows']} windows of {text['seq_len']} tokens "
                 f"({text['predicted_tokens']:,} predicted)")
    speed = f"{values[('post', 'tokens_per_s')]:.0f} tokens/s" if ("post", "tokens_per_s") in values else ""
    if ("post", "sparsity") in values:
        lines.append(f"sparsity of the pruned layers {values[('post', 'sparsity')]:.4f}; {speed}")
    elif speed:
        lines.append(speed)
    tasks = record.get("tasks")
    if tasks and ("post", "zeroshot_mean") in values:
        from shrinkbench.llm.tasks import metric_name, split_entry

        entries = [split_entry(e) for e in record["config"].get("tasks") or ()]
        each = ", ".join(f"{n} {m} {values[('post', metric_name(n, m))]:.2f}" for n, m in entries
                         if ("post", metric_name(n, m)) in values)
        lines.append(f"zero-shot (lm-eval {tasks['harness_version']}, 0-shot): mean "
                     f"{values[('post', 'zeroshot_mean')]:.2f}% ({each})")
    return lines


def refuse_idle_options(args) -> None:
    """Options that would do nothing with the others given: a one-line ConfigError each."""
    from shrinkbench.core.errors import ConfigError
    from shrinkbench.llm.config import DENSE, parse_pattern

    if args.strategy == DENSE:
        for flag, value in (("--scope", args.scope), ("--param", args.param), ("--sparsity", args.sparsity),
                            ("--calib-sequences", args.calib_sequences), ("--allocation", args.allocation),
                            ("--ties", args.ties)):
            if value is not None:
                raise ConfigError(f"{flag}: --strategy none measures the dense model and prunes nothing; leave "
                                  f"{flag} out")
    if args.scope is not None and parse_pattern(args.pattern) is not None:
        raise ConfigError(f"--scope: with --pattern {args.pattern} every row keeps exactly N of every M weights "
                          f"whatever the scope; leave --scope out")
    if args.allocation_param and not args.allocation:
        raise ConfigError("--allocation-param sets a parameter of --allocation; give --allocation too, or leave it out")
    lora = [flag for flag, value in (("--lora-rank", args.lora_rank), ("--lora-alpha", args.lora_alpha),
                                     ("--lora-dropout", args.lora_dropout), ("--lora-target", args.lora_target))
            if value is not None]
    if lora and args.finetune_method != "lora":
        raise ConfigError(f"{lora[0]} sets the LoRA recovery fine-tune; give --finetune-method lora (and "
                          f"--finetune-steps) too, or leave it out")
    if args.finetune_method is not None and not args.finetune_steps:
        raise ConfigError("--finetune-method chooses how the recovery fine-tune trains; give --finetune-steps too, "
                          "or leave it out")
    if args.refine_param is not None and args.refine is None:
        raise ConfigError("--refine-param sets a parameter of the mask refinement; give --refine too, or leave it out")
    if args.finetune_lr is not None and not args.finetune_steps:
        raise ConfigError("--finetune-lr sets the learning rate of the recovery fine-tune; give --finetune-steps "
                          "too, or leave it out")
