"""shrinkbench: benchmark neural-network pruning honestly (after Blalock et al., "What is the
State of Neural Network Pruning?", MLSys 2020).

The entry points, imported lazily (`import shrinkbench` loads no torch):

- `list_models(pattern)`, `create_model(name, seed)`, `describe_model(name)`: the model zoo;
- `list_strategies()`, `Strategy`, `register_strategy`: pruning methods;
- `prune(model, strategy, compression, ...)`: one run, stored, its record returned;
- `run_suite(suite, store=..., threads=...)`: every missing run of a suite;
- `load_results(store)`: the tidy table (pandas); `compare(store, method)`: the verdicts;
  `report(store, out)`: figures, tables and the significance report.

A method of your own is a scoring function (see `docs/extending.md` and the README):

    from shrinkbench import Strategy
    class SquaredMagnitude(Strategy):
        scope = "global"
        def score(self, ctx):  # higher = keep; one tensor per prunable weight
            return {name: w.detach() ** 2 for name, w in ctx.weights.items()}
"""
from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "list_models": "shrinkbench.vision.models", "create_model": "shrinkbench.vision.models", "describe_model": "shrinkbench.vision.models",
    "list_strategies": "shrinkbench.vision.pruning.strategies", "Strategy": "shrinkbench.vision.pruning.strategies",
    "register_strategy": "shrinkbench.vision.pruning.strategies",
    "prune": "shrinkbench.api", "run_suite": "shrinkbench.api", "load_results": "shrinkbench.api",
    "compare": "shrinkbench.api", "report": "shrinkbench.api",
    "RunConfig": "shrinkbench.vision.config", "ShrinkBenchError": "shrinkbench.core.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Import an entry point on first use (PEP 562)."""
    if name == "__version__":
        from importlib.metadata import version

        return version("shrinkbench")
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'shrinkbench' has no attribute {name!r}; it offers: {', '.join(__all__)}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
