"""Language-model pruning methods: a registry of strategies, each with its formula.

A strategy sees one linear layer at a time, its weight W (out x in) and the statistics of the
layer's inputs X (tokens x in) over the calibration sequences (`LayerInputs`), and either
*scores* W (higher = keep; the toolkit selects, with exact counts) or *prunes* it itself
(reconstruction methods, which also change the kept weights).

- `magnitude`: score |W_ij|. Needs no data. Default scope `layer` (the baseline of the
  Wanda paper); `row` and `global` (one threshold over every pruned layer) too.
- `wanda` (Sun, Liu, Bair, Kolter 2023, "A Simple and Effective Pruning Approach for Large
  Language Models"): score |W_ij| * ||X_j||_2, the weight's magnitude times the L2 norm of its
  input feature over all calibration tokens; compared within each output row (scope `row`,
  the published one); `layer` too.
- `sparsegpt` (Frantar & Alistarh 2023, "SparseGPT: Massive Language Models Can Be Accurately
  Pruned in One-Shot"): layer-wise OBS reconstruction. H = 2 X^T X / n (n tokens), dampened
  by lambda = 0.01 * mean(diag H) (`percdamp`); the columns are processed in blocks of 128
  (`blocksize`); within a block the weights with the lowest w^2 / [H^-1]_jj^2 are pruned (the
  "adaptive mask selection": per 128-column block over all rows, scope `block`; or per row,
  scope `row`; for N:M per group of M columns in each row), and after each column the error
  of the pruned weights, (w - q) / [H^-1]_jj, is spread over the later columns along the
  Cholesky factor of H^-1 (rows of the upper factor U with H^-1 = U^T U).

Counts are exact: a layer of n weights at sparsity s keeps round(n * (1 - s)) (scope `layer`,
and `block`, whose blocks keep round(out * c2 * (1 - s)) - round(out * c1 * (1 - s)) for
columns [c1, c2)), each row round(in * (1 - s)) (`row`), all layers together round(N * (1 - s))
(`global`); N:M keeps exactly N of every M
consecutive weights of a row (`shrinkbench.core.selection.nm_mask`). Ties go to the lower index.

A user's method: a subclass of `LLMStrategy` in a file (`path/to/mine.py:Mine`), scoring or
pruning as below; its file's sha256 is part of the run's identity.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shrinkbench.core.errors import ConfigError, StrategyError
from shrinkbench.core.registry import Registry

if TYPE_CHECKING:  # torch is imported where it is used, so listing the strategies needs none
    import torch

SCOPES = ("row", "layer", "block", "global")


@dataclass
class LayerInputs:
    """Statistics of a layer's inputs over the calibration tokens (float64 sums):
    `tokens` n; `sq_norm[j]` = sum_t X_tj^2; `xtx` = X^T X (only for strategies that ask)."""

    tokens: int
    sq_norm: torch.Tensor
    xtx: torch.Tensor | None = None


class LLMStrategy:
    """Base of every language-model strategy.

    Set `needs_inputs` (calibration statistics), `needs_xtx` (the Gram matrix too), `scopes`
    and `default_scope`; implement `score(weight, inputs)` (same shape as the weight, higher =
    keep) or override `prune(weight, inputs, sparsity, nm, scope)` to return (new weight, keep
    mask) where the new weight is zero wherever the mask is False.
    """

    name = "llm_strategy"
    needs_inputs = False
    needs_xtx = False
    scopes: tuple[str, ...] = ("row", "layer", "global")
    default_scope = "layer"

    def score(self, weight: torch.Tensor, inputs: LayerInputs | None) -> torch.Tensor:
        raise NotImplementedError

    def prune(self, weight: torch.Tensor, inputs: LayerInputs | None, sparsity: float,
              nm: tuple[int, int] | None, scope: str) -> tuple[torch.Tensor, torch.Tensor]:
        scores = checked_scores(self, weight, inputs)
        keep = keep_mask(scores, sparsity, nm, scope)
        return weight * keep, keep


def checked_scores(strategy: LLMStrategy, weight: torch.Tensor, inputs) -> torch.Tensor:
    import torch

    try:
        scores = strategy.score(weight, inputs)
    except (KeyboardInterrupt, ConfigError):
        raise
    except BaseException as exc:
        raise StrategyError(f"strategy {strategy.name} raised while scoring: {type(exc).__name__}: {exc}") from None
    if not isinstance(scores, torch.Tensor) or scores.shape != weight.shape:
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise StrategyError(f"strategy {strategy.name} returned scores of shape {shape} for a weight of shape "
                            f"{tuple(weight.shape)}; it must return one score per weight")
    if not torch.isfinite(scores).all():
        raise StrategyError(f"strategy {strategy.name} returned non-finite scores (NaN or inf)")
    return scores


def keep_count(n: int, sparsity: float) -> int:
    return int(round(n * (1.0 - sparsity)))


def keep_mask(scores: torch.Tensor, sparsity: float, nm: tuple[int, int] | None, scope: str) -> torch.Tensor:
    """Keep-mask with exact counts (see the module docstring), ties to the lower index."""
    from shrinkbench.core.selection import nm_mask

    if nm is not None:
        return nm_mask(scores, nm[0], nm[1])
    if scope == "row":
        return keep_top(scores, keep_count(scores.shape[1], sparsity), per_row=True)
    if scope in ("layer", "global", "block"):
        return keep_top(scores, keep_count(scores.numel(), sparsity), per_row=False)
    raise ConfigError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")


def keep_top(scores: torch.Tensor, k: int, per_row: bool) -> torch.Tensor:
    """Keep the k highest scores of each row (`per_row`) or of the whole tensor; ties to the
    lower (flat) index."""
    import torch

    from shrinkbench.core.selection import top_k_mask

    if per_row:
        order = torch.argsort(-scores.to(torch.float64), dim=1, stable=True)
        keep = torch.zeros_like(scores, dtype=torch.bool)
        keep.scatter_(1, order[:, :k], True)
        return keep
    return top_k_mask(scores.reshape(-1).to(torch.float64), k).reshape(scores.shape)


LLM_STRATEGIES: Registry[type[LLMStrategy]] = Registry("language-model strategy")


@LLM_STRATEGIES.decorator("magnitude", aliases=("llm_magnitude",))
class Magnitude(LLMStrategy):
    """score = |W_ij|"""

    name = "magnitude"

    def score(self, weight, inputs):
        return weight.abs()


@LLM_STRATEGIES.decorator("wanda")
class Wanda(LLMStrategy):
    """score = |W_ij| * ||X_j||_2 (Sun et al. 2023), compared within each output row."""

    name = "wanda"
    needs_inputs = True
    scopes = ("row", "layer")
    default_scope = "row"

    def score(self, weight, inputs):
        import torch

        return weight.abs().to(torch.float64) * inputs.sq_norm.sqrt().reshape(1, -1)


@LLM_STRATEGIES.decorator("sparsegpt")
class SparseGPT(LLMStrategy):
    """OBS reconstruction, column by column in blocks (Frantar & Alistarh 2023)."""

    name = "sparsegpt"
    needs_inputs = True
    needs_xtx = True
    scopes = ("block", "row")
    default_scope = "block"

    def __init__(self, blocksize: int = 128, percdamp: float = 0.01):
        if blocksize < 1 or not 0 <= percdamp:
            raise ConfigError(f"sparsegpt: blocksize must be >= 1 and percdamp >= 0, got {blocksize}, {percdamp}")
        self.blocksize, self.percdamp = int(blocksize), float(percdamp)

    def prune(self, weight, inputs, sparsity, nm, scope):
        return sparsegpt_prune(weight, inputs, sparsity, nm, scope, self.blocksize, self.percdamp)


def sparsegpt_prune(weight: torch.Tensor, inputs: LayerInputs, sparsity: float, nm: tuple[int, int] | None,
                    scope: str, blocksize: int = 128, percdamp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """(reconstructed weight, keep mask); see the module docstring. The Hessian and its
    Cholesky factors in float64, the column updates in float32 (as the published code)."""
    import torch

    W = weight.detach().to(torch.float64).clone()
    rows, cols = W.shape
    H = 2.0 * inputs.xtx.to(torch.float64) / max(1, inputs.tokens)
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H += percdamp * torch.diag(H).mean() * torch.eye(cols, dtype=H.dtype, device=H.device)
    try:
        U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    except RuntimeError:
        raise StrategyError("sparsegpt: the dampened Hessian is not positive definite; raise percdamp") from None
    W, U = W.to(torch.float32), U.to(torch.float32)
    keep = torch.ones_like(W, dtype=torch.bool)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1, U1 = W[:, i1:i2].clone(), U[i1:i2, i1:i2]
        d = torch.diag(U1)
        K1 = torch.ones_like(W1, dtype=torch.bool)
        if nm is None:  # cumulative rounding: the blocks' counts add up to the layer's (row's) exact count
            saliency = W1 ** 2 / d.reshape(1, -1) ** 2
            per = 1 if scope == "row" else rows
            k = keep_count(per * i2, sparsity) - keep_count(per * i1, sparsity)
            K1 = keep_top(saliency, k, per_row=scope == "row")
        # columns as contiguous rows: T[i] is column i1 + i of the block
        T, KT, ErrT = W1.T.contiguous(), K1.T.contiguous(), torch.zeros(i2 - i1, rows, dtype=W1.dtype, device=W1.device)
        for i in range(i2 - i1):
            if nm is not None and i % nm[1] == 0:
                group = T[i: i + nm[1]].T ** 2 / d[i: i + nm[1]].reshape(1, -1) ** 2
                KT[i: i + nm[1]] = keep_mask(group, 0.0, nm, "row").T
            w = T[i]
            q = w * KT[i]
            err = (w - q) / d[i]
            T[i:].sub_(torch.outer(U1[i, i:], err))
            T[i] = q
            ErrT[i] = err
        W1, K1, Err1 = T.T, KT.T, ErrT.T
        W[:, i1:i2] = W1
        keep[:, i1:i2] = K1
        W[:, i2:] -= Err1 @ U[i1:i2, i2:]
    W[~keep] = 0.0
    return W.to(weight.dtype), keep


def resolve_llm_strategy(spec: str, params=None) -> LLMStrategy:
    """An LLMStrategy for a registered name or `module:Class` / `file.py:Class`."""
    from shrinkbench.core.usercode import resolve_strategy

    from shrinkbench.core.usercode import no_process_exit

    with no_process_exit():  # importing or building user code cannot end the process
        strategy = resolve_strategy(spec, params, registry=LLM_STRATEGIES, base=LLMStrategy)
    if ":" in spec and strategy.name == LLMStrategy.name:
        strategy.name = spec.strip()  # messages name the user's class, not the base's name
    return strategy


def check_scope(strategy: LLMStrategy, scope: str | None, nm) -> str:
    """The scope a run uses, or a one-line ConfigError. The strategy's default when None; under
    an N:M pattern always the default, since N of every M weights of a row are kept whatever
    the scope (so one run, not one per scope, has those numbers)."""
    if nm is not None:
        scope = None
    scope = scope or strategy.default_scope
    if scope not in strategy.scopes:
        raise ConfigError(f"strategy {strategy.name} has no scope {scope!r}; it offers {', '.join(strategy.scopes)}")
    if scope == "global" and strategy.needs_inputs and nm is None:
        others = [s for s in strategy.scopes if s != "global"]
        hint = f"use {' or '.join(others)}" if others else "it declares no other scope; add row or layer to its scopes"
        raise ConfigError(f"scope global needs every layer's scores at once, but {strategy.name} scores layer by "
                          f"layer on inputs that depend on the layers pruned before; {hint}")
    return scope
