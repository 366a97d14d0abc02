"""Mask refinement: a phase after any method's mask that swaps pruned and kept weights.

A refinement sees one layer at a time, after the run's strategy chose its keep mask, with the
layer's DENSE weight W (out x in), that mask and the statistics of the layer's inputs over the
calibration sequences (`LayerInputs`, here with the per-sequence moments `sums` and `seq_var`),
and returns a new keep mask with the same count in every row (and N of every M under N:M).
The layer's weight becomes W * new mask: a refinement never changes a kept weight's value,
which is why it is refused on a strategy that overrides `prune()` (SparseGPT's reconstruction
changes the kept weights, and a mask refined on the dense values would throw those updates
away; `check_refinement`).

- `dsnot` (Zhang, Zhao, Lin, Sun, Yao, Han, Tanner, Liu, Ji, ICLR 2024, "Dynamic Sparse No
  Training: Training-Free Fine-tuning for Sparse LLMs"; the rule of its code,
  github.com/zyxxmu/DSnoT `lib/prune.py:prune_DSnoT`). For each output row i, with
  m_j = (sum_t X_tj) / n_seq (the input's sum over a sequence, averaged over the n_seq
  calibration sequences) and v_j = the input's variance over the tokens of one sequence
  (population variance), averaged over the sequences:

      e_i = sum_{j pruned} W_ij m_j            the expected reconstruction error of the row

  and, cycle after cycle (at most `max_cycles`, 50), each row still active swaps one pair:
    * grow: the pruned weight that moves e_i towards 0 the most per unit of variance: if
      e_i > 0 the pruned j with the largest W_ij m_j / v_j ** var_power (> 0), else the one
      with the smallest (< 0);
    * prune, unstructured: the kept weight with the lowest Wanda score |W_ij| ||X_j||_2 among
      those whose W_ij m_j has the sign opposite to e_i's (it pushes e_i towards 0 as well):
      W_ij m_j < 0 if e_i > 0, > 0 if e_i < 0;
      prune, N:M: the kept weight, among the original ones of the grown weight's group of M,
      with the lowest score of the run's strategy (so every group keeps N);
    * the swap is made iff the row is still active and |e_i| > `threshold` (0.1; the error
      before the swap); under N:M also iff the error after the swap keeps the sign e_i had
      before any swap (the reference applies that condition under N:M only, its
      `--without_same_sign` defaulting to true for unstructured masks). A row whose swap is not
      made stops for good; then e_i += W_ip m_p - W_ig m_g.
  The reference's defaults: `max_cycles` 50, `threshold` 0.1, `var_power` 1, and `skip`
  ["*.mlp.*"]: its `--skip_layer mlp` default leaves the MLP projections with the method's
  mask and refines the attention projections only. Candidates are walked in order without
  repetition (a grown weight is never pruned again, a pruned one never grown back).
  Ties of a score go to the lower column index first.

  Where this differs from the reference's code (all on rows the reference does not expect):
  when a row runs out of candidates of the needed sign it stops here, while the reference's
  index lists then point at weights of the other sign or at kept weights (its regrow list is
  sorted over every column, kept ones zeroed; its prune list fills the zero-metric gap with
  column position 0), which can change that row's kept count; a weight whose m_j or v_j is 0 is
  no candidate here (the reference divides 0 by 0). The statistics and scores are computed in
  float64 (the reference: float32), so two Wanda scores closer than float32's resolution can be
  ranked differently (traced on SmolLM2, docs/llm.md); from such a row on, later blocks see other
  inputs and the two codes drift apart as far as the reference does from itself when only the
  order of the calibration windows changes.
"""
from __future__ import annotations

import fnmatch
import math
from typing import TYPE_CHECKING

from shrinkbench.core.errors import ConfigError, StrategyError
from shrinkbench.core.registry import Registry

if TYPE_CHECKING:
    import torch

    from shrinkbench.llm.methods import LayerInputs


class MaskRefinement:
    """Base of a mask refinement (module docstring): `refine(weight, keep, inputs, nm,
    scores)` returns the new keep mask; `applies_to(layer name)` says whether a layer is refined."""

    name = "refinement"

    def applies_to(self, layer: str) -> bool:
        return True

    def refine(self, weight: torch.Tensor, keep: torch.Tensor, inputs: LayerInputs, nm: tuple[int, int] | None,
               scores: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


LLM_REFINEMENTS: Registry[type[MaskRefinement]] = Registry("mask refinement")


@LLM_REFINEMENTS.decorator("dsnot")
class DSnoT(MaskRefinement):
    """Prune-and-grow swaps driven by the sign of the reconstruction error (module docstring)."""

    name = "dsnot"

    def __init__(self, max_cycles: int = 50, threshold: float = 0.1, var_power: float = 1.0,
                 skip: list[str] | tuple[str, ...] = ("*.mlp.*",)):
        if isinstance(max_cycles, bool) or not isinstance(max_cycles, int) or max_cycles < 1:
            raise ConfigError(f"dsnot: max_cycles must be a whole number >= 1, got {max_cycles!r}")
        for label, value in (("threshold", threshold), ("var_power", var_power)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"dsnot: {label} must be a finite number >= 0, got {value!r}")
        if isinstance(skip, str) or not isinstance(skip, (list, tuple)) or not all(isinstance(s, str) for s in skip):
            raise ConfigError(f"dsnot: skip must be a list of layer-name patterns (fnmatch), got {skip!r}")
        self.max_cycles, self.threshold, self.var_power = int(max_cycles), float(threshold), float(var_power)
        self.skip = tuple(skip)

    def applies_to(self, layer: str) -> bool:
        return not any(fnmatch.fnmatchcase(layer, p) for p in self.skip)

    def refine(self, weight, keep, inputs, nm, scores):
        return dsnot_refine(weight, keep, inputs, nm, scores, self.max_cycles, self.threshold, self.var_power)


def dsnot_refine(weight: torch.Tensor, keep: torch.Tensor, inputs: LayerInputs, nm: tuple[int, int] | None,
                 scores: torch.Tensor | None = None, max_cycles: int = 50, threshold: float = 0.1,
                 var_power: float = 1.0, trace: list | None = None) -> torch.Tensor:
    """The refined keep mask (module docstring). `scores` ranks the prune candidates under N:M
    (the run strategy's scores); unstructured masks rank them by Wanda's |W_ij| ||X_j||_2.
    `trace`, if a list, receives one (cycle, rows swapped) per cycle that swapped any row."""
    import torch

    W = weight.detach().to(torch.float64)
    rows, cols = W.shape
    n_seq = max(1, inputs.sequences)
    mean_sum = inputs.sums.to(torch.float64) / n_seq                 # m_j
    var = inputs.seq_var.to(torch.float64) / n_seq                   # v_j
    metric = W * mean_sum.reshape(1, -1)                             # W_ij m_j
    keep = keep.clone()
    pruned0 = ~keep
    error = (metric * pruned0).sum(1)                                # e_i
    sign0 = torch.sign(error)
    growth = metric / var.reshape(1, -1) ** var_power if var_power else metric.clone()
    usable = (metric != 0) & (var.reshape(1, -1) > 0) if var_power else metric != 0
    inf = torch.tensor(math.inf, dtype=torch.float64)

    def ordered(key, valid):
        """Per row, the columns with `valid`, by ascending key (ties: lower index first); and how many."""
        key = torch.where(valid, key, inf)
        return torch.argsort(key, dim=1, stable=True), valid.sum(1)

    grow_pos, n_grow_pos = ordered(-growth, pruned0 & usable & (growth > 0))
    grow_neg, n_grow_neg = ordered(growth, pruned0 & usable & (growth < 0))
    if nm is None:
        wanda = W.abs() * inputs.sq_norm.to(torch.float64).sqrt().reshape(1, -1)
        prune_neg, n_prune_neg = ordered(wanda, keep & (metric < 0))
        prune_pos, n_prune_pos = ordered(wanda, keep & (metric > 0))
        ptr_prune = torch.zeros(rows, 2, dtype=torch.long)            # [negative list, positive list]
    else:
        group_score = torch.where(keep, scores.to(torch.float64), inf)  # original kept weights only
    ptr_grow = torch.zeros(rows, 2, dtype=torch.long)                 # [positive list, negative list]
    active = torch.ones(rows, dtype=torch.bool)
    row_ids = torch.arange(rows)
    for cycle in range(1, max_cycles + 1):
        if not bool(active.any()):
            break
        positive = error > 0
        g_list = torch.where(positive, 0, 1)
        g_ptr = ptr_grow[row_ids, g_list]
        g_have = torch.where(positive, n_grow_pos, n_grow_neg) > g_ptr
        g_col = torch.where(positive, grow_pos[row_ids, g_ptr.clamp(max=cols - 1)],
                            grow_neg[row_ids, g_ptr.clamp(max=cols - 1)])
        ptr_grow[row_ids, g_list] += 1
        if nm is None:
            p_list = torch.where(error < 0, 1, 0)                      # e < 0: prune a positive one
            p_ptr = ptr_prune[row_ids, p_list]
            p_have = torch.where(error < 0, n_prune_pos, n_prune_neg) > p_ptr
            p_col = torch.where(error < 0, prune_pos[row_ids, p_ptr.clamp(max=cols - 1)],
                                prune_neg[row_ids, p_ptr.clamp(max=cols - 1)])
            ptr_prune[row_ids, p_list] += 1
        else:
            m = nm[1]
            start = g_col - g_col % m
            block = start.reshape(-1, 1) + torch.arange(m).reshape(1, -1)
            in_group = group_score.gather(1, block)
            # lowest score; ties: the higher index is pruned (the lower one kept, as the selection does)
            low = in_group.min(1, keepdim=True).values
            last_low = (m - 1) - torch.argmax(torch.flip(in_group == low, dims=[1]).to(torch.int8), dim=1)
            p_col = start + last_low
            p_have = torch.isfinite(low.reshape(-1))
        g_metric = metric[row_ids, g_col]
        p_metric = metric[row_ids, p_col]
        after = error + p_metric - g_metric
        update = active & g_have & p_have & (error.abs() > threshold)
        if nm is not None:
            update &= torch.sign(after) == sign0
        if bool(update.any()):
            r = row_ids[update]
            keep[r, g_col[update]] = True
            keep[r, p_col[update]] = False
            error = torch.where(update, after, error)
            if nm is not None:
                group_score[r, p_col[update]] = inf
            if trace is not None:
                trace.append((cycle, int(update.sum())))
        active = update
    return keep


def resolve_refinement(spec: str, params=None) -> MaskRefinement:
    """A MaskRefinement for a registered name (`dsnot`), with its parameters; a one-line
    ConfigError for an unknown name (with the closest), a user's class (not supported: its
    file's hash would have to join the run's identity) or parameters it does not take."""
    from shrinkbench.core.errors import UnknownNameError
    from shrinkbench.core.usercode import resolve_strategy

    if not isinstance(spec, str) or ":" in spec:
        raise ConfigError(f"refine must name a registered mask refinement ({', '.join(LLM_REFINEMENTS.names())}); "
                          f"a refinement of your own (module:Class) is not supported, got {spec!r}")
    try:
        LLM_REFINEMENTS.canonical(spec.strip())
    except UnknownNameError as error:
        raise ConfigError(str(error)) from None
    return resolve_strategy(spec, params, registry=LLM_REFINEMENTS, base=MaskRefinement)


def check_refinement(refine: MaskRefinement, strategy, layer_names, label: str) -> None:
    """A refinement keeps the kept weights' values, so it is refused for a strategy that
    overrides `prune()` (it may change kept weights: SparseGPT does); and its `skip` patterns
    must each match a pruned layer and leave at least one to refine. One-line ConfigError."""
    from shrinkbench.llm.methods import LLMStrategy

    if type(strategy).prune is not LLMStrategy.prune:
        raise ConfigError(
            f"refine {refine.name}: strategy {label} overrides prune() and may change the kept weights (SparseGPT "
            f"reconstructs them); {refine.name} swaps weights of a mask over fixed dense values and would discard "
            f"that reconstruction; use it with a strategy that scores (magnitude, wanda, yours implementing score())")
    names = list(layer_names)
    for pattern in getattr(refine, "skip", ()):
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            raise ConfigError(f"refine {refine.name}: skip pattern {pattern!r} matches none of the {len(names)} "
                              f"pruned layers (e.g. {names[0]}); it would do nothing")
    if not any(refine.applies_to(n) for n in names):
        raise ConfigError(f"refine {refine.name}: skip leaves none of the {len(names)} pruned layers to refine")


def checked_refine(refine: MaskRefinement, name: str, weight, keep, inputs, nm, scores):
    """`refine.refine` on one layer; its result must be a bool mask of the layer's shape with
    the same kept count in every row as `keep` (N of every M under N:M); anything else, or
    whatever it raises, is a StrategyError naming the layer (the run fails, not the sweep)."""
    import torch

    try:
        new = refine.refine(weight, keep, inputs, nm, scores)
    except (KeyboardInterrupt, ConfigError, StrategyError):
        raise
    except BaseException as exc:
        raise StrategyError(f"refinement {refine.name} raised on layer {name}: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())}") from None
    if not (isinstance(new, torch.Tensor) and new.dtype == torch.bool and new.shape == keep.shape):
        raise StrategyError(f"refinement {refine.name} on layer {name}: must return a bool mask of shape "
                            f"{tuple(keep.shape)}")
    if not bool((new.sum(1) == keep.sum(1)).all()):
        raise StrategyError(f"refinement {refine.name} on layer {name} changed a row's kept count")
    if nm is not None and not bool((new.reshape(-1, nm[1]).sum(1) == nm[0]).all()):
        raise StrategyError(f"refinement {refine.name} on layer {name}: not {nm[0]}:{nm[1]} in every group")
    return new
