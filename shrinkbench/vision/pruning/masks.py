"""Keep-masks of the prunable weights, and their enforcement during fine-tuning.

A `MaskSet` maps each prunable layer's qualified name to a boolean tensor of its weight's
shape (True = kept). Structured granularities also mask other parameters (`extra`, keyed by
the full parameter name: biases, normalisation scales and shifts, an excluded classifier's
input columns), which are enforced the same way; counts (`kept`, `total`) are of the
prunable weights alone. Pruned weights stay exactly zero through fine-tuning when every step is

    loss.backward(); masks.mask_gradients(); optimizer.step()

and every epoch ends with `masks.mask_weights()`. The training loop masks the gradients with
hooks instead (`hook_gradients`: the same multiplication while backward writes each gradient).

`mask_gradients` zeroes the gradient at pruned positions, so with a weight of exactly 0
there nothing reaches the optimizer: SGD's d = g + wd*w = 0 keeps the momentum buffer at 0,
Adam's exp_avg / exp_avg_sq stay 0 (so its update 0 / (sqrt(0) + eps) = 0), and AdamW's
decoupled decay multiplies 0. `mask_weights` re-zeroes the weights as a guard (e.g. against
optimizer state carried over from dense training, which `mask_optimizer_state` clears); it
changes nothing where the above holds, so the training loop calls it once per epoch, not per
step (multiplying a kept weight by 1 and a zero by 0 is exact, so the numbers are the same bit
for bit either way; per step it cost 3% of a LeNet-300-100 step on one CPU thread). Both are one fused `torch._foreach_mul_` over all prunable tensors with
masks pre-cast to each parameter's dtype and device by `attach` (a plain loop where
`_foreach_mul_` does not exist). A non-finite gradient at a pruned position would give
0 * inf = nan; training has diverged then anyway (the runner stops on a non-finite loss).
"""
from __future__ import annotations

from typing import Iterator, Mapping

import torch
from torch import nn

from shrinkbench.core.errors import CheckpointError, ConfigError

if hasattr(torch, "_foreach_mul_"):
    def _multiply_in_place(tensors: list[torch.Tensor], factors: list[torch.Tensor]) -> None:
        if tensors:
            torch._foreach_mul_(tensors, factors)
else:  # pragma: no cover - very old torch
    def _multiply_in_place(tensors: list[torch.Tensor], factors: list[torch.Tensor]) -> None:
        for tensor, factor in zip(tensors, factors):
            tensor.mul_(factor)


class GradientHooks:
    """The hooks `MaskSet.hook_gradients` registered; `remove()` takes them off."""

    def __init__(self, handles: list):
        self.handles = handles

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


class MaskSet:
    """Boolean keep-masks (True = kept), one per prunable layer, in layer order."""

    def __init__(self, masks: Mapping[str, torch.Tensor], extra: Mapping[str, torch.Tensor] | None = None):
        self._masks: dict[str, torch.Tensor] = {}
        self.extra: dict[str, torch.Tensor] = {}
        for target, source in ((self._masks, masks), (self.extra, extra or {})):
            for name, mask in source.items():
                if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
                    raise ConfigError(f"mask of {name!r} must be a bool tensor, got "
                                      f"{getattr(mask, 'dtype', type(mask).__name__)}")
                target[name] = mask
        self._params: list[nn.Parameter] | None = None   # bound by attach(), all layers
        self._active: list[nn.Parameter] = []              # those with something pruned
        self._factors: list[torch.Tensor] = []             # their masks as 0/1 in their dtype

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def dense(cls, weights: Mapping[str, torch.Tensor]) -> "MaskSet":
        """All weights kept."""
        return cls({n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()})

    @classmethod
    def from_weights(cls, weights: Mapping[str, torch.Tensor]) -> "MaskSet":
        """Masks read off the weights: kept where the weight is not zero."""
        return cls({n: w.detach() != 0 for n, w in weights.items()})

    # ---- mapping ------------------------------------------------------------------------
    def __getitem__(self, name: str) -> torch.Tensor:
        return self._masks[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._masks)

    def __len__(self) -> int:
        return len(self._masks)

    def __contains__(self, name: object) -> bool:
        return name in self._masks

    def items(self):
        return self._masks.items()

    def names(self) -> list[str]:
        return list(self._masks)

    # ---- counts -------------------------------------------------------------------------
    def kept(self) -> int:
        """Number of kept (unpruned) weights over all layers."""
        return sum(int(m.sum().item()) for m in self._masks.values())

    def total(self) -> int:
        """Number of masked weights (kept + pruned)."""
        return sum(m.numel() for m in self._masks.values())

    def density(self) -> dict[str, float]:
        """Per layer: kept / numel."""
        return {n: int(m.sum().item()) / m.numel() for n, m in self._masks.items()}

    def only_shrinks(self, previous: "MaskSet") -> bool:
        """True when every weight kept here was kept in `previous` (same layers and shapes)."""
        if self.names() != previous.names():
            return False
        return all(m.shape == previous[n].shape and not bool((m & ~previous[n].to(m.device)).any())
                   for n, m in self._masks.items())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MaskSet):
            return NotImplemented
        return self.names() == other.names() and all(
            m.shape == other[n].shape and torch.equal(m.cpu(), other[n].cpu())
            for n, m in self._masks.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"MaskSet({len(self)} layers, kept {self.kept():,} of {self.total():,})"

    # ---- applying to a model ------------------------------------------------------------
    def _parameters_of(self, model: nn.Module) -> list[nn.Parameter]:
        params = []
        for name, mask in self._masks.items():
            try:
                weight = model.get_submodule(name).weight
            except AttributeError:
                raise CheckpointError(f"mask for layer {name!r}, but the model has no such layer "
                                      f"with a weight") from None
            if weight.shape != mask.shape:
                raise CheckpointError(f"mask for layer {name!r} has shape {tuple(mask.shape)}, "
                                      f"its weight {tuple(weight.shape)}")
            params.append(weight)
        return params

    def _extra_parameters_of(self, model: nn.Module) -> list[nn.Parameter]:
        params = []
        for name, mask in self.extra.items():
            try:
                param = model.get_parameter(name)
            except AttributeError:
                raise CheckpointError(f"mask for parameter {name!r}, but the model has no such parameter") from None
            if param.shape != mask.shape:
                raise CheckpointError(f"mask for {name!r} has shape {tuple(mask.shape)}, the parameter "
                                      f"{tuple(param.shape)}")
            params.append(param)
        return params

    @torch.no_grad()
    def apply(self, model: nn.Module) -> None:
        """Set every pruned weight of `model` to exactly 0 (masked_fill, so nan/inf become 0)."""
        for weight, mask in zip(self._parameters_of(model) + self._extra_parameters_of(model),
                                list(self._masks.values()) + list(self.extra.values())):
            weight.masked_fill_(~mask.to(weight.device), 0)

    def attach(self, model: nn.Module) -> "MaskSet":
        """Bind `model`'s weight Parameters and pre-cast the masks to their dtype and device.

        Call once, after the model is on its final device and dtype; the per-step
        `mask_gradients` / `mask_weights` then do no name lookups, and skip layers whose
        mask keeps everything.
        """
        self._params = self._parameters_of(model) + self._extra_parameters_of(model)
        self._cast_factors()
        return self

    def _cast_factors(self) -> None:
        masks = list(self._masks.values()) + list(self.extra.values())
        pairs = [(p, m.to(device=p.device, dtype=p.dtype)) for p, m in zip(self._params, masks) if not bool(m.all())]
        self._active = [p for p, _ in pairs]
        self._factors = [f for _, f in pairs]

    def _bound(self) -> list[nn.Parameter]:
        if self._params is None:
            raise RuntimeError("MaskSet.attach(model) must be called before masking each step")
        return self._active

    def mask_gradients(self) -> None:
        """grad *= mask for every attached weight that has a gradient (after backward,
        before optimizer.step)."""
        params = self._bound()
        grads = [p.grad for p in params]
        if any(g is None for g in grads):
            pairs = [(g, f) for g, f in zip(grads, self._factors) if g is not None]
            grads, factors = [g for g, _ in pairs], [f for _, f in pairs]
        else:
            factors = self._factors
        _multiply_in_place(grads, factors)

    def hook_gradients(self) -> "GradientHooks":
        """Zero the gradient at pruned positions as backward accumulates it: a hook on each
        attached weight (`register_post_accumulate_grad_hook`) runs `grad *= mask` right
        after that weight's gradient is written, while it is still in cache, instead of one
        pass over all gradients after backward (`mask_gradients`). The same multiplication
        of the same values, so the same numbers bit for bit; LeNet-300-100 at 8x on one CPU
        thread: masked / dense 1.044 -> 1.037 (`benchmarks/mask_overhead.py`). Remove the
        hooks (`.remove()`) before the masks change or the training ends."""
        handles = []
        for param, factor in zip(self._bound(), self._factors):
            def mask(p: torch.Tensor, factor: torch.Tensor = factor) -> None:
                p.grad.mul_(factor)
            handles.append(param.register_post_accumulate_grad_hook(mask))
        return GradientHooks(handles)

    @torch.no_grad()
    def mask_weights(self) -> None:
        """weight *= mask for every attached weight (after optimizer.step; a guard)."""
        _multiply_in_place(self._bound(), self._factors)

    @torch.no_grad()
    def mask_optimizer_state(self, optimizer: torch.optim.Optimizer) -> None:
        """Zero, at pruned positions, every optimizer state tensor shaped like its attached
        weight (momentum buffers, Adam moments), e.g. when the state predates pruning."""
        for param, factor in zip(self._bound(), self._factors):
            for value in optimizer.state.get(param, {}).values():
                if isinstance(value, torch.Tensor) and value.shape == param.shape:
                    value.mul_(factor.to(value.dtype))

    # ---- saving -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """name -> bool mask on the CPU (saveable with torch.save, loadable weights_only)."""
        return {n: m.detach().cpu().clone() for n, m in self._masks.items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Replace the masks by `state`; layers and shapes must match the current ones
        (an empty MaskSet accepts any). Attached masks are re-bound to the same weights."""
        if self._masks and list(state) != self.names():
            raise CheckpointError(f"saved masks cover layers {list(state)}, expected {self.names()}")
        for name, mask in state.items():
            if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
                raise CheckpointError(f"saved mask of layer {name!r} is not a bool tensor")
            if name in self._masks and mask.shape != self._masks[name].shape:
                raise CheckpointError(f"saved mask of layer {name!r} has shape {tuple(mask.shape)}, "
                                      f"expected {tuple(self._masks[name].shape)}")
        device = {n: m.device for n, m in self._masks.items()}
        self._masks = {n: m.to(device.get(n, m.device)) for n, m in state.items()}
        if self._params is not None:
            self._cast_factors()

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> "MaskSet":
        masks = cls({})
        masks.load_state_dict(state)
        return masks
