"""Granularity: what one unit of selection is. An axis of every run (`RunConfig.granularity`),
seen by the runner through one interface, `Granularity.prune`, so a new granularity is one
entry here and a module of its own, not a branch in the runner.

- `weight` (the default): single weights; the strategy scores each weight, exactly K are kept
  (`shrinkbench.vision.pruning.selection`). Masked weights run on dense kernels: no speedup.
- `channel`: coupled channel groups (`shrinkbench.vision.structured`); the strategy scores each
  producer layer's output channels, a group's score is the sum over its producers, whole
  groups are removed until the target is reached (to within one group), and the pruned model
  can be compacted into a genuinely smaller one (`compacts`). With `RunConfig.round_to` = r > 1
  every layer keeps a multiple of r channels (`rounds`; the other granularities refuse it).
- `N:M` (e.g. `2:4`): in every group of M consecutive weights along each prunable layer's
  input (reduction) dimension exactly N are kept (`shrinkbench.vision.pruning.nm`); the sparsity of
  the prunable weights is 1 - N/M, so the target is fixed by the granularity.

Targets (`RunConfig.target`, the value is `RunConfig.compression`): `compression` (params /
nonzero params), `speedup` (dense MACs / nonzero MACs) and `sparsity` (the fraction of the
prunable weights removed). Iterative pruning in k steps reaches `value ** (j / k)` at step j
(compression, speedup) or `1 - (1 - value) ** (j / k)` (sparsity).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from shrinkbench.core.errors import ConfigError, UnknownNameError
from shrinkbench.core.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from shrinkbench.vision.pruning.masks import MaskSet
    from shrinkbench.vision.pruning.base import Strategy

TARGETS = ("compression", "speedup", "sparsity")
NM = re.compile(r"^(\d+):(\d+)$")


def target_at_step(kind: str, value: float, step: int, steps: int) -> float:
    """The target of step `step` of `steps` (see the module docstring)."""
    if kind == "sparsity":
        return 1.0 - (1.0 - value) ** (step / steps)
    return value ** (step / steps)


def is_dense_target(kind: str, value: float) -> bool:
    """Whether a target asks for nothing to be pruned."""
    return value == (0.0 if kind == "sparsity" else 1.0)


@dataclass(frozen=True)
class Granularity:
    """One unit of selection. Subclasses implement `prune` and say which targets they take."""

    name: str
    targets: tuple[str, ...] = TARGETS
    compacts: bool = False
    rounds: bool = False
    """Whether kept counts can be rounded to multiples (`round_to`)."""

    def check(self, model_name: str, exclude, strategy: "Strategy", target: str, value: float,
              round_to: int = 1) -> None:
        """Refuse, before anything runs, what this granularity cannot do with this model,
        strategy and target (a one-line ConfigError or CompressionError)."""
        if round_to != 1 and not self.rounds:
            raise ConfigError(f"round_to {round_to} rounds the kept channels of each layer; granularity "
                              f"{self.name!r} keeps no channel counts (use granularity channel, or round_to 1)")
        if target not in self.targets:
            raise ConfigError(f"granularity {self.name!r} takes targets {', '.join(self.targets)}, not {target!r}")
        supported = getattr(strategy, "granularities", ("weight", "nm"))
        family = "nm" if NM.match(self.name) else self.name
        if family not in supported:
            raise ConfigError(f"strategy {strategy.name!r} scores for granularity {', '.join(supported)}, not "
                              f"{self.name!r}; set granularity to one of those (or pick a {self.name} strategy, "
                              "see `shrinkbench strategies`)")

    def prune(self, model: "nn.Module", strategy: "Strategy", target: str, value: float, *, excluded,
              batches: Sequence, generator: "torch.Generator", masks: "MaskSet | None" = None,
              input_shape: tuple[int, ...] = (), run=None, round_to: int = 1) -> "MaskSet":
        raise NotImplementedError

    def deployed(self, model: "nn.Module", masks: "MaskSet | None", input_shape: tuple[int, ...],
                 excluded) -> "nn.Module":
        """The model as it would be deployed: the masked model itself unless `compacts`."""
        return model


class WeightGranularity(Granularity):
    """Single weights (see the module docstring)."""

    def check(self, model_name, exclude, strategy, target, value, round_to=1) -> None:
        super().check(model_name, exclude, strategy, target, value, round_to)
        if getattr(strategy, "criterion", None) == "synflow" and target == "speedup":
            raise ConfigError("SynFlow prunes to a kept count over its 100 rounds; give it a compression or sparsity "
                              "target, not speedup")
        scope = getattr(strategy, "scope", "global")
        from shrinkbench.vision.pruning.selection import ALLOCATIONS

        if target in ("compression", "sparsity") and scope in ALLOCATIONS and scope != "layerwise":
            from shrinkbench.vision.models import build_on_meta, model_spec
            from shrinkbench.vision.pruning.layers import keep_count, keep_count_for_sparsity, prunable_weights
            from shrinkbench.vision.pruning.selection import check_allocation

            model = build_on_meta(model_name)
            weights = prunable_weights(model, model_spec(model_name).excluded if exclude is None else exclude)
            k = keep_count(model, weights, value) if target == "compression" else keep_count_for_sparsity(weights, value)
            check_allocation(scope, k, [tuple(w.shape) for w in weights.values()])

    def prune(self, model, strategy, target, value, *, excluded, batches, generator, masks=None, input_shape=(),
              run=None, round_to=1):
        from shrinkbench.vision.pruning.selection import prune

        _refuse_rounding(self, round_to)
        return prune(model, strategy, value, excluded=excluded, batches=batches, generator=generator, masks=masks,
                     target=target, input_shape=input_shape, run=run)


class ChannelGranularity(Granularity):
    """Coupled channel groups (see `shrinkbench.vision.structured`)."""

    def check(self, model_name, exclude, strategy, target, value, round_to=1) -> None:
        super().check(model_name, exclude, strategy, target, value, round_to)
        from shrinkbench.vision.structured.prune import check_target

        check_target(model_name, exclude, strategy, target, value, round_to)

    def prune(self, model, strategy, target, value, *, excluded, batches, generator, masks=None, input_shape=(),
              run=None, round_to=1):
        from shrinkbench.vision.structured.prune import prune_channels

        return prune_channels(model, strategy, target, value, excluded=excluded, batches=batches,
                              generator=generator, masks=masks, input_shape=input_shape, run=run, round_to=round_to)

    def deployed(self, model, masks, input_shape, excluded):
        from shrinkbench.vision.structured.prune import compact_masked

        return compact_masked(model, masks)


@dataclass(frozen=True)
class NMGranularity(Granularity):
    """N of every M consecutive weights along the input dimension (see `shrinkbench.vision.pruning.nm`)."""

    n: int = 2
    m: int = 4

    def check(self, model_name, exclude, strategy, target, value, round_to=1) -> None:
        super().check(model_name, exclude, strategy, target, value, round_to)
        if target != "sparsity" or abs(value - (1 - self.n / self.m)) > 1e-12:
            raise ConfigError(f"granularity {self.name} fixes the sparsity of the prunable weights at "
                              f"{1 - self.n / self.m:g}; its target is sparsity {1 - self.n / self.m:g}")

    def prune(self, model, strategy, target, value, *, excluded, batches, generator, masks=None, input_shape=(),
              run=None, round_to=1):
        from shrinkbench.vision.pruning.nm import prune_nm

        _refuse_rounding(self, round_to)
        return prune_nm(model, strategy, self.n, self.m, excluded=excluded, batches=batches, generator=generator,
                        masks=masks, run=run)


def _refuse_rounding(unit: Granularity, round_to: int) -> None:
    if round_to != 1:
        raise ConfigError(f"round_to {round_to} needs granularity channel, not {unit.name!r}")


GRANULARITIES: Registry[Granularity] = Registry("granularity")
GRANULARITIES.register("weight", WeightGranularity("weight", TARGETS))
GRANULARITIES.register("channel", ChannelGranularity("channel", TARGETS, compacts=True, rounds=True))


def granularity(name: str) -> Granularity:
    """The granularity `name`: a registered one, or `N:M` with 1 <= N < M."""
    if not isinstance(name, str):
        raise ConfigError(f"granularity must be a name, got {name!r}")
    match = NM.match(name.strip())
    if match:
        n, m = int(match[1]), int(match[2])
        if not 1 <= n < m:
            raise ConfigError(f"granularity {name!r}: N:M needs 1 <= N < M (e.g. 2:4), got N={n}, M={m}")
        return NMGranularity(f"{n}:{m}", ("sparsity",), False, n=n, m=m)
    try:
        return GRANULARITIES.get(name)
    except UnknownNameError as error:
        raise UnknownNameError(f"{error} (or N:M such as 2:4)") from None


def nm_sparsity(name: str) -> float | None:
    """1 - N/M for an `N:M` granularity, None for the others."""
    match = NM.match(name.strip()) if isinstance(name, str) else None
    return None if match is None else 1.0 - int(match[1]) / int(match[2])
