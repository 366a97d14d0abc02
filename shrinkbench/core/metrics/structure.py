"""Metrics computed from the model's weights and its MACs profile alone (no data). Importing
this module needs no torch (the metrics registry is listed without it)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from shrinkbench.core.metrics.registry import metric

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from shrinkbench.core.macs import MacsProfile


def _nonzero(t: "torch.Tensor") -> int:
    return int(t.count_nonzero().item())


@metric(unit="count", higher_is_better=None, kind="structure")
def params(model: nn.Module) -> int:
    """Number of parameters of the model, all of them (weights, biases, normalisation):
    params = sum over parameter tensors of numel."""
    return sum(p.numel() for p in model.parameters())


@metric(unit="count", higher_is_better=False, kind="structure")
def params_nonzero(model: nn.Module) -> int:
    """Number of parameters that are not exactly zero:
    params_nonzero = sum over parameter tensors of count(p != 0)."""
    return sum(_nonzero(p) for p in model.parameters())


@metric(unit="ratio", higher_is_better=True, kind="structure")
def compression_ratio(model: nn.Module) -> float:
    """compression_ratio = params / params_nonzero (1 for a dense model)."""
    return params(model) / max(params_nonzero(model), 1)


def layer_nonzeros(model: nn.Module, profile: MacsProfile) -> dict[str, int]:
    """nnz(weight) of every layer the MACs profile counts."""
    modules = dict(model.named_modules())
    return {layer.name: _nonzero(modules[layer.name].weight) for layer in profile.layers}


@metric(unit="MACs", higher_is_better=None, kind="structure")
def macs(model: nn.Module, profile: MacsProfile) -> int:
    """Dense multiply-accumulates for one example, by the one convention (see
    shrinkbench.core.macs): macs = sum over Conv/Linear layers of
    C_out*H_out*W_out*(C_in/groups)*k_h*k_w (Linear: out*in); biases, normalisation,
    activations, pooling and additions excluded."""
    return profile.macs


@metric(unit="MACs", higher_is_better=False, kind="structure")
def macs_nonzero(model: nn.Module, profile: MacsProfile) -> int:
    """MACs that touch a nonzero weight: sum over layers of dense MACs x nonzero weight
    fraction of that layer (= output positions x nnz(weight))."""
    return profile.macs_nonzero(layer_nonzeros(model, profile))


@metric(unit="ratio", higher_is_better=True, kind="structure")
def theoretical_speedup(model: nn.Module, profile: MacsProfile) -> float:
    """theoretical_speedup = macs / macs_nonzero (1 for a dense model)."""
    return profile.macs / max(macs_nonzero(model, profile), 1)


@metric(unit="FLOPs", higher_is_better=None, kind="structure")
def flops(model: nn.Module, profile: MacsProfile) -> int:
    """flops = 2 x macs (one multiply and one add per MAC); a separate column, never the
    same number as MACs."""
    return 2 * profile.macs


@metric(unit="FLOPs", higher_is_better=False, kind="structure")
def flops_nonzero(model: nn.Module, profile: MacsProfile) -> int:
    """flops_nonzero = 2 x macs_nonzero."""
    return 2 * macs_nonzero(model, profile)


@metric(unit="bytes", higher_is_better=False, kind="structure")
def model_bytes_dense(model: nn.Module) -> int:
    """Bytes of the state dict stored densely:
    model_bytes_dense = sum over parameters and buffers of numel x element size."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def sparse_tensor_bytes(t: torch.Tensor) -> int:
    """Bytes of one tensor in bitmap-sparse encoding, or dense when that is smaller:
    min(numel x itemsize, ceil(numel / 8) + nnz x itemsize)."""
    dense = t.numel() * t.element_size()
    if not t.is_floating_point():
        return dense
    return min(dense, math.ceil(t.numel() / 8) + _nonzero(t) * t.element_size())


@metric(unit="bytes", higher_is_better=False, kind="structure")
def model_bytes_sparse(model: nn.Module) -> int:
    """Bytes of the state dict when each floating-point tensor is stored as the smaller of
    dense and a bitmap of its nonzeros plus their values: model_bytes_sparse = sum over
    tensors of min(numel x itemsize, ceil(numel/8) + nnz x itemsize); integer buffers dense."""
    return sum(sparse_tensor_bytes(t) for t in model.state_dict().values())


def measure_structure(model: nn.Module, profile: MacsProfile) -> dict[str, float]:
    """All structure metrics of `model` in one pass over its weights."""
    nnz = layer_nonzeros(model, profile)
    total, nonzero = params(model), params_nonzero(model)
    mac_nz = profile.macs_nonzero(nnz)
    return {
        "params": total, "params_nonzero": nonzero,
        "compression_ratio": total / max(nonzero, 1),
        "macs": profile.macs, "macs_nonzero": mac_nz,
        "theoretical_speedup": profile.macs / max(mac_nz, 1),
        "flops": 2 * profile.macs, "flops_nonzero": 2 * mac_nz,
        "model_bytes_dense": model_bytes_dense(model),
        "model_bytes_sparse": model_bytes_sparse(model),
    }
