"""The methods and controls a pruning paper is judged against (issue 12): prune-at-init
criteria, layer allocations, schedules, controls, and what the records and reports say.

References are independent of the code under test: numpy hand computations of SNIP, GraSP
(a finite difference of a hand-written gradient), SynFlow (closed forms for a two-layer
network) and LAMP, apportionment by hand for ERK and first-layer-dense, the cubic schedule
written out, and the run's own training observed through the training loop.
"""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from runner_helpers import TINY_TRAIN, tiny_config, write_suite
from test_runner import numbers
from shrinkbench.cli import main
from shrinkbench.vision.config import ScheduleConfig, TrainConfig
from shrinkbench.core.errors import CompressionError, ConfigError
from shrinkbench.vision.pruning import (STRATEGIES, ScoringContext, keep_count, max_compression, prunable_weights, prune,
                                 resolve_strategy)
from shrinkbench.vision.pruning.criteria import GRASP_TEMPERATURE, synflow_scores
from shrinkbench.vision.pruning.selection import allocate_erk, allocate_first_dense
from shrinkbench.core.seeds import derive_seed
from shrinkbench.vision.runner import execute
from shrinkbench.core.store import Store
from shrinkbench.vision.validate import validate_config

NEW = ["snip", "grasp", "synflow", "lamp", "erk_magnitude", "first_dense_magnitude"]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def two_layer(bias: bool = True, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4, bias=bias), nn.ReLU(), nn.Linear(4, 2, bias=bias)).double()


def batches(seed: int, n: int = 5):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 3, generator=g, dtype=torch.float64), torch.randint(0, 2, (n,), generator=g))]


def ctx_for(model, data, keep=None, input_shape=(3,)):
    return ScoringContext(model, prunable_weights(model, ()), data, torch.Generator().manual_seed(0),
                          keep=keep, input_shape=input_shape)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def numpy_gradient(W1, b1, W2, b2, x, y, temperature=1.0):
    """d/dW1, d/dW2 of mean cross-entropy(softmax((W2 relu(W1 x + b1) + b2) / T)), by hand."""
    pre = x @ W1.T + b1
    h = np.maximum(pre, 0)
    z = (h @ W2.T + b2) / temperature
    delta = (softmax(z) - np.eye(2)[y]) / len(x) / temperature
    g2 = delta.T @ h
    g1 = ((delta @ W2) * (pre > 0)).T @ x
    return g1, g2


def weights_of(model):
    return [p.detach().numpy().copy() for p in (model[0].weight, model[0].bias, model[2].weight, model[2].bias)]


# ---- criteria by hand ------------------------------------------------------------------------

def test_snip_is_the_connection_sensitivity_of_the_score_batches_by_hand():
    model = two_layer()
    data = batches(1)
    W1, b1, W2, b2 = weights_of(model)
    g1, g2 = numpy_gradient(W1, b1, W2, b2, data[0][0].numpy(), data[0][1].numpy())
    snip = resolve_strategy("snip")
    scores = snip.score(ctx_for(model, data))
    np.testing.assert_allclose(scores["0"].numpy(), np.abs(W1 * g1), rtol=1e-10)
    np.testing.assert_allclose(scores["2"].numpy(), np.abs(W2 * g2), rtol=1e-10)
    assert snip.scope == "global" and "Lee" in snip.description


def test_grasp_is_w_times_hessian_gradient_product_by_a_finite_difference():
    model = two_layer()
    data = batches(2)
    W1, b1, W2, b2 = weights_of(model)
    x, y = data[0][0].numpy(), data[0][1].numpy()
    g1, g2 = numpy_gradient(W1, b1, W2, b2, x, y, GRASP_TEMPERATURE)
    eps = 1e-3 / max(np.abs(g1).max(), np.abs(g2).max())
    plus = numpy_gradient(W1 + eps * g1, b1, W2 + eps * g2, b2, x, y, GRASP_TEMPERATURE)
    minus = numpy_gradient(W1 - eps * g1, b1, W2 - eps * g2, b2, x, y, GRASP_TEMPERATURE)
    hg1, hg2 = ((p - m) / (2 * eps) for p, m in zip(plus, minus))
    scores = resolve_strategy("grasp").score(ctx_for(model, data))
    np.testing.assert_allclose(scores["0"].numpy(), W1 * hg1, rtol=1e-5, atol=1e-14)
    np.testing.assert_allclose(scores["2"].numpy(), W2 * hg2, rtol=1e-5, atol=1e-14)


def test_one_round_of_synflow_by_its_closed_form():
    """R = 1^T (|W2| (|W1| 1 + |b1|) + |b2|): dR/dW1[i, j] = sum_k |W2[k, i]|, dR/dW2[k, i] = h_i."""
    model = two_layer()
    W1, b1, W2, b2 = (np.abs(w) for w in weights_of(model))
    h = W1 @ np.ones(3) + b1
    keep = {n: torch.ones_like(w, dtype=torch.bool) for n, w in prunable_weights(model, ()).items()}
    scores = synflow_scores(ctx_for(model, []), keep)
    np.testing.assert_allclose(scores["0"].numpy(), W1 * W2.sum(axis=0)[:, None], rtol=1e-12)
    np.testing.assert_allclose(scores["2"].numpy(), W2 * h[None, :], rtol=1e-12)


def reference_synflow_mask(model, keep: int, rounds: int = 100) -> np.ndarray:
    """Iterative SynFlow in numpy for the two-layer net: round r keeps the
    round(P (K/P)^(r/n)) highest closed-form scores of the weights still alive."""
    W1, b1, W2, b2 = (np.abs(w) for w in weights_of(model))
    alive1, alive2 = np.ones_like(W1, bool), np.ones_like(W2, bool)
    total = W1.size + W2.size
    for r in range(1, rounds + 1):
        m1, m2 = W1 * alive1, W2 * alive2
        h = m1 @ np.ones(3) + b1
        flat = np.concatenate([(m1 * m2.sum(axis=0)[:, None]).ravel(), (m2 * h[None, :]).ravel()])
        flat[~np.concatenate([alive1.ravel(), alive2.ravel()])] = -np.inf
        k = max(keep, int(round(total * (keep / total) ** (r / rounds))))
        order = sorted(range(flat.size), key=lambda i: (-flat[i], i))[:k]
        kept = np.zeros(flat.size, bool)
        kept[order] = True
        alive1, alive2 = kept[:W1.size].reshape(W1.shape), kept[W1.size:].reshape(W2.shape)
    return np.concatenate([alive1.ravel(), alive2.ravel()])


@pytest.mark.parametrize("keep", [3, 7, 12])
def test_iterative_synflow_keeps_exactly_the_mask_of_the_published_schedule(keep):
    model = two_layer(seed=3)
    expected = reference_synflow_mask(model, keep)
    total = sum(w.numel() for w in prunable_weights(model, ()).values())
    masks = prune(model, resolve_strategy("synflow"), 1 - keep / total, excluded=(), batches=[],
                  generator=torch.Generator().manual_seed(0), target="sparsity", input_shape=(3,))
    got = np.concatenate([masks[n].reshape(-1).numpy() for n in masks])
    assert masks.kept() == keep
    np.testing.assert_array_equal(got, expected)


def test_synflow_scores_do_not_depend_on_the_data():
    model = two_layer()
    strategy = resolve_strategy("synflow")
    runs = [strategy.score(ctx_for(model, data, keep=6)) for data in ([], batches(1), batches(2, n=9))]
    for other in runs[1:]:
        for name in runs[0]:
            assert torch.equal(runs[0][name], other[name])


def test_synflow_scores_are_invariant_to_rescaling_a_neuron():
    """Scaling hidden unit i's incoming weights and bias by a_i and its outgoing weights by 1/a_i
    leaves a ReLU network's function, and SynFlow's scores, unchanged (Tanaka et al. 2020)."""
    model = two_layer()
    scaled = two_layer()
    a = torch.tensor([0.1, 3.0, 7.5, 0.4], dtype=torch.float64)
    with torch.no_grad():
        scaled[0].weight.mul_(a[:, None])
        scaled[0].bias.mul_(a)
        scaled[2].weight.div_(a[None, :])
    x = torch.randn(6, 3, dtype=torch.float64)
    torch.testing.assert_close(model(x), scaled(x))
    keep = {n: torch.ones_like(w, dtype=torch.bool) for n, w in prunable_weights(model, ()).items()}
    ref, got = synflow_scores(ctx_for(model, []), keep), synflow_scores(ctx_for(scaled, []), keep)
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-12, atol=0)
    masks = [prune(m, resolve_strategy("synflow"), 0.6, excluded=(), batches=[], target="sparsity",
                   generator=torch.Generator().manual_seed(0), input_shape=(3,)) for m in (model, scaled)]
    assert masks[0] == masks[1]


def test_lamp_scores_by_hand():
    model = nn.Sequential(nn.Linear(3, 1, bias=False), nn.Linear(1, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -3.0, 2.0]]))
        model[1].weight.copy_(torch.tensor([[-2.0], [0.5]]))
    scores = resolve_strategy("lamp").score(ctx_for(model, []))
    np.testing.assert_allclose(scores["0"].numpy(), [[1 / 14, 1.0, 4 / 13]], rtol=1e-12)
    np.testing.assert_allclose(scores["1"].numpy(), [[1.0], [0.25 / 4.25]], rtol=1e-12)


def test_erk_and_first_dense_allocations_by_hand():
    shapes = [(6, 4), (2, 4)]  # 24 and 8 weights; ERK weights n_out + n_in = 10 and 6
    assert allocate_erk(16, [24, 8], [24, 8], shapes) == [10, 6]
    assert allocate_erk(28, [24, 8], [24, 8], shapes) == [20, 8]  # layer 2 capped at dense
    assert allocate_first_dense(28, [24, 8], [24, 8], shapes) == [24, 4]
    with pytest.raises(CompressionError, match="first layer dense needs 24 weights"):
        allocate_first_dense(20, [24, 8], [24, 8], shapes)
    assert allocate_erk(16, [36, 8], [36, 8], [(4, 1, 3, 3), (2, 4)]) == [10, 6]  # conv: 4 + 1 + 3 + 3 = 11 vs 6


def test_every_new_strategy_is_registered_with_its_formula_and_paper():
    rows = {name: STRATEGIES.get(name)() for name in NEW}
    papers = {"snip": "Lee", "grasp": "Wang", "synflow": "Tanaka", "lamp": "Lee", "erk_magnitude": "Evci",
              "first_dense_magnitude": "Gale"}
    for name, strategy in rows.items():
        assert papers[name] in strategy.description and strategy.description.startswith("score ")


# ---- exact counts and only-shrinking masks for every new strategy -------------------------------

MODELS = {"lenet_300_100": (1, 28, 28), "lenet5_caffe": (1, 28, 28), "cifar_resnet20_1x28x28": (1, 28, 28)}


def model_batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(6, 1, 28, 28, generator=g), torch.randint(0, 10, (6,), generator=g))]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("strategy", NEW)
def test_exact_kept_count_and_masks_only_shrink(name, strategy):
    from shrinkbench.vision.models import create_model, model_spec

    model = create_model(name, seed=0)
    excluded = model_spec(name).excluded
    weights = prunable_weights(model, excluded)
    largest = max_compression(model, weights)
    previous = None
    slow = strategy == "synflow" and name != "lenet_300_100"  # 100 rounds: one target is enough there
    for c in (4,) if slow else (1.12, 4, 9):
        c = min(c, largest * 0.9)
        try:
            masks = prune(model, resolve_strategy(strategy), c, excluded=excluded, batches=model_batches(),
                          generator=torch.Generator().manual_seed(0), masks=previous, input_shape=MODELS[name])
        except CompressionError as error:  # first layer dense cannot reach it: said in one line
            assert strategy == "first_dense_magnitude" and "first layer dense" in str(error)
            break
        assert masks.kept() == keep_count(model, weights, c)
        assert sum(int((w != 0).sum()) for w in weights.values()) == masks.kept()
        if previous is not None:
            assert masks.only_shrinks(previous)
        previous = masks


def test_snip_and_grasp_score_on_training_split_batches_only():
    from shrinkbench.vision.runner import RunContext

    cfg = validate_config(tiny_config(strategy="snip", when="at_init"))
    ctx = RunContext(cfg, torch.device("cpu"))
    train = torch.cat([x.reshape(len(x), -1) for x, _ in ctx.eval_batches(ctx.splits.train)])
    val = torch.cat([x.reshape(len(x), -1) for x, _ in ctx.eval_batches(ctx.splits.val)])
    assert len(val) and len(train) == len(ctx.splits.train)
    for x, _ in ctx.score_batches():
        flat = x.reshape(len(x), -1)
        exact = torch.cdist(flat, train, compute_mode="donot_use_mm_for_euclid_dist")
        assert bool((exact.min(dim=1).values == 0).all())  # every score example is a training example


# ---- plans: schedules and budgets ------------------------------------------------------------

def test_cubic_schedule_and_events_by_hand():
    from shrinkbench.vision.execution import gradual_events, gradual_target

    assert gradual_target("sparsity", 0.9, 0.5) == pytest.approx(0.9 * (1 - 0.5 ** 3))
    assert gradual_target("compression", 10, 0.5) == pytest.approx(1 / (1 - 0.9 * 0.875))
    assert gradual_target("compression", 10, 1.0) == pytest.approx(10)
    assert gradual_events(0.0, 0.75, 10, 100) == [10, 20, 30, 40, 50, 60, 70, 75]
    assert gradual_events(0.2, 0.5, 7, 100) == [27, 34, 41, 48, 50]


def test_plans_of_each_schedule():
    from shrinkbench.vision.plans import Control, MeasurePre, Prune, Rewind, Train, build_plan

    base = dataclasses.replace(tiny_config().base, train=TrainConfig(epochs=5))
    two = TrainConfig(epochs=5)
    plan = build_plan(tiny_config(prune_steps=2, finetune=two, schedule=ScheduleConfig(split_budget=True)))
    assert [type(p) for p in plan] == [Prune, Train, Prune, MeasurePre, Train]
    assert [p.epochs for p in plan if isinstance(p, Train)] == [2, 3]
    plan = build_plan(tiny_config(prune_steps=2, finetune=two))
    assert [p.epochs for p in plan if isinstance(p, Train)] == [5, 5]
    plan = build_plan(tiny_config(prune_steps=2, base=base, schedule=ScheduleConfig(kind="weight_rewinding",
                                                                                    rewind_epoch=1)))
    assert [type(p) for p in plan] == [Prune, Rewind, Train, Prune, Rewind, MeasurePre, Train]
    assert all(p.source == "base" and p.start_epoch == 1 and p.epochs == 4 for p in plan if isinstance(p, Train))
    plan = build_plan(tiny_config(base=base, when="at_init", control="layerwise_shuffle"))
    assert [type(p) for p in plan] == [Prune, Control, MeasurePre, Train] and plan[-1].epochs == 5
    plan = build_plan(tiny_config(base=base, control="from_scratch"))
    assert plan[-1] == Train("base", 5, tag="from-scratch")


# ---- runs: what each plan does, observed through the training loop ------------------------------

@pytest.fixture
def observed(monkeypatch):
    """Every call of the training loop: the model's weights and masks as it starts, and the call."""
    import shrinkbench.vision.training as training

    calls = []
    real = training.train

    def spy(model, source, cfg, generator, **kw):
        masks = kw.get("masks")
        calls.append({"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
                      "masks": None if masks is None else {n: m.clone() for n, m in masks.items()},
                      "cfg": cfg, "tag": kw.get("tag"), "start_epoch": kw.get("start_epoch", 0),
                      "stop_after": kw.get("stop_after")})
        return real(model, source, cfg, generator, **kw)

    monkeypatch.setattr(training, "train", spy)
    return calls


def pruned_calls(calls):
    return [c for c in calls if c["masks"] is not None]


def run(cfg, store):
    record = execute(validate_config(cfg), store)
    assert record["status"] == "ok", record["error"]
    return record


def test_at_init_prunes_the_base_models_initial_weights_and_trains_with_the_base_recipe(tmp_path, observed):
    from shrinkbench.vision.models import create_model

    cfg = tiny_config(when="at_init")
    record = run(cfg, Store(tmp_path))
    (call,) = pruned_calls(observed)
    init = create_model(cfg.model, seed=cfg.base.seed)
    weights = prunable_weights(init, ("fc3",))
    k = call["masks"]
    flat = torch.cat([weights[n].detach().abs().reshape(-1) for n in k])
    kept = torch.cat([k[n].reshape(-1) for n in k])
    assert flat[kept].min() >= flat[~kept].max()  # the largest initial magnitudes were kept
    for n in k:
        torch.testing.assert_close(call["state"][f"{n}.weight"], weights[n].detach() * k[n])
    assert call["cfg"] == cfg.base.train and record["base"]["source"] == "initial weights"
    assert record["budget"]["epochs"] == cfg.base.train.epochs
    assert not any(c["tag"] == "base" for c in observed)  # no base model is trained for it


def test_controls_change_one_thing_each(tmp_path, observed):
    from shrinkbench.vision.models import create_model

    store = Store(tmp_path)
    run(tiny_config(), store)
    plain = pruned_calls(observed)[-1]
    run(tiny_config(control="layerwise_shuffle"), store)
    shuffled = pruned_calls(observed)[-1]
    run(tiny_config(control="reinit"), store)
    reinit = pruned_calls(observed)[-1]
    run(tiny_config(control="invert"), store)
    inverted = pruned_calls(observed)[-1]
    for n, mask in plain["masks"].items():
        assert int(shuffled["masks"][n].sum()) == int(mask.sum())  # each layer's density kept
        assert torch.equal(reinit["masks"][n], mask)  # reinit keeps the mask
    assert any(not torch.equal(shuffled["masks"][n], m) for n, m in plain["masks"].items())
    base_init = observed[0]["state"]  # the first call trains the base model from its initial weights
    fresh = create_model("lenet_300_100", seed=derive_seed(0, "reinit")).state_dict()
    for n, mask in reinit["masks"].items():
        torch.testing.assert_close(reinit["state"][f"{n}.weight"], fresh[f"{n}.weight"] * mask)
        assert not torch.equal(fresh[f"{n}.weight"], base_init[f"{n}.weight"])
    # shuffled: the kept positions carry the trained weights the pruning step saw
    for n, mask in shuffled["masks"].items():
        w = shuffled["state"][f"{n}.weight"]
        assert bool((w[~mask] == 0).all())
        both = mask & plain["masks"][n]
        torch.testing.assert_close(w[both], plain["state"][f"{n}.weight"][both])
    # inverted: as many weights kept, hardly any of the ones magnitude keeps
    kept = sum(int(m.sum()) for m in inverted["masks"].values())
    overlap = sum(int((m & plain["masks"][n]).sum()) for n, m in inverted["masks"].items())
    assert kept == sum(int(m.sum()) for m in plain["masks"].values()) and overlap == 0


def test_inverted_magnitude_keeps_the_smallest_weights():
    from shrinkbench.vision.models import create_model
    from shrinkbench.vision.plans import Inverted

    model = create_model("lenet_300_100", seed=0)
    weights = {n: w.detach().abs().clone() for n, w in prunable_weights(model, ("fc3",)).items()}
    masks = prune(model, Inverted(resolve_strategy("global_magnitude")), 4, excluded=("fc3",), batches=[],
                  generator=torch.Generator().manual_seed(0))
    flat = torch.cat([weights[n].reshape(-1) for n in masks])
    kept = torch.cat([masks[n].reshape(-1) for n in masks])
    assert flat[kept].max() <= flat[~kept].min()


def test_from_scratch_trains_new_initial_weights_with_the_base_budget(tmp_path, observed):
    base = dataclasses.replace(tiny_config().base, train=TrainConfig(epochs=2, lr=0.05, batch_size=64))
    record = run(tiny_config(base=base, control="from_scratch"), Store(tmp_path))
    call = pruned_calls(observed)[-1]
    assert call["cfg"] == base.train and call["tag"] == "from-scratch"
    assert record["budget"] == {"epochs": 2, "finetune_epochs": 0, "base_recipe_epochs": 2, "steps": 1,
                                "split_budget": False}


def test_weight_rewinding_goes_back_to_the_base_trainings_own_epoch(tmp_path, observed):
    train2 = TrainConfig(epochs=2, lr=0.05, batch_size=64)
    base = dataclasses.replace(tiny_config().base, train=train2)
    store = Store(tmp_path)
    epochs: list = []
    run(tiny_config(base=base, schedule=ScheduleConfig(kind="weight_rewinding", rewind_epoch=1)), store)
    full = [c for c in observed if c["tag"] == "base" and c["stop_after"] is None]
    partial = [c for c in observed if c["tag"] == "base" and c["stop_after"] == 1]
    assert len(full) == 1 and len(partial) == 1 and list((tmp_path / "bases").glob("*-epoch1.pt"))
    # the epoch-1 weights are what the full base training had after its first epoch
    import shrinkbench.vision.training as training
    from shrinkbench.vision.models import create_model
    from shrinkbench.core.seeds import generator
    from shrinkbench.vision.runner import RunContext

    cfg = validate_config(tiny_config(base=base))
    ctx = RunContext(cfg, torch.device("cpu"))
    model = create_model(cfg.model, seed=cfg.base.seed)
    snapshots = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(cfg.base.seed, "base-dropout"))
        training.train(model, ctx.train_batches(64, False), train2, generator(cfg.base.seed, "base-order"),
                       on_epoch=lambda e: snapshots.append({k: v.clone() for k, v in model.state_dict().items()}),
                       log=epochs)
    retrain = [c for c in pruned_calls(observed) if c["cfg"] == train2][-1]
    assert retrain["start_epoch"] == 1
    for n, mask in retrain["masks"].items():
        torch.testing.assert_close(retrain["state"][f"{n}.weight"], snapshots[0][f"{n}.weight"] * mask)


def test_learning_rate_rewinding_continues_the_base_schedule(tmp_path):
    train3 = TrainConfig(epochs=3, lr=0.05, batch_size=64, lr_schedule="cosine")
    base = dataclasses.replace(tiny_config().base, train=train3)
    record = run(tiny_config(base=base, schedule=ScheduleConfig(kind="lr_rewinding", rewind_epoch=1)),
                 Store(tmp_path))
    retrain = [e for e in record["epochs"] if e.get("phase", "").startswith("retrain")]
    assert [e["epoch"] for e in retrain] == [2, 3]
    (meta,) = [json.loads(p.read_text()) for p in (tmp_path / "bases").glob("*.json")]
    base_lrs = [e["lr_end"] for e in meta["epochs"]]
    assert [e["lr_end"] for e in retrain] == base_lrs[1:]  # epochs 2 and 3 of the base schedule
    assert record["budget"]["base_recipe_epochs"] == 2


def test_gradual_pruning_reaches_the_target_by_the_cubic_schedule(tmp_path, observed):
    record = run(tiny_config(schedule=ScheduleConfig(kind="gradual", start=0.0, end=0.5, every=3)),
                 Store(tmp_path))
    events = [p for p in record["plan"] if p["phase"] == "prune"]
    kept = [p["kept"] for p in events]
    assert kept == sorted(kept, reverse=True) and len(set(kept)) == len(kept)
    assert kept[-1] == sum(layer["kept"] for layer in record["layers"])
    assert any(m["stage"] == "pre" for m in record["metrics"]) and record["budget"]["epochs"] == 1


def test_split_budget_spreads_one_budget_over_the_steps(tmp_path):
    record = run(tiny_config(prune_steps=3, finetune=TrainConfig(epochs=3, lr=0.05, batch_size=64),
                             schedule=ScheduleConfig(split_budget=True)), Store(tmp_path))
    assert [e["phase"] for e in record["epochs"]] == ["finetune-1", "finetune-2", "finetune-3"]
    assert record["budget"]["epochs"] == 3 and record["budget"]["split_budget"]


def test_same_config_same_numbers_for_every_new_plan(tmp_path):
    base = dataclasses.replace(tiny_config().base, train=TrainConfig(epochs=2, lr=0.05, batch_size=64))
    for cfg in (tiny_config(strategy="synflow", when="at_init", control="layerwise_shuffle"),
                tiny_config(schedule=ScheduleConfig(kind="gradual", every=4)),
                tiny_config(base=base, schedule=ScheduleConfig(kind="weight_rewinding", rewind_epoch=1))):
        a = run(cfg, Store(tmp_path / "a"))
        b = run(cfg, Store(tmp_path / "b"))
        assert numbers(a) == numbers(b) and a["run_id"] == b["run_id"]


def test_the_identity_holds_every_new_axis_and_old_run_ids_stay():
    ids = {tiny_config().run_id}
    for change in ({"when": "at_init"}, {"control": "reinit"}, {"control": "invert"},
                   {"schedule": ScheduleConfig(kind="gradual")}, {"schedule": ScheduleConfig(split_budget=True)}):
        ids.add(tiny_config(**change).run_id)
    assert len(ids) == 6
    assert "when" not in tiny_config().identity() and "schedule" not in tiny_config().identity()


# ---- bad input: one line, exit 2 --------------------------------------------------------------

PRUNE = ["prune", "--model", "lenet_300_100", "--dataset", "digits", "--compression", "4", "--quiet"]


@pytest.mark.parametrize("extra,message", [
    (["--strategy", "global_magnitude", "--control", "reinit", "--base-checkpoint", "CKPT"], "checkpoint base"),
    (["--strategy", "global_magnitude", "--schedule", "weight_rewinding", "--rewind-epoch", "10"],
     "rewind to an epoch from 0 to 9"),
    (["--strategy", "global_magnitude", "--schedule", "lr_rewinding"], "needs schedule.rewind_epoch"),
    (["--strategy", "global_magnitude", "--schedule", "lr_rewinding", "--rewind-epoch", "-1"], ">= 0"),
    (["--strategy", "global_magnitude", "--schedule", "gradual", "--finetune-epochs", "0"], "finetune.epochs >= 1"),
    (["--strategy", "global_magnitude", "--prune-steps", "3", "--split-budget", "--finetune-epochs", "2"],
     "at least one epoch per step"),
    (["--strategy", "global_magnitude", "--when", "at_init", "--schedule", "gradual"], "trains once"),
    (["--strategy", "global_magnitude", "--when", "at_init", "--control", "from_scratch"], "use control = reinit"),
    (["--strategy", "global_l1", "--granularity", "channel", "--control", "layerwise_shuffle"], "weight granularity"),
    (["--strategy", "synflow", "--target", "speedup"], "not speedup"),
    (["--strategy", "first_dense_magnitude"], "first layer dense needs 235,200"),
])
def test_inapplicable_plans_are_one_line_errors(tmp_path, capsys, extra, message):
    ckpt = tmp_path / "ckpt.pt"
    from shrinkbench.vision.models import create_model

    torch.save(create_model("lenet_300_100").state_dict(), ckpt)
    args = PRUNE + ["--store", str(tmp_path / "s")] + [str(ckpt) if a == "CKPT" else a for a in extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "s" / "runs").exists() or not list((tmp_path / "s" / "runs").glob("*.json"))


# ---- suites and reports -----------------------------------------------------------------------

def test_one_command_puts_a_users_method_against_grouped_baselines_and_its_controls(tmp_path, capsys):
    method = tmp_path / "mine.py"
    method.write_text("from shrinkbench.vision.pruning import Strategy\n\n\nclass Mine(Strategy):\n    scope = 'global'\n\n"
                      "    def score(self, ctx):\n"
                      "        return {n: w.detach().abs() ** 3 for n, w in ctx.weights.items()}\n")
    suite = write_suite(tmp_path / "s.toml", strategies=(
        '"global_magnitude"', '"lamp"', '{name = "snip", when = "at_init"}',
        '{name = "global_magnitude", schedule = {kind = "gradual", every = 5}}', '"random"'),
        compressions="[1, 4]", seeds="[0, 1]", latency=False)
    suite.write_text(suite.read_text().replace("seeds = [0, 1]", 'seeds = [0, 1]\nadded_controls = ["reinit"]'))
    store = tmp_path / "store"
    status = main(["benchmark", "--suite", str(suite), "--store", str(store), "--quiet", "--threads", "1",
                   "--add-strategy", f"{method}:Mine"])
    out = capsys.readouterr().out
    assert status == 0
    runs = [json.loads(p.read_text()) for p in (store / "runs").glob("*.json")]
    assert len(runs) == 2 * (1 + 5 + 2) and all(r["status"] == "ok" for r in runs)
    for group in ("(magnitude)", "(layer allocation)", "(pruning at initialisation)", "(schedules)", "(controls)",
                  "(random)"):
        assert group in out, group
    assert out.index("(magnitude)") < out.index("(layer allocation)") < out.index("(random)")
    assert f"{method}:Mine [reinit]" in out
    comparisons = (store / "report" / "significance" / "comparisons.csv").read_text()
    assert "baseline_group" in comparisons.splitlines()[0]


def test_the_table_carries_when_control_schedule_and_budget():
    from shrinkbench.analysis.schema import record_identity, strategy_name

    record = {"run_id": "x", "config": {"model": "m", "dataset": "d", "strategy": "global_magnitude",
                                        "compression": 4, "when": "at_init", "control": "layerwise_shuffle",
                                        "schedule": {"kind": "one_shot", "split_budget": True}, "prune_steps": 3,
                                        "finetune": {"epochs": 2}},
              "budget": {"epochs": 6}}
    row = record_identity(record)
    assert (row["when"], row["control"], row["schedule"], row["budget_epochs"]) == \
        ("at_init", "layerwise_shuffle", "one_shot/3 steps, split", 6.0)
    assert row["strategy"] == "global_magnitude [at init, 3 steps, split budget, shuffled]"
    old = {"run_id": "y", "config": {"model": "m", "dataset": "d", "strategy": "global_magnitude",
                                     "compression": 4, "prune_steps": 2, "finetune": {"epochs": 3}}}
    assert record_identity(old)["budget_epochs"] == 6.0 and record_identity(old)["when"] == "after_training"
    assert strategy_name({"strategy": "global_magnitude", "finetune": {"epochs": 0}}) == \
        "global_magnitude [no fine-tuning]"
    assert strategy_name({"strategy": "none", "finetune": {"epochs": 0}}) == "none"
    assert math.isfinite(row["budget_epochs"])


def test_the_shipped_methods_suite_expands_with_a_users_strategy_and_its_controls(tmp_path):
    from shrinkbench.core.suite import load_suite

    method = tmp_path / "mine.py"
    method.write_text("from shrinkbench.vision.pruning import Strategy\n\n\nclass Mine(Strategy):\n    scope = 'global'\n\n"
                      "    def score(self, ctx):\n        return {n: w.detach().abs() for n, w in ctx.weights.items()}\n")
    plain = load_suite("methods")
    added = load_suite("methods", added=[f"{method}:Mine"])
    mine = [c for c in added.configs if c.strategy.endswith(":Mine")]
    assert len(added.configs) == len(plain.configs) + len(mine) and len(mine) == 4 * 2 * 3
    assert {c.control for c in mine} == {None, "layerwise_shuffle", "from_scratch", "invert"}
    scratch = [c for c in plain.configs if c.control == "from_scratch"]  # the full-budget control
    assert scratch and {c.strategy for c in scratch} == {"global_magnitude"}
    assert not any(c.control == "reinit" for c in added.configs)  # 2 epochs from new weights: the budget
    assert {c.when for c in plain.configs} == {"after_training", "at_init"}
    assert {c.schedule.kind for c in plain.configs} == {"one_shot", "gradual", "lr_rewinding"}


def test_baseline_groups_by_name_and_tags():
    from shrinkbench.analysis.groups import baseline_group

    cases = {"global_magnitude": "magnitude", "lamp": "layer allocation", "global_gradient": "saliency",
             "snip [at init]": "pruning at initialisation", "global_magnitude [gradual]": "schedules",
             "global_magnitude [3 steps, split budget]": "schedules", "global_l1 [channel, speedup target]":
             "structured (channels)", "global_magnitude [2:4]": "N:M", "snip [at init, shuffled]": "controls",
             "mine.py:Mine [inverted]": "controls", "random [at init]": "random", "mine.py:Mine": "user",
             "none": "dense"}
    assert {k: baseline_group(k) for k in cases} == cases
