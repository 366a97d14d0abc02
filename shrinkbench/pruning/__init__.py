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

    from shrinkbench.pruning import Strategy

    class SquaredMagnitude(Strategy):
        scope = "global"                      # or "layerwise"
        def score(self, ctx):                 # higher = keep; one tensor per prunable weight
            return {name: w.detach() ** 2 for name, w in ctx.weights.items()}

`ctx` also offers `ctx.gradients()`, `ctx.activations()`, `ctx.batches`, `ctx.generator`
(the run seed's) and `ctx.masks` (see `ScoringContext`).
"""
from shrinkbench.pruning.context import ScoringContext
from shrinkbench.pruning.criteria import CRITERIA, input_channel_scale
from shrinkbench.pruning.layers import (PRUNABLE_TYPES, keep_count, max_compression,
                                        prunable_weights)
from shrinkbench.pruning.masks import MaskSet
from shrinkbench.pruning.resolve import resolve_strategy, strategy_source
from shrinkbench.pruning.selection import apportion, prune, select, top_k_mask
from shrinkbench.pruning.strategies import (SCOPES, STRATEGIES, Strategy, list_strategies,
                                            register_strategy)

__all__ = ["CRITERIA", "MaskSet", "PRUNABLE_TYPES", "SCOPES", "STRATEGIES", "ScoringContext",
           "Strategy", "apportion", "input_channel_scale", "keep_count", "list_strategies",
           "max_compression", "prunable_weights", "prune", "register_strategy",
           "resolve_strategy", "select", "strategy_source", "top_k_mask"]
