"""Committed records re-run bit for bit (issue 24: a speed change may change no number).

tests/data/rerun/ holds three records written by `tests/make_rerun_records.py` with the code
before the max-pooling kernel and the gradient hooks (523cc40): LeNet-5 one-shot after
training, LeNet-5 SNIP at initialisation, LeNet-300-100 with gradual pruning, on scikit-learn's
digits at 1 thread. Each is re-run from its own config with today's code and compared
exactly: every metric but measured time and memory, every epoch's log but its seconds, the
plan, the kept counts per layer, the base model's sha256. torch's CPU kernels differ in their
last bits between instruction sets, so a record made on another capability (AVX2 vs AVX512)
is skipped, saying why.
"""
import json
from pathlib import Path

import pytest
import torch

from shrinkbench.core.store import Store
from shrinkbench.vision.config import RunConfig
from shrinkbench.vision.runner import execute

RECORDS = sorted((Path(__file__).parent / "data" / "rerun").glob("*.json"))
COST = ("latency", "throughput", "peak_memory", "measured_speedup")


def numbers(record):
    return {(m["stage"], m["split"], m["metric"]): m["value"] for m in record["metrics"]
            if not m["metric"].startswith(COST)}


def without_seconds(entries):
    return [{k: v for k, v in e.items() if k != "seconds"} for e in entries]


def test_the_records_are_there():
    assert [p.stem for p in RECORDS] == ["lenet300_gradual", "lenet5_magnitude_after_training", "lenet5_snip_at_init"]


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.stem)
def test_a_committed_record_re_runs_bit_for_bit(path, tmp_path):
    record = json.loads(path.read_text())
    made_on = record["provenance"].get("cpu_capability")
    here = torch.backends.cpu.get_cpu_capability()
    if made_on != here:
        pytest.skip(f"{path.name} was made on a {made_on} CPU, this one is {here}: other kernels, other last bits")
    cfg = RunConfig.from_dict(record["config"])
    assert cfg.run_id == record["run_id"]
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        again = execute(cfg, Store(tmp_path), "cpu")
    finally:
        torch.set_num_threads(threads)
    assert again["status"] == "ok"
    assert numbers(again) == numbers(record)
    assert without_seconds(again["epochs"]) == without_seconds(record["epochs"])
    assert again["plan"] == record["plan"] and again["layers"] == record["layers"]
    assert again["base"]["sha256"] == record["base"]["sha256"]
