"""Each metric on small hand-built models whose answers were computed by hand."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from shrinkbench.cli import main
from shrinkbench.core.macs import count_macs
from shrinkbench.core.metrics import METRICS, measure_structure, metric_info
from shrinkbench.vision.metrics import PredictionCounts, evaluate
import shrinkbench.llm.metrics  # noqa: F401  (registers the language-model metrics)
from shrinkbench.core.metrics.cost import latency, latency_iqr, peak_memory, throughput
from shrinkbench.core.metrics.structure import model_bytes_sparse, sparse_tensor_bytes


def mlp_with_known_zeros():
    """6-4-3 MLP: 28 + 15 = 43 params; zero 12 weights of fc1, 3 of fc2 and 1 bias."""
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.5)
        model[0].weight[:2] = 0
        model[2].weight[0, :3] = 0
        model[2].bias[1] = 0
    return model


def test_structure_metrics_by_hand():
    model = mlp_with_known_zeros()
    m = measure_structure(model, count_macs(model, (6,)))
    assert m["params"] == 43
    assert m["params_nonzero"] == 43 - 12 - 3 - 1
    assert m["compression_ratio"] == pytest.approx(43 / 27)
    assert m["macs"] == 24 + 12
    assert m["macs_nonzero"] == 12 + 9
    assert m["theoretical_speedup"] == pytest.approx(36 / 21)
    assert m["flops"] == 72 and m["flops_nonzero"] == 42
    assert m["model_bytes_dense"] == 43 * 4
    # fc1.weight: 24 values, 12 nonzero -> bitmap 3 bytes + 48 = 51 < 96
    # fc1.bias: 4 values dense 16 < 1 + 16;  fc2.weight: 12 values, 9 nonzero -> 2 + 36 = 38 < 48
    # fc2.bias: 3 values, 2 nonzero -> min(12, 1 + 8) = 9
    assert m["model_bytes_sparse"] == 51 + 16 + 38 + 9 == model_bytes_sparse(model)


def test_grouped_and_dilated_conv_nonzero_macs():
    conv = nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.weight[:4] = 0  # half of the filters
    model = nn.Sequential(conv)
    m = measure_structure(model, count_macs(model, (4, 9, 9)))
    assert m["macs"] == 8 * 9 * 9 * 2 * 9
    assert m["macs_nonzero"] == m["macs"] // 2
    assert m["theoretical_speedup"] == pytest.approx(2.0)


def test_sparse_bytes_never_exceed_dense():
    assert sparse_tensor_bytes(torch.ones(100)) == 400
    assert sparse_tensor_bytes(torch.zeros(100)) == 13
    assert sparse_tensor_bytes(torch.arange(10)) == 80  # integer buffers stay dense


def test_accuracy_is_correct_over_n_without_partial_batch_bias():
    # 5 examples in batches of 2, 2, 1: per-batch accuracies 1/2, 1/2, 1 would average to 2/3;
    # correct / N is 3/5.
    logits = torch.tensor([[2.0, 0, 0, 0, 0, 0], [0, 2.0, 0, 0, 0, 0], [2.0, 0, 0, 0, 0, 0],
                           [0, 0, 2.0, 1, 0, 0], [0, 0, 0, 2.0, 0, 0]])
    targets = torch.tensor([0, 0, 0, 3, 3])
    model = nn.Identity()
    batches = [(logits[:2], targets[:2]), (logits[2:4], targets[2:4]), (logits[4:], targets[4:])]
    result = evaluate(model, batches)
    assert result["top1"] == pytest.approx(100 * 3 / 5)
    # top-5 among 6 classes: example 1 has target 0 tied at logit 0 with 4 others -> topk picks
    # by value then index; all targets are within the 5 largest except none -> count by hand
    counts = PredictionCounts()
    for x, y in batches:
        counts.add(x, y)
    expected_top5 = sum(int(y in x.topk(5).indices) for x, y in zip(logits, targets))
    assert counts.correct5 == expected_top5
    expected_loss = torch.nn.functional.cross_entropy(logits, targets).item()
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-6)


def test_latency_median_iqr_throughput_against_numpy():
    times = [0.5, 0.1, 0.3, 0.2, 0.9, 0.4]
    assert latency(times) == pytest.approx(np.median(times))
    assert latency_iqr(times) == pytest.approx(np.subtract(*np.percentile(times, [75, 25])))
    assert throughput(times, 64) == pytest.approx(64 / np.median(times))


def test_peak_memory_of_one_linear_layer_by_hand():
    model = nn.Linear(10, 5)  # 55 float32 parameters = 220 bytes
    x = torch.ones(4, 10)     # 160 bytes
    # during the forward the only new tensor is the (4, 5) output = 80 bytes
    assert peak_memory(model, x) == 220 + 160 + 80


def test_every_metric_is_documented_with_unit_direction_and_stage():
    assert {"params", "params_nonzero", "compression_ratio", "macs", "macs_nonzero",
            "theoretical_speedup", "flops", "top1", "top5", "loss", "latency", "latency_iqr",
            "throughput", "peak_memory", "model_bytes_dense", "model_bytes_sparse"} <= set(METRICS)
    for name in METRICS:
        info = METRICS.get(name)
        assert info.unit and info.definition and set(info.stages) <= {"pre", "post"}
        assert "=" in info.definition, f"{name} states no formula"
    assert metric_info("latency_b64").name == "latency"


def test_the_analysis_knows_every_direction_and_unit_the_registry_states():
    from shrinkbench.analysis.schema import HIGHER_IS_BETTER, UNITS

    for name in METRICS:
        info = METRICS.get(name)
        assert UNITS.get(name) == info.unit, name
        assert HIGHER_IS_BETTER.get(name) == info.higher_is_better, name
    assert set(HIGHER_IS_BETTER) <= set(METRICS)


def test_cli_metrics_and_zoo_json(capsys):
    assert main(["metrics", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"name", "unit", "higher_is_better", "definition", "stage"} <= set(rows[0])
    assert main(["zoo", "lenet*", "--format", "json"]) == 0
    zoo = json.loads(capsys.readouterr().out)
    assert [z["name"] for z in zoo] == ["lenet_300_100", "lenet5_caffe", "lenet_300_100_w0.5", "lenet5_caffe_w0.5",
                                        "lenet_300_100_w0.25", "lenet5_caffe_w0.25", "lenet_300_100_w0.125",
                                        "lenet5_caffe_w0.125"]
    assert {"name", "input_shape", "num_classes", "params", "macs", "fingerprint"} <= set(zoo[0])


def test_cli_unknown_name_is_one_line(capsys):
    assert main(["zoo", "lenet_300_10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lenet_300_100" in err
