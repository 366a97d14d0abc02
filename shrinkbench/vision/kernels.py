"""Faster CPU kernels for the same functions, bit for bit.

Max pooling. On the CPU, torch's max pooling of a contiguous (NCHW) float tensor is several
times slower than the same pooling of a channels-last tensor, which has a vectorised kernel
(torch 2.14, 2 threads, LeNet-5's first pool on a batch of 128, 20 x 24 x 24 -> 12 x 12:
forward 3.75 ms NCHW, 1.15 ms through channels-last including both layout copies;
docs/performance.md, section 2). `fast_max_pooling(model)` makes every
`nn.MaxPool2d` of `model` (exactly that class) compute its CPU forward pass through
channels-last:

    y, idx = max_pool2d_with_indices(x.contiguous(memory_format=channels_last), ...)
    return y.contiguous()                  # the layout the next layer saw before

and its backward pass with torch's own NCHW kernel from the indices the forward pass chose
(`max_pool2d_with_indices_backward`, the function autograd calls for `max_pool2d`). The
values are identical (a maximum is exact); the indices are too: both kernels scan a window in
the same order and keep the first maximum (`val > max || isnan(val)`), so ties and NaN pick
the same element and the gradient lands where it did. `tests/test_kernels.py` checks
values, indices and gradients against torch's kernel, ties, NaN, padding, dilation, overlapping
windows and `ceil_mode` included. Tensors that are not 4-D floating CPU tensors, and
`return_indices=True`, go through the module's own forward unchanged.

Training (`shrinkbench.vision.training.train`) and accuracy passes
(`shrinkbench.vision.metrics.evaluate`) run inside `with fast_max_pooling(model):`; the
modules' own forward is back after the block, so latency and peak memory
(`shrinkbench.core.metrics`) are measured on the model as torch computes it, and a model from
`shrinkbench.create_model` is left as torch builds it.
"""
from __future__ import annotations

import contextlib
import types
from typing import Iterator

import torch
from torch import nn

_aten = torch.ops.aten


class _ChannelsLastMaxPool2d(torch.autograd.Function):
    """max_pool2d: forward through channels-last, backward by torch's NCHW kernel."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode):
        out, indices = _aten.max_pool2d_with_indices(
            x.contiguous(memory_format=torch.channels_last), kernel_size, stride, padding, dilation, ceil_mode)
        indices = indices.contiguous()
        ctx.save_for_backward(x, indices)
        ctx.params = (kernel_size, stride, padding, dilation, ceil_mode)
        ctx.mark_non_differentiable(indices)
        return out.contiguous()

    @staticmethod
    def backward(ctx, grad):
        x, indices = ctx.saved_tensors
        grad_x = _aten.max_pool2d_with_indices_backward(grad.contiguous(), x, *ctx.params, indices)
        return grad_x, None, None, None, None, None


def _pair(value) -> list[int]:
    return list(value) if isinstance(value, (tuple, list)) else [int(value), int(value)]


def channels_last_max_pool2d(module: nn.MaxPool2d, x: torch.Tensor) -> torch.Tensor:
    """`module(x)` computed through the channels-last kernel (same values, indices, gradient)."""
    if x.device.type != "cpu" or x.dim() != 4 or not x.is_floating_point() or module.return_indices:
        return nn.MaxPool2d.forward(module, x)
    kernel = _pair(module.kernel_size)
    stride = _pair(module.stride if module.stride is not None else module.kernel_size)
    padding, dilation = _pair(module.padding), _pair(module.dilation)
    if torch.is_grad_enabled() and x.requires_grad:
        return _ChannelsLastMaxPool2d.apply(x, kernel, stride, padding, dilation, module.ceil_mode)
    y = torch.max_pool2d(x.contiguous(memory_format=torch.channels_last), kernel, stride, padding, dilation,
                         module.ceil_mode)
    return y.contiguous()


@contextlib.contextmanager
def fast_max_pooling(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block every `nn.MaxPool2d` of `model` (exactly that class) computes through
    `channels_last_max_pool2d`; afterwards the modules' own forward is back. Nested blocks
    leave a module to the outer one."""
    patched = []
    for module in model.modules():
        if type(module) is nn.MaxPool2d and "forward" not in vars(module):
            module.forward = types.MethodType(channels_last_max_pool2d, module)
            patched.append(module)
    try:
        yield model
    finally:
        for module in patched:
            vars(module).pop("forward", None)
