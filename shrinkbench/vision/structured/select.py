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
                     value: float, already: Iterable[int] = ()) -> list[int]:
    """Remove groups along `order` until `counter.value(target) >= value`; returns the
    removed indices (those in `already` are removed first, whatever the target)."""
    removed = []
    done = set(already)
    for i in order:
        if i in done:
            counter.remove(groups.groups[i])
            removed.append(i)
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


def largest_reachable(groups: GroupSet, counter: Counter, target: str) -> float:
    """The value `target` reaches when every group is removed that can be (index order,
    each layer keeping a channel): what a target may ask for, about (the exact limit
    depends on which channel each layer keeps)."""
    for group in groups.groups:
        if counter.removable(group):
            counter.remove(group)
    return counter.value(target)
