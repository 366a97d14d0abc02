"""Synthetic stores for the analysis tests: real record JSON files with known effects.

Accuracy of a run (percent) at target compression c for unit (base_seed, seed):

    top1 = dense + unit_offset[unit] - drop * log2(c)^1.5 + effect[strategy] + noise,

with `noise ~ N(0, noise_sd)` independent per run and `unit_offset ~ N(0, unit_sd)`
shared by every run of a unit, so comparisons paired by seed remove it. The dense run
(strategy "none", compression 1) gets `dense + unit_offset + noise`.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from shrinkbench.analysis.schema import RECORD_SCHEMA


def make_record(*, model: str = "lenet", dataset: str = "mnist", strategy: str, compression: float,
                base_seed: int = 0, seed: int = 0, metrics: list[dict] | None = None,
                status: str = "ok", finetune_epochs: float = 2.0, code_version: str = "v1",
                base_id: str | None = None) -> dict:
    config = {
        "model": model, "dataset": dataset, "strategy": strategy, "compression": compression,
        "seed": seed, "prune_steps": 1,
        "base": {"seed": base_seed},
        "finetune": {"epochs": finetune_epochs, "optimizer": "sgd", "lr": 0.01},
        "data": {"val_size": 5000, "split_seed": 0},
    }
    run_id = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    return {
        "schema": RECORD_SCHEMA,
        "run_id": run_id,
        "status": status,
        "error": None if status == "ok" else "diverged",
        "config": config,
        "base": {"id": base_id or f"{model}-{dataset}-b{base_seed}", "source": "trained"},
        "metrics": [] if status != "ok" else list(metrics or []),
        "epochs": [],
        "provenance": {"code_version": code_version, "versions": {}, "device": "cpu"},
    }


def write_record(store: Path, record: dict) -> Path:
    runs = Path(store) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / f"{record['run_id']}.json"
    path.write_text(json.dumps(record))
    return path


def run_metrics(top1: float, compression: float, speedup: float, top5: float | None = None,
                latency: float = 1e-3) -> list[dict]:
    """The metric list of one run: accuracies at both stages and splits, structure, latency."""
    params = 100_000.0
    out = []
    for stage, shift in (("pre", -5.0), ("post", 0.0)):
        for split, split_shift in (("val", 0.2), ("test", 0.0)):
            out.append({"stage": stage, "split": split, "metric": "top1", "value": top1 + shift + split_shift})
            if top5 is not None:
                out.append({"stage": stage, "split": split, "metric": "top5", "value": top5 + shift / 2})
            out.append({"stage": stage, "split": split, "metric": "loss", "value": 0.3})
        structure = {
            "params": params, "params_nonzero": params / compression, "compression_ratio": compression,
            "macs": 1e6, "macs_nonzero": 1e6 / speedup, "theoretical_speedup": speedup,
            "latency_b1": latency / math.sqrt(speedup), "latency_iqr_b1": latency / 50,
        }
        out += [{"stage": stage, "split": "none", "metric": k, "value": v} for k, v in structure.items()]
    return out


def synthetic_store(store: Path, rng: np.random.Generator, effects: dict[str, float],
                    compressions=(2, 4, 8, 16), units=((0, 0), (1, 1), (2, 2)),
                    noise_sd: float = 0.2, unit_sd: float = 0.5, dense: float = 90.0,
                    drop: float = 0.6, settings=(("lenet", "mnist"),), top5: bool = False,
                    failed: int = 0) -> Path:
    """Write one run per strategy x compression x unit (plus the dense runs) to `store`."""
    store = Path(store)
    for model, dataset in settings:
        for base_seed, seed in units:
            offset = rng.normal(0.0, unit_sd)
            common = {"model": model, "dataset": dataset, "base_seed": base_seed, "seed": seed}
            acc = dense + offset + rng.normal(0.0, noise_sd)
            write_record(store, make_record(strategy="none", compression=1.0, **common,
                                            metrics=run_metrics(acc, 1.0, 1.0, acc + 8 if top5 else None)))
            for strategy, effect in effects.items():
                for c in compressions:
                    acc = (dense + offset - drop * math.log2(c) ** 1.5 + effect
                           + rng.normal(0.0, noise_sd))
                    speedup = c if strategy.startswith("layerwise") else c ** 0.8
                    measured = c * (1.0 + rng.uniform(-0.003, 0.003))
                    write_record(store, make_record(strategy=strategy, compression=float(c), **common,
                                                    metrics=run_metrics(acc, measured, speedup,
                                                                        acc + 8 if top5 else None)))
    for i in range(failed):
        write_record(store, make_record(strategy="random", compression=64.0, seed=100 + i,
                                        status="failed"))
    return store
