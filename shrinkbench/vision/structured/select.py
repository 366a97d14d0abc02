"""Which channel groups to remove: an order by score and scope, then the shortest prefix of
that order that reaches the target.

Order. Lower score = removed first; equal scores go by group index (stable). Groups already
removed by an earlier step come first (masks only shrink).

- global scope: one ranking over all groups;
- layerwise scope: each layer (a group counts in its first producer layer) is ranked on its
  own, and the rankings are interleaved by `(rank + 1) / n_layer` (ties by layer order), so
  that at every point of the order each layer has removed the same fraction of its groups,
  to within one group.

Rounding rule (exact to within one group). Groups are removed in that order, skipping any
whose removal would leave a layer (or a tensor dimension it touches) without a channel,
until the target (compression, speedup or sparsity, `shrinkbench.vision.structured.counting`) is
reached: the result reaches the target and removing one group fewer would not. A target that
the order cannot reach is a `CompressionError` naming the largest value it reached.

Rounded channel counts (`round_to` = r > 1; Torch-Pruning's `round_to`): every layer keeps a
multiple of r channels (a layer's channels are its groups, `GroupSet.of_layer`; coupled
producers share them), so the kernels run on widths they vectorise well (8 or 16 floats).
The same order is walked, but a layer's groups are removed in blocks: a group reached in the
order waits until its layer has a whole block waiting, then the block is removed at once. A
block is what brings the layer's kept count down to the next multiple of r below it (its
first block takes n mod r groups when the layer's n channels are not a multiple of r, then r
at a time). A layer never goes below r channels; a layer with at most r channels keeps all
of them. So each layer is rounded DOWN from the count the unrounded walk would give it at the
same point of the order, or kept whole; the walk stops at the first block after which the
target is reached: the result reaches the target, and removing that last block (at most r
groups of one layer) would not; exact to within one block, as the unrounded rule is to within
one group.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from shrinkbench.core.errors import CompressionError
from shrinkbench.vision.structured.counting import Counter
from shrinkbench.vision.structured.groups import GroupSet


def removal_order(groups: GroupSet, scores: Sequence[float], scope: str,
                  already: Iterable[int] = ()) -> list[int]:
    """Group indices in the order they are removed (see the module docstring)."""
    already = list(dict.fromkeys(already))
    first = set(already)
    rest = [g.index for g in groups.groups if g.index not in first]
    if scope == "global":
        return already + sorted(rest, key=lambda i: (float(scores[i]), i))
    if scope != "layerwise":
        raise ValueError(f"scope must be global or layerwise, got {scope!r}")
    per_layer = groups.of_layer()
    keyed = []
    for layer_rank, members in enumerate(per_layer.values()):
        alive = sorted((i for i in members if i not in first), key=lambda i: (float(scores[i]), i))
        n = len(members)
        removed_before = n - len(alive)
        for rank, i in enumerate(alive):
            keyed.append(((removed_before + rank + 1) / n, layer_rank, rank, i))
    return already + [i for *_, i in sorted(keyed)]


def remove_to_target(groups: GroupSet, counter: Counter, order: Sequence[int], target: str,
                     value: float, already: Iterable[int] = (), round_to: int = 1) -> list[int]:
    """Remove groups along `order` until `counter.value(target) >= value`; returns the
    removed indices (those in `already` are removed first, whatever the target). With
    `round_to` > 1, whole blocks per layer (see the module docstring)."""
    removed = []
    done = set(already)
    for i in order:
        if i in done:
            counter.remove(groups.groups[i])
            removed.append(i)
    if round_to > 1:
        return _remove_in_blocks(groups, counter, order, target, value, done, removed, round_to)
    for i in order:
        if counter.value(target) >= value * (1 - 1e-12):
            return removed
        if i in done:
            continue
        group = groups.groups[i]
        if counter.removable(group):
            counter.remove(group)
            removed.append(i)
    if counter.value(target) >= value * (1 - 1e-12):
        return removed
    raise CompressionError(f"{target} {value:g} cannot be reached by removing channels: removing every group "
                           f"that leaves each layer a channel reaches {counter.value(target):.6g}")


def block_size(kept: int, round_to: int) -> int:
    """Groups the next block of a layer keeping `kept` channels removes: down to the next
    multiple of `round_to` (0: the layer cannot go lower, it would keep fewer than round_to)."""
    step = kept % round_to or round_to
    return step if kept - step >= round_to else 0


def _remove_in_blocks(groups: GroupSet, counter: Counter, order: Sequence[int], target: str, value: float,
                      done: set, removed: list[int], round_to: int) -> list[int]:
    layer_of = {g.index: g.layer for g in groups.groups}
    kept = {layer: sum(1 for i in members if i not in done) for layer, members in groups.of_layer().items()}
    waiting: dict[str, list[int]] = {layer: [] for layer in kept}
    for i in order:
        if counter.value(target) >= value * (1 - 1e-12):
            return removed
        if i in done:
            continue
        layer = layer_of[i]
        waiting[layer].append(i)
        step = block_size(kept[layer], round_to)
        if step == 0 or len(waiting[layer]) < step:
            continue
        block, waiting[layer] = waiting[layer], []
        if not all(counter.removable(groups.groups[j]) for j in block):
            continue
        for j in block:  # the groups of one layer touch disjoint entries: removable together
            counter.remove(groups.groups[j])
            removed.append(j)
        kept[layer] -= len(block)
    if counter.value(target) >= value * (1 - 1e-12):
        return removed
    raise CompressionError(f"{target} {value:g} cannot be reached by removing channels in blocks of {round_to}: "
                           f"every layer kept at a multiple of {round_to} (at least {round_to}) reaches "
                           f"{counter.value(target):.6g}")


def largest_reachable(groups: GroupSet, counter: Counter, target: str, round_to: int = 1) -> float:
    """The value `target` reaches when every group is removed that can be (index order,
    each layer keeping a channel, or with `round_to` > 1 keeping `round_to` channels, all of
    them where it has no more): what a target may ask for, about (the exact limit depends on
    which channel each layer keeps)."""
    if round_to > 1:
        for members in groups.of_layer().values():
            for i in members[:max(0, len(members) - round_to)]:
                if counter.removable(groups.groups[i]):
                    counter.remove(groups.groups[i])
        return counter.value(target)
    for group in groups.groups:
        if counter.removable(group):
            counter.remove(group)
    return counter.value(target)
