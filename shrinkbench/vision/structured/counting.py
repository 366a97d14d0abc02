"""Exact parameters and MACs of a channel removal, counted from the shapes alone.

Removing groups deletes whole index ranges of tensors, so a tensor's remaining size is
`prod_d (shape_d - removed_d)`, with `removed_d` the entries its removed groups take from
dimension d (each entry belongs to exactly one group, so the removals add up). Then

    params_kept = sum over all parameters of their remaining size
    macs_kept   = sum over the counted layers of positions x remaining size of the weight
                  (the one MACs convention: `shrinkbench.core.macs`)

which are the `params_nonzero` and `macs_nonzero` that `shrinkbench.core.metrics` measures on the
masked model, and the real params and MACs of the compacted one (parameters that are exactly
zero by chance aside). `Counter.remove` updates them in O(size of the group).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from shrinkbench.vision.structured.groups import ChannelGroup, GroupSet

if TYPE_CHECKING:  # pragma: no cover
    from shrinkbench.core.macs import MacsProfile

TARGETS = ("compression", "speedup", "sparsity")
"""What a channel removal can be sized by: params / kept params, MACs / kept MACs, or the
fraction of the prunable weights removed."""


class Counter:
    """Kept params, MACs and prunable weights of a model as groups are removed."""

    def __init__(self, groups: GroupSet, profile: "MacsProfile", prunable: list[str]):
        self.shapes = groups.shapes
        self.removed: dict[tuple[str, int], int] = {}
        self.kept = {name: math.prod(shape) for name, shape in self.shapes.items()}
        self.positions: dict[str, int] = {}
        for layer in profile.layers:  # a layer called twice counts twice
            key = f"{layer.name}.weight"
            self.positions[key] = self.positions.get(key, 0) + layer.positions
        self.prunable = {f"{name}.weight" for name in prunable}
        self.params_total = sum(self.kept.values())
        self.macs_total = sum(p * self.kept[k] for k, p in self.positions.items())
        self.prunable_total = sum(self.kept[k] for k in self.prunable)
        self.params = self.params_total
        self.macs = self.macs_total
        self.prunable_kept = self.prunable_total

    def _size(self, tensor: str) -> int:
        shape = self.shapes[tensor]
        return math.prod(size - self.removed.get((tensor, d), 0) for d, size in enumerate(shape))

    def removable(self, group: ChannelGroup) -> bool:
        """Whether removing `group` leaves every dimension it touches at least one entry."""
        return all(self.shapes[s.tensor][s.dim] - self.removed.get((s.tensor, s.dim), 0) - len(s.index) >= 1
                   for s in group.slices if not s.virtual)

    def remove(self, group: ChannelGroup) -> None:
        touched = set()
        for s in group.slices:
            if not s.virtual:
                self.removed[(s.tensor, s.dim)] = self.removed.get((s.tensor, s.dim), 0) + len(s.index)
                touched.add(s.tensor)
        for tensor in touched:
            size = self._size(tensor)
            change = size - self.kept[tensor]
            self.kept[tensor] = size
            self.params += change
            self.macs += self.positions.get(tensor, 0) * change
            if tensor in self.prunable:
                self.prunable_kept += change

    def value(self, target: str) -> float:
        """The current compression, speedup or sparsity (see TARGETS)."""
        if target == "compression":
            return self.params_total / max(self.params, 1)
        if target == "speedup":
            return self.macs_total / max(self.macs, 1)
        if target == "sparsity":
            return 1.0 - self.prunable_kept / max(self.prunable_total, 1)
        raise ValueError(f"unknown target {target!r}; allowed: {', '.join(TARGETS)}")
