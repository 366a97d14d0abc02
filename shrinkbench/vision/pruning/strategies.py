"""Strategies = a criterion (how weights are scored) x a scope (how scores are compared).

    global:    one ranking over all prunable weights of the model; the top K are kept
    layerwise: each layer l keeps its share K * n_l / prunable of its own top weights

Selection is not the strategy's business (`selection.py` does it exactly, for every
strategy alike), so a strategy is just `scope` plus `score(ctx)`.

Built-ins (registry key, alias = the original ShrinkBench class name):
global_magnitude GlobalMagWeight, layerwise_magnitude LayerMagWeight, global_gradient
GlobalMagGrad, layerwise_gradient LayerMagGrad, global_activation GlobalMagAct,
layerwise_activation LayerMagAct, random RandomPruning (layerwise).
"""
from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from shrinkbench.vision.pruning.base import SCOPES, STRATEGIES, Strategy, register_strategy  # noqa: F401
from shrinkbench.vision.pruning.criteria import CRITERIA, Criterion

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from shrinkbench.vision.pruning.context import ScoringContext


class ScoredStrategy(Strategy):
    """A built-in criterion applied with a scope."""

    def __init__(self, criterion: Criterion, scope: str, name: str, reference: str = ""):
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        self._criterion = criterion
        self.name, self.scope, self.criterion = name, scope, criterion.name
        how = {"global": "ranked over all prunable weights", "layerwise": "each layer keeps the same fraction",
               "erk": "layer densities by Erdos-Renyi-Kernel (Evci et al. 2020)",
               "first_dense": "first layer dense, the others the same fraction (Gale et al. 2019)"}[scope]
        self.description = f"score {criterion.formula}, {how}" + (f" ({reference})" if reference else "")

    def score(self, ctx: ScoringContext) -> dict[str, torch.Tensor]:
        return self._criterion.fn(ctx)


_BUILTINS = [  # (criterion, scope, alias of the original ShrinkBench)
    ("magnitude", "global", "GlobalMagWeight"), ("magnitude", "layerwise", "LayerMagWeight"),
    ("gradient", "global", "GlobalMagGrad"), ("gradient", "layerwise", "LayerMagGrad"),
    ("activation", "global", "GlobalMagAct"), ("activation", "layerwise", "LayerMagAct"),
]
for _criterion, _scope, _alias in _BUILTINS:
    _name = f"{_scope}_{_criterion}"
    STRATEGIES.register(_name, partial(ScoredStrategy, CRITERIA.get(_criterion), _scope, _name),
                        aliases=(_alias,))
STRATEGIES.register("random", partial(ScoredStrategy, CRITERIA.get("random"), "layerwise", "random"),
                    aliases=("RandomPruning",))
_PAPERS = [  # (name, criterion, scope, reference): the methods and baselines a pruning paper is judged against
    ("snip", "gradient", "global", "SNIP, Lee, Ajanthan, Torr 2019: |g * w| at initialisation"),
    ("grasp", "grasp", "global", "GraSP, Wang, Zhang, Grosse 2020"),
    ("synflow", "synflow", "global", "SynFlow, Tanaka, Kunin, Yamins, Ganguli 2020; data-free"),
    ("lamp", "lamp", "global", "LAMP, Lee, Park, Mo, Ahn, Shin 2021"),
    ("erk_magnitude", "magnitude", "erk", "Evci, Gale, Menick, Castro, Elsen 2020"),
    ("first_dense_magnitude", "magnitude", "first_dense", "Gale, Elsen, Hooker 2019"),
]
for _name, _criterion, _scope, _reference in _PAPERS:
    STRATEGIES.register(_name, partial(ScoredStrategy, CRITERIA.get(_criterion), _scope, _name, _reference))


def list_strategies() -> list[tuple[str, str, str, tuple[str, ...], str, str]]:
    """(name, scope, criterion, aliases, description, granularities) of every registered strategy."""
    rows = []
    for name, factory in STRATEGIES.items():
        strategy = factory()
        rows.append((name, strategy.scope, strategy.criterion, STRATEGIES.aliases(name),
                     strategy.summary(), ", ".join(strategy.granularities)))
    return rows
