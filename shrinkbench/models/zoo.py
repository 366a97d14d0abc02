"""The model zoo: one registered factory per fixed architecture variant.

The paper found "ResNet-56" and "VGG-16" naming different networks in different papers, so
every variant here has its own name, a fixed definition, the paper it follows, and a
structural fingerprint that every result records.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from shrinkbench.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    """Everything the toolkit needs to know about one zoo entry.

    `excluded` names the modules (qualified names) whose weights are never pruned by
    default: the final classifier, as in the original ShrinkBench.
    """

    name: str
    factory: Callable[[], nn.Module] = field(repr=False, compare=False)
    input_shape: tuple[int, ...]
    num_classes: int
    excluded: tuple[str, ...]
    reference: str
    description: str
    family: str

    def __post_init__(self) -> None:
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ValueError(f"{self.name}: input_shape must be (C, H, W), got {self.input_shape}")


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(*, input_shape: tuple[int, ...], num_classes: int, excluded: tuple[str, ...],
                   reference: str, description: str, family: str, name: str | None = None):
    """Decorator: register a zero-argument factory under its function name (or `name`)."""

    def wrap(factory: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        key = name or factory.__name__
        MODELS.register(key, ModelSpec(key, factory, tuple(input_shape), num_classes,
                                       tuple(excluded), reference, description, family))
        return factory

    return wrap


def model_spec(name: str) -> ModelSpec:
    return MODELS.get(name)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style wildcard pattern."""
    return MODELS.names(pattern)


def create_model(name: str, seed: int = 0) -> nn.Module:
    """Build model `name` with weights initialised from `seed`.

    The global torch RNG is forked, so creating a model changes no global state and the
    same seed always gives the same initial weights.
    """
    spec = model_spec(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = spec.factory()
    return model


def fingerprint(model: nn.Module) -> str:
    """A short hash of the architecture: module types and parameter/buffer shapes, in order.

    Equal for two instances of one variant whatever their weights; different as soon as a
    layer type, a shape or the layer order differs.
    """
    h = hashlib.sha256()
    for mod_name, module in model.named_modules():
        h.update(f"{mod_name}:{type(module).__module__}.{type(module).__qualname__};".encode())
        for pname, p in module.named_parameters(recurse=False):
            h.update(f"p:{pname}:{tuple(p.shape)};".encode())
        for bname, b in module.named_buffers(recurse=False):
            h.update(f"b:{bname}:{tuple(b.shape)};".encode())
    return h.hexdigest()[:16]


def build_on_meta(name: str) -> nn.Module:
    """The architecture of `name` without allocating or initialising weights (for counting)."""
    spec = model_spec(name)
    with torch.device("meta"):
        return spec.factory()


def describe_model(name: str) -> dict:
    """Name, input shape, classes, params, MACs and fingerprint of a zoo entry."""
    from shrinkbench.macs import count_macs

    spec = model_spec(name)
    model = build_on_meta(name)
    profile = count_macs(model, spec.input_shape)
    return {
        "name": spec.name, "family": spec.family, "input_shape": list(spec.input_shape),
        "num_classes": spec.num_classes, "params": sum(p.numel() for p in model.parameters()),
        "macs": profile.macs, "fingerprint": fingerprint(model), "excluded": list(spec.excluded),
        "uncounted": list(profile.uncounted), "reference": spec.reference,
        "description": spec.description,
    }
