"""Channel counts rounded to multiples (`round_to`, shrinkbench.vision.structured.select):
a hand-computed small case, the multiples and the target on zoo models, the identity kept at
the default, and the one-line refusals."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from shrinkbench.cli import main
from shrinkbench.core.errors import CompressionError, ConfigError
from shrinkbench.core.macs import count_macs
from shrinkbench.vision.models import create_model, model_spec
from shrinkbench.vision.pruning import prunable_weights, resolve_strategy
from shrinkbench.vision.pruning.granularity import granularity
from shrinkbench.vision.structured.counting import Counter
from shrinkbench.vision.structured.graph import dependency_groups
from shrinkbench.vision.structured.select import block_size, remove_to_target, removal_order

from runner_helpers import tiny_config, write_suite

CHANNEL = granularity("channel")


def small():
    """conv1 1->10 (3x3, padding 1) -> conv2 10->12 -> flatten -> fc 12*16 -> 2, on 1x4x4:
    prunable weights 90 + 1080 + 384 = 1554."""
    model = nn.Sequential(nn.Conv2d(1, 10, 3, padding=1), nn.ReLU(), nn.Conv2d(10, 12, 3, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(12 * 16, 2))
    groups = dependency_groups(model, (1, 4, 4), ())
    counter = Counter(groups, count_macs(model, (1, 4, 4)), list(prunable_weights(model, ())))
    return model, groups, counter


def kept_weights(c1: int, c2: int) -> int:
    """Prunable weights by hand: conv1 c1 x 1 x 9, conv2 c2 x c1 x 9, fc 2 x c2 x 16."""
    return c1 * 9 + c2 * c1 * 9 + 2 * c2 * 16


def test_block_sizes_by_hand():
    assert [block_size(k, 4) for k in (10, 8, 5, 4, 3)] == [2, 4, 1, 0, 0]
    assert [block_size(k, 8) for k in (255, 256, 16, 9, 8)] == [7, 8, 8, 1, 0]


def test_hand_computed_small_case():
    _, groups, counter = small()
    layers = groups.of_layer()
    c1, c2 = layers["0"], layers["2"]
    assert len(c1) == 10 and len(c2) == 12 and counter.prunable_total == kept_weights(10, 12) == 1554
    order = c1 + c2  # conv1's channels first, then conv2's
    # unrounded: conv1 keeps 7 (sparsity 1 - 1203/1554 = 0.2259 >= 0.2; keeping 8 gives 0.1506)
    removed = remove_to_target(groups, counter, order, "sparsity", 0.2)
    assert removed == c1[:3] and counter.prunable_kept == kept_weights(7, 12) == 1203
    # round_to 4: conv1 10 -> 8 (block of 2) gives 0.1506 < 0.2, then 8 -> 4 (block of 4): 852 kept
    _, groups, counter = small()
    removed = remove_to_target(groups, counter, order, "sparsity", 0.2, round_to=4)
    assert removed == c1[:6] and counter.prunable_kept == kept_weights(4, 12) == 852
    # 0.5: conv1 cannot go below 4 (its last 4 wait for nothing), conv2 12 -> 8: 580 kept
    _, groups, counter = small()
    removed = remove_to_target(groups, counter, order, "sparsity", 0.5, round_to=4)
    assert removed == c1[:6] + c2[:4] and counter.prunable_kept == kept_weights(4, 8) == 580
    # beyond every layer at 4 channels: one line naming what it reached (conv1 4, conv2 4)
    _, groups, counter = small()
    with pytest.raises(CompressionError, match="blocks of 4"):
        remove_to_target(groups, counter, order, "sparsity", 0.9, round_to=4)
    assert counter.prunable_kept == kept_weights(4, 4)


@pytest.mark.parametrize("name,target,value,scope", [("cifar_vgg16_bn", "speedup", 4.0, "layerwise"),
                                                     ("cifar_vgg16_bn", "compression", 8.0, "global"),
                                                     ("cifar_resnet20", "speedup", 1.5, "layerwise")])
@pytest.mark.parametrize("r", [8, 16])
def test_counts_are_multiples_and_the_target_is_met_within_one_block(name, target, value, scope, r):
    model = create_model(name)
    spec = model_spec(name)
    groups = dependency_groups(model, spec.input_shape, spec.excluded)
    profile, prunable = count_macs(model, spec.input_shape), list(prunable_weights(model, spec.excluded))
    scores = torch.rand(len(groups), generator=torch.Generator().manual_seed(3)).tolist()
    order = removal_order(groups, scores, scope)
    counter = Counter(groups, profile, prunable)
    removed = remove_to_target(groups, counter, order, target, value, round_to=r)
    assert counter.value(target) >= value
    gone = set(removed)
    for layer, members in groups.of_layer().items():
        kept = sum(i not in gone for i in members)
        if kept != len(members):
            assert kept % r == 0 and kept >= r, (layer, kept)
    # the last block is all of one layer; without it the target is not reached
    last_layer = groups.groups[removed[-1]].layer
    block = []
    for i in reversed(removed):
        if groups.groups[i].layer != last_layer:
            break
        block.append(i)
    again = Counter(groups, profile, prunable)
    for i in removed[:len(removed) - len(block)]:
        again.remove(groups.groups[i])
    before = sum(i not in set(removed[:len(removed) - len(block)]) for i in groups.of_layer()[last_layer])
    assert len(block) >= block_size(before, r) > 0
    trimmed = Counter(groups, profile, prunable)
    for i in removed[:len(removed) - block_size(before, r)]:
        trimmed.remove(groups.groups[i])
    assert trimmed.value(target) < value


def test_a_pruned_and_compacted_vgg_has_the_rounded_widths():
    spec = model_spec("cifar_vgg16_bn")
    model = create_model("cifar_vgg16_bn").eval()
    masks = CHANNEL.prune(model, resolve_strategy("layerwise_l1"), "speedup", 4.0, excluded=spec.excluded,
                          batches=[], generator=torch.Generator(), input_shape=spec.input_shape, round_to=8)
    small_model = CHANNEL.deployed(model, masks, spec.input_shape, spec.excluded)
    widths = [m.out_channels for m in small_model.modules() if isinstance(m, nn.Conv2d)]
    assert all(w % 8 == 0 for w in widths)
    dense = count_macs(create_model("cifar_vgg16_bn"), spec.input_shape).macs
    assert dense / count_macs(small_model, spec.input_shape).macs >= 4.0


def test_identity_keeps_its_run_id_at_the_default_and_changes_with_round_to():
    cfg = tiny_config(granularity="channel", strategy="global_l1", model="lenet5_caffe", compression=2.0)
    assert "round_to" not in cfg.identity()
    assert cfg.replace(round_to=1).run_id == cfg.run_id
    assert cfg.replace(round_to=8).run_id != cfg.run_id
    assert cfg.replace(round_to=8).identity()["round_to"] == 8
    assert tiny_config(compression=1.0, granularity="channel").round_to == 1  # the dense run


@pytest.mark.parametrize("changes,message", [({"round_to": 8}, "needs granularity channel, not 'weight'"),
                                             ({"round_to": 0}, "round_to must be a whole number >= 1"),
                                             ({"round_to": 8, "granularity": "2:4", "target": "sparsity",
                                               "compression": 0.5}, "needs granularity channel, not '2:4'")])
def test_round_to_where_it_cannot_act_is_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config().replace(**changes)


def test_cli_refuses_round_to_without_channels_in_one_line(tmp_path, capsys):
    assert main(["prune", "--model", "lenet5_caffe", "--dataset", "digits", "--strategy", "global_magnitude",
                 "--compression", "2", "--round-to", "8", "--store", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs granularity channel" in err
    assert not (tmp_path / "store").exists()


def test_cli_names_the_largest_reachable_with_rounding(tmp_path, capsys):
    assert main(["prune", "--model", "lenet5_caffe", "--dataset", "digits", "--strategy", "global_l1",
                 "--compression", "20", "--target", "speedup", "--granularity", "channel", "--round-to", "16",
                 "--store", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "largest reachable is" in err and "16 channels (round_to)" in err


def test_suite_round_to_applies_to_channel_runs_and_is_refused_without_them(tmp_path, capsys):
    from shrinkbench.core.suite import load_suite

    path = write_suite(tmp_path / "s.toml", strategies=('"global_l1"', '"global_magnitude"'), compressions="[2]",
                       latency=False)
    text = path.read_text().replace('models = ["lenet_300_100"]', 'models = ["lenet5_caffe"]')
    path.write_text(text.replace("compressions = [2]", 'compressions = [2]\ngranularities = ["weight", "channel"]\n'
                                                       'round_to = 4'))
    runs = load_suite(str(path)).configs
    assert {(c.granularity, c.round_to) for c in runs} == {("weight", 1), ("channel", 4)}
    path.write_text(text.replace("compressions = [2]", "compressions = [2]\nround_to = 4"))
    with pytest.raises(ConfigError, match="needs \"channel\" in granularities"):
        load_suite(str(path))


def test_the_analysis_names_a_rounded_channel_method_apart():
    from shrinkbench.analysis.naming import training_run_tags

    cfg = tiny_config(granularity="channel", strategy="global_l1", model="lenet5_caffe", compression=2.0)
    assert training_run_tags(cfg.to_dict())[0] == "channel"
    assert training_run_tags(cfg.replace(round_to=8).to_dict())[0] == "channel, multiples of 8"
    assert cfg.replace(round_to=8).record_names()["method_tags"][0] == "channel, multiples of 8"
