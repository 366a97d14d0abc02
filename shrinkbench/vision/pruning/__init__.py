"""Pruning: which weights are prunable, strategies that score them, exact selection, masks.

    weights = prunable_weights(model, model_spec(name).excluded)
    masks = prune(model, resolve_strategy("global_magnitude"), 8.0, excluded=...,
                  batches=score_batches, generator=torch.Generator().manual_seed(seed))
    masks.attach(model)   # then each step: backward, masks.mask_gradients(), step, masks.mask_weights()

Scoring (a `Strategy`: a scope and a `score(ctx)`) is separate from selection (`prune`
keeps exactly K = round(params / c - non_prunable) prunable weights, ties broken by the
lower index, already-pruned weights never revived), so your own method is a few lines in
your own file, named on the command line as `--strategy mypkg.mymethod:SquaredMagnitude`
or `--strategy path/to/mymethod.py:SquaredMagnitude` (registering is optional):

    from shrinkbench.vision.pruning import Strategy

    class SquaredMagnitude(Strategy):
        scope = "global"                      # or "layerwise"
        def score(self, ctx):                 # higher = keep; one tensor per prunable weight
            return {name: w.detach() ** 2 for name, w in ctx.weights.items()}

`ctx` also offers `ctx.gradients()`, `ctx.activations()`, `ctx.batches`, `ctx.generator`
(the run seed's) and `ctx.masks` (see `ScoringContext`).
"""
import importlib

from shrinkbench.vision.pruning.base import SCOPES, STRATEGIES, Strategy, register_strategy  # noqa: F401
from shrinkbench.vision.pruning.strategies import list_strategies  # noqa: F401  (registers the weight criteria)
from shrinkbench.vision.structured import criteria as _channel_criteria  # noqa: F401  (registers the channel criteria)

_LAZY = {  # name -> module: these need torch, imported on first use (listing strategies needs none)
    "ScoringContext": "context", "CRITERIA": "criteria", "input_channel_scale": "criteria",
    "PRUNABLE_TYPES": "layers", "keep_count": "layers", "max_compression": "layers", "prunable_weights": "layers",
    "MaskSet": "masks", "resolve_strategy": "resolve", "strategy_source": "resolve", "apportion": "selection",
    "prune": "selection", "select": "selection", "top_k_mask": "selection",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"shrinkbench.vision.pruning.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'shrinkbench.vision.pruning' has no attribute {name!r}")


__all__ = sorted([*_LAZY, "SCOPES", "STRATEGIES", "Strategy", "list_strategies", "register_strategy"])
