"""What a published criterion needs of its run: the scoring context's `run` (config, run seed, base
seed) and `initial_weights()` (the base model as initialised from the base seed), so a movement
criterion such as |w| * |w - w_init| is one line (issue: a user needed a walk up the stack)."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from runner_helpers import tiny_config
from shrinkbench.core.errors import ConfigError
from shrinkbench.core.store import Store
from shrinkbench.core.sweep import run_one
from shrinkbench.vision.models import create_model
from shrinkbench.vision.pruning import Strategy, prune
from shrinkbench.vision.pruning.context import RunInfo

MOVEMENT = '''
import torch
from shrinkbench import Strategy


class Movement(Strategy):
    """|w| * |w - w_init|: how far a weight moved from its initial value, times its size."""

    scope = "global"

    def score(self, ctx):
        initial = ctx.initial_weights()
        if not ctx.dry_run:  # the real run: the base model as built from the base seed, before training
            from shrinkbench.vision.models import create_model

            built = create_model(ctx.run.config["model"], seed=ctx.run.base_seed).state_dict()
            for name, w in initial.items():
                assert torch.equal(w.cpu(), built[name + ".weight"]), name
            assert ctx.run.seed == ctx.run.config["seed"] and ctx.run.base_seed == ctx.run.config["base"]["seed"]
        return {name: (w.detach().abs() * (w.detach() - initial[name]).abs()) for name, w in ctx.weights.items()}
'''


def test_prune_passes_the_run_info_to_the_scoring_context_by_hand():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 0.5, 0.5], [4.0, 3.0, 2.0, 1.0]]))
    seen = {}

    class Movement(Strategy):
        scope = "global"

        def score(self, ctx):
            seen["run"] = ctx.run
            init = ctx.initial_weights()
            return {n: w.detach().abs() * (w.detach() - init[n]).abs() for n, w in ctx.weights.items()}

    run = RunInfo({"model": "mine"}, seed=3, base_seed=7, initial_state=lambda: initial)
    masks = prune(model, Movement(), 0.5, excluded=("2",), batches=[], generator=torch.Generator(), run=run,
                  target="sparsity")
    assert seen["run"] is run
    w = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 0.5, 0.5], [4.0, 3.0, 2.0, 1.0]])
    expected = (w.abs() * (w - initial["0.weight"]).abs()).flatten()
    top6 = torch.zeros(12, dtype=torch.bool)
    top6[torch.argsort(-expected, stable=True)[:6]] = True
    assert torch.equal(masks["0"].flatten(), top6)  # the top 6 of |w| |w - w0|, computed here by hand
    assert torch.equal(model[0].weight.detach().flatten()[~top6], torch.zeros(6))


def test_initial_weights_outside_a_run_is_one_line():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))

    class NeedsInit(Strategy):
        scope = "global"

        def score(self, ctx):
            return ctx.initial_weights()

    with pytest.raises(ConfigError, match="initial weights are not known here \\(outside a run\\)"):
        prune(model, NeedsInit(), 2.0, excluded=("1",), batches=[], generator=torch.Generator())


def test_a_movement_criterion_runs_in_a_real_run(tmp_path):
    path = tmp_path / "movement.py"
    path.write_text(MOVEMENT)
    from shrinkbench.vision.validate import validate_config

    cfg = validate_config(tiny_config(strategy=f"{path}:Movement", compression=4.0, base_seed=1))
    outcome = run_one(cfg, str(tmp_path / "store"), "cpu")
    record = json.loads((tmp_path / "store" / "runs" / f"{cfg.run_id}.json").read_text())
    assert outcome.status == "ok", record.get("error")
    assert record["method_tags"] == [] and record["data_split"].startswith("val")
    kept = sum(layer["kept"] for layer in record["layers"])
    total = sum(layer["numel"] for layer in record["layers"])
    assert 0 < kept < total
    assert Store(str(tmp_path / "store")).state(cfg.run_id).status == "ok"
