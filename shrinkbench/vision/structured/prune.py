"""Channel granularity: score, select exactly, mask, and compact (see `shrinkbench.vision.structured`).

`prune_channels` finds the model's dependency groups, asks the strategy for group scores
(`ChannelStrategy.score_groups`), removes groups along the scope's order until the target is
reached (`shrinkbench.vision.structured.select`), and zeroes everything the removed groups hold:
their filter rows and biases, normalisation scales and shifts, and every consumer's input
columns (so the masked model counts, and computes, exactly what the compacted one does).
The masks remember their groups, so the deployed model is `compact(model, groups, removed)`.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import torch
from torch import nn

from shrinkbench.core.errors import ConfigError, StrategyError
from shrinkbench.vision.pruning.context import ScoringContext
from shrinkbench.vision.pruning.masks import MaskSet
from shrinkbench.vision.pruning.selection import call_score, check_finite_weights
from shrinkbench.vision.structured.compact import compact, removed_indices
from shrinkbench.vision.structured.counting import Counter
from shrinkbench.vision.structured.graph import dependency_groups
from shrinkbench.vision.structured.groups import GroupSet
from shrinkbench.vision.structured.select import largest_reachable, remove_to_target, removal_order


class ChannelScoringContext(ScoringContext):
    """A `ScoringContext` whose `weights` are the producer layers' weights, with the model's
    dependency `groups` and per-batch gradients of any parameters."""

    def __init__(self, model, weights, batches, generator, masks, groups: GroupSet, dry_run: bool = False,
                 input_shape: tuple[int, ...] = (), run=None):
        super().__init__(model, weights, batches, generator, masks, dry_run=dry_run, input_shape=input_shape,
                         run=run)
        self.groups = groups

    def parameter_gradients(self, names: Sequence[str]) -> list[dict[str, torch.Tensor]]:
        """Per score batch, d/dp of the mean cross-entropy of that batch for the named
        parameters (eval mode; the model's flags restored)."""
        import torch.nn.functional as F

        from shrinkbench.vision.pruning.context import eval_mode

        batches = self._batches_on_device("Taylor")
        params = [self.model.get_parameter(n) for n in names]
        out = []
        with eval_mode(self.model), torch.enable_grad():
            for x, y in batches:
                grads = torch.autograd.grad(F.cross_entropy(self.model(x), y), params, allow_unused=True)
                out.append({n: (g if g is not None else torch.zeros_like(p)) for n, g, p in zip(names, grads, params)})
        return out


def checked_channel_scores(strategy, scores, ctx: ChannelScoringContext) -> dict[str, torch.Tensor]:
    """A channel strategy's per-layer scores, checked: a dict with one finite 1-D tensor of the
    layer's output channels for every producer layer."""
    label = strategy.name
    if not isinstance(scores, dict):
        raise StrategyError(f"strategy {label!r}: score() must return a dict layer -> tensor of channel scores, "
                            f"got {type(scores).__name__}")
    checked = {}
    for layer, channels in ctx.groups.layers.items():
        score = scores.get(layer)
        if not isinstance(score, torch.Tensor):
            raise StrategyError(f"strategy {label!r} returned no channel scores for layer {layer!r}")
        if tuple(score.shape) != (channels,):
            raise StrategyError(f"strategy {label!r}: channel scores of layer {layer!r} have shape "
                                f"{tuple(score.shape)}, expected ({channels},) (one per output channel)")
        if not bool(torch.isfinite(score).all()):
            raise StrategyError(f"strategy {label!r} gave non-finite scores (nan or inf) for layer {layer!r}")
        checked[layer] = score.detach().double().cpu()
    return checked


def _group_scores(strategy, ctx) -> torch.Tensor:
    if not hasattr(strategy, "score_groups"):
        raise StrategyError(f"strategy {strategy.name!r} scores single weights; channel granularity needs a channel "
                            "strategy (a shrinkbench.vision.structured.ChannelStrategy, see `shrinkbench strategies`)")
    scores = call_score(_GroupScorer(strategy), ctx)
    if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (len(ctx.groups),):
        raise StrategyError(f"strategy {strategy.name!r}: score_groups() must give one score per group "
                            f"({len(ctx.groups)}), got {getattr(scores, 'shape', type(scores).__name__)}")
    if not bool(torch.isfinite(scores).all()):
        raise StrategyError(f"strategy {strategy.name!r} gave non-finite group scores (nan or inf)")
    return scores.detach().double().cpu()


class _GroupScorer:
    """Lets `call_score` (one-line errors for whatever user code raises) call score_groups."""

    def __init__(self, strategy):
        self.strategy, self.name = strategy, strategy.name

    def score(self, ctx):
        return self.strategy.score_groups(ctx)


@functools.lru_cache(maxsize=32)
def _meta_groups(model_name: str, exclude: tuple[str, ...] | None) -> tuple[GroupSet, object, list[str]]:
    """Groups, MACs profile and prunable layers of a zoo model, from its meta-device build."""
    from shrinkbench.core.macs import count_macs
    from shrinkbench.vision.models import build_on_meta, model_spec
    from shrinkbench.vision.pruning.layers import prunable_weights

    spec = model_spec(model_name)
    excluded = spec.excluded if exclude is None else exclude
    model = build_on_meta(model_name)
    return (dependency_groups(model, spec.input_shape, excluded), count_macs(model, spec.input_shape),
            list(prunable_weights(model, excluded)))


def groups_of(model_name: str, exclude: tuple[str, ...] | None = None) -> GroupSet:
    """The dependency groups of a zoo model (cached per process)."""
    return _meta_groups(model_name, exclude)[0]


def check_target(model_name: str, exclude, strategy, target: str, value: float, round_to: int = 1) -> None:
    """Before a sweep: the model can be channel-pruned, the strategy suits it, and the target
    is within reach (a one-line error naming the largest reachable value; with `round_to`,
    with every layer keeping a multiple of it)."""
    from shrinkbench.core.errors import CompressionError

    groups, profile, prunable = _meta_groups(model_name, exclude)
    if not len(groups):
        raise ConfigError(f"model {model_name} has no channel that can be removed ({'; '.join(groups.frozen)})")
    if hasattr(strategy, "check"):
        strategy.check(groups)
    largest = largest_reachable(groups, Counter(groups, profile, prunable), target, round_to)
    if value > largest * (1 + 1e-9):
        shown = math.floor(largest * 1e4) / 1e4  # rounded down: never a value that is itself refused
        keeping = "one channel" if round_to == 1 else f"{round_to} channels (round_to)"
        raise CompressionError(f"{target} {value:.10g} cannot be reached by removing channels of {model_name}: the "
                               f"largest reachable is {shown:.10g} (every layer keeping {keeping})")


def _removed_by(groups: GroupSet, masks: MaskSet | None, model: nn.Module) -> list[int]:
    """Groups an earlier step removed: every producer row of theirs is masked."""
    if masks is None or getattr(masks, "structure", None) is None:
        return []
    previous_groups, removed = masks.structure
    return list(removed) if previous_groups is groups else []


def channel_masks(model: nn.Module, groups: GroupSet, removed: Sequence[int], prunable: Sequence[str]) -> MaskSet:
    """Masks zeroing everything the removed groups hold (see the module docstring)."""
    params = dict(model.named_parameters())
    gone = removed_indices(groups, removed)
    masks: dict[str, torch.Tensor] = {}
    for (tensor, dim), index in gone.items():
        if tensor not in params:  # a virtual slice (shortcut positions, norm statistics)
            continue
        mask = masks.setdefault(tensor, torch.ones_like(params[tensor], dtype=torch.bool))
        mask.index_fill_(dim, torch.tensor(sorted(index), dtype=torch.long, device=mask.device), False)
    main = {layer: masks.pop(f"{layer}.weight", None) for layer in prunable}
    main = {layer: m if m is not None else torch.ones_like(params[f"{layer}.weight"], dtype=torch.bool)
            for layer, m in main.items()}
    result = MaskSet(main, masks)
    result.structure = (groups, tuple(removed))
    return result


_GROUPS: dict[tuple, GroupSet] = {}


def _groups_for(model: nn.Module, input_shape: tuple[int, ...], excluded) -> GroupSet:
    from shrinkbench.vision.models import fingerprint

    key = (fingerprint(model), tuple(input_shape), tuple(sorted(excluded)))
    if key not in _GROUPS:
        _GROUPS[key] = dependency_groups(model, input_shape, excluded)
    return _GROUPS[key]


def prune_channels(model: nn.Module, strategy, target: str, value: float, *, excluded, batches: Sequence,
                   generator: torch.Generator, masks: MaskSet | None = None,
                   input_shape: tuple[int, ...] = (), run=None, round_to: int = 1) -> MaskSet:
    """Prune `model` in place by removing whole channel groups until `target` reaches `value`
    (with `round_to` > 1, every layer keeping a multiple of it: `shrinkbench.vision.structured.select`)."""
    from shrinkbench.core.macs import count_macs
    from shrinkbench.vision.pruning.layers import prunable_weights

    if strategy.scope not in ("global", "layerwise"):
        raise StrategyError(f"strategy {strategy.name!r} has scope {strategy.scope!r}; allowed: global, layerwise")
    weights = prunable_weights(model, excluded)
    groups = _groups_for(model, input_shape, excluded)
    if not len(groups):
        raise ConfigError(f"{type(model).__name__} has no channel that can be removed ({'; '.join(groups.frozen)})")
    already = _removed_by(groups, masks, model)
    if masks is not None:
        masks.apply(model)
    check_finite_weights(weights)
    producers = {name: w for name, w in weights.items() if name in groups.layers}
    ctx = ChannelScoringContext(model, producers, batches, generator, masks, groups, input_shape=input_shape,
                                run=run)
    scores = _group_scores(strategy, ctx)
    counter = Counter(groups, count_macs(model, input_shape), list(weights))
    order = removal_order(groups, scores.tolist(), strategy.scope, already)
    try:
        removed = remove_to_target(groups, counter, order, target, value, already, round_to)
    except ConfigError:
        raise
    except Exception as error:  # CompressionError for these scores: this run fails, the sweep goes on
        raise StrategyError(f"strategy {strategy.name!r}: {error}") from None
    new = channel_masks(model, groups, removed, list(weights))
    new.apply(model)
    return new


def compact_masked(model: nn.Module, masks: MaskSet | None) -> nn.Module:
    """The deployed, smaller model of a channel-pruned one (its masks remember the groups)."""
    if masks is None or getattr(masks, "structure", None) is None:
        return model
    groups, removed = masks.structure
    return compact(model, groups, removed)
