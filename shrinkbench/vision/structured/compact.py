"""Physical removal: a channel-pruned model turned into a genuinely smaller dense `nn.Module`.

For the removed groups (`shrinkbench.vision.structured.groups`), every layer they touch is rebuilt
with the kept indices only: a Conv or Linear keeps the filter rows and input columns not
removed (bias entries with the rows), a depthwise Conv the channels left (groups = channels),
a BatchNorm the channels left (scale, shift and running statistics), and an option-A
shortcut becomes an `IndexShortcut` that writes the kept input channels into their new
output positions. Layers are replaced in a deep copy; the model's own forward code is used
as it is, so the compacted model is the same class with smaller leaves.

The compacted model computes the same function as the masked one (the removed channels are
exactly zero there, see `shrinkbench.vision.structured.graph`); tests check the logits of every
zoo family to 1e-5 and its real params and MACs against the masked model's counts.
"""
from __future__ import annotations

import copy
from collections import defaultdict
from typing import Iterable

import torch
from torch import nn

from shrinkbench.vision.structured.groups import GroupSet


def removed_indices(groups: GroupSet, removed: Iterable[int]) -> dict[tuple[str, int], set[int]]:
    """(tensor, dim) -> the indices the removed groups delete there."""
    out: dict[tuple[str, int], set[int]] = defaultdict(set)
    for i in removed:
        for s in groups.groups[i].slices:
            out[(s.tensor, s.dim)].update(s.index)
    return out


def _kept(size: int, gone: set[int]) -> torch.Tensor:
    return torch.tensor([i for i in range(size) if i not in gone], dtype=torch.long)


def _conv(module: nn.Conv2d, rows: torch.Tensor, cols: torch.Tensor, depthwise: bool) -> nn.Module:
    weight = module.weight.detach().index_select(0, rows.to(module.weight.device))
    if not depthwise:
        weight = weight.index_select(1, cols.to(weight.device))
    groups = len(rows) if depthwise else module.groups
    new = type(module)(weight.shape[1] * groups, len(rows), module.kernel_size, stride=module.stride,
                       padding=module.padding, dilation=module.dilation, groups=groups,
                       bias=module.bias is not None, padding_mode=module.padding_mode,
                       device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if module.bias is not None:
            new.bias.copy_(module.bias.detach().index_select(0, rows.to(weight.device)))
    return new.train(module.training)


def _linear(module: nn.Linear, rows: torch.Tensor, cols: torch.Tensor) -> nn.Module:
    weight = module.weight.detach().index_select(0, rows.to(module.weight.device))
    weight = weight.index_select(1, cols.to(weight.device))
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=module.bias is not None, device=weight.device,
                    dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if module.bias is not None:
            new.bias.copy_(module.bias.detach().index_select(0, rows.to(weight.device)))
    return new.train(module.training)


def _norm(module: nn.modules.batchnorm._BatchNorm, keep: torch.Tensor) -> nn.Module:
    device = next(iter(module.buffers()), torch.zeros(0)).device
    keep = keep.to(device)
    new = type(module)(len(keep), eps=module.eps, momentum=module.momentum, affine=module.affine,
                       track_running_stats=module.track_running_stats, device=device)
    with torch.no_grad():
        if module.affine:
            new.weight.copy_(module.weight.detach().index_select(0, keep))
            new.bias.copy_(module.bias.detach().index_select(0, keep))
        if module.track_running_stats:
            new.running_mean.copy_(module.running_mean.index_select(0, keep))
            new.running_var.copy_(module.running_var.index_select(0, keep))
            new.num_batches_tracked.copy_(module.num_batches_tracked)
    return new.train(module.training)


def _shortcut(module, name: str, gone: dict, in_channels: int):
    from shrinkbench.vision.models.cifar_resnet import IndexShortcut, PadShortcut

    if isinstance(module, PadShortcut):
        half = module.extra // 2
        positions = [half + i for i in range(in_channels)]
        out_channels = in_channels + module.extra
    else:
        positions, out_channels = list(module.index), module.out_channels
    kept_in = [i for i in range(len(positions)) if i not in gone.get((f"{name}#in", 1), set())]
    kept_out = [j for j in range(out_channels) if j not in gone.get((f"{name}#out", 1), set())]
    new_position = {j: k for k, j in enumerate(kept_out)}
    return IndexShortcut(module.stride, len(kept_out), tuple(new_position[positions[i]] for i in kept_in))


def compact(model: nn.Module, groups: GroupSet, removed: Iterable[int]) -> nn.Module:
    """A smaller copy of `model` without the channels of the `removed` groups."""
    from shrinkbench.vision.models.cifar_resnet import IndexShortcut, PadShortcut

    gone = removed_indices(groups, removed)
    small = copy.deepcopy(model)
    replacements = {}
    shortcut_inputs = groups.virtual_sizes
    for name, module in small.named_modules():
        touched = any(key[0].startswith(f"{name}.") or key[0].startswith(f"{name}#") for key in gone)
        if not touched:
            continue
        if isinstance(module, nn.modules.conv._ConvNd) and not isinstance(module, nn.modules.conv._ConvTransposeNd):
            depthwise = module.groups > 1 and module.groups == module.in_channels == module.out_channels
            rows = _kept(module.out_channels, gone.get((f"{name}.weight", 0), set()))
            cols = _kept(module.weight.shape[1], gone.get((f"{name}.weight", 1), set()))
            replacements[name] = _conv(module, rows, cols, depthwise)
        elif isinstance(module, nn.Linear):
            rows = _kept(module.out_features, gone.get((f"{name}.weight", 0), set()))
            cols = _kept(module.in_features, gone.get((f"{name}.weight", 1), set()))
            replacements[name] = _linear(module, rows, cols)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            replacements[name] = _norm(module, _kept(module.num_features, gone.get((f"{name}#out", 1), set())))
        elif isinstance(module, (PadShortcut, IndexShortcut)):
            replacements[name] = _shortcut(module, name, gone, shortcut_inputs[name])
    for name, new in replacements.items():
        parent, _, leaf = name.rpartition(".")
        setattr(small.get_submodule(parent) if parent else small, leaf, new)
    return small



