"""What a pruning strategy of the vision track is (`Strategy`: a scope and a `score(ctx)`), the
registry of named strategies and its decorator. The built-ins register themselves in
`strategies.py` (weight criteria) and `shrinkbench.vision.structured.criteria` (channel criteria);
importing `shrinkbench.vision.pruning` loads both."""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Callable

from shrinkbench.core.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from shrinkbench.vision.pruning.context import ScoringContext

SCOPES = ("global", "layerwise", "erk", "first_dense")
"""How scores are compared: one global ranking, or a per-layer allocation of the kept count
(`shrinkbench.vision.pruning.selection.ALLOCATIONS`) with each layer ranked on its own."""


class Strategy:
    """Base class of pruning strategies. Subclasses set `scope` and implement `score`.

    `score(ctx)` returns, for every name in `ctx.weights`, a tensor shaped like that weight
    whose larger values mark the weights to keep; non-finite values are an error. Exact
    selection (K weights, ties to the lower index) and masking are done by `prune`.
    """

    name: str = ""          # default: the class name; a registered strategy's is its key
    scope: str = "global"
    criterion: str = "custom"
    description: str = ""
    granularities: tuple[str, ...] = ("weight", "nm")
    """What it scores for: single weights (also N:M); channel strategies say ("channel",)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    def score(self, ctx: ScoringContext) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement score(ctx)")

    def summary(self) -> str:
        """One line: `description`, else the first line of the class docstring."""
        doc = inspect.getdoc(type(self)) if type(self).__doc__ else ""
        return self.description or (doc.splitlines()[0] if doc else "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, scope={self.scope!r})"


STRATEGIES: Registry[Callable[[], Strategy]] = Registry("pruning strategy")
"""name -> zero-argument factory of a Strategy (a Strategy subclass is one)."""


def register_strategy(name: str | None = None, aliases: tuple[str, ...] = ()):
    """Class decorator: make a Strategy subclass selectable by `name` (default: its class name)."""

    def wrap(cls: type[Strategy]) -> type[Strategy]:
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise TypeError(f"{cls!r} is not a subclass of shrinkbench.vision.pruning.Strategy")
        STRATEGIES.register(name or cls.__name__, cls, aliases)
        return cls

    return wrap
