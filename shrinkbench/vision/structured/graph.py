"""Which channels are coupled: the model is traced with torch.fx, every tensor's channel
dimension (dim 1) gets a *channel map* (one element per position; positions that share an
element must be removed together; `None` marks a constant-zero position such as an option-A
shortcut's padding), and a registry of channel rules says how each operation maps the
channel maps of its inputs to that of its output:

- a producer (Conv with groups = 1, Linear) consumes its input map (each position becomes an
  input column of its weight) and creates one new element per output channel (frozen when
  the layer is excluded, e.g. the classifier);
- a normalisation layer, a depthwise convolution, a zero-preserving pointwise function
  (ReLU, ReLU6, dropout, identity) or a pooling keeps the map (and records its members);
- flatten repeats each channel's element H*W times; an addition unifies its inputs
  position by position; concatenation along channels joins the maps; an option-A shortcut
  pads the map with `None`;
- anything else (an unknown module or function, grouped convolutions other than depthwise,
  the model output) freezes the elements it touches: they belong to no removable group.

Removing a group must not change what the rest of the network computes except through the
removed channels, which is why only operations that map zero to zero pass a channel on:
with a group's filters, biases and normalisation scales and shifts zeroed, its channels are
exactly zero everywhere, so removing them (and the consumer columns that read them) leaves
the function unchanged (`shrinkbench.vision.structured.compact`, tested on every zoo family).
"""
from __future__ import annotations

import operator
from collections import defaultdict
from typing import TYPE_CHECKING, Callable, Iterable

from shrinkbench.core.errors import ConfigError
from shrinkbench.core.registry import Registry
from shrinkbench.vision.structured.groups import VIRTUAL, ChannelGroup, GroupSet, Slice

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

Map = list  # list[int | None]: the element of each channel position


class Propagation:
    """Union-find over channel elements, and the members the rules record."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.frozen_elements: set[int] = set()
        self.reasons: list[str] = []
        self.producers: dict[int, tuple[str, int]] = {}
        self.members: list[tuple[str, str, int, int]] = []  # (kind, module, position, element)
        self.virtual_sizes: dict[str, int] = {}  # a parameterless module's input channels

    def new(self, n: int, frozen: str | None = None) -> Map:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        elements = list(range(start, start + n))
        if frozen:
            self.freeze(elements, frozen)
        return elements

    def find(self, e: int) -> int:
        while self.parent[e] != e:
            self.parent[e] = self.parent[self.parent[e]]
            e = self.parent[e]
        return e

    def union(self, a: int | None, b: int | None) -> int | None:
        if a is None or b is None:
            return a if b is None else b
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)
        return min(ra, rb)

    def freeze(self, elements: Iterable[int | None], reason: str) -> None:
        touched = [e for e in elements if e is not None]
        if touched:
            self.frozen_elements.update(touched)
            if reason not in self.reasons:
                self.reasons.append(reason)

    def record(self, kind: str, module: str, mapping: Map) -> None:
        for position, element in enumerate(mapping):
            if element is not None:
                self.members.append((kind, module, position, element))


Rule = Callable[..., "Map | None"]
MODULE_RULES: Registry[Rule] = Registry("channel rule for a module type")
FUNCTION_RULES: dict[object, Rule] = {}


def module_rule(*types: type):
    """Register the decorated rule `(prop, name, module, maps, node) -> output map` for module types."""
    def wrap(rule: Rule) -> Rule:
        for t in types:
            MODULE_RULES.register(f"{t.__module__}.{t.__qualname__}", rule)
        return rule
    return wrap


def function_rule(*targets):
    """Register the decorated rule `(prop, node, maps, shapes) -> output map` for functions / methods."""
    def wrap(rule: Rule) -> Rule:
        for target in targets:
            if target in FUNCTION_RULES:
                raise ValueError(f"a channel rule for {target!r} is already registered")
            FUNCTION_RULES[target] = rule
        return rule
    return wrap


def _module_rule(module) -> Rule | None:
    for klass in type(module).__mro__:
        key = f"{klass.__module__}.{klass.__qualname__}"
        if key in MODULE_RULES:
            return MODULE_RULES.get(key)
    return None


def _register_builtin_rules() -> None:
    """The rules for the torch.nn layers and functions the zoo uses."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from shrinkbench.vision.models.cifar_resnet import IndexShortcut, PadShortcut

    @module_rule(nn.Conv1d, nn.Conv2d, nn.Conv3d)
    def conv(prop, name, module, maps, node, excluded):
        (x,) = maps[:1]
        groups, c_in, c_out = module.groups, module.in_channels, module.out_channels
        if groups == 1:
            prop.record("consumer", name, x)
            if name in excluded:
                return prop.new(c_out, f"{name} is excluded from pruning (its outputs stay)")
            return _produce(prop, name, c_out)
        if groups == c_in == c_out and name not in excluded:  # depthwise: channel c is its input channel c
            prop.record("depthwise", name, x)
            return list(x)
        prop.freeze(x, f"{name}: grouped convolution (groups={groups}) is not pruned by channel")
        return prop.new(c_out, f"{name}: grouped convolution")

    @module_rule(nn.Linear)
    def linear(prop, name, module, maps, node, excluded):
        x = maps[0]
        prop.record("consumer", name, x)
        if name in excluded:
            return prop.new(module.out_features, f"{name} is excluded from pruning (its outputs stay)")
        return _produce(prop, name, module.out_features)

    @module_rule(nn.modules.batchnorm._BatchNorm)
    def norm(prop, name, module, maps, node, excluded):
        prop.record("norm", name, maps[0])
        return list(maps[0])

    @module_rule(nn.ReLU, nn.ReLU6, nn.Dropout, nn.Dropout2d, nn.Identity, nn.MaxPool1d, nn.MaxPool2d,
                 nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Hardtanh, nn.LeakyReLU)
    def keep(prop, name, module, maps, node, excluded):
        return list(maps[0])

    @module_rule(nn.Flatten)
    def flatten_module(prop, name, module, maps, node, excluded):
        return _flatten(maps[0], node.args[0], module.start_dim)

    @module_rule(PadShortcut)
    def pad_shortcut(prop, name, module, maps, node, excluded):
        x = maps[0]
        half = module.extra // 2
        out = [None] * half + list(x) + [None] * (module.extra - half)
        prop.virtual_sizes[name] = len(x)
        prop.record("virtual_in", name, x)
        prop.record("virtual_out", name, out)
        return out

    @module_rule(IndexShortcut)
    def index_shortcut(prop, name, module, maps, node, excluded):
        out: Map = [None] * module.out_channels
        for i, j in enumerate(module.index):
            out[j] = maps[0][i]
        prop.virtual_sizes[name] = len(maps[0])
        prop.record("virtual_in", name, maps[0])
        prop.record("virtual_out", name, out)
        return out

    @function_rule(F.relu, F.relu6, torch.relu, F.dropout, F.adaptive_avg_pool2d, F.max_pool2d, F.avg_pool2d,
                   "relu", "relu_", "contiguous")
    def keep_function(prop, node, maps, shapes):
        return list(maps[0])

    @function_rule(operator.add, torch.add, operator.iadd, "add", "add_")
    def add(prop, node, maps, shapes):
        a, b = maps[0], maps[1] if len(maps) > 1 else None
        if a is None or b is None or len(a) != len(b):  # a constant added: zero is not kept zero
            for m in (a, b):
                if m is not None:
                    prop.freeze(m, f"{node.name}: addition of a constant")
            return None if a is None and b is None else prop.new(len(a if a is not None else b), "constant added")
        return [prop.union(x, y) for x, y in zip(a, b)]

    @function_rule(torch.flatten, "flatten")
    def flatten_function(prop, node, maps, shapes):
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        if start != 1:
            prop.freeze(maps[0], f"{node.name}: flatten from dim {start}")
            return None
        return _flatten(maps[0], node.args[0], 1)

    @function_rule(torch.cat, torch.concat)
    def cat(prop, node, maps, shapes):
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        parts = maps[0] if isinstance(maps[0], list) and maps[0] and isinstance(maps[0][0], list) else None
        if dim != 1 or parts is None:
            for m in maps:
                prop.freeze(_flat(m), f"{node.name}: concatenation along dim {dim}")
            return None
        return [e for part in parts for e in part]


def _flat(m):
    if m is None:
        return []
    if m and isinstance(m[0], list):
        return [e for part in m for e in part]
    return m


def _produce(prop: Propagation, name: str, n: int) -> Map:
    out = prop.new(n)
    for c, e in enumerate(out):
        prop.producers[e] = (name, c)
    return out


def _flatten(mapping: Map, source_node, start_dim: int) -> Map:
    shape = source_node.meta["tensor_meta"].shape
    if start_dim != 1:
        raise ConfigError(f"flatten from dim {start_dim} is not supported by channel pruning")
    positions = 1
    for size in shape[2:]:
        positions *= int(size)
    return [e for e in mapping for _ in range(positions)]


_RULES_READY = False


def _ensure_rules() -> None:
    global _RULES_READY
    if not _RULES_READY:
        _register_builtin_rules()
        _RULES_READY = True


def _traced(model: "nn.Module"):
    import torch.fx as fx

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualified_name):
            return _module_rule(m) is not None or super().is_leaf_module(m, qualified_name)

    try:
        graph = Tracer().trace(model)
    except Exception as error:  # noqa: BLE001 - tracing fails in many ways
        raise ConfigError(f"channel pruning needs a model torch.fx can trace; tracing {type(model).__name__} "
                          f"failed: {type(error).__name__}: {' '.join(str(error).split())[:200]}") from None
    return fx.GraphModule(model, graph)


def dependency_groups(model: "nn.Module", input_shape: tuple[int, ...], excluded: Iterable[str] = ()) -> GroupSet:
    """The dependency groups of `model` (see the module docstring); `excluded` layers keep
    their outputs. Runs one forward pass of zeros (batch 1, eval mode) to learn shapes."""
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    _ensure_rules()
    excluded = set(excluded)
    graph_module = _traced(model)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            ShapeProp(graph_module).propagate(torch.zeros((1, *input_shape), device=device))
    finally:
        for m, training in flags:
            m.training = training
    prop = Propagation()
    maps: dict = {}
    modules = dict(model.named_modules())
    for node in graph_module.graph.nodes:
        inputs = [maps.get(a) if hasattr(a, "op") else None for a in node.args]
        if node.op == "placeholder":
            maps[node] = prop.new(int(node.meta["tensor_meta"].shape[1]), "the model input")
        elif node.op == "call_module":
            module = modules[node.target]
            rule = _module_rule(module)
            if rule is None:
                for m in inputs:
                    prop.freeze(_flat(m), f"{node.target}: no channel rule for {type(module).__name__}")
                maps[node] = _fresh(prop, node, f"{node.target}: no channel rule for {type(module).__name__}")
            else:
                maps[node] = rule(prop, node.target, module, inputs, node, excluded)
        elif node.op in ("call_function", "call_method"):
            if node.target == torch.cat or node.target == torch.concat:
                inputs = [[maps.get(a) for a in node.args[0]]]
            rule = FUNCTION_RULES.get(node.target)
            if rule is None or any(m is None for m in inputs[:1]):
                for m in inputs:
                    prop.freeze(_flat(m), f"{node.name}: no channel rule for {node.target}")
                maps[node] = _fresh(prop, node, f"{node.name}: no channel rule")
            else:
                maps[node] = rule(prop, node, inputs, None)
        elif node.op == "output":
            prop.freeze(_flat(maps.get(node.args[0])), "the model output")
        elif node.op == "get_attr":
            maps[node] = None
    return _groups(prop, model)


def _fresh(prop: Propagation, node, reason: str) -> Map | None:
    meta = node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    if shape is None or len(shape) < 2:
        return None
    return prop.new(int(shape[1]), reason)


def _groups(prop: Propagation, model: "nn.Module") -> GroupSet:
    frozen_roots = {prop.find(e) for e in prop.frozen_elements}
    by_root: dict[int, dict] = defaultdict(lambda: {"producers": [], "members": []})
    for element, producer in prop.producers.items():
        by_root[prop.find(element)]["producers"].append(producer)
    for kind, module, position, element in prop.members:
        by_root[prop.find(element)]["members"].append((kind, module, position))
    modules = dict(model.named_modules())
    order = {name: i for i, name in enumerate(modules)}
    layers: dict[str, int] = {}
    for _, (module, _) in sorted(prop.producers.items()):
        layers.setdefault(module, modules[module].weight.shape[0])
    layers = dict(sorted(layers.items(), key=lambda kv: order[kv[0]]))
    candidates = []
    for root, parts in by_root.items():
        if root in frozen_roots or not parts["producers"]:
            continue
        producers = sorted(parts["producers"], key=lambda mc: (order[mc[0]], mc[1]))
        candidates.append((producers, parts["members"]))
    candidates.sort(key=lambda pm: (order[pm[0][0][0]], pm[0][0][1]))
    groups = []
    for index, (producers, members) in enumerate(candidates):
        slices: dict[tuple[str, int], list[int]] = defaultdict(list)
        norms = []
        for module, channel in producers:
            _row(slices, modules[module], module, channel)
        for kind, module, position in members:
            if kind == "consumer":
                slices[(f"{module}.weight", 1)].append(position)
            elif kind in ("norm", "depthwise"):
                _row(slices, modules[module], module, position)
                if kind == "norm":
                    norms.append((module, position))
                    slices[(f"{module}{VIRTUAL}out", 1)].append(position)  # its running statistics too
            else:  # virtual_in / virtual_out
                slices[(f"{module}{VIRTUAL}{kind.split('_')[1]}", 1)].append(position)
        groups.append(ChannelGroup(index, producers[0][0], tuple(producers), tuple(norms),
                                   tuple(Slice(t, d, tuple(sorted(set(i)))) for (t, d), i in sorted(slices.items()))))
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    return GroupSet(tuple(groups), layers, shapes, tuple(prop.reasons), dict(prop.virtual_sizes))


def _row(slices: dict, module, name: str, channel: int) -> None:
    """The weight row (dim 0) and bias entry of `channel` of a module with parameters."""
    if getattr(module, "weight", None) is not None:
        slices[(f"{name}.weight", 0)].append(channel)
    if getattr(module, "bias", None) is not None:
        slices[(f"{name}.bias", 0)].append(channel)
