"""Pruning: prunable weights, exact keep counts, strategies, selection and user strategies.

References are independent: keep counts against the definition |K - (params/c - non_prunable)|
<= 1/2 and measured nonzeros; tie-breaking against Python's stable `sorted`; apportionment
against |k_l - f n_l| < 1; gradient and activation scores against numpy hand computations.
"""
import sys
import textwrap

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from shrinkbench.core.errors import CompressionError, ConfigError, StrategyError, UnknownNameError
from shrinkbench.core.metrics.structure import params, params_nonzero
from shrinkbench.vision.models import create_model, model_spec
from shrinkbench.vision.pruning import (STRATEGIES, ScoringContext, Strategy, apportion,
                                 keep_count, list_strategies, max_compression, prunable_weights,
                                 prune, register_strategy, resolve_strategy, select,
                                 top_k_mask)


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: one thread is faster and immune to a busy machine (conftest restores)."""
    torch.set_num_threads(1)


BUILTINS = ["global_magnitude", "layerwise_magnitude", "global_gradient", "layerwise_gradient",
            "global_activation", "layerwise_activation", "random"]


class GroupedNet(nn.Module):
    """Grouped, depthwise and transposed convolutions, BN, and a Linear; `head` is excluded."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 32, 3)
        self.bn = nn.BatchNorm2d(32)
        self.grouped = nn.Conv2d(32, 48, 3, groups=4, bias=False)
        self.depthwise = nn.Conv2d(48, 48, 3, groups=48)
        self.up = nn.ConvTranspose2d(48, 24, 2, stride=2, groups=3, bias=False)
        self.fc = nn.Linear(24, 32, bias=False)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = torch.relu(self.depthwise(torch.relu(self.grouped(x))))
        x = self.up(x).mean(dim=(2, 3))
        return self.head(torch.relu(self.fc(x)))


def build(name: str, seed: int = 0) -> tuple[nn.Module, tuple[str, ...]]:
    if name == "grouped":
        torch.manual_seed(seed)
        return GroupedNet(), ("head",)
    return create_model(name, seed=seed), model_spec(name).excluded


MODELS = ["lenet_300_100", "lenet5_caffe", "cifar_resnet20_1x28x28", "grouped"]


def score_batches(seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(12, 1, 28, 28, generator=g), torch.randint(0, 10, (12,), generator=g)),
            (torch.randn(5, 1, 28, 28, generator=g), torch.randint(0, 10, (5,), generator=g))]


BATCHES = score_batches()


def run_prune(model, excluded, strategy, c, seed=0, masks=None):
    return prune(model, resolve_strategy(strategy), c, excluded=excluded, batches=BATCHES,
                 generator=torch.Generator().manual_seed(seed), masks=masks)


def fill_non_prunable_zeros(model, weights):
    """Make every non-prunable parameter nonzero (BN biases start at 0)."""
    prunable_ids = {id(w) for w in weights.values()}
    with torch.no_grad():
        for p in model.parameters():
            if id(p) not in prunable_ids:
                p.add_(0.01).masked_fill_(p == 0, 0.02)


# ---- prunable weights and keep counts ------------------------------------------------------

def test_prunable_weights_are_conv_and_linear_weights_minus_excluded():
    model, excluded = build("grouped")
    weights = prunable_weights(model, excluded)
    assert list(weights) == ["conv", "grouped", "depthwise", "up", "fc"]
    assert all(weights[n] is model.get_submodule(n).weight for n in weights)
    resnet = create_model("cifar_resnet20_1x28x28")
    names = list(prunable_weights(resnet, ("fc",)))
    assert len(names) == 19 and "fc" not in names and all("conv" in n for n in names)


def test_unknown_excluded_layer_is_a_config_error_listing_layers():
    model, _ = build("lenet_300_100")
    with pytest.raises(ConfigError, match=r"'fc4'.*did you mean 'fc3'.*fc1, fc2, fc3") as info:
        prunable_weights(model, ("fc4",))
    assert "\n" not in str(info.value)


def test_max_compression_by_hand_for_lenet_300_100():
    model, excluded = build("lenet_300_100")
    weights = prunable_weights(model, excluded)
    # prunable: 784*300 + 300*100; non-prunable: biases 300+100+10 and fc3's 100*10 weights
    non_prunable = 300 + 100 + 10 + 1000
    assert params(model) == 266_610
    assert max_compression(model, weights) == 266_610 / (non_prunable + 1)
    assert keep_count(model, weights, 266_610 / (non_prunable + 1)) == 1


@pytest.mark.parametrize("bad", [0.5, 0.999, -3, float("nan"), float("inf"), "8", True])
def test_compression_below_one_or_not_finite_is_an_error(bad):
    model, excluded = build("lenet5_caffe")
    with pytest.raises(CompressionError):
        keep_count(model, prunable_weights(model, excluded), bad)


def test_unreachable_compression_names_the_largest_reachable():
    model, excluded = build("lenet5_caffe")
    weights = prunable_weights(model, excluded)
    largest = max_compression(model, weights)
    with pytest.raises(CompressionError) as info:
        keep_count(model, weights, largest * 1.001)
    message = str(info.value)
    assert "\n" not in message and "largest reachable" in message
    stated = float(message.split("largest reachable is ")[1].split()[0])
    assert largest * (1 - 1e-5) <= stated <= largest  # printed rounded down: still reachable
    assert keep_count(model, weights, stated) == 1
    with pytest.raises(CompressionError, match="largest reachable"):
        run_prune(model, excluded, "random", 1e9)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("strategy", BUILTINS)
@pytest.mark.parametrize("c", [1.37, 4, 23.5])
def test_exactly_the_kept_count(name, strategy, c):
    model, excluded = build(name)
    weights = prunable_weights(model, excluded)
    if c > max_compression(model, weights):
        c = max_compression(model, weights) * 0.9
    fill_non_prunable_zeros(model, weights)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    total = params(model)
    prunable = sum(w.numel() for w in weights.values())
    masks = run_prune(model, excluded, strategy, c)
    k = masks.kept()
    assert abs(k - (total / c - (total - prunable))) <= 0.5  # the definition of K
    assert sum(int((w != 0).sum()) for w in weights.values()) == k
    assert params_nonzero(model) == total - (prunable - k)
    for n, p in model.named_parameters():  # kept weights unchanged, pruned ones exactly 0
        layer = n.rsplit(".", 1)[0]
        if n.endswith("weight") and layer in masks:
            assert torch.equal(p[masks[layer]], before[n][masks[layer]])
            assert bool((p[~masks[layer]] == 0).all())
        else:
            assert torch.equal(p, before[n])  # biases, BN, excluded layers untouched


@pytest.mark.parametrize("strategy", BUILTINS)
def test_compression_one_keeps_everything(strategy):
    model, excluded = build("grouped")
    masks = run_prune(model, excluded, strategy, 1)
    assert masks.kept() == masks.total() == sum(w.numel() for w in
                                                 prunable_weights(model, excluded).values())


def test_excluded_layers_and_biases_are_never_pruned():
    model, excluded = build("lenet5_caffe")
    head = model.fc2.weight.detach().clone()
    masks = run_prune(model, excluded, "global_magnitude",
                      max_compression(model, prunable_weights(model, excluded)))
    assert masks.kept() == 1 and "fc2" not in masks
    assert torch.equal(model.fc2.weight, head)
    assert all(bool((m.bias != 0).all()) for m in (model.conv1, model.conv2, model.fc1, model.fc2))


# ---- iterative pruning, determinism, ties --------------------------------------------------

@pytest.mark.parametrize("strategy", BUILTINS)
@pytest.mark.parametrize("name", ["lenet5_caffe", "grouped"])
def test_masks_only_shrink_under_iterative_pruning(name, strategy):
    model, excluded = build(name)
    weights = prunable_weights(model, excluded)
    masks = None
    for c in (2, 4, 8):
        new = run_prune(model, excluded, strategy, c, masks=masks)
        assert new.kept() == keep_count(model, weights, c)
        if masks is not None:
            assert new.only_shrinks(masks) and not masks.only_shrinks(new)
        masks = new
    with pytest.raises(CompressionError, match="only shrink"):
        run_prune(model, excluded, strategy, 4, masks=masks)


def test_layerwise_after_global_caps_layers_at_what_is_alive():
    model, excluded = build("lenet_300_100")
    first = run_prune(model, excluded, "global_magnitude", 10)
    second = run_prune(model, excluded, "layerwise_magnitude", 12, masks=first)
    assert second.only_shrinks(first)
    assert second.kept() == keep_count(model, prunable_weights(model, excluded), 12)


@pytest.mark.parametrize("strategy", BUILTINS)
def test_same_seed_same_masks(strategy):
    masks = []
    for _ in range(2):
        model, excluded = build("cifar_resnet20_1x28x28", seed=3)
        masks.append(run_prune(model, excluded, strategy, 6, seed=11))
    assert masks[0] == masks[1]


def test_random_masks_differ_across_seeds_and_are_layerwise():
    model, excluded = build("lenet_300_100")
    a = run_prune(model, excluded, "random", 5, seed=1)
    model, excluded = build("lenet_300_100")
    b = run_prune(model, excluded, "random", 5, seed=2)
    assert a != b and a.kept() == b.kept()
    assert a.density() == b.density()  # each layer keeps its share whatever the seed
    assert resolve_strategy("RandomPruning").scope == "layerwise"


def test_all_equal_weights_keep_the_lowest_indices():
    model, excluded = build("lenet_300_100")
    with torch.no_grad():
        for w in prunable_weights(model, excluded).values():
            w.fill_(0.5)
    masks = run_prune(model, excluded, "global_magnitude", 3)
    k = masks.kept()
    flat = torch.cat([masks[n].flatten() for n in masks])
    assert bool(flat[:k].all()) and not bool(flat[k:].any())
    model, excluded = build("lenet_300_100")
    with torch.no_grad():
        for w in prunable_weights(model, excluded).values():
            w.fill_(-2.0)
    masks = run_prune(model, excluded, "layerwise_magnitude", 3)
    for n in masks:
        kept = int(masks[n].sum())
        assert bool(masks[n].flatten()[:kept].all()) and not bool(masks[n].flatten()[kept:].any())


def stable_reference(values: list[float], k: int) -> set[int]:
    """Indices kept by a stable sort on (score descending, index ascending)."""
    return set(sorted(range(len(values)), key=lambda i: (-values[i], i))[:k])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=1, max_size=60), st.data())
def test_top_k_matches_a_stable_sort(values, data):
    k = data.draw(st.integers(0, len(values)))
    keep = top_k_mask(torch.tensor(values, dtype=torch.float32), k)
    assert set(torch.nonzero(keep).flatten().tolist()) == stable_reference(values, k)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 2), min_size=1, max_size=15), min_size=1, max_size=4),
       st.data())
def test_global_selection_ranks_over_the_concatenated_layers(layers, data):
    flat = [v for layer in layers for v in layer]
    k = data.draw(st.integers(0, len(flat)))
    scores = {f"l{i}": torch.tensor(layer, dtype=torch.float64) for i, layer in enumerate(layers)}
    masks = select(scores, k, "global")
    kept = torch.cat([masks[n] for n in scores]).nonzero().flatten().tolist()
    assert set(kept) == stable_reference(flat, k)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 500), min_size=1, max_size=8), st.data())
def test_apportionment_is_exact_and_within_one_of_the_share(sizes, data):
    total = data.draw(st.integers(0, sum(sizes)))
    counts = apportion(total, sizes, sizes)
    assert sum(counts) == total
    for n, k in zip(sizes, counts):
        assert abs(k - total * n / sum(sizes)) < 1 and 0 <= k <= n


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 300), st.integers(0, 300)), min_size=1, max_size=8),
       st.data())
def test_apportionment_respects_capacities(layers, data):
    sizes = [n for n, _ in layers]
    caps = [min(n, c) for n, c in layers]
    total = data.draw(st.integers(0, sum(caps)))
    counts = apportion(total, sizes, caps)
    assert sum(counts) == total and all(0 <= k <= c for k, c in zip(counts, caps))


@pytest.mark.parametrize("name", ["cifar_resnet20_1x28x28", "grouped"])
def test_layerwise_keeps_each_layer_within_one_of_its_share(name):
    model, excluded = build(name)
    weights = prunable_weights(model, excluded)
    k = keep_count(model, weights, 7)
    f = k / sum(w.numel() for w in weights.values())
    masks = run_prune(model, excluded, "layerwise_magnitude", 7)
    assert masks.kept() == k
    for n, w in weights.items():
        assert abs(int(masks[n].sum()) - f * w.numel()) < 1


# ---- scores against hand computations ------------------------------------------------------

def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def context_for(model, batches, excluded=()):
    return ScoringContext(model, prunable_weights(model, excluded), batches,
                          torch.Generator().manual_seed(0))


def test_linear_gradient_and_activation_scores_by_hand():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3)).double()
    g = torch.Generator().manual_seed(4)
    batches = [(torch.randn(4, 5, generator=g, dtype=torch.float64), torch.tensor([0, 2, 1, 2])),
               (torch.randn(3, 5, generator=g, dtype=torch.float64), torch.tensor([1, 1, 0]))]
    x = np.concatenate([b[0].numpy() for b in batches])
    y = np.concatenate([b[1].numpy() for b in batches])
    W, b = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    delta = softmax(x @ W.T + b) - np.eye(3)[y]
    grad = delta.T @ x / len(x)  # d/dW of the mean cross-entropy
    a_in = np.abs(x).mean(axis=0)
    ctx = context_for(model, batches)
    np.testing.assert_allclose(ctx.gradients()["0"].numpy(), grad, rtol=1e-10)
    scores = STRATEGIES.get("global_gradient")().score(ctx)
    np.testing.assert_allclose(scores["0"].numpy(), np.abs(W * grad), rtol=1e-10)
    scores = STRATEGIES.get("layerwise_activation")().score(ctx)
    np.testing.assert_allclose(scores["0"].numpy(), np.abs(W) * a_in[None, :], rtol=1e-10)


def test_grouped_conv_gradient_and_activation_scores_by_hand():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, groups=2).double()  # 3 outputs per group, 2 inputs per group
    model = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    g = torch.Generator().manual_seed(5)
    x_t = torch.randn(3, 4, 5, 5, generator=g, dtype=torch.float64)
    y = np.array([0, 4, 5])
    x, W = x_t.numpy(), conv.weight.detach().numpy()
    z = model(x_t).detach().numpy()
    delta = (softmax(z) - np.eye(6)[y]) / len(x)  # dL/dz, z = mean over the 3x3 positions
    grad = np.zeros_like(W)
    act_score = np.zeros_like(W)
    a_in = np.abs(x).mean(axis=(0, 2, 3))
    for o in range(6):
        for j in range(2):
            channel = (o // 3) * 2 + j
            act_score[o, j] = np.abs(W[o, j]) * a_in[channel]
            for kh in range(3):
                for kw in range(3):
                    patch = x[:, channel, kh:kh + 3, kw:kw + 3].mean(axis=(1, 2))
                    grad[o, j, kh, kw] = (delta[:, o] * patch).sum()
    ctx = context_for(model, [(x_t, torch.tensor(y))])
    np.testing.assert_allclose(ctx.gradients()["0"].numpy(), grad, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(STRATEGIES.get("global_gradient")().score(ctx)["0"].numpy(),
                               np.abs(W * grad), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(STRATEGIES.get("global_activation")().score(ctx)["0"].numpy(),
                               act_score, rtol=1e-12)


def test_conv_transpose_activation_uses_the_input_channel_axis():
    torch.manual_seed(0)
    up = nn.ConvTranspose2d(4, 6, 2, groups=2).double()  # weight (C_in=4, C_out/g=3, 2, 2)
    model = nn.Sequential(up, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    a_in = x.abs().mean(dim=(0, 2, 3)).numpy()
    ctx = context_for(model, [(x, torch.tensor([0, 1]))])
    W = up.weight.detach().numpy()
    expected = np.stack([np.abs(W[i]) * a_in[i] for i in range(4)])
    np.testing.assert_allclose(STRATEGIES.get("global_activation")().score(ctx)["0"].numpy(),
                               expected, rtol=1e-12)


def test_scoring_runs_in_eval_mode_and_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.BatchNorm1d(32), nn.Dropout(0.5),
                          nn.ReLU(), nn.Linear(32, 10))
    model.train()
    model[2].eval()  # a module with its own flag must keep it
    stats = [t.clone() for t in model[2].buffers()]
    ctx = context_for(model, BATCHES, excluded=("5",))
    first = ctx.gradients()
    second = context_for(model, BATCHES, excluded=("5",)).gradients()
    context_for(model, BATCHES, excluded=("5",)).activations()
    assert all(torch.equal(first[n], second[n]) for n in first)  # no dropout noise
    assert all(torch.equal(a, b) for a, b in zip(stats, model[2].buffers()))
    assert model.training and model[3].training and not model[2].training
    assert all(p.grad is None for p in model.parameters())


def test_non_finite_scores_name_the_strategy_and_layer():
    class Broken(Strategy):
        name = "broken"

        def score(self, ctx):
            return {n: torch.full_like(w, float("nan")) if n == "fc2" else w.detach().abs()
                    for n, w in ctx.weights.items()}

    model, excluded = build("lenet_300_100")
    with pytest.raises(StrategyError, match="'broken'.*non-finite.*'fc2'"):
        prune(model, Broken(), 2, excluded=excluded, batches=[], generator=torch.Generator())


def test_non_finite_weights_are_blamed_on_the_weights_not_the_strategy():
    model, excluded = build("lenet_300_100")
    with torch.no_grad():
        model.fc1.weight[0, 0] = float("nan")
    with pytest.raises(ConfigError, match="'fc1' holds non-finite weights.*not the strategy"):
        prune(model, resolve_strategy("global_magnitude"), 2, excluded=excluded, batches=[],
              generator=torch.Generator())


@pytest.mark.parametrize("body,message", [
    ("raise RuntimeError('boom')", "raised RuntimeError: boom"),
    ("import sys; sys.exit(0)", "called sys.exit(0)"),
    ("return [w for w in ctx.weights.values()]", "must return a dict"),
    ("return {n: 'high' for n in ctx.weights}", "no score tensor"),
])
def test_whatever_a_strategys_score_does_is_one_strategy_error_line(body, message):
    namespace = {"Strategy": Strategy}
    exec(f"class Odd(Strategy):\n    def score(self, ctx):\n        {body}\n", namespace)
    model, excluded = build("lenet_300_100")
    with pytest.raises(StrategyError) as err:
        prune(model, namespace["Odd"](), 2, excluded=excluded, batches=[], generator=torch.Generator())
    assert message in str(err.value) and "\n" not in str(err.value) and "'Odd'" in str(err.value)


def test_a_bad_scope_is_a_strategy_error():
    class Sideways(Strategy):
        scope = "sideways"

        def score(self, ctx):
            return {n: w.detach().abs() for n, w in ctx.weights.items()}

    model, excluded = build("lenet_300_100")
    with pytest.raises(StrategyError, match="scope 'sideways'"):
        prune(model, Sideways(), 2, excluded=excluded, batches=[], generator=torch.Generator())


def test_scores_of_the_wrong_shape_or_missing_are_errors():
    class WrongShape(Strategy):
        def score(self, ctx):
            return {n: torch.ones(3) for n in ctx.weights}

    model, excluded = build("lenet_300_100")
    with pytest.raises(StrategyError, match="WrongShape.*shape"):
        prune(model, WrongShape(), 2, excluded=excluded, batches=[], generator=torch.Generator())


def test_data_criteria_need_score_batches():
    model, excluded = build("lenet_300_100")
    with pytest.raises(ConfigError, match="score batch"):
        prune(model, resolve_strategy("global_gradient"), 2, excluded=excluded, batches=[],
              generator=torch.Generator())


# ---- names and user strategies -------------------------------------------------------------

def test_builtins_and_their_original_shrinkbench_aliases():
    rows = {row[0]: row for row in list_strategies()}
    assert set(BUILTINS) <= set(rows)
    aliases = {"GlobalMagWeight": ("global", "magnitude"), "LayerMagWeight": ("layerwise", "magnitude"),
               "GlobalMagGrad": ("global", "gradient"), "LayerMagGrad": ("layerwise", "gradient"),
               "GlobalMagAct": ("global", "activation"), "LayerMagAct": ("layerwise", "activation"),
               "RandomPruning": ("layerwise", "random")}
    for alias, (scope, criterion) in aliases.items():
        strategy = resolve_strategy(alias)
        assert (strategy.scope, strategy.criterion) == (scope, criterion)
        assert alias in rows[strategy.name][3]


def test_a_registered_user_strategy_is_named_by_its_key():
    @register_strategy("test_squared_magnitude", aliases=("TestSquared",))
    class Squared(Strategy):
        """Squared magnitude, layer by layer."""
        scope = "layerwise"

        def score(self, ctx):
            return {n: w.detach() ** 2 for n, w in ctx.weights.items()}

    assert resolve_strategy("TestSquared").name == "test_squared_magnitude"
    assert ("test_squared_magnitude", "layerwise", "custom", ("TestSquared",),
            "Squared magnitude, layer by layer.", "weight, nm") in list_strategies()
    assert Squared().name == "Squared"  # unregistered: its class name
    with pytest.raises(TypeError):
        register_strategy("not_a_strategy")(dict)


def test_unknown_strategy_lists_close_matches():
    with pytest.raises(UnknownNameError, match="did you mean 'global_magnitude'") as info:
        resolve_strategy("globl_magnitude")
    assert "\n" not in str(info.value)


USER_MODULE = textwrap.dedent('''
    from shrinkbench.vision.pruning import Strategy

    class SquaredMagnitude(Strategy):
        scope = "layerwise"
        def score(self, ctx):
            return {name: w.detach() ** 2 for name, w in ctx.weights.items()}

    class NotAStrategy:
        pass
''')


def test_user_strategy_from_an_importable_module(tmp_path, monkeypatch):
    (tmp_path / "my_pruning_method.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    strategy = resolve_strategy("my_pruning_method:SquaredMagnitude")
    model, excluded = build("lenet_300_100")
    masks = prune(model, strategy, 4, excluded=excluded, batches=[], generator=torch.Generator())
    reference_model, _ = build("lenet_300_100")
    reference = run_prune(reference_model, excluded, "layerwise_magnitude", 4)
    assert masks == reference  # |w|^2 ranks like |w|
    monkeypatch.delitem(sys.modules, "my_pruning_method")


def test_user_strategy_from_a_file(tmp_path):
    path = tmp_path / "method.py"
    path.write_text(USER_MODULE)
    strategy = resolve_strategy(f"{path}:SquaredMagnitude")
    assert isinstance(strategy, Strategy) and strategy.scope == "layerwise"


def test_the_package_docstring_example_works(tmp_path):
    import shrinkbench.vision.pruning as pruning

    doc = pruning.__doc__
    start = doc.index("    from shrinkbench.vision.pruning import Strategy")
    (tmp_path / "mymethod.py").write_text(textwrap.dedent(doc[start:doc.index("\n\n`ctx`", start)]))
    strategy = resolve_strategy(f"{tmp_path / 'mymethod.py'}:SquaredMagnitude")
    model, excluded = build("lenet5_caffe")
    masks = prune(model, strategy, 4, excluded=excluded, batches=[], generator=torch.Generator())
    reference_model, _ = build("lenet5_caffe")
    assert masks == run_prune(reference_model, excluded, "global_magnitude", 4)


@pytest.mark.parametrize("spec,message", [
    ("no_such_module_xyz:Cls", "not found"),
    ("{dir}/missing.py:Cls", "does not exist"),
    ("{file}:SquaredMagnitud", "did you mean 'SquaredMagnitude'"),
    ("{file}:NotAStrategy", "not a subclass"),
    ("{broken}:Anything", "SyntaxError"),
    ("{file}:", "module:ClassName"),
])
def test_user_strategy_errors_are_one_line(tmp_path, spec, message):
    (tmp_path / "method.py").write_text(USER_MODULE)
    (tmp_path / "broken.py").write_text("def oops(:\n    pass\n")
    spec = spec.format(dir=tmp_path, file=tmp_path / "method.py", broken=tmp_path / "broken.py")
    with pytest.raises(ConfigError) as info:
        resolve_strategy(spec)
    assert message in str(info.value) and "\n" not in str(info.value)
