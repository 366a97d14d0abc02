"""How a run's method and data are named, written into its record by its track.

A record carries `method_tags` (what sets the run's method apart beyond its strategy:
`global_l1 [channel, speedup target]`) and `data_split` (the data every compared run must share:
the validation split of a vision run, the text windows of a language-model run), so the analysis
reads them from the record and never asks which track wrote it. The rules below are the tracks'
(`shrinkbench.vision.track`, `shrinkbench.llm.track` call them when they write a record); they
live here, torch-free, because records written before these fields existed (2026-12) are named
by the same rules, chosen by the record's own `config.track` (`LEGACY_RULES`).
"""
from __future__ import annotations

from typing import Any, Callable

DENSE_STRATEGY = "none"
"""Strategy name of the dense (compression 1) run; every sweep contains it."""


CONTROL_TAGS = {"layerwise_shuffle": "shuffled", "reinit": "reinit", "invert": "inverted",
                "from_scratch": "from scratch"}


def training_run_tags(config: dict[str, Any]) -> list[str]:
    """What sets a run's method apart beyond its strategy, in the order a reader needs it: a
    granularity other than `weight` (`channel`, `2:4`; `channel, multiples of 8` where its kept
    channel counts are rounded, `round_to`), a target other than compression
    (`speedup target`), pruning at initialisation (`at init`), a schedule other than one-shot
    (`gradual`, `weight rewinding to epoch 1`, `3 steps, split budget` or `3 steps, full
    budget each`), a control (`shuffled`, `reinit`, `inverted`, `from scratch`) and a run
    without fine-tuning (`no fine-tuning`). The dense run has none."""
    if config.get("strategy") == DENSE_STRATEGY:
        return []
    tags = []
    if (config.get("granularity") or "weight") != "weight":
        rounded = int(config.get("round_to", 1) or 1)
        tags.append(str(config["granularity"]) + (f", multiples of {rounded}" if rounded != 1 else ""))
    if (config.get("target") or "compression") != "compression":
        tags.append(f"{config['target']} target")
    if (config.get("when") or "after_training") == "at_init":
        tags.append("at init")
    schedule = config.get("schedule") or {}
    kind = schedule.get("kind") or "one_shot"
    if kind == "gradual":
        tags.append("gradual")
    elif kind.endswith("_rewinding"):
        tags.append(f"{kind.split('_')[0].replace('lr', 'LR')} rewinding to epoch {schedule.get('rewind_epoch')}")
    steps = int(config.get("prune_steps", 1) or 1)
    if steps > 1:
        tags.append(f"{steps} steps, " + ("split budget" if schedule.get("split_budget") else "full budget each"))
    if config.get("control"):
        tags.append(CONTROL_TAGS.get(config["control"], str(config["control"])))
    after = (config.get("when") or "after_training") == "after_training"
    if after and kind == "one_shot" and config.get("control") != "from_scratch" \
            and float((config.get("finetune") or {}).get("epochs", 1) or 0) == 0:
        tags.append("no fine-tuning")
    return tags


def one_shot_run_tags(config: dict[str, Any]) -> list[str]:
    """A one-shot run of a pretrained model (the language-model track): its structured unit
    (`blocks`, `heads`, `channels`, `width`) if any, its N:M pattern (`2:4`) or else its scope (`row`, `layer`,
    `block`, `global`; for width units the allocation `uniform`, `global`), a layer allocation other than
    uniform (`owl`), a tie rule other than the lower index (`seeded ties`), a mask refinement (`dsnot`),
    and a recovery fine-tune (`recovery 100 steps`, `LoRA r8 recovery 100 steps`). One-shot without
    fine-tuning is the track's default, not tagged."""
    if config.get("strategy") == DENSE_STRATEGY:
        return []
    pattern = config.get("pattern") or "unstructured"
    tags = [pattern] if pattern != "unstructured" else ([str(config["scope"])] if config.get("scope") else [])
    if config.get("unit", "weight") != "weight":  # structured: the unit first (`blocks`, `channels, uniform`)
        tags = [str(config["unit"])] + tags
    allocation = config.get("allocation") or "uniform"
    if allocation != "uniform":  # a layer allocation (`owl`, `owl lam=0.1`)
        params = config.get("allocation_params") or {}
        tags.append(" ".join([str(allocation)] + [f"{k}={v}" for k, v in sorted(params.items())]))
    if config.get("ties", "low_index") != "low_index":
        tags.append(f"{config['ties']} ties")
    if config.get("refine"):  # a mask refinement after the strategy's mask (`wanda [row, dsnot]`,
        params = config.get("refine_params") or {}  # `wanda [row, dsnot threshold=0.05]`)
        tags.append(" ".join([str(config["refine"])] + [f"{k}={v}" for k, v in sorted(params.items())]))
    steps = int(config.get("finetune_steps") or 0)
    if steps:
        lora = config.get("finetune_method") == "lora"
        tags.append(f"LoRA r{config.get('lora_rank')} recovery {steps} steps" if lora else f"recovery {steps} steps")
    return tags


def training_data_split(config: dict[str, Any]) -> str:
    """`val5000-seed0[-train<N>]`: the validation split a trained-and-fine-tuned run was measured on."""
    data = config.get("data", {})
    split_id = f"val{data.get('val_size', '')}-seed{data.get('split_seed', '')}"
    if data.get("train_size") is not None:
        split_id += f"-train{data['train_size']}"
    return split_id


def text_window_split(config: dict[str, Any]) -> str:
    """`kjv-seq256-calib16-eval16`: the text windows every compared language-model run must share
    (`-calibc4` where calibration reads another text, `-evalall` for every window, `-wanda` for a
    preset other than offline)."""
    calib_text = config.get("calib_text")
    evaluated = config.get("eval_windows")
    split = (f"{config.get('dataset')}-seq{config.get('seq_len')}-calib{config.get('calib_sequences')}"
             + (f"{calib_text}" if calib_text and calib_text != config.get("dataset") else "")
             + f"-eval{'all' if evaluated == 0 else evaluated}")
    protocol = config.get("protocol")
    return split + (f"-{protocol}" if protocol and protocol != "offline" else "")


LEGACY_RULES: dict[str, tuple[Callable[[dict], list[str]], Callable[[dict], str]]] = {
    "vision": (training_run_tags, training_data_split),
    "llm": (one_shot_run_tags, text_window_split),
}
"""(method tags, data split) of records written before records carried them, by `config.track`
(none = vision). Records written since carry `method_tags` and `data_split` themselves."""


def legacy_rules(config: dict[str, Any]):
    return LEGACY_RULES.get(str(config.get("track") or "vision"), LEGACY_RULES["vision"])
