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

- `ria` (Zhang et al. 2024, "Plug-and-Play: An Efficient Post-training Pruning Method for Large
  Language Models", ICLR): relative importance and activations, score
  (|W_ij| / sum_j |W_ij| + |W_ij| / sum_i |W_ij|) * ||X_j||_2 ** a (a = 0.5; the first sum runs
  over the row i, the second over the column j; a zero sum gives its term 0). Scope `layer` (the
  published default, one threshold per layer) or `row` (its `--per_outneuron`). For N:M,
  `permute=true` is its channel permutation (the paper's Section 3.3; code
  `lib/prune.py:prune_ria` with `--reallocation --lsa`), in two steps on the layer's scores S:
  1. heuristic channel reallocation: the input channels sorted by their column sum of S
     (ascending) are dealt into the M positions of the groups, positions 1, 3, ... in ascending
     order and 2, 4, ... descending (`ria_channel_order`);
  2. linear-sum-assignment refinement, once for each position c = 1..M of the groups in turn
     (`ria_lsa_order`): with G = in / M groups, V[r, k] = the score the N:M selection keeps in
     group r when its channel at position c is replaced by group k's channel at position c
     (sum over the rows of the top N of those M scores); the assignment of the G channels at
     position c to the G groups that maximises sum_r V[r, sigma(r)] (scipy's
     `linear_sum_assignment`, as the published code) moves group sigma(r)'s channel to group r.
  N:M is selected in the final column order and the mask mapped back (a deployment permutes the
  layer's inputs the same way: W[:, order] x[order] = W x). `lsa=false` stops after step 1
  (the published `--reallocation` without `--lsa`). The published code reads a pattern "N:M" as N
  PRUNED of every M; it agrees with ours (N kept) at 2:4 and 4:8. Its optional `--fast` (the
  assignment within 4 to 16 slices of the channels) is not offered.

Counts are exact: a layer of n weights at sparsity s keeps round(n * (1 - s)) (scope `layer`,
and `block`, whose blocks keep round(out * c2 * (1 - s)) - round(out * c1 * (1 - s)) for
columns [c1, c2)), each row round(in * (1 - s)) (`row`), all layers together round(N * (1 - s))
(`global`); N:M keeps exactly N of every M
consecutive weights of a row (`shrinkbench.core.selection.nm_mask`). Ties go to the lower index,
or, inside `selecting(ledger)` with `ledger.generator` set, to a random order that generator
draws (the run's `ties = "seeded"`); every selection made there adds its decisions and its
tie-decided decisions to the ledger (`TieLedger`; definitions in `shrinkbench.core.selection`).

A layer allocation (`shrinkbench.llm.allocation`) hands a strategy its layer's sparsity as an
`AllocatedSparsity`: a float 1 - kept / numel that carries the layer's exact kept count. Scope
`layer` and `block` keep exactly that count; scope `row` keeps q = kept // rows in every row and
one more in the kept - q * rows rows whose next weight scores highest, so the layer's total is
exact while rows differ by at most one.

A user's method: a subclass of `LLMStrategy` in a file (`path/to/mine.py:Mine`), scoring or
pruning as below; its file's sha256 is part of the run's identity.
"""
from __future__ import annotations

import contextlib
import contextvars
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
    `tokens` n; `sq_norm[j]` = sum_t X_tj^2; `xtx` = X^T X (only for strategies that ask);
    for a mask refinement (`shrinkbench.llm.refine`) also `sequences` (calibration sequences
    seen), `sums[j]` = sum_t X_tj and `seq_var[j]` = the sum over sequences of X_j's population
    variance over that sequence's tokens."""

    tokens: int
    sq_norm: torch.Tensor
    xtx: torch.Tensor | None = None
    sequences: int = 0
    sums: torch.Tensor | None = None
    seq_var: torch.Tensor | None = None


@dataclass
class TieLedger:
    """What the selections of one run decided by a tie (`shrinkbench.core.selection`): `decisions`
    keep/prune decisions made, `tied` of them by the tie rule; N:M `groups` and `tied_groups`
    (groups whose kept set is not unique). `generator` (None: ties to the lower index) draws the
    order ties are broken in."""

    generator: torch.Generator | None = None
    decisions: int = 0
    tied: int = 0
    groups: int = 0
    tied_groups: int = 0


_LEDGER: contextvars.ContextVar[TieLedger | None] = contextvars.ContextVar("tie_ledger", default=None)


@contextlib.contextmanager
def selecting(ledger: TieLedger):
    """Selections made inside count their ties into `ledger` and break them with its generator."""
    token = _LEDGER.set(ledger)
    try:
        yield ledger
    finally:
        _LEDGER.reset(token)


def _ledger() -> TieLedger | None:
    return _LEDGER.get()


class AllocatedSparsity(float):
    """A layer's sparsity set by a layer allocation: the float 1 - kept / numel, carrying the
    exact `kept` count of the layer's `numel` weights (see the module docstring)."""

    kept: int
    numel: int

    def __new__(cls, kept: int, numel: int):
        value = super().__new__(cls, 1.0 - kept / numel)
        value.kept, value.numel = int(kept), int(numel)
        return value


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
    paper = ""
    parameter_ranges: dict[str, str] = {}
    """What `shrinkbench strategies` lists beside the constructor's parameters (name -> text)."""
    scopes: tuple[str, ...] = ("row", "layer", "global")
    default_scope = "layer"

    def score(self, weight: torch.Tensor, inputs: LayerInputs | None) -> torch.Tensor:
        raise NotImplementedError

    def prune(self, weight: torch.Tensor, inputs: LayerInputs | None, sparsity: float,
              nm: tuple[int, int] | None, scope: str) -> tuple[torch.Tensor, torch.Tensor]:
        scores = checked_scores(self, weight, inputs)
        keep = keep_mask(scores, sparsity, nm, scope)
        return weight * keep, keep

    def input_order(self, weight: torch.Tensor, inputs: LayerInputs | None,
                    nm: tuple[int, int] | None) -> torch.Tensor | None:
        """For N:M: a permutation of the input columns to form the groups in (the engine prunes
        the permuted layer and maps the result back), or None for the columns' own order."""
        return None

    def check_pattern(self, nm: tuple[int, int] | None) -> None:
        """Before any run: a one-line ConfigError for parameters the pattern leaves idle."""


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
    if not all_finite(scores):
        raise StrategyError(f"strategy {strategy.name} returned non-finite scores (NaN or inf)")
    return scores


def all_finite(tensor: "torch.Tensor") -> bool:
    """Whether every entry of a floating `tensor` is finite, read from its sum (in its own dtype)
    first: a sum of finite numbers that is finite says so in one reduction (an inf or NaN entry
    makes the sum inf or NaN: inf + x = inf, inf - inf = NaN, NaN + x = NaN); only a non-finite
    sum (a NaN or inf entry, or finite entries overflowing) is checked entry by entry."""
    import torch

    if bool(torch.isfinite(tensor.sum())):
        return True
    return bool(torch.isfinite(tensor).all())


def keep_count(n: int, sparsity: float) -> int:
    """round(n (1 - sparsity)); a layer's own `AllocatedSparsity` gives its exact kept count."""
    if isinstance(sparsity, AllocatedSparsity) and n == sparsity.numel:
        return sparsity.kept
    return int(round(n * (1.0 - sparsity)))


def keep_mask(scores: torch.Tensor, sparsity: float, nm: tuple[int, int] | None, scope: str) -> torch.Tensor:
    """Keep-mask with exact counts (see the module docstring), ties to the lower index (or the
    order of the current `TieLedger`'s generator), ties counted into that ledger."""
    from shrinkbench.core.selection import nm_mask, nm_mask_and_ties, tied_nm_groups

    if nm is not None:
        ledger = _ledger()
        if ledger is None:
            return nm_mask(scores, *nm)
        if ledger.generator is None:
            keep, (groups, tied) = nm_mask_and_ties(scores, *nm)
        else:
            keep = nm_mask(scores, *nm, generator=ledger.generator)
            groups, tied = tied_nm_groups(scores, *nm)
        ledger.decisions += scores.numel()
        ledger.groups += scores.numel() // nm[1]
        ledger.tied_groups += groups
        ledger.tied += tied
        return keep
    if scope == "row" and isinstance(sparsity, AllocatedSparsity):
        return keep_row_shares(scores, sparsity.kept)
    if scope == "row":
        return keep_top(scores, keep_count(scores.shape[1], sparsity), per_row=True)
    if scope in ("layer", "global", "block"):
        return keep_top(scores, keep_count(scores.numel(), sparsity), per_row=False)
    raise ConfigError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")


def keep_top(scores: torch.Tensor, k: int, per_row: bool) -> torch.Tensor:
    """Keep the k highest scores of each row (`per_row`) or of the whole tensor; ties to the
    lower (flat) index."""
    import torch

    from shrinkbench.core.selection import top_k_rows, top_k_with_ties

    ledger = _ledger()
    generator = ledger.generator if ledger else None
    scores = scores.to(torch.float64)
    if per_row:
        keep, tied = top_k_rows(scores, k, generator)
    else:
        keep, tied = top_k_with_ties(scores.reshape(-1), k, generator)
        keep = keep.reshape(scores.shape)
    if ledger is not None:
        ledger.decisions += scores.numel()
        ledger.tied += tied
    return keep


def keep_row_shares(scores: torch.Tensor, kept: int) -> torch.Tensor:
    """Keep `kept` scores of a 2-D layer, q = kept // rows in every row and one more in the
    kept - q * rows rows whose (q+1)-th highest score is highest (ties to the lower row, or the
    ledger's generator); ties at each row's boundary counted into the current ledger. With a
    generator, the columns are shuffled once (one permutation for all rows, as `top_k_rows`)
    before the rows draw theirs."""
    import torch

    from shrinkbench.core.selection import has_nan, ordered_desc, tied_rows_top_k, top_k_rows, top_k_with_ties

    ledger = _ledger()
    generator = ledger.generator if ledger else None
    scores = scores.to(torch.float64)
    rows, cols = scores.shape
    shuffle = torch.randperm(cols, generator=generator).to(scores.device) if generator is not None else None
    if shuffle is not None:
        scores = scores[:, shuffle]
    q, extra = divmod(int(kept), rows)
    more = torch.zeros(rows, dtype=torch.bool, device=scores.device)
    tied = 0
    nan = has_nan(scores)  # the sorts decide where NaN stands (see top_k_rows)
    if extra:  # the rows whose (q+1)-th highest score is highest keep one more
        if nan:
            candidates = scores.gather(1, ordered_desc(scores)[:, q: q + 1]).flatten()
        else:
            candidates = torch.kthvalue(scores.cpu() if scores.device.type == "mps" else scores, cols - q,
                                        dim=1).values.to(scores.device)
        more, tied = top_k_with_ties(candidates, extra, generator)
    keep = torch.empty_like(scores, dtype=torch.bool)
    for rows_of, count in ((~more, q), (more, q + 1)) if extra else ((slice(None), q),):
        part = scores[rows_of]  # without extra rows: all rows, no copy
        if part.shape[0]:
            keep[rows_of], tied_here = top_k_rows(part, count)
            tied += tied_rows_top_k(part, count) if nan else tied_here  # NaN: counted as before
    if ledger is not None:
        ledger.decisions += scores.numel()
        ledger.tied += tied
    if shuffle is None:
        return keep
    unshuffled = torch.empty_like(keep)
    unshuffled[:, shuffle] = keep
    return unshuffled


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
    paper = "Sun et al. 2023, Wanda"
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
    paper = "Frantar & Alistarh 2023, SparseGPT (ICML)"
    parameter_ranges = {"blocksize": "whole number >= 1", "percdamp": ">= 0"}
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


@LLM_STRATEGIES.decorator("ria")
class RIA(LLMStrategy):
    """score = (|W_ij| / sum_j |W_ij| + |W_ij| / sum_i |W_ij|) * ||X_j||_2 ** a (Zhang et al.
    2024); `permute` its channel permutation for N:M (see the module docstring)."""

    name = "ria"
    needs_inputs = True
    scopes = ("layer", "row")
    default_scope = "layer"
    paper = "Zhang et al. 2024, Plug-and-Play (ICLR)"
    parameter_ranges = {"a": ">= 0", "permute": "true or false; N:M only",
                        "lsa": "true or false; with permute (default true there)"}

    def __init__(self, a: float = 0.5, permute: bool = False, lsa: bool | None = None):
        import math

        if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) or a < 0:
            raise ConfigError(f"ria: a (the exponent of the input norm) must be a finite number >= 0, got {a!r}")
        if not isinstance(permute, bool):
            raise ConfigError(f"ria: permute must be true or false, got {permute!r}")
        if lsa is not None and not isinstance(lsa, bool):
            raise ConfigError(f"ria: lsa must be true or false, got {lsa!r}")
        if lsa is not None and not permute:
            raise ConfigError("ria: lsa refines the channel permutation; give permute=true too, or leave lsa out")
        self.a, self.permute, self.lsa = float(a), permute, permute and lsa is not False

    def score(self, weight, inputs):
        return ria_score(weight, inputs.sq_norm, self.a)

    def check_pattern(self, nm) -> None:
        if self.permute and nm is None:
            raise ConfigError("ria: permute=true reorders the input channels into N:M groups; with the unstructured "
                              "pattern it would do nothing: leave it out or give an N:M pattern")

    def input_order(self, weight, inputs, nm):
        if not self.permute or nm is None:
            return None
        scores = self.score(weight, inputs)
        order = ria_channel_order(scores, nm[1])
        return ria_lsa_order(scores, order, *nm) if self.lsa else order


def ria_score(weight: torch.Tensor, sq_norm: torch.Tensor, a: float = 0.5) -> torch.Tensor:
    """RIA's score (float64): (|W| / row sums of |W| + |W| / column sums of |W|) * (sum_t X_tj^2) ** (a / 2)."""
    import torch

    w = weight.abs().to(torch.float64)
    rows, cols = w.sum(1, keepdim=True), w.sum(0, keepdim=True)
    relative = torch.where(rows > 0, w / rows.clamp_min(1e-300), 0.0) + torch.where(cols > 0, w / cols.clamp_min(1e-300), 0.0)
    return relative * sq_norm.to(torch.float64).sqrt().pow(a).reshape(1, -1)


def ria_channel_order(scores: torch.Tensor, m: int) -> torch.Tensor:
    """RIA's heuristic channel reallocation: the columns sorted by their sum of scores
    (ascending, ties to the lower index); the i-th M-th of that order fills position i of every
    group (i = 1..M), ascending for odd i and descending for even i. Returns the permutation:
    column `order[p]` goes to position p. The width must be a multiple of M."""
    import torch

    cols = scores.shape[1]
    if cols % m:
        raise ConfigError(f"ria: channel permutation needs the input width to be a multiple of M={m}, got {cols}")
    ranked = torch.argsort(scores.sum(0), stable=True)
    order = torch.empty_like(ranked)
    for i in range(1, m + 1):
        part = ranked[cols * (i - 1) // m: cols * i // m]
        order[i - 1::m] = part if i % 2 == 1 else part.flip(0)
    return order


def nm_swap_values(permuted: torch.Tensor, c: int, n: int, m: int, chunk: int = 1 << 22) -> torch.Tensor:
    """V (G x G, float64) for the groups of M consecutive columns of `permuted` (rows x G*M):
    V[r, k] = sum over the rows of the top n of group r's scores with its position c taken by
    group k's position c. With a_1 >= ... >= a_{M-1} the row's other M - 1 scores of group r
    and x the new one, top-n = a_1 + ... + a_n + max(0, x - a_n) (n < M), so
    V[r, k] = sum_rows (a_1 + ... + a_n) + sum_rows max(0, x_k - a_n); computed in slices of
    about `chunk` numbers."""
    import torch

    rows, cols = permuted.shape
    g = cols // m
    groups = permuted.to(torch.float64).reshape(rows, g, m)
    others = torch.cat([groups[:, :, :c], groups[:, :, c + 1:]], dim=2)
    top = torch.sort(others, dim=2, descending=True).values[:, :, :n]      # rows x G x n
    base, threshold = top.sum(dim=(0, 2)), top[:, :, n - 1]                 # G; rows x G
    incoming = groups[:, :, c]                                              # rows x G (by k)
    values = torch.empty(g, g, dtype=torch.float64)
    step = max(1, chunk // max(1, rows * g))
    for r0 in range(0, g, step):
        r1 = min(g, r0 + step)
        gain = (incoming.unsqueeze(1) - threshold[:, r0:r1].unsqueeze(2)).clamp_min(0).sum(0)  # (r1-r0) x G
        values[r0:r1] = base[r0:r1].unsqueeze(1) + gain
    return values


def ria_lsa_order(scores: torch.Tensor, order: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """RIA's linear-sum-assignment refinement of a column order (module docstring, step 2):
    `ria_lsa_step` for each position c = 0..M-1 of the groups in turn."""
    for c in range(m):
        order = ria_lsa_step(scores, order, c, n, m)
    return order


def ria_lsa_step(scores: torch.Tensor, order: torch.Tensor, c: int, n: int, m: int) -> torch.Tensor:
    """The channels at position c of the G groups (in `order`) reassigned to the groups by
    `scipy.optimize.linear_sum_assignment(V, maximize=True)`, V = `nm_swap_values` of the scores
    in that order: group r takes the channel group sigma(r) had at position c."""
    import torch
    from scipy.optimize import linear_sum_assignment

    values = nm_swap_values(scores.to(torch.float64)[:, order], c, n, m)
    _, sigma = linear_sum_assignment(values.numpy(), maximize=True)
    positions = torch.arange(values.shape[0]) * m + c
    new = order.clone()
    new[positions] = order[torch.as_tensor(sigma, dtype=torch.long) * m + c]
    return new


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
