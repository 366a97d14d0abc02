"""Scoring criteria: what makes a weight worth keeping (higher score = keep).

A criterion maps a `ScoringContext` to one score tensor per prunable layer, shaped like the
layer's weight. Scope (global / layerwise) is chosen separately (`strategies.py`), so the
seven built-in strategies are four criteria times the scopes, not seven classes.

    magnitude:  s = |w|
    gradient:   s = |w * g|,  g = d/dw of the mean cross-entropy over the score examples
    activation: s = |w| * a_in, a_in = mean |input| of the weight's input channel (see
                `input_channel_scale` for the layouts of Linear, grouped Conv, ConvTranspose)
    random:     s ~ Uniform[0, 1) i.i.d., drawn from the run generator, layer by layer in
                prunable-layer order
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from shrinkbench.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from shrinkbench.pruning.context import ScoringContext

Scores = dict[str, "torch.Tensor"]


@dataclass(frozen=True)
class Criterion:
    name: str
    formula: str
    needs_data: bool
    fn: Callable[["ScoringContext"], Scores]


CRITERIA: Registry[Criterion] = Registry("pruning criterion")


def criterion(formula: str, needs_data: bool = False):
    """Register the decorated function under its name, with its formula."""

    def wrap(fn: Callable[["ScoringContext"], Scores]) -> Callable[["ScoringContext"], Scores]:
        CRITERIA.register(fn.__name__, Criterion(fn.__name__, formula, needs_data, fn))
        return fn

    return wrap


@criterion("|w|")
def magnitude(ctx: ScoringContext) -> Scores:
    """s = |w|."""
    return {n: w.detach().abs() for n, w in ctx.weights.items()}


@criterion("|w * dL/dw|", needs_data=True)
def gradient(ctx: ScoringContext) -> Scores:
    """s = |w * g| with g = d/dw (1/N) sum_examples CE (first-order Taylor estimate of the
    loss change when w is removed)."""
    grads = ctx.gradients()
    return {n: (w.detach() * grads[n]).abs() for n, w in ctx.weights.items()}


def input_channel_scale(module: nn.Module, a_in: torch.Tensor) -> torch.Tensor:
    """Expand per-input-channel values `a_in` (length C_in) to a tensor that broadcasts
    against `module.weight`, matching every weight to the input channel it multiplies.

    Linear, weight (out, in):            w[o, i]        <- a[i]
    Conv, weight (C_out, C_in/g, k...):  w[o, j, ...]   <- a[(o // (C_out/g)) * (C_in/g) + j]
    ConvTranspose, weight (C_in, C_out/g, k...): w[i, ...] <- a[i]
    """
    from torch import nn

    weight = module.weight
    if isinstance(module, nn.Linear):
        return a_in.reshape(1, -1)
    trailing = (1,) * (weight.dim() - 2)
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return a_in.reshape(-1, 1, *trailing)
    groups = module.groups
    c_out, c_in_per_group = weight.shape[0], weight.shape[1]
    per_group = a_in.reshape(groups, 1, c_in_per_group)
    expanded = per_group.expand(groups, c_out // groups, c_in_per_group).reshape(c_out, c_in_per_group)
    return expanded.reshape(c_out, c_in_per_group, *trailing)


@criterion("|w| * a_in", needs_data=True)
def activation(ctx: ScoringContext) -> Scores:
    """s = |w| * a_in, a_in = mean |input| of the input channel (feature) w multiplies, over
    the score examples and spatial positions."""
    acts = ctx.activations()
    return {n: w.detach().abs() * input_channel_scale(ctx.model.get_submodule(n), acts[n])
            for n, w in ctx.weights.items()}


@criterion("u ~ U[0, 1)")
def random(ctx: ScoringContext) -> Scores:
    """s ~ Uniform[0, 1), i.i.d., from the run generator, layer by layer in layer order."""
    import torch

    device = ctx.generator.device
    return {n: torch.rand(w.shape, generator=ctx.generator, device=device,
                          dtype=torch.float64).to(w.device)
            for n, w in ctx.weights.items()}
