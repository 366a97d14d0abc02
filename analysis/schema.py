"""The one data format shared by the store, the exporter and every analysis.

A *record* is one finished (or failed) run, stored as one JSON file. The *tidy table* has
one row per run x metric x stage x split. This module defines both shapes and turns records
into tidy rows. It imports neither torch nor anything from `shrinkbench`, so the analysis
side can read a store on a machine without torch.

Record (JSON object, `schema` = RECORD_SCHEMA)::

    {
      "schema": 1,
      "run_id": "<sha256 hex of the canonical config>",
      "status": "ok" | "failed",
      "error": null | "<one-line reason>",
      "config": {<RunConfig as nested dict; see shrinkbench.vision.config>},
      "base": {"id": ..., "source": "trained" | "checkpoint", "sha256": ..., ...},
      "metrics": [{"stage": "pre"|"post", "split": "val"|"test"|"none",
                   "metric": "<registered name>", "value": <float>}, ...],
      "epochs": [{"step": .., "epoch": .., "train_loss": .., "val_top1": .., "lr": .., "seconds": ..}, ...],
      "provenance": {"code_version": .., "versions": {..}, "device": .., "threads": ..,
                     "hostname": .., "started_at": .., "finished_at": .., "seconds": ..},
      "seed_free": true | false   (language-model runs: the seed changes none of its numbers)
    }

Tidy columns: `IDENTITY_COLUMNS` describe the run, `CONFOUNDER_COLUMNS` are settings that
must agree between runs that are compared, then `stage`, `split`, `metric`, `value`, `unit`.
"""
from __future__ import annotations

import json
import math
from typing import Any, Iterator

from shrinkbench.analysis.naming import CONTROL_TAGS, DENSE_STRATEGY, legacy_rules  # noqa: F401  (part of the schema)

RECORD_SCHEMA = 1

STAGES = ("pre", "post")
"""`pre`: after pruning, before fine-tuning. `post`: after fine-tuning."""

SPLITS = ("val", "test", "none")
"""`none` is the split of metrics that do not depend on data (params, MACs, latency)."""

IDENTITY_COLUMNS = (
    "run_id",
    "status",
    "model",
    "dataset",
    "strategy",
    "compression",
    "base_seed",
    "seed",
    "strategy_version",
    "granularity",
    "target",
    "when",
    "control",
    "schedule",
    "seed_free",
)
CONFOUNDER_COLUMNS = (
    "base_id",
    "budget_epochs",
    "prune_steps",
    "finetune_epochs",
    "finetune_optimizer",
    "finetune_lr",
    "data_split",
    "code_version",
    "compute",
    "protocol",
    "protocol_settings",
)
MEASUREMENT_COLUMNS = ("stage", "split", "metric", "value", "unit")
TIDY_COLUMNS = IDENTITY_COLUMNS + CONFOUNDER_COLUMNS + MEASUREMENT_COLUMNS
REQUIRED_COLUMNS = IDENTITY_COLUMNS[2:8] + ("stage", "split", "metric", "value")
"""What an analysis needs at least; the rest is filled with defaults when missing."""

UNITS = {
    "params": "count",
    "params_nonzero": "count",
    "compression_ratio": "ratio",
    "macs": "MACs",
    "macs_nonzero": "MACs",
    "theoretical_speedup": "ratio",
    "flops": "FLOPs",
    "flops_nonzero": "FLOPs",
    "top1": "%",
    "top5": "%",
    "loss": "nats",
    "latency": "s",
    "latency_iqr": "s",
    "latency_dense": "s",
    "measured_speedup": "ratio",
    "throughput": "examples/s",
    "peak_memory": "bytes",
    "model_bytes_dense": "bytes",
    "model_bytes_sparse": "bytes",
    "perplexity": "ppl",
    "perplexity_c4": "ppl",
    "nll_c4": "nats/token",
    "nll": "nats/token",
    "sparsity": "fraction",
    "tie_share": "fraction",
    "nm_tie_groups": "fraction",
    "prune_seconds": "s",
    "tokens_per_s": "tokens/s",
    "semi_structured_speedup": "ratio",
    "decode_speedup": "ratio",
    "decode_s": "s",
    "decode_s_dense": "s",
    "prefill_speedup": "ratio",
    "prefill_s": "s",
    "macs_per_token": "MACs",
    "theoretical_speedup_decode": "ratio",
}


HIGHER_IS_BETTER = {
    "compression_ratio": True,
    "theoretical_speedup": True,
    "top1": True,
    "top5": True,
    "loss": False,
    "latency": False,
    "latency_iqr": False,
    "measured_speedup": True,
    "throughput": True,
    "peak_memory": False,
    "model_bytes_dense": False,
    "model_bytes_sparse": False,
    "params_nonzero": False,
    "macs_nonzero": False,
    "flops_nonzero": False,
    "perplexity": False,
    "perplexity_c4": False,
    "nll_c4": False,
    "nll": False,
    "prune_seconds": False,
    "tokens_per_s": True,
    "semi_structured_speedup": True,
    "decode_speedup": True,
    "decode_s": False,
    "prefill_speedup": True,
    "prefill_s": False,
    "macs_per_token": False,
    "theoretical_speedup_decode": True,
}
"""Direction of every registered metric that has one (mirrors `shrinkbench.core.metrics`, checked
by the tests), so the analysis knows it without torch and never guesses it from a name."""
ZERO_SHOT_METRICS = ("boolq_acc", "rte_acc", "hellaswag_acc", "hellaswag_acc_norm", "winogrande_acc",
                     "arc_easy_acc", "arc_easy_acc_norm", "arc_challenge_acc", "arc_challenge_acc_norm",
                     "openbookqa_acc", "openbookqa_acc_norm", "piqa_acc", "piqa_acc_norm", "lambada_openai_acc",
                     "storycloze_2016_acc", "zeroshot_mean")
"""Zero-shot task accuracies in percent (`shrinkbench.llm.tasks`), higher is better."""
UNITS.update({name: "%" for name in ZERO_SHOT_METRICS})
HIGHER_IS_BETTER.update({name: True for name in ZERO_SHOT_METRICS})
UNITS["lambada_openai_perplexity"] = "ppl"  # the harness's perplexity of LAMBADA's last words, lower is better
HIGHER_IS_BETTER["lambada_openai_perplexity"] = False


def base_metric(metric: str) -> str:
    """`latency_b64` -> `latency`: metrics measured per batch size carry a `_b<N>` suffix."""
    head, sep, tail = metric.rpartition("_b")
    if sep and tail.isdigit():
        return head
    return metric


def unit_of(metric: str) -> str:
    return UNITS.get(base_metric(metric), "")


def rope_unit(metric: str) -> str:
    """How a difference of `metric` is spoken of: accuracy points for percentages, else its unit."""
    unit = unit_of(metric)
    return "points" if unit in ("%", "") else unit


def higher_is_better(metric: str) -> bool | None:
    """The registered direction of `metric` (None: no direction, or not registered)."""
    return HIGHER_IS_BETTER.get(base_metric(metric))


def record_identity(record: dict[str, Any]) -> dict[str, Any]:
    """The identity and confounder columns of one record."""
    config = record.get("config", {})
    base = config.get("base", {})
    finetune = config.get("finetune", {})
    prov = record.get("provenance", {})
    tag_rule, split_rule = legacy_rules(config)
    split_id = record["data_split"] if isinstance(record.get("data_split"), str) else split_rule(config)
    tags = record["method_tags"] if isinstance(record.get("method_tags"), list) else tag_rule(config)
    return {
        "run_id": record["run_id"],
        "status": record.get("status", "ok"),
        "model": config["model"],
        "dataset": config["dataset"],
        "strategy": strategy_name(config, tags),
        "strategy_version": str(config.get("strategy_sha256") or "")[:12],
        "granularity": str(config.get("granularity") or "weight"),
        "target": str(config.get("target") or "compression"),
        "when": str(config.get("when") or "after_training"),
        "control": str(config.get("control") or "none"),
        "schedule": schedule_label(config),
        "seed_free": int(bool(record.get("seed_free", False))),
        "compression": float(config["compression"]),
        "base_seed": int(base.get("seed", 0)),
        "seed": int(config.get("seed", 0)),
        "base_id": record.get("base", {}).get("id", ""),
        "budget_epochs": float(budget_epochs(record)),
        "prune_steps": int(config.get("prune_steps", 1)),
        "finetune_epochs": float(finetune.get("epochs", 0)),
        "finetune_optimizer": str(finetune.get("optimizer", "")),
        "finetune_lr": float(finetune.get("lr", 0.0)),
        "data_split": split_id,
        "code_version": str(prov.get("code_version", "")),
        "compute": compute_label(prov),
        **protocol_columns(record),
    }


PROTOCOL_FIELDS = ("text", "seq_len", "stride", "eval_windows", "special_tokens", "calib_text", "calib_sequences",
                   "calib_len", "draw", "second")
"""The settings of a language-model protocol that decide its numbers, as `protocol_settings`
names them (the fields a refused comparison across presets lists)."""


def protocol_columns(record: dict[str, Any]) -> dict[str, str]:
    """`protocol`, the preset (`wanda@v1`; `offline@v1` for language-model records from before
    presets; empty for vision runs), and `protocol_settings` (`text=kjv; seq_len=256; ...`, the
    fields of `PROTOCOL_FIELDS` as the run used them: what it changed from its preset shows there
    and in `data_split`)."""
    config = record.get("config", {})
    if str(config.get("track") or "vision") != "llm":
        return {"protocol": "", "protocol_settings": ""}
    protocol = record.get("protocol") or {}
    text = record.get("text") or {}
    seq_len = text.get("seq_len", config.get("seq_len"))
    second = protocol.get("second")
    values = {
        "text": config.get("dataset"), "seq_len": seq_len, "stride": text.get("stride", seq_len),
        "eval_windows": text.get("eval_windows", config.get("eval_windows")),
        "special_tokens": text.get("special_tokens", False),
        "calib_text": config.get("calib_text") or config.get("dataset"),
        "calib_sequences": config.get("calib_sequences"),
        "calib_len": protocol.get("calib_len") or seq_len, "draw": protocol.get("draw", "windows"),
        "second": f"{second['text']} {second['documents']} documents" if second else "none",
    }
    settings = "; ".join(f"{k}={values[k]}" for k in PROTOCOL_FIELDS)
    name = f"{protocol['name']}@v{protocol['version']}" if protocol.get("name") else "offline@v1"
    return {"protocol": name, "protocol_settings": settings}


def protocol_differences(settings: list[str]) -> list[str]:
    """The fields of `PROTOCOL_FIELDS` whose values differ between `protocol_settings` strings."""
    parsed = [dict(part.split("=", 1) for part in s.split("; ") if "=" in part) for s in settings if s]
    return [k for k in PROTOCOL_FIELDS if len({p.get(k) for p in parsed}) > 1]


def schedule_label(config: dict[str, Any]) -> str:
    """`one_shot`, `gradual`, `weight_rewinding@<epoch>`, `lr_rewinding@<epoch>`; with
    `prune_steps` > 1, `/<k> steps` and, where one budget is split over them, `, split`."""
    schedule = config.get("schedule") or {}
    kind = str(schedule.get("kind") or "one_shot")
    label = f"{kind}@{schedule['rewind_epoch']}" if kind.endswith("_rewinding") else kind
    steps = int(config.get("prune_steps", 1) or 1)
    if steps > 1:
        label += f"/{steps} steps" + (", split" if schedule.get("split_budget") else "")
    return label


def budget_epochs(record: dict[str, Any]) -> float:
    """Epochs a run trained after its starting weights (the record's `budget`; records from
    before it was recorded fine-tuned `finetune.epochs` after each of `prune_steps` steps)."""
    budget = record.get("budget")
    if isinstance(budget, dict) and isinstance(budget.get("epochs"), (int, float)):
        return float(budget["epochs"])
    config = record.get("config", {})
    epochs = float((config.get("finetune") or {}).get("epochs", 0) or 0)
    steps = 1 if config.get("strategy") == DENSE_STRATEGY else int(config.get("prune_steps", 1) or 1)
    return epochs * steps


def strategy_name(config: dict[str, Any], tags: list[str] | None = None) -> str:
    """The name a method is shown and found by: its label where the config gives one, else the
    strategy with its parameters, `file.py:Class(power=3)`; then the method's tags in
    brackets, `global_l1 [channel, speedup target]`: `tags` as the record gives them (a track's
    rules in `shrinkbench.analysis.naming`), else by the rules of the config's track."""
    params = config.get("strategy_params") or {}
    if not isinstance(params, dict):
        raise ValueError("strategy_params is not a table")
    if config.get("strategy_label"):
        name = str(config["strategy_label"])
    elif params:
        name = f"{config['strategy']}({', '.join(f'{k}={json.dumps(v)}' for k, v in sorted(params.items()))})"
    else:
        name = str(config["strategy"])
    tags = legacy_rules(config)[0](config) if tags is None else tags
    return f"{name} [{', '.join(tags)}]" if tags else name


def compute_label(provenance: dict[str, Any]) -> str:
    """Device, thread count and precision of a run: the same config gives the same numbers
    bit for bit only where these agree too (matrix kernels split work by thread)."""
    if not provenance.get("device"):
        return ""
    label = f"{provenance['device']}, {provenance.get('threads', '?')} threads"
    precision = provenance.get("precision")
    return f"{label}, {precision}" if precision else label


def flat_config(config: dict[str, Any], prefix: str = "config.") -> dict[str, Any]:
    """The run config as dotted columns (`config.finetune.lr`, `config.base.train.epochs`,
    ...); lists become comma-joined text."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = prefix + key
        if isinstance(value, dict):
            out.update(flat_config(value, name + "."))
        elif isinstance(value, (list, tuple)):
            out[name] = ",".join(map(str, value))
        else:
            out[name] = value
    return out


def record_to_rows(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Tidy rows of one record. A failed run yields one row with metric `failed`."""
    ident = record_identity(record)
    if record.get("status", "ok") != "ok":
        yield {**ident, "stage": "none", "split": "none", "metric": "failed",
               "value": float("nan"), "unit": ""}
        return
    for m in record.get("metrics", []):
        yield {**ident, "stage": m["stage"], "split": m["split"], "metric": m["metric"],
               "value": metric_value(m), "unit": unit_of(m["metric"])}


def metric_value(entry: dict[str, Any]) -> float:
    """A stored metric's value: a JSON number (NaN included). Anything else, a string such as
    "NaN" among them, makes the record unusable (ValueError naming the metric)."""
    value = entry["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"metric {entry.get('metric')!r} has a non-numeric value {value!r}")
    return float(value)


def non_finite_metrics(record: dict[str, Any]) -> list[str]:
    """`stage/split metric` of every stored metric whose value is NaN or infinite."""
    return [f"{m.get('stage')}/{m.get('split')} {m.get('metric')}" for m in record.get("metrics", [])
            if isinstance(m.get("value"), float) and not math.isfinite(m["value"])]
