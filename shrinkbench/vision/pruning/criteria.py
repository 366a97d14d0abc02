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
    lamp:       s_u = w_u^2 / sum_{v >= u} w_v^2, the weights of a layer sorted by magnitude
                ascending (layer-adaptive magnitude pruning, Lee, Park, Mo, Ahn, Shin 2021)
    grasp:      s = w * (H g), g = dL/dw and H the Hessian of L, on the score batches with the
                logits divided by a temperature T (Wang, Zhang, Grosse 2020: the weights whose
                removal would most reduce the gradient flow g^T g score highest)
    synflow:    s = |w * dR/dw| with R = 1^T (prod_l |W_l|) 1, the output of the network with
                every parameter replaced by its absolute value, fed an input of ones: no data
                (Tanaka, Kunin, Yamins, Ganguli 2020), iterated over rounds (see `synflow`)
SNIP (Lee, Ajanthan, Torr 2019) is the gradient criterion |w * g| computed at initialisation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from shrinkbench.core.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from shrinkbench.vision.pruning.context import ScoringContext

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


@criterion("w_u^2 / sum_{v >= u} w_v^2 (per layer, sorted ascending)")
def lamp(ctx: ScoringContext) -> Scores:
    """LAMP score (Lee et al. 2021): within each layer, sort the squared weights ascending;
    s_u = w_u^2 / sum of the squared weights at or after u in that order. Ranked globally it
    allocates the layers' densities by themselves."""
    import torch

    out = {}
    for n, w in ctx.weights.items():
        flat = w.detach().double().reshape(-1) ** 2
        order = torch.argsort(flat, stable=True)
        ascending = flat[order]
        tail = torch.flip(torch.cumsum(torch.flip(ascending, [0]), 0), [0])
        score = torch.empty_like(flat)
        score[order] = ascending / tail.clamp_min(torch.finfo(torch.float64).tiny)
        out[n] = score.reshape(w.shape)
    return out


GRASP_TEMPERATURE = 200.0
"""Temperature of GraSP's logits (the paper's value)."""


@criterion("w * (H g)", needs_data=True)
def grasp(ctx: ScoringContext) -> Scores:
    """GraSP (Wang et al. 2020): s = w * (H g), with g = dL/dw, H the Hessian of L and
    L = the mean cross-entropy of logits / T over the score batches (T = GRASP_TEMPERATURE);
    Hg = d/dw (g_stop . dL/dw), a Hessian-vector product. The paper removes the weights with
    the largest -w * Hg (their removal reduces the gradient flow least), so higher s = keep."""
    import torch
    import torch.nn.functional as F

    from shrinkbench.vision.pruning.context import eval_mode

    batches = ctx._batches_on_device("GraSP")
    names, params = list(ctx.weights), list(ctx.weights.values())
    n_examples = sum(len(y) for _, y in batches)
    frozen = [p for p in params if not p.requires_grad]
    for p in frozen:
        p.requires_grad_(True)
    try:
        with eval_mode(ctx.model), torch.enable_grad():
            g = [torch.zeros_like(p) for p in params]
            for x, y in batches:
                loss = F.cross_entropy(ctx.model(x) / GRASP_TEMPERATURE, y, reduction="sum") / n_examples
                for acc, part in zip(g, torch.autograd.grad(loss, params, allow_unused=True)):
                    if part is not None:
                        acc += part
            hg = [torch.zeros_like(p) for p in params]
            for x, y in batches:
                loss = F.cross_entropy(ctx.model(x) / GRASP_TEMPERATURE, y, reduction="sum") / n_examples
                grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
                z = sum((part * fixed.detach()).sum() for part, fixed in zip(grads, g) if part is not None)
                for acc, part in zip(hg, torch.autograd.grad(z, params, allow_unused=True)):
                    if part is not None:
                        acc += part
    finally:
        for p in frozen:
            p.requires_grad_(False)
    return {n: (p.detach() * h).double() for n, p, h in zip(names, params, hg)}


SYNFLOW_ROUNDS = 100
"""Rounds of iterative SynFlow (the paper's 100, with the exponential schedule)."""


def synflow_network(ctx: ScoringContext):
    """A float64 copy of the model with |every parameter| in eval mode (BatchNorm is then the
    affine map of its running statistics), and its prunable weights' absolute values."""
    import copy

    import torch

    model = copy.deepcopy(ctx.model).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    magnitudes = {n: model.get_submodule(n).weight.detach().clone() for n in ctx.weights}
    return model, magnitudes


def synflow_scores(ctx: ScoringContext, keep: dict[str, "torch.Tensor"], network=None) -> Scores:
    """One round of SynFlow: |w * dR/dw| with the weights outside `keep` zeroed, an input of
    ones, R = sum of the output of `synflow_network` (built here unless given)."""
    import torch

    model, magnitudes = network if network is not None else synflow_network(ctx)
    params = [model.get_submodule(n).weight for n in ctx.weights]
    with torch.no_grad():
        for n, p in zip(ctx.weights, params):
            p.copy_(magnitudes[n] * keep[n].to(device=p.device, dtype=torch.float64))
    for p in params:
        p.requires_grad_(True)
    x = torch.ones((1, *ctx.input_shape), dtype=torch.float64, device=ctx.device)
    with torch.enable_grad():
        grads = torch.autograd.grad(model(x).sum(), params, allow_unused=True)
    return {n: (p.detach() * (g if g is not None else torch.zeros_like(p))).abs()
            for n, p, g in zip(ctx.weights, params, grads)}


@criterion("|w * dR/dw|, R = 1^T prod |W_l| 1 (100 rounds, no data)")
def synflow(ctx: ScoringContext) -> Scores:
    """Iterative SynFlow (Tanaka et al. 2020): over n = SYNFLOW_ROUNDS rounds, round r keeps
    the P (K/P)^(r/n) weights with the highest |w * dR/dw| (global, ties to the lower index),
    R computed with the weights pruned so far removed; K = the run's kept count. The scores
    returned rank the survivors of the last round first (1 + their last score, scaled into
    [0, 1)) and the others by the round they were pruned in, so the toolkit's top-K
    selection is exactly SynFlow's final mask. Data-free: the score batches are not used."""
    import torch

    from shrinkbench.core.selection import top_k_mask

    if ctx.keep is None or not ctx.input_shape:
        from shrinkbench.core.errors import StrategyError

        raise StrategyError("SynFlow needs the kept count and the model's input shape (weight granularity)")
    names = list(ctx.weights)
    sizes = [ctx.weights[n].numel() for n in names]
    alive = {n: (ctx.masks[n].clone() if ctx.masks is not None else torch.ones_like(ctx.weights[n], dtype=torch.bool))
             for n in names}
    total = sum(int(a.sum()) for a in alive.values())
    pruned_in = torch.full((sum(sizes),), 0.0, dtype=torch.float64)
    last = None
    network = synflow_network(ctx)
    for r in range(1, SYNFLOW_ROUNDS + 1):
        scores = synflow_scores(ctx, alive, network)
        flat = torch.cat([scores[n].reshape(-1).double().cpu().masked_fill(~alive[n].reshape(-1).cpu(), float("-inf"))
                          for n in names])
        k = max(ctx.keep, int(round(total * (ctx.keep / total) ** (r / SYNFLOW_ROUNDS))))
        keep = top_k_mask(flat, k)
        newly = torch.cat([alive[n].reshape(-1).cpu() for n in names]) & ~keep
        pruned_in[newly] = (r - SYNFLOW_ROUNDS) / SYNFLOW_ROUNDS - 1.0  # earlier rounds lower, all below 0
        for n, piece in zip(names, keep.split(sizes)):
            alive[n] = piece.reshape(alive[n].shape).to(alive[n].device)
        last = flat
    finite = torch.where(torch.isfinite(last), last, torch.zeros_like(last))
    scale = float(finite.max()) if finite.numel() and float(finite.max()) > 0 else 1.0
    kept = torch.cat([alive[n].reshape(-1).cpu() for n in names])
    out = torch.where(kept, 1.0 + 0.999 * finite / scale, torch.minimum(pruned_in, torch.full_like(pruned_in, -1e-9)))
    never_alive = torch.cat([(ctx.masks[n] if ctx.masks is not None else torch.ones_like(ctx.weights[n], dtype=torch.bool))
                             .reshape(-1).cpu() for n in names])
    out = torch.where(never_alive, out, torch.full_like(out, -3.0))
    return {n: piece.reshape(ctx.weights[n].shape).to(ctx.weights[n].device) for n, piece in zip(names, out.split(sizes))}


@criterion("u ~ U[0, 1)")
def random(ctx: ScoringContext) -> Scores:
    """s ~ Uniform[0, 1), i.i.d., from the run generator, layer by layer in layer order."""
    import torch

    device = ctx.generator.device
    return {n: torch.rand(w.shape, generator=ctx.generator, device=device,
                          dtype=torch.float64).to(w.device)
            for n, w in ctx.weights.items()}
