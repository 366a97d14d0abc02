"""Exact selection: keep exactly K weights, ties broken deterministically, masks only shrink.

Order: weights are ranked by (score descending, flat index ascending), i.e. a stable sort;
among equal scores the weight with the lower index is kept. The flat index of the global
ranking runs over the prunable layers in `named_modules` order, each flattened row-major.
Weights already pruned get score -inf and are never revived. It is computed without a full
sort: t = the K-th largest score (`kthvalue`), keep every score > t, then the
lowest-indexed scores == t until K are kept.

Layerwise scope: with f = K / P (P = prunable weights), layer l (n_l weights) keeps
k_l = floor(K n_l / P) or that + 1, the +1s going to the largest remainders (K n_l mod P,
ties to the earlier layer) so that sum k_l = K exactly and |k_l - f n_l| < 1
(Hamilton apportionment, exact integer arithmetic). Where a layer has fewer weights alive
than its share (after an earlier, differently scoped pruning step), it keeps all it has and
the others share the rest in proportion to their sizes.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from shrinkbench.core.selection import top_k_mask  # noqa: F401  (the vision selection's primitive)
from shrinkbench.core.errors import CompressionError, ConfigError, ShrinkBenchError, StrategyError
from shrinkbench.vision.pruning.context import Batch, ScoringContext
from shrinkbench.vision.pruning.layers import keep_count, keep_count_for_sparsity, prunable_weights
from shrinkbench.vision.pruning.masks import MaskSet
from shrinkbench.vision.pruning.base import SCOPES, Strategy


def apportion(total: int, sizes: Sequence[int], capacities: Sequence[int]) -> list[int]:
    """Split `total` over layers in proportion to `sizes`, each at most its capacity
    (largest-remainder rounding in exact integers; see the module docstring)."""
    if total > sum(capacities):
        raise ValueError(f"cannot place {total} in capacities summing to {sum(capacities)}")
    counts = [0] * len(sizes)
    free = list(range(len(sizes)))
    remaining = total
    while True:  # layers whose proportional share exceeds their capacity keep all they can
        size_sum = sum(sizes[i] for i in free)
        capped = [i for i in free if remaining * sizes[i] > capacities[i] * size_sum]
        if not capped:
            break
        for i in capped:
            counts[i] = capacities[i]
            remaining -= capacities[i]
        free = [i for i in free if i not in capped]
    size_sum = sum(sizes[i] for i in free)
    if not free or size_sum == 0:
        return counts
    remainders = {}
    for i in free:
        counts[i], remainders[i] = divmod(remaining * sizes[i], size_sum)
    extra = remaining - sum(counts[i] for i in free)
    for i in sorted(free, key=lambda i: (-remainders[i], i))[:extra]:
        counts[i] += 1
    return counts


def _checked_scores(strategy: Strategy, scores, weights: dict[str, nn.Parameter]) -> dict[str, torch.Tensor]:
    label = strategy.name
    if not isinstance(scores, dict):
        raise StrategyError(f"strategy {label!r}: score() must return a dict name -> tensor, "
                            f"got {type(scores).__name__}")
    extra = [n for n in scores if n not in weights]
    if extra:
        raise StrategyError(f"strategy {label!r} scored {extra[0]!r}, which is not a prunable layer")
    checked = {}
    for name, weight in weights.items():
        score = scores.get(name)
        if not isinstance(score, torch.Tensor):
            raise StrategyError(f"strategy {label!r} returned no score tensor for layer {name!r}")
        if score.shape != weight.shape:
            raise StrategyError(f"strategy {label!r}: score of layer {name!r} has shape "
                                f"{tuple(score.shape)}, its weight {tuple(weight.shape)}")
        score = score.detach()
        if not score.is_floating_point():
            score = score.double()
        if not bool(torch.isfinite(score).all()):
            raise StrategyError(f"strategy {label!r} gave non-finite scores (nan or inf) for "
                                f"layer {name!r}")
        checked[name] = score.to(weight.device)
    return checked


def check_finite_weights(weights: dict[str, nn.Parameter]) -> None:
    """A model whose weights are already nan or inf cannot be pruned: say where the fault is."""
    for name, weight in weights.items():
        if not bool(torch.isfinite(weight.detach()).all()):
            raise ConfigError(f"layer {name!r} holds non-finite weights (nan or inf) before pruning: the "
                              f"starting weights are broken (a checkpoint or a diverged training), not the strategy")


def call_score(strategy: Strategy, ctx) -> object:
    """`strategy.score(ctx)`; whatever a user's code raises (or exits with) becomes one
    `StrategyError` line; the toolkit's own errors, running out of memory (recorded as such
    by the sweep) and Ctrl-C pass through."""
    from shrinkbench.core.device import is_out_of_memory

    try:
        return strategy.score(ctx)
    except (KeyboardInterrupt, ShrinkBenchError):
        raise
    except BaseException as error:  # noqa: BLE001 - a user's code: report it, never crash
        if is_out_of_memory(error):
            raise
        what = (f"called sys.exit({error.code!r})" if isinstance(error, SystemExit)
                else f"raised {type(error).__name__}: {' '.join(str(error).split())}")
        raise StrategyError(f"strategy {strategy.name!r}: score() {what}"[:500]) from None


def erk_weights(shapes: Sequence[tuple[int, ...]]) -> list[int]:
    """Erdos-Renyi-Kernel (Evci et al. 2020): a layer's density is proportional to
    (sum of its weight's dimensions) / (product of them), so its kept COUNT is proportional to
    the sum of its dimensions, n_out + n_in (+ k_h + k_w for a convolution)."""
    return [sum(shape) for shape in shapes]


def allocate_layerwise(k: int, sizes: list[int], capacities: list[int], shapes) -> list[int]:
    """Each layer keeps the same fraction k / P (Hamilton apportionment, exact)."""
    return apportion(k, sizes, capacities)


def allocate_erk(k: int, sizes: list[int], capacities: list[int], shapes) -> list[int]:
    """Kept counts proportional to ERK's weights, capped at each layer's size (a layer ERK
    would make denser than dense stays dense; the rest share what is left)."""
    return apportion(k, erk_weights(shapes), capacities)


def allocate_first_dense(k: int, sizes: list[int], capacities: list[int], shapes) -> list[int]:
    """The first prunable layer stays dense (Gale, Elsen, Hooker 2019); the others share the
    rest in proportion to their sizes."""
    if k < capacities[0]:
        raise CompressionError(f"keeping the first layer dense needs {capacities[0]:,} weights, the target keeps "
                               f"only {k:,}; choose a smaller compression")
    return [capacities[0]] + apportion(k - capacities[0], sizes[1:], capacities[1:])


def check_allocation(scope: str, k: int, shapes: Sequence[tuple[int, ...]]) -> None:
    """Raise (one line) if `scope`'s allocation cannot keep exactly `k` of fresh layers of
    these shapes, e.g. first_dense with a target that leaves fewer weights than layer 1 has."""
    import math as _math

    sizes = [_math.prod(s) for s in shapes]
    ALLOCATIONS[scope](k, sizes, sizes, list(shapes))


ALLOCATIONS = {"layerwise": allocate_layerwise, "erk": allocate_erk, "first_dense": allocate_first_dense}
"""Per-layer scopes: how many weights each layer keeps, before each ranks its own."""


def select(scores: dict[str, torch.Tensor], k: int, scope: str,
           alive: MaskSet | None = None) -> MaskSet:
    """Masks keeping exactly k weights by `scope` (global, or a per-layer allocation of
    `ALLOCATIONS`); weights not alive (alive mask False) get score -inf and stay pruned."""
    if scope not in SCOPES:
        raise ConfigError(f"strategy scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    dtype = torch.float32
    for score in scores.values():
        dtype = torch.promote_types(dtype, score.dtype)
    flat = {}
    for name, score in scores.items():
        s = score.reshape(-1).to(dtype)
        if alive is not None:
            s = s.masked_fill(~alive[name].reshape(-1).to(s.device), float("-inf"))
        flat[name] = s
    if scope == "global":
        keep = top_k_mask(torch.cat(list(flat.values())), k)
        pieces = keep.split([s.numel() for s in flat.values()])
    else:
        sizes = [s.numel() for s in flat.values()]
        capacities = (sizes if alive is None else
                      [int(alive[n].sum().item()) for n in flat])
        counts = ALLOCATIONS[scope](k, sizes, capacities, [tuple(scores[n].shape) for n in flat])
        pieces = [top_k_mask(s, c) for s, c in zip(flat.values(), counts)]
    return MaskSet({n: p.reshape(scores[n].shape) for n, p in zip(flat, pieces)})


def speedup_keep_count(scores: dict[str, torch.Tensor], scope: str, alive: MaskSet | None, positions: dict[str, int],
                       fixed_macs: int, total_macs: int, speedup: float) -> int:
    """The largest K whose selection (by `scope`) reaches `speedup` = total MACs / (MACs of the
    layers not pruned + sum over prunable layers of positions x kept weights).

    Global scope: the kept set grows one weight at a time in score order, so the MACs are
    monotone in K and K is exact (a sort and a cumulative sum). Layerwise scope: bisection on
    K over the allocation's per-layer counts (whose MACs can, by a weight, fall as K grows).
    """
    names = list(scores)
    budget = total_macs / speedup - fixed_macs  # the MACs the kept prunable weights may use
    sizes = [scores[n].numel() for n in names]
    capacity = [s if alive is None else int(alive[n].sum().item()) for n, s in zip(names, sizes)]
    if budget < min(positions[n] for n in names):
        raise CompressionError(f"speedup {speedup:g} cannot be reached by masking weights: the layers that are not "
                               f"pruned alone cost {fixed_macs:,} of {total_macs:,} MACs")
    if scope == "global":
        flat = torch.cat([s.reshape(-1).double() if alive is None else
                          s.reshape(-1).double().masked_fill(~alive[n].reshape(-1), float("-inf"))
                          for n, s in scores.items()])
        cost = torch.cat([torch.full((s,), float(positions[n]), dtype=torch.float64) for n, s in zip(names, sizes)])
        order = torch.argsort(-flat, stable=True)
        spent = torch.cumsum(cost[order], 0)
        k = int(torch.searchsorted(spent, torch.tensor(budget, dtype=torch.float64), right=True))
        return max(1, min(k, sum(capacity)))
    low, high = (capacity[0] if scope == "first_dense" else 1), sum(capacity)
    shapes = [tuple(scores[n].shape) for n in names]
    while low < high:
        mid = (low + high + 1) // 2
        macs = sum(positions[n] * c for n, c in zip(names, ALLOCATIONS[scope](mid, sizes, capacity, shapes)))
        low, high = (mid, high) if macs <= budget else (low, mid - 1)
    return low


def _macs_of(model: nn.Module, weights: dict[str, nn.Parameter], input_shape) -> tuple[dict[str, int], int, int]:
    """(positions of each prunable layer, MACs of the counted layers that are not pruned, all MACs)."""
    from shrinkbench.core.macs import count_macs

    if not input_shape:
        raise ConfigError("a speedup target needs the model's input shape")
    profile = count_macs(model, input_shape)
    positions: dict[str, int] = {}
    fixed = 0
    for layer in profile.layers:
        if layer.name in weights:
            positions[layer.name] = positions.get(layer.name, 0) + layer.positions
        else:
            fixed += layer.macs
    return positions, fixed, profile.macs


def prune(model: nn.Module, strategy: Strategy, compression: float, *, excluded,
          batches: Sequence[Batch], generator: torch.Generator,
          masks: MaskSet | None = None, dry_run: bool = False, target: str = "compression",
          input_shape: tuple[int, ...] = (), run=None) -> MaskSet:
    """Prune `model` in place to `compression` (params / params_nonzero) with `strategy`, or,
    with `target="sparsity"`, to that fraction of the prunable weights removed, or with
    `target="speedup"`, to that ratio of dense to nonzero MACs (needs `input_shape`).

    Keeps exactly K prunable weights (`keep_count`, `keep_count_for_sparsity`,
    `speedup_keep_count`): scores from `strategy.score`, the top K chosen by its scope (ties to
    the lower index), weights pruned by `masks` never revived. Zeroes the pruned weights and
    returns the masks.
    """
    weights = prunable_weights(model, excluded)
    if target == "sparsity":
        k = keep_count_for_sparsity(weights, compression)
    elif target == "compression":
        k = keep_count(model, weights, compression)
    elif target == "speedup":
        k = None  # depends on which weights the scores keep
    else:
        raise ConfigError(f"weight granularity takes targets compression, sparsity or speedup, not {target!r}")
    if not weights:
        return MaskSet({})
    if masks is not None:
        if masks.names() != list(weights):
            raise ConfigError(f"current masks cover layers {masks.names()}, but the prunable "
                              f"layers are {list(weights)}")
        masks.apply(model)
        alive = masks.kept()
        if k is not None and k > alive:
            raise CompressionError(f"{target} {compression:g} keeps {k:,} prunable weights but "
                                   f"only {alive:,} are left unpruned; masks only shrink, so "
                                   f"prune to a compression at least as high as before")
    if strategy.scope not in SCOPES:
        raise StrategyError(f"strategy {strategy.name!r} has scope {strategy.scope!r}; "
                            f"allowed: {', '.join(SCOPES)}")
    check_finite_weights(weights)
    ctx = ScoringContext(model, weights, batches, generator, masks, dry_run=dry_run, keep=k, input_shape=input_shape,
                         run=run)
    scores = _checked_scores(strategy, call_score(strategy, ctx), weights)
    with torch.no_grad():
        if k is None:
            k = speedup_keep_count(scores, strategy.scope, masks, *_macs_of(model, weights, input_shape), compression)
        new_masks = select(scores, k, strategy.scope, masks)
    new_masks.apply(model)
    return new_masks
