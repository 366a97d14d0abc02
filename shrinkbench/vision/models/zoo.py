"""The model zoo: one registered entry per fixed architecture variant.

The paper found "ResNet-56" and "VGG-16" naming different networks in different papers, so
every variant here has its own name, a fixed definition, the paper it follows, and a
structural fingerprint that every result records.

The registry itself needs no torch: an entry names its factory as `"module:function"` (with
keyword arguments), imported only when a model is built, and carries its golden counts
(parameters, MACs by the one convention, fingerprint), so listing the zoo is instant. The
tests count every entry for real and check the golden numbers to the unit
(`tests/test_zoo.py`). A user's own model is registered with a callable factory and no
golden counts; it is counted when listed.
"""
from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from shrinkbench.core.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


@dataclass(frozen=True)
class Golden:
    """The counts of a zoo entry, written down once and checked by the tests."""

    params: int
    macs: int
    fingerprint: str


@dataclass(frozen=True)
class ModelSpec:
    """Everything the toolkit needs to know about one zoo entry.

    `excluded` names the modules (qualified names) whose weights are never pruned by
    default: the final classifier, as in the original ShrinkBench. `factory` is a
    zero-argument callable, or `"package.module:function"` called with `kwargs`.
    """

    name: str
    factory: Any = field(repr=False, compare=False)
    input_shape: tuple[int, ...]
    num_classes: int
    excluded: tuple[str, ...]
    reference: str
    description: str
    family: str
    golden: Golden | None = None
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(f"{self.name}: input_shape must be (C, H, W), got {self.input_shape}")

    def build(self) -> "nn.Module":
        """A new instance (weights initialised from the current torch RNG state)."""
        factory = self.factory
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module), attr)
        return factory(**dict(self.kwargs))


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(*, input_shape: tuple[int, ...], num_classes: int, excluded: tuple[str, ...],
                   reference: str, description: str, family: str, name: str | None = None,
                   golden: Golden | None = None):
    """Decorator: register a zero-argument factory under its function name (or `name`)."""

    def wrap(factory: Callable[[], "nn.Module"]) -> Callable[[], "nn.Module"]:
        key = name or factory.__name__
        MODELS.register(key, ModelSpec(key, factory, tuple(input_shape), num_classes,
                                       tuple(excluded), reference, description, family, golden))
        return factory

    return wrap


def zoo_entry(name: str, factory: str, args: dict[str, Any] | None = None, *, input_shape: tuple[int, ...],
              num_classes: int, excluded: tuple[str, ...], reference: str, description: str, family: str,
              golden: Golden | None = None) -> ModelSpec:
    """Register a zoo entry whose factory `"module:function"` is imported when first built
    and called with `args`."""
    spec = ModelSpec(name, factory, tuple(input_shape), num_classes, tuple(excluded), reference, description,
                     family, golden, tuple(sorted((args or {}).items())))
    return MODELS.register(name, spec)


def model_spec(name: str) -> ModelSpec:
    return MODELS.get(name)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style wildcard pattern."""
    return MODELS.names(pattern)


def create_model(name: str, seed: int = 0) -> "nn.Module":
    """Build model `name` with weights initialised from `seed`.

    The global torch RNG is forked, so creating a model changes no global state and the
    same seed always gives the same initial weights.
    """
    import torch

    spec = model_spec(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = spec.build()
    return model


def fingerprint(model: "nn.Module") -> str:
    """A short hash of the architecture: module types and parameter/buffer shapes, in order.

    Equal for two instances of one variant whatever their weights; different as soon as a
    layer type, a shape or the layer order differs. The zoo's own layer classes are named by
    their module path as it was before the tracks layout (`shrinkbench.vision.models...`, not
    `shrinkbench.vision.models...`), so that fingerprints recorded before it stay equal.
    """
    h = hashlib.sha256()
    for mod_name, module in model.named_modules():
        module_path = type(module).__module__
        if module_path.startswith("shrinkbench.vision."):
            module_path = "shrinkbench." + module_path[len("shrinkbench.vision."):]
        h.update(f"{mod_name}:{module_path}.{type(module).__qualname__};".encode())
        for pname, p in module.named_parameters(recurse=False):
            h.update(f"p:{pname}:{tuple(p.shape)};".encode())
        for bname, b in module.named_buffers(recurse=False):
            h.update(f"b:{bname}:{tuple(b.shape)};".encode())
    return h.hexdigest()[:16]


def build_on_meta(name: str) -> "nn.Module":
    """The architecture of `name` without allocating or initialising weights (for counting)."""
    import torch

    with torch.device("meta"):
        return model_spec(name).build()


def _count(name: str) -> tuple[Golden, list[str]]:
    from shrinkbench.core.macs import count_macs

    model = build_on_meta(name)
    profile = count_macs(model, model_spec(name).input_shape)
    return Golden(sum(p.numel() for p in model.parameters()), profile.macs, fingerprint(model)), list(profile.uncounted)


def count_model(name: str) -> Golden:
    """Count an entry for real (builds it on the meta device): params, MACs, fingerprint."""
    return _count(name)[0]


def describe_model(name: str, count: bool = False) -> dict:
    """Name, input shape, classes, params, MACs and fingerprint of a zoo entry: its golden
    counts (no torch needed), or counted for real with `count` or where it has none (then
    `uncounted` lists the layers the MACs convention could not count)."""
    spec = model_spec(name)
    counts, uncounted = _count(name) if count or spec.golden is None else (spec.golden, [])
    return {
        "name": spec.name, "family": spec.family, "input_shape": list(spec.input_shape),
        "num_classes": spec.num_classes, "params": counts.params, "macs": counts.macs,
        "fingerprint": counts.fingerprint, "excluded": list(spec.excluded), "uncounted": uncounted,
        "reference": spec.reference, "description": spec.description,
    }
