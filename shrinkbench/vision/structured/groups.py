"""Dependency groups: sets of coupled channels that are removed together.

A channel of one layer cannot be removed alone when other tensors depend on it: a Conv's
filter c feeds its BatchNorm's channel c and the next layer's input channel c (or, through a
flatten, H*W inputs of a Linear); all inputs of a residual addition share channels, so the
filters of every branch that adds into one channel go together; an option-A shortcut passes
the block input's channel i on as output channel i + pad, coupling the two; a depthwise
convolution's channel c is its input channel c. A `ChannelGroup` is one such set: the
output channels of its producers (Conv and Linear layers that are not excluded), and every
slice of every parameter its removal deletes (`slices`): the producers' filter rows and bias
entries, normalisation scales and shifts, depthwise filters, and the consumers' input
columns. The classifier's outputs belong to no group (the model output is never pruned).

Group score rule: a group's score is the SUM of the scores of its producer channels (a
strategy scores each producer layer's output channels; `GroupSet.group_scores`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

VIRTUAL = "#"
"""A slice whose tensor name contains '#' names the channel positions of a parameterless
module ('<module>#in', '<module>#out'), kept so that compaction can re-index it."""


@dataclass(frozen=True)
class Slice:
    """Entries `index` along dimension `dim` of tensor `tensor` (a parameter name, or a
    parameterless module's '<module>#in' / '<module>#out' positions)."""

    tensor: str
    dim: int
    index: tuple[int, ...]

    @property
    def virtual(self) -> bool:
        return VIRTUAL in self.tensor


@dataclass(frozen=True)
class ChannelGroup:
    """One set of coupled channels (see the module docstring)."""

    index: int
    layer: str
    """The first producer layer (module order): the layer a layerwise scope counts it in."""
    producers: tuple[tuple[str, int], ...]
    norms: tuple[tuple[str, int], ...]
    slices: tuple[Slice, ...]

    def describe(self) -> str:
        """E.g. `conv1[3] + layer1.0.conv2[3] + layer1.1.conv2[3] (3 filters, 2 norms, 4 consumers)`."""
        shown = " + ".join(f"{m}[{c}]" for m, c in self.producers[:4]) + (" + ..." if len(self.producers) > 4 else "")
        consumers = {s.tensor for s in self.slices if s.dim == 1 and not s.virtual}
        return f"{shown} ({len(self.producers)} filters, {len(self.norms)} norms, {len(consumers)} consumers)"


@dataclass(frozen=True)
class GroupSet:
    """The dependency groups of one architecture.

    `layers`: the producer layers in module order with their output channels; `shapes`: the
    shape of every parameter; `frozen`: why the channels that are in no group cannot be
    removed (the model output, layers the rules do not know).
    """

    groups: tuple[ChannelGroup, ...]
    layers: dict[str, int]
    shapes: dict[str, tuple[int, ...]]
    frozen: tuple[str, ...] = field(default=())
    virtual_sizes: dict[str, int] = field(default_factory=dict)
    """Input channels of every parameterless module that re-indexes channels (shortcuts)."""

    def __len__(self) -> int:
        return len(self.groups)

    def of_layer(self) -> dict[str, list[int]]:
        """layer -> indices of its groups (the groups whose first producer it is)."""
        out: dict[str, list[int]] = {name: [] for name in self.layers}
        for g in self.groups:
            out[g.layer].append(g.index)
        return out

    def group_scores(self, channel_scores: dict[str, "torch.Tensor"]) -> "torch.Tensor":
        """Group scores from per-channel scores of the producer layers: the sum over each
        group's producer channels (float64)."""
        import torch

        out = torch.zeros(len(self.groups), dtype=torch.float64)
        for g in self.groups:
            out[g.index] = sum(float(channel_scores[m][c]) for m, c in g.producers)
        return out

    def summary(self) -> list[str]:
        """One line per group, for `shrinkbench zoo MODEL --groups`."""
        return [f"group {g.index}: {g.describe()}" for g in self.groups]
