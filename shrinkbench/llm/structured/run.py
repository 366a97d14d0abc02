"""The structured step of a language-model run (`LLMRunConfig.unit` blocks, heads, channels or
width), called by `shrinkbench.llm.runner.execute`.

`prune_structured` draws `calib_sequences` calibration windows with the run seed (purpose
`calibration`, as weight pruning does), builds the plan (`structured.prune`), and returns the
compacted model; the record gets `structure` (removed blocks, kept key/value heads and MLP
channels per kept block) and `prune_seconds`. `structured_cost` times the compacted model
against the dense one in alternation (`structured.cost.measure`: prefill at batch 1 for a
`seq_len`-token prompt, decode per token with the KV cache over 64 new tokens at batch 1,
`throughput_repeats` rounds after one warm-up) and states MACs per token and theoretical speedup.
"""
from __future__ import annotations

import time

import torch

COST_METRICS = {  # record metric -> key of structured.cost.measure
    "decode_speedup_b1": "decode_b1_speedup", "decode_s_b1": "decode_b1_s", "decode_s_dense_b1": "decode_b1_s_dense",
    "prefill_speedup_b1": "prefill_b1_speedup", "prefill_s_b1": "prefill_b1_s",
    "macs_per_token": "macs_decode", "theoretical_speedup_decode": "theoretical_speedup_decode",
}


def prune_structured(model, cfg, calibration, device, record: dict, say):
    """`calibration()` returns the run's calibration windows (drawn as its protocol says)."""
    from shrinkbench.llm.structured.compact import compact
    from shrinkbench.llm.structured.prune import spec_of, structured_plan
    from shrinkbench.llm.structured.units import geometry

    spec = spec_of(cfg)
    batches = None
    if spec.needs_calibration:
        calib = calibration()
        batches = [calib[i: i + cfg.calib_batch].to(device) for i in range(0, len(calib), cfg.calib_batch)]
    say(f"structured pruning: {cfg.unit} by {cfg.strategy}")
    t = time.perf_counter()
    plan = structured_plan(model, spec, batches, seed=cfg.seed)
    small = compact(model, plan).to(device)
    record["metrics"].append({"stage": "post", "split": "none", "metric": "prune_seconds",
                              "value": time.perf_counter() - t})
    record["structure"] = {"unit": cfg.unit, "criterion": cfg.strategy, "allocation": cfg.scope,
                           "compensated": bool(plan.attn_bias or plan.mlp_bias), **plan.summary(geometry(model))}
    return small


def structured_cost(model, dense, cfg) -> list[dict]:
    from shrinkbench.llm.structured.cost import CostSettings, measure

    settings = CostSettings(prompt=cfg.seq_len, new_tokens=64, prefill_batches=(1,), decode_batches=(1,),
                            repeats=max(cfg.throughput_repeats, 1), seed=cfg.seed)
    with torch.inference_mode():
        out = measure(model, dense, settings)
    return [{"stage": "post", "split": "none", "metric": name, "value": float(out[key])}
            for name, key in COST_METRICS.items()]
