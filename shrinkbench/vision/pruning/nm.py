"""N:M semi-structured sparsity: in every group of M consecutive weights along a layer's input
(reduction) dimension, exactly N are kept (NVIDIA's 2:4 sparse tensor cores; Mishra et al.
2021, "Accelerating Sparse Deep Neural Networks").

The input dimension: for a Linear weight (out, in), along `in`; for a Conv weight
(C_out, C_in/g, k_h, k_w), along the flattened C_in/g * k_h * k_w of each filter (row-major),
which is the reduction dimension of the convolution as a matrix product. A layer whose input
dimension is not a multiple of M cannot be N:M sparse: a one-line ConfigError names it.

Selection is local, so a strategy's scope plays no part: within each group the N highest
scores are kept, ties to the lower index (a stable sort). Weights already pruned (an earlier
step's masks) score -inf, so masks only shrink, and a group that already has fewer than N
alive keeps what it has.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from shrinkbench.core.errors import ConfigError
from shrinkbench.core.selection import nm_mask
from shrinkbench.vision.pruning.context import ScoringContext
from shrinkbench.vision.pruning.layers import prunable_weights
from shrinkbench.vision.pruning.masks import MaskSet
from shrinkbench.vision.pruning.selection import _checked_scores, call_score, check_finite_weights


def check_nm_layers(weights: dict[str, nn.Parameter], m: int) -> None:
    for name, weight in weights.items():
        width = weight[0].numel() if weight.dim() > 1 else weight.numel()
        if width % m:
            raise ConfigError(f"layer {name!r} has an input dimension of {width}, not a multiple of M={m}; exclude it "
                              "(exclude = [...]) or choose another M")


def prune_nm(model: nn.Module, strategy, n: int, m: int, *, excluded, batches: Sequence, generator: torch.Generator,
             masks: MaskSet | None = None, run=None) -> MaskSet:
    """Prune `model` in place to N:M sparsity with `strategy`'s weight scores."""
    from shrinkbench.core.errors import StrategyError

    weights = prunable_weights(model, excluded)
    check_nm_layers(weights, m)
    if masks is not None:
        masks.apply(model)
    if strategy.scope not in ("global", "layerwise"):
        raise StrategyError(f"strategy {strategy.name!r} has scope {strategy.scope!r}; allowed: global, layerwise")
    check_finite_weights(weights)
    ctx = ScoringContext(model, weights, batches, generator, masks, run=run)
    scores = _checked_scores(strategy, call_score(strategy, ctx), weights)
    with torch.no_grad():
        new = MaskSet({name: nm_mask(scores[name], n, m, masks[name] if masks is not None else None)
                       for name in weights})
    new.apply(model)
    return new
