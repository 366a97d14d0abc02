"""Which weights are prunable, and how many of them a target compression keeps.

Definitions (ARCHITECTURE.md, section 2):

* prunable weights: the `weight` tensors of Conv1d/2d/3d, ConvTranspose1d/2d/3d and Linear
  modules, in `named_modules` order, minus the modules the model marks as excluded (by
  default its final classifier). Biases and normalisation parameters are never pruned.
* params = all parameters of the model; non_prunable = params - prunable.
* A target compression c = params / params_nonzero is met by keeping

      K = round(params / c - non_prunable)        (round half up)

  prunable weights, i.e. the fraction f = K / prunable. c = 1 keeps all of them.
* The largest reachable compression keeps one prunable weight:
  max = params / (non_prunable + 1). A larger target is a `CompressionError` naming it.
"""
from __future__ import annotations

import difflib
import math
from typing import Iterable

from torch import nn

from shrinkbench.core.errors import CompressionError, ConfigError
from shrinkbench.core.metrics.structure import params as count_params

PRUNABLE_TYPES: tuple[type, ...] = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d,
    nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
    nn.Linear,
)
"""Module types whose `weight` is prunable (subclasses included)."""


def _list_names(names: list[str], limit: int = 40) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names)} in all)"


def prunable_weights(model: nn.Module, excluded: Iterable[str]) -> dict[str, nn.Parameter]:
    """Module qualified name -> its `weight` Parameter for every prunable layer not excluded.

    A weight shared by several modules is listed once, under the first module's name.
    An excluded name that is not a prunable layer of `model` is a `ConfigError`.
    """
    excluded = list(excluded)
    found: dict[str, nn.Parameter] = {}
    seen: set[int] = set()
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, PRUNABLE_TYPES) and isinstance(weight, nn.Parameter):
            if id(weight) not in seen:
                seen.add(id(weight))
                found[name] = weight
    unknown = [name for name in excluded if name not in found]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(found), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
        raise ConfigError(f"excluded layer {unknown[0]!r} is not a prunable (Conv/Linear) layer "
                          f"of the model; {hint}prunable layers: {_list_names(list(found))}")
    return {name: w for name, w in found.items() if name not in set(excluded)}


def _counts(model: nn.Module, prunable: dict[str, nn.Parameter]) -> tuple[int, int]:
    """(params, number of prunable weights)."""
    return count_params(model), sum(w.numel() for w in prunable.values())


def _floor_significant(x: float, digits: int = 6) -> str:
    """`x` with `digits` significant digits, rounded DOWN (so the printed value is reachable)."""
    if x <= 0 or not math.isfinite(x):
        return repr(x)
    decimals = max(0, digits - 1 - math.floor(math.log10(x)))
    scale = 10 ** decimals
    text = f"{math.floor(x * scale) / scale:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def max_compression(model: nn.Module, prunable: dict[str, nn.Parameter]) -> float:
    """The largest reachable compression: params / (non_prunable + 1), keeping one prunable
    weight (1.0 when nothing is prunable)."""
    total, n_prunable = _counts(model, prunable)
    if n_prunable == 0:
        return 1.0
    return total / (total - n_prunable + 1)


def keep_count_for_sparsity(prunable: dict[str, nn.Parameter], sparsity: float) -> int:
    """K = round_half_up((1 - s) * prunable): the prunable weights kept at sparsity s, 0 <= s < 1
    (at least one)."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0 <= sparsity < 1:
        raise CompressionError(f"sparsity must be a number in [0, 1) (the fraction of prunable weights removed), "
                               f"got {sparsity!r}")
    n_prunable = sum(w.numel() for w in prunable.values())
    return min(n_prunable, max(1, math.floor((1 - sparsity) * n_prunable + 0.5)))


def keep_count(model: nn.Module, prunable: dict[str, nn.Parameter], compression: float) -> int:
    """K = round_half_up(params / c - non_prunable), the number of prunable weights to keep.

    c must be finite and >= 1, and at most `max_compression` (else `CompressionError`,
    whose message gives the largest reachable ratio). c = 1 gives K = prunable.
    """
    if isinstance(compression, bool) or not isinstance(compression, (int, float)):
        raise CompressionError(f"compression must be a number >= 1, got {compression!r}")
    c = float(compression)
    if not math.isfinite(c) or c < 1:
        raise CompressionError(f"compression must be a finite number >= 1 (params / nonzero "
                               f"params), got {compression!r}")
    total, n_prunable = _counts(model, prunable)
    non_prunable = total - n_prunable
    largest = max_compression(model, prunable)
    if n_prunable == 0 and c > 1:
        raise CompressionError(f"compression {compression:g} cannot be reached: the model has no "
                               f"prunable weights, the largest reachable is 1")
    if c > largest * (1 + 1e-12):
        raise CompressionError(
            f"compression {compression:g} cannot be reached: the largest reachable is "
            f"{_floor_significant(largest)} (keeping 1 of {n_prunable:,} prunable weights; "
            f"{non_prunable:,} of {total:,} parameters are not prunable)")
    if c == 1:
        return n_prunable
    return min(n_prunable, max(1, math.floor(total / c - non_prunable + 0.5)))
