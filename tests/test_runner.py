"""Whole runs on real data (scikit-learn digits): properties of the runner."""
import json
import math

import pytest
import torch

from shrinkbench.vision.config import RunConfig, TrainConfig
from shrinkbench.core.errors import CheckpointError, CompressionError, ConfigError, UnknownNameError
from shrinkbench.vision.models import create_model
from shrinkbench.vision.runner import execute
from shrinkbench.core.store import Store
from shrinkbench.core.sweep import run_one
from shrinkbench.vision.validate import validate_config

from runner_helpers import metric, tiny_config

COST = ("latency", "throughput", "peak_memory", "measured_speedup")


def numbers(record):
    """Every metric except measured time/memory, which no machine repeats exactly."""
    return {(m["stage"], m["split"], m["metric"]): m["value"] for m in record["metrics"]
            if not m["metric"].startswith(COST)}


@pytest.fixture(scope="module")
def magnitude_record(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("store"))
    cfg = validate_config(tiny_config(compression=8.0))
    return execute(cfg, store, "cpu"), cfg, store


def test_record_has_config_metrics_log_and_provenance(magnitude_record):
    record, cfg, _ = magnitude_record
    assert record["status"] == "ok" and record["run_id"] == cfg.run_id
    assert RunConfig.from_dict(record["config"]).run_id == cfg.run_id
    stages = {(m["stage"], m["split"]) for m in record["metrics"]}
    assert stages == {("pre", "none"), ("pre", "val"), ("pre", "test"),
                      ("post", "none"), ("post", "val"), ("post", "test")}
    assert {"latency_b1", "latency_b8", "latency_iqr_b8", "throughput_b8", "peak_memory_b8"} <= \
        {m["metric"] for m in record["metrics"] if m["stage"] == "post"}
    assert [e["phase"] for e in record["epochs"]] == ["finetune-1"]
    prov = record["provenance"]
    assert {"code_version", "versions", "device", "threads", "started_at", "seconds", "data_location"} <= set(prov)
    assert record["base"]["id"] == cfg.base_id and record["base"]["source"] == "trained"


def test_run_meets_the_target_compression_and_zeros_survive_finetuning(magnitude_record):
    record, cfg, _ = magnitude_record
    params = metric(record, "pre", "none", "params")
    pre_nonzero = metric(record, "pre", "none", "params_nonzero")
    post_nonzero = metric(record, "post", "none", "params_nonzero")
    # exact kept count: K = round(params / c - non_prunable) prunable weights stay
    prunable = 784 * 300 + 300 * 100
    kept = sum(layer["kept"] for layer in record["layers"])
    assert kept == round(params / 8.0 - (params - prunable))
    assert pre_nonzero <= params - (prunable - kept)
    # fine-tuning may only make more zeros, never revive pruned weights
    assert post_nonzero <= pre_nonzero
    assert metric(record, "post", "none", "compression_ratio") >= 8.0


def test_same_config_same_numbers_bit_for_bit(magnitude_record, tmp_path):
    record, cfg, _ = magnitude_record
    again = execute(cfg, Store(tmp_path), "cpu")  # a fresh store: the base model is retrained too
    assert numbers(again) == numbers(record)
    assert again["base"]["sha256"] == record["base"]["sha256"]
    assert [{k: v for k, v in e.items() if k != "seconds"} for e in again["epochs"]] == \
        [{k: v for k, v in e.items() if k != "seconds"} for e in record["epochs"]]


def test_an_evaluation_pass_skipped_for_unchanged_weights_changes_no_number(magnitude_record, tmp_path, monkeypatch):
    """The last epoch's validation and the stage's `val` see the same weights: the second pass
    is not made (`RunContext.accuracy`); a run that makes every pass gives the same record."""
    import itertools

    import shrinkbench.vision.runner as runner
    from shrinkbench.vision.metrics import evaluate as real_evaluate

    record, cfg, _ = magnitude_record
    passes = []
    monkeypatch.setattr("shrinkbench.vision.metrics.evaluate", lambda *a, **k: passes.append(1) or real_evaluate(*a, **k))
    cached = execute(cfg, Store(tmp_path / "a"), "cpu")
    skipped = len(passes)
    fresh = itertools.count()
    monkeypatch.setattr(runner, "weights_digest", lambda model: next(fresh))  # never equal: every pass is made
    passes.clear()
    every = execute(cfg, Store(tmp_path / "b"), "cpu")
    assert len(passes) == skipped + 2  # base training's last validation, fine-tuning's last validation
    assert numbers(every) == numbers(cached) == numbers(record)
    assert every["epochs"] == [dict(e, seconds=c["seconds"]) for e, c in zip(cached["epochs"], every["epochs"])]


def test_weights_digest_sees_every_parameter_and_buffer():
    from shrinkbench.vision.runner import weights_digest

    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    before = weights_digest(model)
    assert weights_digest(model) == before
    with torch.no_grad():
        model[1].running_mean[0] += 1e-7
    assert weights_digest(model) != before
    with torch.no_grad():
        model[1].running_mean[0] -= 1e-7
        model[0].weight[0, 0] = -model[0].weight[0, 0] if model[0].weight[0, 0] != 0 else 1.0
    assert weights_digest(model) != before


def test_run_seed_changes_random_masks_but_not_base(magnitude_record):
    _, _, store = magnitude_record
    a = execute(validate_config(tiny_config("random", 4.0, seed=0)), store, "cpu")
    b = execute(validate_config(tiny_config("random", 4.0, seed=1)), store, "cpu")
    assert a["base"]["sha256"] == b["base"]["sha256"]
    assert numbers(a) != numbers(b)


def test_dense_run_pre_stage_is_the_base_model(magnitude_record):
    _, _, store = magnitude_record
    cfg = validate_config(tiny_config("global_gradient", 1.0))
    assert cfg.strategy == "none" and cfg.is_dense
    record = execute(cfg, store, "cpu")
    assert metric(record, "pre", "test", "top1") == pytest.approx(record["base"]["metrics"]["test_top1"])
    assert metric(record, "pre", "none", "compression_ratio") == pytest.approx(1.0, abs=0.01)


def test_iterative_schedule_prunes_in_steps_and_finetunes_between(magnitude_record):
    _, _, store = magnitude_record
    record = execute(validate_config(tiny_config(compression=8.0, prune_steps=3)), store, "cpu")
    assert [e["phase"] for e in record["epochs"]] == ["finetune-1", "finetune-2", "finetune-3"]
    assert metric(record, "post", "none", "compression_ratio") >= 8.0


def test_nan_loss_is_recorded_as_failed_with_the_reason(magnitude_record):
    _, _, store = magnitude_record
    cfg = validate_config(tiny_config(finetune=TrainConfig(epochs=1, lr=1e12, batch_size=64)))
    outcome = run_one(cfg, str(store.root), "cpu")
    assert outcome.status == "failed"
    record = store.read(cfg.run_id)
    assert record["status"] == "failed" and "loss became" in record["error"]
    assert record["metrics"] == []


def test_user_checkpoint_is_loaded_and_hashed(tmp_path, magnitude_record):
    model = create_model("lenet_300_100", seed=7)
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    cfg = tiny_config()
    cfg = validate_config(cfg.replace(base=cfg.base.__class__(seed=0, checkpoint=str(path))))
    assert len(cfg.base.checkpoint_sha256) == 64
    record = execute(cfg, Store(tmp_path / "s"), "cpu")
    assert record["base"]["source"] == "checkpoint"
    moved = tmp_path / "moved.pt"
    path.rename(moved)
    cfg2 = validate_config(cfg.replace(base=cfg.base.__class__(seed=0, checkpoint=str(moved))))
    assert cfg2.run_id == cfg.run_id, "the checkpoint's content, not its path, identifies the run"


@pytest.mark.parametrize("content,expected", [
    (b"not a torch file at all", "not a readable torch weights file"),
    ("other_model", "does not fit the model"),
])
def test_corrupt_or_foreign_checkpoint_is_one_line_error(tmp_path, content, expected):
    path = tmp_path / "bad.pt"
    if content == "other_model":
        torch.save(create_model("lenet5_caffe").state_dict(), path)
    else:
        path.write_bytes(content)
    cfg = tiny_config()
    cfg = validate_config(cfg.replace(base=cfg.base.__class__(checkpoint=str(path))))
    with pytest.raises(CheckpointError) as err:
        execute(cfg, Store(tmp_path / "s"), "cpu")
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert not list((tmp_path / "s").glob("runs/*.json")), "nothing written"


@pytest.mark.parametrize("changes,error,text", [
    ({"model": "lenet_300_10"}, UnknownNameError, "lenet_300_100"),
    ({"dataset": "fashion_mnist"}, UnknownNameError, "fashion-mnist"),
    ({"strategy": "global_magnitud"}, UnknownNameError, "global_magnitude"),
    ({"compression": 10_000.0}, CompressionError, "largest reachable"),
    ({"model": "cifar_resnet20"}, ConfigError, "3x32x32"),
])
def test_bad_configs_fail_before_running(changes, error, text):
    with pytest.raises(error) as err:
        validate_config(tiny_config().replace(**changes))
    assert text in str(err.value) and "\n" not in str(err.value)


def test_compression_below_one_is_rejected():
    with pytest.raises(ConfigError, match="compression must be >= 1"):
        tiny_config(compression=0.5)


def test_run_id_is_the_hash_of_what_determines_the_numbers():
    a = tiny_config()
    assert a.run_id == RunConfig.from_dict(json.loads(json.dumps(a.to_dict()))).run_id
    assert a.run_id != tiny_config(seed=1).run_id
    assert a.run_id != a.replace(finetune=TrainConfig(epochs=2, lr=0.05, batch_size=64)).run_id
    where = a.replace(data=a.data.__class__(root="/somewhere/else", download=True))
    assert where.run_id == a.run_id
    # the dense run is one run whatever strategy a suite names
    assert tiny_config("random", 1).run_id == tiny_config("global_magnitude", 1).run_id


def test_train_size_scales_a_run_down_and_is_part_of_its_identity(magnitude_record):
    _, _, store = magnitude_record
    small = tiny_config()
    small = small.replace(data=small.data.__class__(train_size=300))
    assert small.run_id != tiny_config().run_id and small.base_id != tiny_config().base_id
    record = execute(validate_config(small), store, "cpu")
    steps = math.ceil(300 / 64)
    assert record["status"] == "ok" and record["epochs"][0]["train_loss"] > 0
    from shrinkbench.vision.runner import load_data
    assert len(load_data("digits", validate_config(small).data).train) == 300 and steps == 5
