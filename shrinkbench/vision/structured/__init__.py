"""Structured (channel) pruning: dependency groups, exact targets, physical removal.

    groups = dependency_groups(model, input_shape, excluded)   # coupled channels, removed together
    masks = the channel granularity's prune(...)                # masks that zero whole groups
    small = compact(model, groups, removed)                    # a genuinely smaller nn.Module

Modules: `graph` (tracing a model with torch.fx and propagating which channels are coupled:
the channel rules registry), `groups` (the groups and what each removes), `counting` (exact
params and MACs of a removal, incrementally), `select` (removal order by scope, exact targets),
`compact` (physical removal), `criteria` (the channel criteria and strategies).
"""
import importlib

_LAZY = {"dependency_groups": "graph", "ChannelGroup": "groups", "GroupSet": "groups", "compact": "compact",
         "Counter": "counting", "removal_order": "select", "remove_to_target": "select"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"shrinkbench.vision.structured.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'shrinkbench.vision.structured' has no attribute {name!r}")


__all__ = sorted(_LAZY)
