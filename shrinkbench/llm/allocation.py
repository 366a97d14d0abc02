"""Layer allocation: how much each pruned layer keeps, separate from the criterion that ranks
the weights inside it (as ERK and LAMP are for vision). A run's `allocation` names one.

- `uniform`: every layer at the target sparsity (the default; runs as before this axis existed).
- `owl` (Yin, Wu, Hu, ... Liu 2024, "Outlier Weighed Layerwise Sparsity (OWL): A Missing Secret
  Sauce for Pruning LLMs to High Sparsity", ICML; code `luuyin/OWL`, `lib/prune_all.py`): for each
  decoder block b, the scores A_ij = |W_ij| * ||X_j||_2 of all its pruned linear layers taken
  together (inputs X from the DENSE model: the published code measures every block before it
  prunes any) give the block's outlier ratio D_b = 100 * #{A_ij > M * mean(A)} / #A
  (`check_outlier_mean`). The blocks' densities are
  1 - s_b = (D_b - min D) / (max D - min D) * 2 lambda - mean_b(same) + (1 - s),
  so they span a range of 2 lambda whose mean is the target density (the paper's "within
  +-lambda"; one block can lie up to 2 lambda (1 - 1/B) from the target), and every layer of
  block b is pruned at s_b. Equal D everywhere (0/0 in the published code): uniform.
  M = 5 (`Hyper_m`, as in the README's scripts; main.py's default is 3) and lambda = 0.08
  (`Lamda`) are parameters (`m`, `lam`). The published code uses the per-block sparsity
  directly (its counts round per layer); here counts are exact (below).

Exact counts: the pruned layers together keep K = round(N (1 - s)) of their N weights. Layer l
(n_l weights, allocated sparsity s_l) gets the share K (1 - s_l) n_l / sum_j (1 - s_j) n_j,
apportioned by largest remainder (ties to the earlier layer), so each layer is within one weight
of its share and the total is exact; the strategy then receives `AllocatedSparsity(kept_l, n_l)`
(`shrinkbench.llm.methods`). OWL composes with every strategy at scope `layer`, `block` and, for
strategies that select through the toolkit, `row`; it refuses N:M (the pattern fixes every
layer at N/M) and scope `global` (itself an allocation).

A user's allocation: a subclass of `LayerAllocation` in a file (`mine.py:Mine`) returning one
sparsity per layer from `sparsities(layers, sparsity)`; checked before any run on a fake model
(a one-line error naming it, exit 2) and at every run (a run whose allocation misbehaves fails
with a message, the sweep goes on). Its file's sha256 is part of the run id.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shrinkbench.core.errors import ConfigError, StrategyError
from shrinkbench.core.registry import Registry

if TYPE_CHECKING:
    import torch

UNIFORM = "uniform"


@dataclass
class LayerView:
    """What an allocation sees of one pruned layer: its full `name`, the index of its decoder
    `block`, its `weight` (out x in) and, for allocations that need inputs, `sq_norm[j]` =
    sum_t X_tj^2 over the `tokens` calibration tokens of the dense model (else None)."""

    name: str
    block: int
    weight: torch.Tensor
    sq_norm: torch.Tensor | None = None
    tokens: int = 0


class LayerAllocation:
    """Base of every layer allocation: set `needs_inputs` to see the dense model's input norms;
    implement `sparsities(layers, sparsity)` -> one sparsity in [0, 1] per layer, in order
    (the toolkit turns them into exact kept counts, see the module docstring). `paper` and
    `parameter_ranges` (name -> text) are what `shrinkbench strategies` lists beside the
    constructor's parameters."""

    name = "layer_allocation"
    needs_inputs = False
    paper = ""
    parameter_ranges: dict[str, str] = {}

    def sparsities(self, layers: list[LayerView], sparsity: float) -> list[float]:
        raise NotImplementedError

    def check_target(self, sparsity: float) -> None:
        """Before any run: a one-line ConfigError if this allocation cannot reach `sparsity`."""


ALLOCATIONS: Registry[type[LayerAllocation]] = Registry("layer allocation")


@ALLOCATIONS.decorator(UNIFORM)
class Uniform(LayerAllocation):
    """Every layer at the target sparsity."""

    name = UNIFORM
    paper = ""

    def sparsities(self, layers, sparsity):
        return [float(sparsity)] * len(layers)


@ALLOCATIONS.decorator("owl")
class OWL(LayerAllocation):
    """Outlier Weighed Layerwise sparsity (Yin et al. 2024); see the module docstring."""

    name = "owl"
    needs_inputs = True
    paper = "Yin et al. 2024, OWL (ICML)"
    parameter_ranges = {"m": "> 0", "lam": "> 0, and target +- 2*lam inside [0, 1)"}

    def __init__(self, m: float = 5.0, lam: float = 0.08):
        for key, value in (("m", m), ("lam", lam)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"owl: {key} must be a finite number, got {value!r}")
        if m <= 0:
            raise ConfigError(f"owl: m (the outlier threshold, a multiple of the block's mean score) must be > 0, "
                              f"got {m}")
        if lam <= 0:
            raise ConfigError(f"owl: lam (the spread of the blocks' sparsities) must be > 0, got {lam}; "
                              f"lam = 0 is the uniform allocation")
        self.m, self.lam = float(m), float(lam)

    def check_target(self, sparsity: float) -> None:
        if sparsity - 2 * self.lam < 0 or sparsity + 2 * self.lam >= 1:
            raise ConfigError(f"owl: lam {self.lam:g} at sparsity {sparsity:g} cannot be reached: OWL spreads the "
                              f"blocks over a range of 2*lam = {2 * self.lam:g} around the target, so a block could "
                              f"need a sparsity below 0 or of 100% or more; use lam < "
                              f"{min(sparsity, 1 - sparsity) / 2:g}")

    def sparsities(self, layers, sparsity):
        ratios = owl_outlier_ratios(layers, self.m)
        per_block = owl_block_sparsities(list(ratios.values()), sparsity, self.lam)
        of_block = dict(zip(ratios, per_block))
        return [of_block[view.block] for view in layers]


def owl_scores(view: LayerView) -> torch.Tensor:
    """A = |W| * ||X_j||_2 (Wanda's score, float64) of one layer."""
    import torch

    return view.weight.abs().to(torch.float64) * view.sq_norm.to(torch.float64).sqrt().reshape(1, -1)


def owl_outlier_ratios(layers: list[LayerView], m: float) -> dict[int, float]:
    """{block: D_b}, D_b = 100 * share of the block's scores (all its layers together) above
    m times their mean (OWL's `check_outlier_mean`)."""
    import torch

    by_block: dict[int, list[torch.Tensor]] = {}
    for view in layers:
        by_block.setdefault(view.block, []).append(owl_scores(view).reshape(-1))
    ratios = {}
    for block, parts in by_block.items():
        scores = torch.cat(parts)
        ratios[block] = 100.0 * float((scores > scores.mean() * m).sum()) / scores.numel()
    return ratios


def owl_block_sparsities(ratios: list[float], sparsity: float, lam: float) -> list[float]:
    """s_b = 1 - [(D_b - min D) / (max D - min D) * 2 lam - mean(...) + (1 - s)]; all s if the D are equal."""
    low, high = min(ratios), max(ratios)
    if high == low:
        return [float(sparsity)] * len(ratios)
    scaled = [(r - low) / (high - low) * 2 * lam for r in ratios]
    mean = sum(scaled) / len(scaled)
    return [1.0 - (x - mean + (1.0 - sparsity)) for x in scaled]


def apportion(numels: list[int], sparsities: list[float], total_kept: int) -> list[int]:
    """Kept counts summing to `total_kept`: shares total_kept (1 - s_l) n_l / sum_j (1 - s_j) n_j,
    floors plus one for the largest remainders (ties to the earlier layer)."""
    weights = [(1.0 - s) * n for s, n in zip(sparsities, numels)]
    total = sum(weights)
    if total <= 0:
        raise StrategyError("the allocation keeps nothing in any layer")
    ideal = [total_kept * w / total for w in weights]
    kept = [math.floor(x) for x in ideal]
    rest = total_kept - sum(kept)
    order = sorted(range(len(ideal)), key=lambda i: (-(ideal[i] - kept[i]), i))
    for i in order[:rest]:
        kept[i] += 1
    return kept


def resolve_allocation(spec: str, params=None) -> LayerAllocation:
    """A LayerAllocation for a registered name or `module:Class` / `file.py:Class`."""
    from shrinkbench.core.usercode import no_process_exit, resolve_strategy

    with no_process_exit():
        allocation = resolve_strategy(spec, params, registry=ALLOCATIONS, base=LayerAllocation)
    if ":" in spec and allocation.name == LayerAllocation.name:
        allocation.name = spec.strip()
    return allocation


def allocated_counts(allocation: LayerAllocation, layers: list[LayerView], sparsity: float) -> list[int]:
    """Each layer's exact kept count under `allocation` (see the module docstring); whatever a
    user's allocation raises or returns wrongly is a one-line StrategyError naming it."""
    from shrinkbench.core.usercode import no_process_exit
    from shrinkbench.llm.methods import keep_count

    try:
        with no_process_exit():
            values = allocation.sparsities(layers, sparsity)
    except (KeyboardInterrupt, ConfigError, StrategyError):
        raise
    except BaseException as exc:
        raise StrategyError(f"allocation {allocation.name} raised: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())}") from None
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError):
        raise StrategyError(f"allocation {allocation.name} must return a list of numbers, got "
                            f"{type(values).__name__}") from None
    if len(values) != len(layers):
        raise StrategyError(f"allocation {allocation.name} returned {len(values)} sparsities for {len(layers)} layers")
    for view, value in zip(layers, values):
        if not math.isfinite(value) or not 0 <= value <= 1:
            raise StrategyError(f"allocation {allocation.name} gives layer {view.name} the sparsity {value}: it "
                                f"cannot reach the target {sparsity:g} (a layer's sparsity must lie in [0, 1])")
    numels = [view.weight.numel() for view in layers]
    kept = apportion(numels, values, keep_count(sum(numels), sparsity))
    for view, n, k in zip(layers, numels, kept):
        if k > n:
            raise StrategyError(f"allocation {allocation.name} cannot reach the target {sparsity:g}: layer "
                                f"{view.name} would have to keep {k} of its {n} weights (a sparsity below 0)")
    return kept


def fake_layers(needs_inputs: bool) -> list[LayerView]:
    """Two blocks of two random 8 x 16 layers (fixed generator), for the check before any run."""
    import torch

    generator = torch.Generator().manual_seed(0)
    views = []
    for block in range(2):
        for name in ("a", "b"):
            weight = torch.randn(8, 16, generator=generator)
            x = torch.randn(32, 16, generator=generator, dtype=torch.float64)
            views.append(LayerView(f"blocks.{block}.{name}", block, weight,
                                   (x * x).sum(0) if needs_inputs else None, 32 if needs_inputs else 0))
    return views


def check_allocation(spec: str, params, sparsity: float, nm, scope: str, strategy) -> LayerAllocation:
    """Before any run: the allocation resolves, can reach `sparsity`, composes with the pattern
    and scope, and (a user's) gives exact counts on `fake_layers`; one-line ConfigErrors."""
    from shrinkbench.llm.methods import LLMStrategy

    allocation = resolve_allocation(spec, params)
    label = spec if ":" in spec else allocation.name
    if not isinstance(getattr(allocation, "needs_inputs", None), bool):
        raise ConfigError(f"allocation {label}: needs_inputs must be True or False")
    if allocation.name == UNIFORM:
        return allocation
    if nm is not None:
        raise ConfigError(f"allocation {label} sets a sparsity per layer, but the N:M pattern fixes every layer at "
                          f"{nm[0]} of every {nm[1]}; use it with an unstructured pattern")
    if scope == "global":
        raise ConfigError(f"allocation {label}: scope global is itself an allocation (one threshold over every "
                          f"layer); use scope layer or row")
    if scope == "row" and type(strategy).prune is not LLMStrategy.prune:
        raise ConfigError(f"allocation {label}: strategy {strategy.name} chooses its own row counts (it overrides "
                          f"prune()), so scope row cannot keep a layer's allocated count exactly; use scope "
                          f"{'block' if 'block' in strategy.scopes else 'layer'}")
    allocation.check_target(sparsity)
    if ":" in spec:
        try:
            allocated_counts(allocation, fake_layers(allocation.needs_inputs), sparsity)
        except StrategyError as error:
            raise ConfigError(f"dry run of allocation {label} on a fake model of 2 blocks x 2 layers of 8x16 failed: "
                              f"{error}") from None
    return allocation
