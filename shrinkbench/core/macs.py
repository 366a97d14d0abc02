"""The one MACs-counting convention.

Convention, in one sentence: MACs are the multiply-accumulates of the weights of Conv,
ConvTranspose and Linear layers (and of any other weight matmul registered here) for ONE
example, with the real padding, stride, dilation and groups; bias additions,
normalisation, activations, pooling and residual additions count zero.

    Conv:   C_out * H_out * W_out * (C_in / groups) * k_h * k_w  =  positions_out * weight.numel()
    Linear: out_features * in_features * (product of the leading non-batch input dims)
    ConvTranspose: positions_in * weight.numel()

`macs_nonzero` of a layer is its dense MACs times its nonzero weight fraction, which is the
same as positions * nnz(weight): an integer. FLOPs are a different, separately named metric
(2 x MACs). A leaf module with parameters whose type has no formula here, or a matmul or
convolution called functionally outside any counted module, is reported by name in
`MacsProfile.uncounted` and never silently counted as zero.

Formulas live in a registry keyed by module type that refuses duplicates; each takes only
the module, the input shape and the output shape.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

MacsFormula = Callable[[nn.Module, torch.Size, torch.Size], int]
"""(module, input shape, output shape) -> positions: how many times each weight is used per batch."""

_FORMULAS: dict[type, MacsFormula] = {}

ZERO_MAC_TYPES: tuple[type, ...] = (
    nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm,
    nn.LocalResponseNorm, nn.PReLU, nn.Embedding, nn.EmbeddingBag,
)
"""Parameterised layer types that the convention deliberately counts as zero MACs."""


def register_formula(*types: type) -> Callable[[MacsFormula], MacsFormula]:
    def wrap(fn: MacsFormula) -> MacsFormula:
        for t in types:
            if t in _FORMULAS:
                raise ValueError(f"a MACs formula for {t.__name__} is already registered")
            _FORMULAS[t] = fn
        return fn

    return wrap


@register_formula(nn.Conv1d, nn.Conv2d, nn.Conv3d)
def _conv_positions(module, in_shape, out_shape) -> int:
    """Output positions of one example: H_out * W_out (* D_out)."""
    return math.prod(out_shape[2:])


@register_formula(nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
def _conv_transpose_positions(module, in_shape, out_shape) -> int:
    """Every input position multiplies the whole weight once."""
    return math.prod(in_shape[2:])


@register_formula(nn.Linear)
def _linear_positions(module, in_shape, out_shape) -> int:
    """Leading non-batch dims of the input (1 for an (N, in_features) input)."""
    return math.prod(in_shape[1:-1])


@dataclass(frozen=True)
class LayerMacs:
    """Dense MACs of one layer for one example, and how its weight is used."""

    name: str
    type: str
    positions: int
    weight_numel: int

    @property
    def macs(self) -> int:
        return self.positions * self.weight_numel

    def macs_nonzero(self, nonzero_weights: int) -> int:
        """Dense MACs x nonzero fraction = positions x nnz(weight)."""
        return self.positions * nonzero_weights


@dataclass(frozen=True)
class MacsProfile:
    """Per-layer dense MACs of a model for one input shape (counted once, reused)."""

    input_shape: tuple[int, ...]
    layers: tuple[LayerMacs, ...]
    uncounted: tuple[str, ...]

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def macs_nonzero(self, nonzero_weights: Mapping[str, int]) -> int:
        """Sum over layers of positions x nnz(weight); `nonzero_weights` maps layer name -> nnz."""
        return sum(layer.macs_nonzero(nonzero_weights[layer.name]) for layer in self.layers)


def _formula_for(module: nn.Module) -> MacsFormula | None:
    for klass in type(module).__mro__:
        if klass in _FORMULAS:
            return _FORMULAS[klass]
    return None


_FUNCTIONAL_WEIGHT_OPS = {
    F.linear, F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d,
    F.conv_transpose3d, torch.matmul, torch.mm, torch.bmm, torch.addmm, torch.einsum,
    torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.mm, torch.Tensor.bmm,
}


class _FunctionalWatch(TorchFunctionMode):
    """Notes matmuls/convolutions called outside any module that has a formula."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.stack: list[str] = []
        self.seen: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if self.depth == 0 and func in _FUNCTIONAL_WEIGHT_OPS:
            where = self.stack[-1] if self.stack else "<model>"
            self.seen.append(f"{where}: functional {getattr(func, '__name__', str(func))}")
        return func(*args, **(kwargs or {}))


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> MacsProfile:
    """Dense MACs per layer for one example of shape `input_shape` (C, H, W).

    Runs one forward pass on zeros with batch size 1 in eval mode (the model's mode and
    weights are left as they were).
    """
    layers: list[LayerMacs] = []
    uncounted: list[str] = []
    watch = _FunctionalWatch()
    handles = []

    for name, module in model.named_modules():
        formula = _formula_for(module)
        if formula is not None:
            def pre(mod, inputs, name=name):
                watch.depth += 1

            def post(mod, inputs, output, name=name, formula=formula):
                watch.depth -= 1
                positions = formula(mod, inputs[0].shape, output.shape)
                layers.append(LayerMacs(name, type(mod).__name__, positions, mod.weight.numel()))

            handles.append(module.register_forward_pre_hook(pre))
            handles.append(module.register_forward_hook(post))
        elif (any(True for _ in module.parameters(recurse=False))
              and not isinstance(module, ZERO_MAC_TYPES)):
            uncounted.append(f"{name or '<model>'} ({type(module).__name__})")
        if formula is None:
            def enter(mod, inputs, name=name):
                watch.stack.append(name or "<model>")

            def leave(mod, inputs, output):
                watch.stack.pop()

            handles.append(module.register_forward_pre_hook(enter))
            handles.append(module.register_forward_hook(leave))

    was_training = model.training
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    try:
        model.eval()
        with torch.no_grad(), watch:
            model(torch.zeros((1, *input_shape), device=device, dtype=dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    # a module called twice (weight sharing) contributes twice, which is what it costs
    return MacsProfile(tuple(input_shape), tuple(layers), tuple(uncounted + watch.seen))
