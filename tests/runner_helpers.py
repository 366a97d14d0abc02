"""Tiny real runs for the runner tests: LeNet-300-100 on scikit-learn's digits."""
from __future__ import annotations

import textwrap
from pathlib import Path

from shrinkbench.vision.config import BaseConfig, MeasureConfig, RunConfig, TrainConfig

TINY_TRAIN = TrainConfig(epochs=1, lr=0.05, batch_size=64)
TINY_MEASURE = MeasureConfig(eval_batch_size=256, latency_batch_sizes=(1, 8), latency_warmup=1,
                             latency_repeats=3)


def tiny_config(strategy="global_magnitude", compression=4.0, seed=0, base_seed=0, **changes) -> RunConfig:
    cfg = RunConfig(model="lenet_300_100", dataset="digits", strategy=strategy, compression=compression,
                    seed=seed, base=BaseConfig(seed=base_seed, train=TINY_TRAIN), finetune=TINY_TRAIN,
                    score_batch_size=64, measure=TINY_MEASURE)
    return cfg.replace(**changes) if changes else cfg


def write_suite(path: Path, strategies=('"global_magnitude"', '"random"'), compressions="[1, 2, 4]",
                seeds="[0]", extra="", name="tiny", base_seeds=None, latency=True, seeding="zip") -> Path:
    """A suite of tiny real runs; `base_seeds` (e.g. "[0, 1]", default: the seeds) goes with
    `seeds` by `seeding` ("zip", or "product" for every pair)."""
    zipped = f'base_seeds = {base_seeds}\n        seeding = "{seeding}"' if base_seeds else ""
    path.write_text(textwrap.dedent(f"""
        name = "{name}"
        [sweep]
        models = ["lenet_300_100"]
        datasets = ["digits"]
        strategies = [{", ".join(strategies)}]
        compressions = {compressions}
        seeds = {seeds}
        {zipped}
        [base.train]
        epochs = 1
        lr = 0.05
        batch_size = 64
        [finetune]
        epochs = 1
        lr = 0.05
        batch_size = 64
        [run]
        score_batch_size = 64
        [measure]
        eval_batch_size = 256
        latency_batch_sizes = [1, 8]
        latency_warmup = 1
        latency_repeats = 3
        latency = {"true" if latency else "false"}
        """) + textwrap.dedent(extra))
    return path


def metric(record: dict, stage: str, split: str, name: str) -> float:
    (value,) = [m["value"] for m in record["metrics"]
                if (m["stage"], m["split"], m["metric"]) == (stage, split, name)]
    return value
