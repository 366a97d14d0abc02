"""Checking a language-model strategy before any run, and its kept counts after every prune.

A user's `LLMStrategy` is checked once per (strategy, source, parameters, sparsity, pattern,
scope) in a process, before the sweep starts, the way the vision track dry-runs a user's
strategy on a random batch (`shrinkbench.vision.validate`):

1. its declaration: `scopes` name only known scopes (row, layer, block, global),
   `default_scope` is one of them, it implements `score()` or overrides `prune()`, and a
   strategy that overrides `prune()` is not run at scope `global` (that scope selects from
   every layer's `score()` at once, so an overridden `prune()` would never be called);
2. a dry run of `prune()` (which calls `score()` unless overridden) on a random 8 x 8M layer
   (M = 2 unstructured, else the pattern's M) with fake calibration statistics
   (`LayerInputs` of 64 random tokens, the Gram matrix too where it asks): the returned
   weight must be a floating tensor of the layer's shape and the mask a bool tensor of that
   shape, both finite, with exactly the kept count its scope promises (`check_prune_result`).

A strategy's code runs with `os._exit` replaced by a function that raises `ExitCalled`
(`shrinkbench.core.usercode.no_process_exit`): code that would end the process silently (exit status 0, a stale claim
in the store) fails its check or its run with a message instead. Every refusal is one line
naming the user's class.
"""
from __future__ import annotations

import functools

import torch

from shrinkbench.core.errors import ConfigError, ShrinkBenchError
from shrinkbench.llm.methods import SCOPES, LayerInputs, LLMStrategy

DRY_ROWS, DRY_TOKENS = 8, 64
"""The dry run's layer has DRY_ROWS rows and its inputs DRY_TOKENS random tokens."""


def display_name(spec: str, strategy: LLMStrategy) -> str:
    """The name messages use: the spec a user wrote (`mine.py:Mine`), or the registered name."""
    return spec if ":" in spec else strategy.name


def check_declaration(strategy: LLMStrategy, label: str) -> None:
    """Step 1 of the module docstring; a one-line ConfigError naming `label`."""
    scopes = strategy.scopes
    if isinstance(scopes, str) or not isinstance(scopes, (tuple, list)) or not scopes:
        raise ConfigError(f"strategy {label}: scopes must be a non-empty tuple of {', '.join(SCOPES)}, got {scopes!r}")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ConfigError(f"strategy {label} declares scope {unknown[0]!r}; the toolkit checks kept counts only "
                          f"for the scopes {', '.join(SCOPES)}")
    if strategy.default_scope not in scopes:
        raise ConfigError(f"strategy {label}: default_scope {strategy.default_scope!r} is not one of its scopes "
                          f"{', '.join(scopes)}")
    for flag in ("needs_inputs", "needs_xtx"):
        if not isinstance(getattr(strategy, flag), bool):
            raise ConfigError(f"strategy {label}: {flag} must be True or False, got {getattr(strategy, flag)!r}")
    cls = type(strategy)
    if cls.score is LLMStrategy.score and cls.prune is LLMStrategy.prune:
        raise ConfigError(f"strategy {label} implements neither score(weight, inputs) nor prune(...); an "
                          f"LLMStrategy must do one of them")


def check_global_scope(strategy: LLMStrategy, label: str, scope: str) -> None:
    """Scope `global` selects from `score()`; a class overriding `prune()` is refused there."""
    if scope == "global" and type(strategy).prune is not LLMStrategy.prune:
        raise ConfigError(f"strategy {label} overrides prune(), but scope global selects one threshold from every "
                          f"layer's score() at once and would never call it; choose another scope or implement "
                          f"score() only")


def dry_layer(nm: tuple[int, int] | None, needs_xtx: bool) -> tuple[torch.Tensor, LayerInputs]:
    """(weight DRY_ROWS x 8M, its fake LayerInputs), from a fixed generator."""
    generator = torch.Generator().manual_seed(0)
    cols = 8 * (nm[1] if nm else 2)
    weight = torch.randn(DRY_ROWS, cols, generator=generator)
    x = torch.randn(DRY_TOKENS, cols, generator=generator, dtype=torch.float64)
    return weight, LayerInputs(DRY_TOKENS, (x * x).sum(0), x.T @ x if needs_xtx else None)


@functools.lru_cache(maxsize=256)
def _dry_run(spec: str, source_sha: str | None, params, sparsity: float, nm, scope: str) -> None:
    """Step 2 of the module docstring, once per argument tuple in a process."""
    from shrinkbench.llm.engine import checked_prune
    from shrinkbench.llm.methods import resolve_llm_strategy

    strategy = resolve_llm_strategy(spec, params)
    weight, inputs = dry_layer(nm, bool(strategy.needs_xtx))
    where = f"dry run of strategy {display_name(spec, strategy)} on a random {DRY_ROWS}x{weight.shape[1]} layer"
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(0)
            checked_prune(strategy, weight.clone(), inputs if strategy.needs_inputs else None, sparsity, nm, scope,
                          "(dry run)")
    except ShrinkBenchError as error:
        raise ConfigError(f"{where} failed: {' '.join(str(error).split())}") from None


def check_strategy(spec: str, params, strategy: LLMStrategy, source_sha: str | None, sparsity: float, nm,
                   scope: str) -> None:
    """For the strategy and scope a run will use (its declaration checked and its scope chosen
    already, `check_declaration`, `shrinkbench.llm.methods.check_scope`): the `global` rule of
    step 1 and, for a user's class, the dry run of step 2; a one-line ConfigError naming it.
    Registered strategies are not dry-run (their counts are tested in the test suite)."""
    check_global_scope(strategy, display_name(spec, strategy), scope)
    if ":" in spec:
        _dry_run(spec, source_sha, params, float(sparsity), nm, scope)
