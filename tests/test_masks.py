"""MaskSet: pruned weights stay exactly zero through fine-tuning, and masks only shrink.

The optimizers are PyTorch's own (SGD with Nesterov momentum and weight decay, Adam with
L2 weight decay, AdamW); a run without masking is the control showing that these tests
fail when the masks are not enforced.
"""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from shrinkbench.core.errors import CheckpointError, ConfigError
from shrinkbench.vision.models import create_model, model_spec
from shrinkbench.vision.pruning import MaskSet, prunable_weights, prune, resolve_strategy

OPTIMIZERS = {
    "sgd_nesterov": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=5e-4,
                                              nesterov=True),
    "adam_l2": lambda p: torch.optim.Adam(p, lr=1e-3, weight_decay=1e-3),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=1e-2),
}
STATE_KEYS = {"sgd_nesterov": ("momentum_buffer",), "adam_l2": ("exp_avg", "exp_avg_sq"),
              "adamw": ("exp_avg", "exp_avg_sq")}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)  # conftest restores the previous setting


def pruned(name: str, c: float = 5.0):
    model = create_model(name, seed=0)
    masks = prune(model, resolve_strategy("global_magnitude"), c,
                  excluded=model_spec(name).excluded, batches=[], generator=torch.Generator())
    return model, masks


def train(model, optimizer, steps, masks=None, grads=True, weights=True):
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        x, y = torch.randn(8, 1, 28, 28, generator=g), torch.randint(0, 10, (8,), generator=g)
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        if masks is not None and grads:
            masks.mask_gradients()
        optimizer.step()
        if masks is not None and weights:
            masks.mask_weights()


def pruned_values(model, masks):
    return torch.cat([model.get_submodule(n).weight.detach()[~m] for n, m in masks.items()])


@pytest.mark.parametrize("name", ["lenet5_caffe", "cifar_resnet20_1x28x28"])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_zeros_and_optimizer_state_survive_fine_tuning(name, opt):
    model, masks = pruned(name)
    kept_before = {n: model.get_submodule(n).weight.detach()[m].clone() for n, m in masks.items()}
    optimizer = OPTIMIZERS[opt](model.parameters())
    train(model, optimizer, 6, masks.attach(model))
    assert bool((pruned_values(model, masks) == 0).all())
    for n, m in masks.items():
        weight = model.get_submodule(n).weight
        assert not torch.equal(weight.detach()[m], kept_before[n])  # it did train
        for key in STATE_KEYS[opt]:
            assert bool((optimizer.state[weight][key][~m] == 0).all())


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_gradient_masking_alone_keeps_zeros(opt):
    """The docstring's claim: with gradients masked, no optimizer moves a zero weight."""
    model, masks = pruned("lenet5_caffe")
    train(model, OPTIMIZERS[opt](model.parameters()), 6, masks.attach(model), weights=False)
    assert bool((pruned_values(model, masks) == 0).all())


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_without_masks_pruned_weights_revive(opt):
    model, masks = pruned("lenet5_caffe")
    train(model, OPTIMIZERS[opt](model.parameters()), 3)
    assert bool((pruned_values(model, masks) != 0).any())


def test_optimizer_state_from_dense_training_is_cleared():
    model = create_model("lenet5_caffe", seed=0)
    optimizer = OPTIMIZERS["sgd_nesterov"](model.parameters())
    train(model, optimizer, 3)  # dense: momentum everywhere
    masks = prune(model, resolve_strategy("layerwise_magnitude"), 5, excluded=("fc2",),
                  batches=[], generator=torch.Generator()).attach(model)
    masks.mask_optimizer_state(optimizer)
    for n, m in masks.items():
        assert bool((optimizer.state[model.get_submodule(n).weight]["momentum_buffer"][~m] == 0).all())
    train(model, optimizer, 3, masks, weights=False)
    assert bool((pruned_values(model, masks) == 0).all())


# ---- the MaskSet object ---------------------------------------------------------------------

def small():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    masks = MaskSet({"0": torch.tensor([[1, 0, 1, 1], [0, 0, 0, 1], [1, 1, 1, 1]], dtype=torch.bool),
                     "2": torch.tensor([[1, 0, 0], [0, 0, 0]], dtype=torch.bool)})
    return model, masks


def test_counts_by_hand():
    _, masks = small()
    assert masks.kept() == 9 and masks.total() == 18
    assert masks.density() == {"0": 8 / 12, "2": 1 / 6}
    assert masks.names() == ["0", "2"] and len(masks) == 2 and "0" in masks


def test_apply_sets_exact_zeros_even_over_nan_and_leaves_biases():
    model, masks = small()
    with torch.no_grad():
        model[0].weight[1, 0] = float("nan")
    bias = model[0].bias.detach().clone()
    masks.apply(model)
    assert model[0].weight[1, 0].item() == 0 and int((model[0].weight != 0).sum()) == 8
    assert torch.equal(model[0].bias, bias)
    assert MaskSet.from_weights(prunable_weights(model, ())) == masks


def test_masking_in_float64_and_with_unused_layers():
    model, masks = small()
    model = model.double()
    masks.attach(model)
    model[0].weight.grad = torch.ones_like(model[0].weight)  # layer "2" has no gradient
    masks.mask_gradients()
    assert torch.equal(model[0].weight.grad, masks["0"].double())
    masks.mask_weights()
    assert bool((model[2].weight[~masks["2"]] == 0).all())


def test_layers_that_keep_everything_are_left_alone():
    model, masks = small()
    masks = MaskSet({"0": torch.ones(3, 4, dtype=torch.bool), "2": masks["2"]}).attach(model)
    for p in (model[0].weight, model[2].weight):
        p.grad = torch.full_like(p, 2.0)
    masks.mask_gradients()
    masks.mask_weights()
    assert bool((model[0].weight.grad == 2).all()) and bool((model[0].weight != 0).all())
    assert torch.equal(model[2].weight.grad, 2 * masks["2"].float())
    MaskSet.dense(prunable_weights(model, ())).attach(model).mask_gradients()  # nothing to do
    assert bool((model[0].weight.grad == 2).all())


def test_per_step_masking_needs_attach():
    _, masks = small()
    with pytest.raises(RuntimeError, match="attach"):
        masks.mask_gradients()


def test_state_dict_round_trip_through_a_weights_only_file(tmp_path):
    _, masks = small()
    torch.save(masks.state_dict(), tmp_path / "masks.pt")
    loaded = MaskSet.from_state_dict(torch.load(tmp_path / "masks.pt", weights_only=True))
    assert loaded == masks and loaded is not masks
    other = MaskSet({"0": ~masks["0"], "2": masks["2"]})
    other.load_state_dict(masks.state_dict())
    assert other == masks


@pytest.mark.parametrize("state,message", [
    ({"0": torch.ones(3, 4, dtype=torch.bool)}, "cover layers"),
    ({"0": torch.ones(3, 4, dtype=torch.bool), "2": torch.ones(2, 2, dtype=torch.bool)}, "shape"),
    ({"0": torch.ones(3, 4), "2": torch.ones(2, 3, dtype=torch.bool)}, "bool"),
])
def test_mismatched_saved_masks_are_checkpoint_errors(state, message):
    _, masks = small()
    with pytest.raises(CheckpointError, match=message):
        masks.load_state_dict(state)


def test_masks_must_be_bool_and_match_the_model():
    with pytest.raises(ConfigError, match="bool"):
        MaskSet({"0": torch.ones(3, 4)})
    model, _ = small()
    with pytest.raises(CheckpointError, match="no such layer"):
        MaskSet({"5": torch.ones(3, 4, dtype=torch.bool)}).apply(model)
    with pytest.raises(CheckpointError, match="shape"):
        MaskSet({"0": torch.ones(4, 3, dtype=torch.bool)}).attach(model)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.booleans(), min_size=12, max_size=12),
       st.lists(st.booleans(), min_size=12, max_size=12))
def test_only_shrinks_means_subset(a, b):
    first = MaskSet({"w": torch.tensor(a).reshape(3, 4)})
    second = MaskSet({"w": torch.tensor(b).reshape(3, 4)})
    is_subset = all(y <= x for x, y in zip(a, b))
    assert second.only_shrinks(first) == is_subset
    both = MaskSet({"w": first["w"] & second["w"]})
    assert both.only_shrinks(first) and both.only_shrinks(second)
    assert (first == second) == (a == b)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_the_training_loop_keeps_every_pruned_weight_zero_after_every_step(optimizer):
    """The loop masks gradients each step and re-zeroes weights once per epoch: zeros must
    hold after each step already, not only at the epoch's end."""
    from shrinkbench.vision.config import TrainConfig
    from shrinkbench.vision.training import train as train_loop

    model, masks = pruned("lenet5_caffe")
    masks.attach(model)
    data = torch.Generator().manual_seed(1)
    batches = [(torch.randn(8, 1, 28, 28, generator=data), torch.randint(0, 10, (8,), generator=data))
               for _ in range(5)]
    seen = []

    def check(step, total):
        seen.append(bool((pruned_values(model, masks) == 0).all()))

    cfg = TrainConfig(epochs=2, optimizer=optimizer, lr=0.01, weight_decay=1e-3, batch_size=8)
    train_loop(model, lambda g: batches, cfg, torch.Generator().manual_seed(0), masks=masks, step_hook=check)
    assert len(seen) == 10 and all(seen)


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_gradient_hooks_give_the_same_numbers_as_masking_after_backward(opt):
    """hook_gradients (grad *= mask as backward writes it) and mask_gradients (after backward):
    every weight and optimizer state equal bit for bit after 6 steps; no hook left behind."""
    import copy

    model, masks = pruned("lenet5_caffe")
    twin = copy.deepcopy(model)
    optimizer, twin_optimizer = OPTIMIZERS[opt](model.parameters()), OPTIMIZERS[opt](twin.parameters())
    train(model, optimizer, 6, masks.attach(model), weights=False)
    twin_masks = MaskSet.from_state_dict(masks.state_dict()).attach(twin)
    hooks = twin_masks.hook_gradients()
    train(twin, twin_optimizer, 6, None)
    hooks.remove()
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        assert torch.equal(p, q), name
        for key, value in optimizer.state[p].items():
            assert torch.equal(value, twin_optimizer.state[q][key]), (name, key)
    assert all(not getattr(q, "_post_accumulate_grad_hooks", None) for q in twin.parameters())
    train(twin, twin_optimizer, 1, None)  # without hooks the pruned positions move: the control
    assert not bool((pruned_values(twin, masks) == 0).all())


def test_the_training_loop_swaps_the_hooks_when_gradual_pruning_changes_the_masks():
    """A step_hook's new masks replace the old masks' hooks (one hook per weight at any time),
    the new masks hold from then on, and none is left once training ends."""
    from shrinkbench.vision.config import TrainConfig
    from shrinkbench.vision.training import train as train_loop

    model, masks = pruned("lenet5_caffe")
    tighter = prune(model, resolve_strategy("global_magnitude"), 8.0, excluded=model_spec("lenet5_caffe").excluded,
                    batches=[], generator=torch.Generator())
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(16, 1, 28, 28, generator=g), torch.randint(0, 10, (16,), generator=g)) for _ in range(4)]
    seen = []

    def step_hook(step, total):
        seen.append(max(len(getattr(p, "_post_accumulate_grad_hooks", None) or {}) for p in model.parameters()))
        return tighter if step == 2 else None

    cfg = TrainConfig(epochs=1, lr=0.05, momentum=0.9, optimizer="sgd")
    train_loop(model, lambda gen: data, cfg, torch.Generator().manual_seed(0), masks=masks, step_hook=step_hook)
    assert seen == [1, 1, 1, 1]
    assert bool((pruned_values(model, tighter) == 0).all())
    assert all(not getattr(p, "_post_accumulate_grad_hooks", None) for p in model.parameters())
