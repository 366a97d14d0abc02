"""Structured pruning: dependency groups by hand, exact targets, compaction that computes the
same function as the masked model on every zoo family, channel criteria by hand, N:M."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from shrinkbench.cli import main
from shrinkbench.core.errors import CompressionError, ConfigError, StrategyError
from shrinkbench.core.macs import count_macs
from shrinkbench.core.metrics.structure import measure_structure
from shrinkbench.vision.models import create_model, model_spec
from shrinkbench.vision.pruning import prunable_weights, resolve_strategy
from shrinkbench.vision.pruning.granularity import granularity
from shrinkbench.vision.pruning.nm import nm_mask
from shrinkbench.vision.structured.compact import compact
from shrinkbench.vision.structured.counting import Counter
from shrinkbench.vision.structured.criteria import ChannelStrategy
from shrinkbench.vision.structured.graph import dependency_groups
from shrinkbench.vision.structured.select import remove_to_target, removal_order

from runner_helpers import write_suite

CHANNEL = granularity("channel")


def groups_of(name):
    spec = model_spec(name)
    model = create_model(name)
    return model, spec, dependency_groups(model, spec.input_shape, spec.excluded)


def realistic(model: nn.Module, seed: int = 0) -> nn.Module:
    """Trained-looking parameters: BatchNorm scales, shifts and statistics away from their
    initial values, biases nonzero, and no weight exactly zero (a fresh uniform init has a few)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.5 + 0.4)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            elif getattr(m, "bias", None) is not None and isinstance(m, (nn.Conv2d, nn.Linear)):
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.05)
        for p in model.parameters():
            p.masked_fill_(p == 0, 1e-3)
    return model.eval()


# ------------------------------------------------------------------ dependency groups by hand

def test_lenet5_groups_are_the_filters_with_their_consumer_columns():
    model, spec, groups = groups_of("lenet5_caffe")
    assert len(groups) == 20 + 50 + 500 and list(groups.layers) == ["conv1", "conv2", "fc1"]
    conv2 = [g for g in groups.groups if g.producers == (("conv2", 7),)][0]
    slices = {(s.tensor, s.dim): s.index for s in conv2.slices}
    assert slices[("conv2.weight", 0)] == (7,) and slices[("conv2.bias", 0)] == (7,)
    # conv2 gives 50 x 4 x 4 to the flatten: channel 7 is fc1's inputs 7*16 .. 7*16 + 15
    assert slices[("fc1.weight", 1)] == tuple(range(112, 128))
    assert all("fc2.weight" not in s.tensor or s.dim == 1 for g in groups.groups for s in g.slices)


def test_option_a_shortcuts_couple_channels_across_stages():
    # ResNet-20 (16/32/64): the stage-2 shortcut pads 8 zero channels in front of the 16 stage-1
    # channels, so stage-1 channel i is channel i + 8 of stage 2 and i + 8 + 16 of stage 3:
    # 4 + 3 + 3 = 10 producers. Stage-2 channels outside 8..23 continue as stage-3 channels
    # j + 16 (3 + 3 producers); stage-3 channels outside 16..47 have their 3 producers alone;
    # every block's inner conv1 filters (16*3 + 32*3 + 64*3 = 336) are groups of one.
    _, _, groups = groups_of("cifar_resnet20")
    sizes = {}
    for g in groups.groups:
        sizes[len(g.producers)] = sizes.get(len(g.producers), 0) + 1
    assert sizes == {1: 336, 3: 32, 6: 16, 10: 16}
    first = [g for g in groups.groups if ("conv1", 3) in g.producers][0]
    assert ("layers.1.0.conv2", 11) in first.producers and ("layers.2.2.conv2", 27) in first.producers
    assert not any(m == "fc" for g in groups.groups for m, _ in g.producers)


def test_depthwise_channels_join_the_expanding_filter():
    _, _, groups = groups_of("imagenet_mobilenet_v2")
    group = [g for g in groups.groups if ("features.2.conv.0.0", 5) in g.producers][0]
    tensors = {(s.tensor, s.dim): s.index for s in group.slices}
    assert tensors[("features.2.conv.1.0.weight", 0)] == (5,)  # the depthwise filter of channel 5
    assert tensors[("features.2.conv.2.weight", 1)] == (5,)  # the projection's input column
    assert group.producers == (("features.2.conv.0.0", 5),)


def test_zoo_lists_a_models_groups(capsys):
    assert main(["zoo", "cifar_resnet20", "--groups"]) == 0
    out = capsys.readouterr().out
    assert "400 channel groups" in out and "conv1[0] + layers.0.0.conv2[0]" in out


# ------------------------------------------------------------------ exact targets

@pytest.mark.parametrize("target,value", [("compression", 2.0), ("speedup", 3.0), ("sparsity", 0.6)])
@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_the_target_is_reached_and_one_group_fewer_would_not(target, value, scope):
    model, spec, groups = groups_of("cifar_resnet20")
    profile = count_macs(model, spec.input_shape)
    prunable = list(prunable_weights(model, spec.excluded))
    scores = torch.rand(len(groups), generator=torch.Generator().manual_seed(1)).tolist()
    order = removal_order(groups, scores, scope)
    removed = remove_to_target(groups, Counter(groups, profile, prunable), order, target, value)
    again = Counter(groups, profile, prunable)
    for i in removed[:-1]:
        again.remove(groups.groups[i])
    assert again.value(target) < value  # one group fewer: not there yet
    again.remove(groups.groups[removed[-1]])
    assert again.value(target) >= value
    if scope == "layerwise":  # every layer has removed the same fraction, to within one group
        per_layer = {k: v for k, v in groups.of_layer().items() if v}
        fractions = [sum(i in set(removed) for i in members) / len(members) for members in per_layer.values()]
        assert max(fractions) - min(fractions) <= max(1 / len(m) for m in per_layer.values()) + 1e-12


def test_an_unreachable_target_names_the_largest_reachable(tmp_path, capsys):
    path = write_suite(tmp_path / "s.toml", strategies=('"global_l1"',), compressions="[1]", latency=False)
    path.write_text(path.read_text().replace('models = ["lenet_300_100"]', 'models = ["lenet5_caffe"]')
                    .replace("compressions = [1]", 'compressions = [1]\nspeedups = [500]\ngranularities = ["channel"]'))
    assert main(["run", str(path), "--store", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "speedup 500 cannot be reached" in err and "largest reachable is " in err
    assert not (tmp_path / "store").exists()


def test_no_layer_is_ever_emptied():
    model, spec, groups = groups_of("lenet5_caffe")
    masks = CHANNEL.prune(model, resolve_strategy("layerwise_l1"), "sparsity", 0.99, excluded=spec.excluded,
                          batches=[], generator=torch.Generator(), input_shape=spec.input_shape)
    for layer in ("conv1", "conv2", "fc1"):
        assert int(masks[layer].reshape(masks[layer].shape[0], -1).any(dim=1).sum()) >= 1


def test_channel_masks_only_shrink_over_iterative_steps():
    model, spec, _ = groups_of("cifar_resnet20")
    first = CHANNEL.prune(model, resolve_strategy("global_l1"), "speedup", 1.5, excluded=spec.excluded, batches=[],
                          generator=torch.Generator(), input_shape=spec.input_shape)
    second = CHANNEL.prune(model, resolve_strategy("global_l1"), "speedup", 3.0, excluded=spec.excluded, batches=[],
                           generator=torch.Generator(), masks=first, input_shape=spec.input_shape)
    assert second.only_shrinks(first) and set(first.structure[1]) <= set(second.structure[1])


# ------------------------------------------------------------------ compaction == masked model, every family

FAMILIES = ["lenet_300_100", "lenet5_caffe", "cifar_resnet20", "cifar_resnet18", "cifar_vgg16_bn",
            "imagenet_alexnet", "imagenet_vgg16", "imagenet_resnet18", "imagenet_resnet50", "imagenet_mobilenet_v2"]


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_the_compacted_model_computes_the_masked_models_function(name):
    spec = model_spec(name)
    x = torch.randn(2 if spec.input_shape[1] < 100 else 1, *spec.input_shape, generator=torch.Generator().manual_seed(3))
    for speedup in (2.0, 4.0):
        model = realistic(create_model(name), seed=int(speedup))
        masks = CHANNEL.prune(model, resolve_strategy("global_l1"), "speedup", speedup, excluded=spec.excluded,
                              batches=[], generator=torch.Generator(), input_shape=spec.input_shape)
        small = CHANNEL.deployed(model, masks, spec.input_shape, spec.excluded).eval()
        with torch.inference_mode():
            diff = float((model(x) - small(x)).abs().max())
        assert diff <= 1e-5, (name, speedup, diff)
        counted = measure_structure(model, count_macs(model, spec.input_shape))
        assert sum(p.numel() for p in small.parameters()) == counted["params_nonzero"]
        assert count_macs(small, spec.input_shape).macs == counted["macs_nonzero"]
        assert counted["theoretical_speedup"] >= speedup
        assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())


def test_compacting_nothing_changes_nothing():
    model, spec, groups = groups_of("cifar_resnet20")
    small = compact(model, groups, [])
    x = torch.randn(2, *spec.input_shape)
    assert torch.equal(model.eval()(x), small.eval()(x))


# ------------------------------------------------------------------ channel criteria by hand

class TwoLayers(nn.Module):
    """conv(1 -> 3, 1x1) -> BN -> ReLU -> flatten -> linear(3 -> 2): three groups, one filter each."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 1, bias=False)
        self.bn = nn.BatchNorm2d(3)
        self.relu = nn.ReLU()
        self.flat = nn.Flatten()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(self.flat(self.relu(self.bn(self.conv(x)))))


def _context(model, batches=()):
    from shrinkbench.vision.structured.prune import ChannelScoringContext

    groups = dependency_groups(model, (1, 1, 1), ("fc",))
    weights = {"conv": model.conv.weight}
    return ChannelScoringContext(model, weights, list(batches), torch.Generator().manual_seed(0), None, groups), groups


def test_filter_norms_bn_scale_and_fpgm_by_hand():
    model = TwoLayers()
    with torch.no_grad():
        model.conv.weight.copy_(torch.tensor([-3.0, 1.0, 2.0]).reshape(3, 1, 1, 1))
        model.bn.weight.copy_(torch.tensor([0.5, -2.0, 1.0]))
    ctx, groups = _context(model)
    assert len(groups) == 3
    assert resolve_strategy("global_l1").score_groups(ctx).tolist() == [3.0, 1.0, 2.0]
    assert resolve_strategy("global_l2").score_groups(ctx).tolist() == [3.0, 1.0, 2.0]
    assert resolve_strategy("global_bn_scale").score_groups(ctx).tolist() == [0.5, 2.0, 1.0]
    # FPGM: filters -3, 1, 2: distances |-3-1| + |-3-2| = 9, 4 + 1 = 5, 5 + 1 = 6
    assert resolve_strategy("global_fpgm").score_groups(ctx).tolist() == pytest.approx([9.0, 5.0, 6.0])


def test_taylor_is_the_squared_sum_of_g_times_w_over_the_producing_parameters():
    model = TwoLayers().eval()
    x, y = torch.randn(4, 1, 1, 1, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 1, 0])
    ctx, groups = _context(model, [(x, y)])
    got = resolve_strategy("global_taylor").score_groups(ctx)
    loss = nn.functional.cross_entropy(model(x), y)
    gw, gg, gb = torch.autograd.grad(loss, [model.conv.weight, model.bn.weight, model.bn.bias])
    want = (gw.flatten() * model.conv.weight.flatten() + gg * model.bn.weight + gb * model.bn.bias) ** 2
    assert got.tolist() == pytest.approx(want.double().tolist(), rel=1e-6)


def test_random_channels_come_from_the_run_generator():
    model = TwoLayers()
    a = resolve_strategy("random_channels").score_groups(_context(model)[0])
    b = resolve_strategy("random_channels").score_groups(_context(model)[0])
    assert torch.equal(a, b) and len(set(a.tolist())) == 3


def test_bn_scale_on_a_model_without_batchnorm_is_refused_before_running(tmp_path, capsys):
    path = write_suite(tmp_path / "s.toml", strategies=('"global_bn_scale"',), compressions="[1, 2]", latency=False)
    path.write_text(path.read_text().replace("compressions = [1, 2]", 'compressions = [1, 2]\ngranularities = ["channel"]'))
    assert main(["run", str(path), "--store", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "have no BatchNorm" in err


USER_CHANNEL = '''
from shrinkbench.vision.structured.criteria import ChannelStrategy


class MeanAbsFilter(ChannelStrategy):
    """My channel criterion: the mean |w| of each filter."""
    scope = "layerwise"

    def score(self, ctx):   # one score per output channel of every prunable layer
        return {name: w.detach().abs().flatten(1).mean(1) for name, w in ctx.weights.items()}
'''


def test_a_users_channel_criterion_in_a_few_lines_runs(tmp_path):
    (tmp_path / "mine.py").write_text(USER_CHANNEL)
    model, spec, _ = groups_of("lenet5_caffe")
    masks = CHANNEL.prune(model, resolve_strategy(f"{tmp_path / 'mine.py'}:MeanAbsFilter"), "speedup", 2.0,
                          excluded=spec.excluded, batches=[], generator=torch.Generator(), input_shape=spec.input_shape)
    assert measure_structure(model, count_macs(model, spec.input_shape))["theoretical_speedup"] >= 2.0
    assert len(masks.structure[1]) > 0


@pytest.mark.parametrize("body,message", [
    ("return {n: w.detach().abs().flatten() for n, w in ctx.weights.items()}", "expected (20,)"),
    ("return {n: w.detach().abs().flatten(1).sum(1) * float('nan') for n, w in ctx.weights.items()}", "non-finite"),
])
def test_a_users_bad_channel_scores_are_one_line_before_the_sweep(tmp_path, capsys, body, message):
    (tmp_path / "bad.py").write_text("from shrinkbench.vision.structured.criteria import ChannelStrategy\n"
                                     f"class Bad(ChannelStrategy):\n    def score(self, ctx):\n        {body}\n")
    path = write_suite(tmp_path / "s.toml", strategies=(f'"{tmp_path / "bad.py"}:Bad"',), compressions="[1]",
                       latency=False)
    path.write_text(path.read_text().replace('models = ["lenet_300_100"]', 'models = ["lenet5_caffe"]')
                    .replace("compressions = [1]", 'compressions = [1]\nspeedups = [2]\ngranularities = ["channel"]'))
    assert main(["run", str(path), "--store", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "store").exists()


def test_a_weight_strategy_at_channel_granularity_is_refused_in_one_line(tmp_path, capsys):
    assert main(["prune", "--model", "lenet5_caffe", "--dataset", "digits", "--strategy", "global_magnitude",
                 "--compression", "2", "--granularity", "channel", "--store", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "scores for granularity weight, nm, not 'channel'" in err


# ------------------------------------------------------------------ N:M

def test_nm_keeps_exactly_n_of_every_m_with_ties_to_the_lower_index():
    scores = torch.tensor([[4.0, 1.0, 3.0, 2.0, 5.0, 5.0, 5.0, 5.0]])
    assert nm_mask(scores, 2, 4).tolist() == [[True, False, True, False, True, True, False, False]]
    alive = torch.tensor([[False, True, True, True, True, True, True, True]])
    assert nm_mask(scores, 2, 4, alive).tolist() == [[False, False, True, True, True, True, False, False]]


@pytest.mark.parametrize("pattern,model_name", [("2:4", "lenet_300_100"), ("1:4", "lenet_300_100"),
                                                ("4:8", "cifar_resnet20")])
def test_nm_granularity_gives_the_exact_structure_on_a_real_model(pattern, model_name):
    n, m = map(int, pattern.split(":"))
    model = create_model(model_name)
    excluded = model_spec(model_name).excluded + (("conv1",) if model_name == "cifar_resnet20" else ())  # 3 x 3 x 3
    masks = granularity(pattern).prune(model, resolve_strategy("global_magnitude"), "sparsity", 1 - n / m,
                                       excluded=excluded, batches=[], generator=torch.Generator())
    for name, mask in masks.items():
        assert (mask.reshape(-1, m).sum(dim=1) == n).all(), name
        weight = dict(model.named_modules())[name].weight
        assert (weight[~mask] == 0).all()


def test_nm_needs_a_multiple_of_m():
    model = create_model("lenet5_caffe")  # conv1 has 1 x 5 x 5 = 25 inputs per filter
    with pytest.raises(ConfigError, match="not a multiple of M=4"):
        granularity("2:4").prune(model, resolve_strategy("global_magnitude"), "sparsity", 0.5,
                                 excluded=("fc2",), batches=[], generator=torch.Generator())
    with pytest.raises(ConfigError, match="N:M needs 1 <= N < M"):
        granularity("4:2")


# ------------------------------------------------------------------ weight masks at a speedup target

@pytest.mark.parametrize("scope", ["global_magnitude", "layerwise_magnitude"])
def test_weight_masks_reach_a_speedup_target(scope):
    spec = model_spec("lenet5_caffe")
    model = create_model("lenet5_caffe")
    granularity("weight").prune(model, resolve_strategy(scope), "speedup", 3.0, excluded=spec.excluded, batches=[],
                                generator=torch.Generator(), input_shape=spec.input_shape)
    got = measure_structure(model, count_macs(model, spec.input_shape))["theoretical_speedup"]
    assert 3.0 <= got < 3.0 * 1.001


# ------------------------------------------------------------------ a whole channel run, saved and loaded

def test_a_channel_run_is_compacted_measured_saved_and_loads_back(tmp_path):
    from shrinkbench.vision.structured.saving import load_pruned

    store = tmp_path / "store"
    config = tmp_path / "c.toml"
    config.write_text('granularity = "channel"\ntarget = "speedup"\n[base.train]\nepochs = 1\nbatch_size = 64\n'
                      '[finetune]\nepochs = 1\nbatch_size = 64\n[measure]\nlatency_batch_sizes = [1, 8]\n'
                      'latency_repeats = 3\nlatency_warmup = 1\n')
    assert main(["prune", "--model", "lenet5_caffe", "--dataset", "digits", "--strategy", "global_l1",
                 "--compression", "2", "--store", str(store), "--config", str(config), "--save-pruned",
                 "--threads", "1"]) == 0
    (record,) = [json.loads(p.read_text()) for p in (store / "runs").glob("*.json")
                 if json.loads(p.read_text())["config"]["strategy"] == "global_l1"]
    deployed = record["deployed"]
    assert deployed["kind"] == "compacted" and deployed["max_abs_logit_diff"] <= 1e-5
    values = {(m["stage"], m["split"], m["metric"]): m["value"] for m in record["metrics"]}
    assert deployed["params"] == values[("post", "none", "params_nonzero")]
    assert deployed["macs"] == values[("post", "none", "macs_nonzero")]
    assert values[("post", "none", "theoretical_speedup")] >= 2.0
    assert math.isfinite(values[("post", "none", "measured_speedup_b8")])
    model = load_pruned(store, record["run_id"])
    assert sum(p.numel() for p in model.parameters()) == deployed["params"]
    assert not list((store / "pruned").glob(".tmp-*"))


def test_a_save_cut_off_midway_leaves_no_pruned_file_and_no_record(tmp_path, monkeypatch):
    from pathlib import Path

    import shrinkbench.vision.structured.saving as saving
    from shrinkbench.vision.runner import execute
    from shrinkbench.core.store import Store
    from shrinkbench.vision.validate import validate_config

    from runner_helpers import tiny_config

    class CutOff(type(Path())):
        def replace(self, target):  # the moment a kill would hit: bytes written, not yet in place
            raise OSError("killed while saving")

    original = saving.temporary_path
    monkeypatch.setattr(saving, "temporary_path", lambda path: CutOff(original(path)))
    cfg = validate_config(tiny_config("global_l1", 2.0, model="lenet5_caffe", granularity="channel", target="speedup"))
    store = Store(tmp_path / "store")
    with pytest.raises(OSError, match="killed while saving"):
        execute(cfg, store, "cpu", save_pruned=True)
    assert list((store.root / "pruned").glob("*")) == [], "neither a partial weights file nor a temporary one"
    assert not store.runs.exists(), "the record comes after the pruned model"
