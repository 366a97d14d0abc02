"""Suite files: a TOML file naming models x datasets x strategies x compressions x seeds x
budgets, plus the settings every run shares.

    [sweep]
    models = ["lenet_300_100"]
    dense_models = ["lenet_300_100_w0.5"]   # optional: models run only dense (the "dense small" baselines)
    datasets = ["fashion-mnist"]
    strategies = ["global_magnitude", "random"]     # registered names or "module:Class"
    # or a table: {name = "mymethod.py:Mine", params = {power = 3}, label = "mine-p3"}, which may
    # also set that strategy's own when, control, prune_steps and schedule (a table):
    # {name = "snip", when = "at_init"}, {name = "global_magnitude", schedule = {kind = "gradual"}}
    compressions = [1, 2, 4, 8]  # targets: compressions, and/or speedups (channel) and sparsities
    granularities = ["weight"]   # default; "channel", "2:4" (N:M); each strategy runs at those it scores for
    whens = ["after_training"]   # and/or "at_init" (`shrinkbench.vision.plans`)
    controls = ["none"]          # and/or "layerwise_shuffle", "reinit", "invert", "from_scratch"
    seeds = [0, 1, 2]          # run seeds
    base_seeds = [0, 1, 2]     # base-model seeds (default: the same list as seeds)
    seeding = "zip"            # "zip" (default): i-th base seed with i-th run seed; "product": all pairs
    budgets = [2]              # fine-tuning epochs (default: finetune.epochs)
    prune_steps = [1]          # 1 = one-shot; k > 1 = iterative in k steps
    round_to = 8               # optional: channel runs keep multiples of 8 channels per layer
                               # (RunConfig.round_to; needs "channel" in granularities)

    [run]        # any other RunConfig field: score_batches, score_batch_size, exclude, amp
    [base]       # seed is set by the sweep; checkpoint = "path.pt" loads a user's weights
    [base.train] # TrainConfig of the base model
    [finetune]   # TrainConfig of fine-tuning
    [data]       # val_size, split_seed, train_size, root
    [measure]    # eval_batch_size, latency, latency_batch_sizes, latency_warmup, latency_repeats
    [schedule]   # kind (one_shot, gradual, weight_rewinding, lr_rewinding), split_budget, start,
                 # end, every, rewind_epoch (`shrinkbench.vision.config.ScheduleConfig`)

    [variants.A.base.train]   # optional: named variants, each a partial override of the
    lr = 0.1                  # tables above; the sweep runs every combination once per
    [variants.B.base.train]   # variant (e.g. two ways of training the starting weights)
    optimizer = "adam"

Seeds: by default every run seed gets its own base model (`base_seeds` = `seeds`, `seeding`
= "zip"), because the analysis counts base models, not runs, as its replicates (see
`shrinkbench.analysis.units`): three seeds are three independent starting weights. With
`seeding = "product"` every base seed is paired with every run seed; the run seeds of one base
model are then averaged before a test. A suite whose runs all start from ONE base model gets
verdicts that hold for those starting weights only, and says so (`Suite.design`).

Reading the file, shipped names and the dispatch by `track` are the core's
(`shrinkbench.core.suite`); this module is the vision track's [sweep].
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from shrinkbench.core.errors import ConfigError, ShrinkBenchError
from shrinkbench.core.suite import Suite
from shrinkbench.vision.config import RunConfig

TOP_LEVEL = ("name", "description", "sweep", "run", "base", "finetune", "data", "measure", "schedule",
             "variants")
SWEEP_LISTS = {"models": str, "datasets": str, "strategies": (str, dict), "compressions": (int, float),
               "speedups": (int, float), "sparsities": (int, float), "granularities": str,
               "seeds": int, "base_seeds": int, "budgets": int, "prune_steps": int, "whens": str,
               "controls": str, "dense_models": str, "added_controls": str}
REQUIRED = ("models", "datasets", "strategies", "seeds")
TARGET_LISTS = {"compressions": "compression", "speedups": "speedup", "sparsities": "sparsity"}
"""[sweep] lists of target values, and the target each names (at least one is required)."""


def load_vision_suite(data: dict[str, Any], where: str, path: Path, added: list[str] | None = None):
    """The vision track's suite (`data`: the parsed TOML without its `track` key): expanded into
    validated `RunConfig`s. `added` strategies (`--add-strategy`: a user's method) join the
    [sweep] strategies, each also with every control of the suite's `added_controls` list (the
    sanity checks a method is put through: its mask shuffled within each layer, reinitialised,
    inverted)."""
    if added:
        sweep_table = data.setdefault("sweep", {})
        controls = sweep_table.get("added_controls", [])
        if not isinstance(controls, list):
            raise ConfigError(f"{where}: [sweep] added_controls must be a list of controls")
        sweep_table["strategies"] = list(sweep_table.get("strategies", [])) + [
            entry for name in added for entry in
            [{"name": name, "control": "none"}] + [{"name": name, "control": c} for c in controls]]
    unknown = sorted(set(data) - set(TOP_LEVEL))
    if unknown:
        raise ConfigError(f"{where}: unknown section [{unknown[0]}]; allowed: {', '.join(TOP_LEVEL)}")
    sweep = _sweep_section(data.get("sweep"), where)
    template = _template(data, where)
    variants = data.get("variants", {"": {}})
    if not isinstance(variants, dict) or not variants or not all(isinstance(v, dict) for v in variants.values()):
        raise ConfigError(f"{where}: [variants] must hold named tables, e.g. [variants.A.base.train]")
    configs: dict[str, RunConfig] = {}
    variant_of: dict[str, str] = {}
    for name, override in variants.items():
        for cfg in expand(sweep, _merged(template, override), where if not name else f"{where} [variants.{name}]"):
            configs.setdefault(cfg.run_id, cfg)
            if name:
                variant_of.setdefault(cfg.run_id, name)
    return Suite(str(data.get("name", path.stem)), where, str(data.get("description", "")),
                 tuple(configs.values()), variant_of, describe_design(sweep))


def _sweep_section(sweep: Any, where: str) -> dict[str, list]:
    if not isinstance(sweep, dict):
        raise ConfigError(f"{where}: needs a [sweep] table with {', '.join(REQUIRED)}")
    unknown = sorted(set(sweep) - set(SWEEP_LISTS) - {"seeding", "round_to"})
    if unknown:
        raise ConfigError(f"{where}: [sweep] unknown key {unknown[0]!r}; allowed: "
                          f"{', '.join(list(SWEEP_LISTS) + ['seeding', 'round_to'])}")
    for key in REQUIRED:
        if key not in sweep:
            raise ConfigError(f"{where}: [sweep] is missing {key!r}")
    if not any(key in sweep for key in TARGET_LISTS):
        raise ConfigError(f"{where}: [sweep] needs the targets: compressions, speedups or sparsities")
    out: dict[str, Any] = {}
    for key, kind in SWEEP_LISTS.items():
        if key not in sweep:
            continue
        value = sweep[key]
        if not isinstance(value, list) or not value or not all(
                isinstance(v, kind) and not isinstance(v, bool) for v in value):
            expected = {str: "strings", int: "integers", (str, dict): "names or tables"}.get(kind, "numbers")
            raise ConfigError(f"{where}: [sweep] {key} must be a non-empty list of {expected}, got {value!r}")
        out[key] = value
    out["strategies"] = [_strategy_entry(s, where) for s in out["strategies"]]
    out["targets"] = [(target, float(v)) for key, target in TARGET_LISTS.items() for v in out.get(key, [])]
    out.setdefault("granularities", ["weight"])
    out["round_to"] = sweep.get("round_to", 1)
    if not isinstance(out["round_to"], int) or isinstance(out["round_to"], bool) or out["round_to"] < 1:
        raise ConfigError(f"{where}: [sweep] round_to must be a whole number >= 1 (channels), got "
                          f"{out['round_to']!r}")
    if out["round_to"] != 1 and "channel" not in out["granularities"]:
        raise ConfigError(f"{where}: [sweep] round_to rounds kept channel counts; it needs \"channel\" in "
                          f"granularities (got {out['granularities']})")
    out["seeding"] = sweep.get("seeding", DEFAULT_SEEDING)
    if out["seeding"] not in ("zip", "product"):
        raise ConfigError(f"{where}: [sweep] seeding must be \"zip\" or \"product\", got {out['seeding']!r}")
    out.setdefault("base_seeds", list(out["seeds"]))
    if out["seeding"] == "zip" and len(out["base_seeds"]) != len(out["seeds"]):
        raise ConfigError(f"{where}: [sweep] seeding = \"zip\" (the default) needs as many base_seeds as seeds "
                          f"({len(out['base_seeds'])} vs {len(out['seeds'])}); set seeding = \"product\" to pair "
                          "every base seed with every run seed")
    return out


STRATEGY_KEYS = ("name", "params", "label", "when", "control", "prune_steps", "schedule")
"""What a [sweep] strategies table may set: its name, parameters and shown label, and the run
modifiers that belong to that strategy alone (they override the sweep's lists and tables)."""


def _strategy_entry(entry: str | dict, where: str) -> dict[str, Any]:
    """A [sweep] strategies entry as {name, params, label}: a plain name, or a table
    `{name = "file.py:Class", params = {...}, label = "shown name"}`."""
    if isinstance(entry, str):
        return {"name": entry}
    unknown = sorted(set(entry) - set(STRATEGY_KEYS))
    if unknown or not isinstance(entry.get("name"), str):
        raise ConfigError(f"{where}: [sweep] strategies: a table needs a name and may have "
                          f"{', '.join(STRATEGY_KEYS[1:])}, got {entry!r}")
    if "schedule" in entry and not isinstance(entry["schedule"], dict):
        raise ConfigError(f"{where}: [sweep] strategies: schedule of {entry['name']!r} must be a table, e.g. "
                          'schedule = {kind = "gradual"}')
    if "params" in entry and not isinstance(entry["params"], dict):
        raise ConfigError(f"{where}: [sweep] strategies: params of {entry['name']!r} must be a table, e.g. "
                          "params = {power = 3}")
    return {k: entry[k] for k in STRATEGY_KEYS if k in entry}


DEFAULT_SEEDING = "zip"
"""Without `seeding`, base seed i goes with run seed i; without `base_seeds`, they are `seeds`."""


def seed_pairs(sweep: dict[str, Any]) -> list[tuple[int, int]]:
    """The (base seed, run seed) pairs a checked [sweep] table expands to."""
    if sweep["seeding"] == "zip":
        return list(zip(sweep["base_seeds"], sweep["seeds"]))
    return list(itertools.product(sweep["base_seeds"], sweep["seeds"]))


def describe_design(sweep: dict[str, Any]) -> str:
    """What the seeds of a sweep mean for the statistics, in one line."""
    pairs = seed_pairs(sweep)
    bases = sorted({b for b, _ in pairs})
    per_base = len(pairs) // max(len(bases), 1)
    how = ("base seed i with run seed i" if sweep["seeding"] == "zip" else "every base seed with every run seed")
    text = (f"seeds: {len(pairs)} (base seed, run seed) pairs, seeding = \"{sweep['seeding']}\" ({how}): "
            f"{len(bases)} base model(s) x {per_base} run seed(s) each")
    if len(bases) > 1:
        return text + f"; the statistics count the {len(bases)} base models as replicates (run seeds averaged within each)"
    return text + ("; every verdict holds for these starting weights only (one base model): list several "
                   "base_seeds for a verdict about the method")


def _template(data: dict, where: str) -> dict[str, Any]:
    template: dict[str, Any] = {}
    run = data.get("run", {})
    if not isinstance(run, dict):
        raise ConfigError(f"{where}: [run] must be a table")
    for key in ("model", "dataset", "strategy", "compression", "seed", "granularity", "target", "when", "control",
                "round_to"):
        if key in run:
            raise ConfigError(f"{where}: [run] {key} is set by [sweep]; list it there")
    template.update(run)
    for section in ("base", "finetune", "data", "measure", "schedule"):
        if section in data:
            if not isinstance(data[section], dict):
                raise ConfigError(f"{where}: [{section}] must be a table")
            template[section] = dict(data[section])
    if "seed" in template.get("base", {}):
        raise ConfigError(f"{where}: [base] seed is set by [sweep] base_seeds; list it there")
    return template


def expand(sweep: dict[str, Any], template: dict[str, Any], where: str) -> tuple[RunConfig, ...]:
    """Every combination as a validated RunConfig, duplicates (the dense runs that several
    strategies share) removed, in a stable order."""
    from shrinkbench.vision.validate import validate_config

    pairs = seed_pairs(sweep)
    budgets = sweep.get("budgets", [None])
    steps = sweep.get("prune_steps", [None])
    modifiers = list(itertools.product(sweep.get("whens", [None]), sweep.get("controls", [None])))
    seen: dict[str, RunConfig] = {}
    points = [(s, g, target, value) for s in sweep["strategies"]
              for g, target, value in operating_points(s, sweep["granularities"], sweep["targets"], where)]
    for model, dataset, (strategy, unit, target, compression), (base_seed, seed), budget, k, (when, control) in \
            itertools.product(sweep["models"], sweep["datasets"], points, pairs, budgets, steps, modifiers):
        raw = _deep_copy(template)
        raw.update(model=model, dataset=dataset, strategy=strategy["name"], compression=compression, seed=seed,
                   granularity=unit, target=target)
        if unit == "channel" and sweep["round_to"] != 1:
            raw["round_to"] = sweep["round_to"]
        if "params" in strategy:
            raw["strategy_params"] = strategy["params"]
        if "label" in strategy:
            raw["strategy_label"] = strategy["label"]
        raw.setdefault("base", {})["seed"] = base_seed
        if budget is not None:
            raw.setdefault("finetune", {})["epochs"] = budget
        if k is not None:
            raw["prune_steps"] = k
        if when is not None:
            raw["when"] = when
        if control is not None:
            raw["control"] = None if control == "none" else control
        for key in ("when", "control", "prune_steps"):
            if key in strategy:
                raw[key] = None if strategy[key] == "none" else strategy[key]
        if "schedule" in strategy:
            raw["schedule"] = _merged(raw.get("schedule", {}), strategy["schedule"])
        cfg = RunConfig.from_dict(raw, where)
        try:
            cfg = validate_config(cfg)
        except ShrinkBenchError as exc:
            what = " x ".join([model, dataset, strategy["name"], f"{compression:g}"] +
                              [str(raw[k]) for k in ("when", "control") if raw.get(k)])
            raise type(exc)(f"{where}: {what}: {exc}") from None
        seen.setdefault(cfg.run_id, cfg)
    for model, dataset, (base_seed, seed), budget in itertools.product(
            sweep.get("dense_models", []), sweep["datasets"], pairs, budgets):
        raw = _deep_copy(template)
        raw.update(model=model, dataset=dataset, strategy="none", compression=1.0, seed=seed)
        raw.setdefault("base", {})["seed"] = base_seed
        if budget is not None:
            raw.setdefault("finetune", {})["epochs"] = budget
        for key in ("when", "control", "schedule", "prune_steps"):
            raw.pop(key, None)
        try:
            cfg = validate_config(RunConfig.from_dict(raw, where))
        except ShrinkBenchError as exc:
            raise type(exc)(f"{where}: dense model {model} x {dataset}: {exc}") from None
        seen.setdefault(cfg.run_id, cfg)
    return tuple(seen.values())


def operating_points(strategy: dict, granularities: list[str], targets: list[tuple[str, float]],
                     where: str) -> list[tuple[str, str, float]]:
    """(granularity, target, value) of one [sweep] strategy entry: every listed granularity it
    scores for, with every listed target that granularity takes. An N:M granularity fixes the
    target at sparsity 1 - N/M (plus the dense point where a list has it). A strategy that
    fits no listed granularity is an error."""
    from shrinkbench.vision.pruning import resolve_strategy
    from shrinkbench.vision.pruning.granularity import granularity, is_dense_target, nm_sparsity

    supported = getattr(resolve_strategy(strategy["name"], strategy.get("params")), "granularities", ("weight", "nm"))
    out = []
    for name in granularities:
        unit = granularity(name)
        if ("nm" if nm_sparsity(unit.name) is not None else unit.name) not in supported:
            continue
        dense = [("compression", 1.0)] if any(is_dense_target(t, v) for t, v in targets) else []
        chosen = dense + [("sparsity", nm_sparsity(unit.name))] if nm_sparsity(unit.name) is not None else \
            [(t, v) for t, v in targets if t in unit.targets or is_dense_target(t, v)]
        out += [(unit.name, t, v) for t, v in chosen]
    if not out:
        raise ConfigError(f"{where}: [sweep] strategy {strategy['name']!r} scores for {', '.join(supported)}, which "
                          f"no listed granularity ({', '.join(granularities)}) with its targets is")
    return out


def _merged(template: dict, override: dict) -> dict:
    """`template` with the (nested) tables of `override` laid over it."""
    out = _deep_copy(template)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = _deep_copy(value)
    return out


def _deep_copy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return list(d)
    return d
