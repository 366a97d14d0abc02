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

A user's refinement: a subclass of `MaskRefinement` in a file (`--refine mine.py:Mine`, a suite's
`refine = "mine.py:Mine"`), with the protocol above; `refine_params` go to its constructor and its
file's sha256 into the run's identity (`refine_sha256`), as for a user's strategy or allocation.
Before any run it is dry-run on a random 8 x 8M layer with fake statistics (`dry_run_refinement`;
M = 2 unstructured) and its `applies_to` on the model's layer names; at every layer its result is
checked (`checked_refine`). What a refinement may touch: the keep mask of the layer it is given,
swapping within each row (the row's kept count stays) and, under N:M, within each group of M of
the strategy's column order; it returns a new mask and changes nothing it is given in place (the
weight, the mask, the statistics, the scores: the toolkit keeps the dense values). Whatever else it
does (raises, returns no bool mask of the layer's shape, changes a row's count, revives a weight in
another group, edits its inputs) fails that run with one line naming it; the sweep goes on.
"""
from __future__ import annotations

import dataclasses
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
    paper = ""
    parameter_ranges: dict[str, str] = {}

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
    paper = "Zhang et al. 2024, DSnoT (ICLR)"
    parameter_ranges = {"max_cycles": "whole number >= 1", "threshold": ">= 0", "var_power": ">= 0",
                        "skip": "layer-name patterns (fnmatch) left unrefined"}

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
    """A MaskRefinement for a registered name (`dsnot`) or a user's `module:Class` /
    `file.py:Class`, with its parameters; a one-line ConfigError for an unknown name (with the
    closest), a class that is no MaskRefinement, or parameters it does not take."""
    from shrinkbench.core.errors import UnknownNameError
    from shrinkbench.core.usercode import no_process_exit, resolve_strategy

    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"refine must name a mask refinement ({', '.join(LLM_REFINEMENTS.names())}) or your own "
                          f"as file.py:Class, got {spec!r}")
    if ":" not in spec:
        try:
            LLM_REFINEMENTS.canonical(spec.strip())
        except UnknownNameError as error:
            raise ConfigError(f"{error} (or give your own as file.py:Class, a MaskRefinement)") from None
    with no_process_exit():
        refine = resolve_strategy(spec, params, registry=LLM_REFINEMENTS, base=MaskRefinement)
    if ":" in spec and refine.name == MaskRefinement.name:
        refine.name = spec.strip()  # messages name the user's class
    return refine


def refines(refine: MaskRefinement, layer: str) -> bool:
    """`refine.applies_to(layer)`, which must answer True or False; else a one-line StrategyError."""
    from shrinkbench.core.usercode import no_process_exit

    try:
        with no_process_exit():
            answer = refine.applies_to(layer)
    except (KeyboardInterrupt, ConfigError, StrategyError):
        raise
    except BaseException as exc:
        raise StrategyError(f"refinement {refine.name}: applies_to({layer!r}) raised {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())}") from None
    if not isinstance(answer, bool):
        raise StrategyError(f"refinement {refine.name}: applies_to({layer!r}) must return True or False, got "
                            f"{answer!r}")
    return answer


def dry_run_refinement(refine: MaskRefinement, label: str, nm) -> None:
    """Before any run, for a user's refinement: `checked_refine` on a random 8 x 8M layer (M = 2
    unstructured) with fake statistics of 4 sequences of 16 tokens and Wanda's mask (50% per row,
    or N:M); a one-line ConfigError naming it if it misbehaves there."""
    import torch

    from shrinkbench.core.selection import nm_mask
    from shrinkbench.llm.methods import LayerInputs, keep_top

    generator = torch.Generator().manual_seed(0)
    cols = 8 * (nm[1] if nm else 2)
    weight = torch.randn(8, cols, generator=generator)
    x = torch.randn(4, 16, cols, generator=generator, dtype=torch.float64)
    inputs = LayerInputs(64, (x * x).sum((0, 1)), None, 4, x.sum((0, 1)), x.var(1, unbiased=False).sum(0))
    scores = weight.abs().to(torch.float64) * inputs.sq_norm.sqrt().reshape(1, -1)
    keep = nm_mask(scores, *nm) if nm else keep_top(scores, cols // 2, per_row=True)
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(0)
            checked_refine(refine, "(dry run)", weight, keep, inputs, nm, scores if nm else None)
    except StrategyError as error:
        raise ConfigError(f"dry run of refinement {label} on a random 8x{cols} layer failed: "
                          f"{' '.join(str(error).split())}") from None


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
    try:
        applies = [refines(refine, n) for n in names]
    except StrategyError as error:
        raise ConfigError(str(error)) from None
    if not any(applies):
        raise ConfigError(f"refine {refine.name}: " + ("skip leaves" if hasattr(refine, "skip") else "applies_to "
                          "accepts") + f" none of the {len(names)} pruned layers to refine")


def checked_refine(refine: MaskRefinement, name: str, weight, keep, inputs, nm, scores):
    """`refine.refine` on one layer, given copies of what it sees; its result must be a bool mask
    of the layer's shape with the same kept count in every row as `keep` (N of every M under N:M),
    and it must have changed nothing it was given; anything else, or whatever it raises, is a
    StrategyError naming the layer (the run fails, not the sweep)."""
    import torch

    from shrinkbench.core.usercode import no_process_exit

    given = {"weight": weight.clone(), "mask": keep.clone()}
    if scores is not None:
        given["scores"] = scores.clone()
    for field in ("sq_norm", "sums", "seq_var"):
        if getattr(inputs, field, None) is not None:
            given[f"input statistics ({field})"] = getattr(inputs, field).clone()
    seen = None if inputs is None else dataclasses.replace(inputs, **{
        f: given[f"input statistics ({f})"] for f in ("sq_norm", "sums", "seq_var") if f"input statistics ({f})" in given})
    try:
        with no_process_exit():
            new = refine.refine(given["weight"], given["mask"], seen, nm, given.get("scores"))
    except (KeyboardInterrupt, ConfigError, StrategyError):
        raise
    except BaseException as exc:
        raise StrategyError(f"refinement {refine.name} raised on layer {name}: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())}") from None
    originals = {"weight": weight, "mask": keep, "scores": scores,
                 **{f"input statistics ({f})": getattr(inputs, f, None) for f in ("sq_norm", "sums", "seq_var")}}
    for what, copy in given.items():
        if not torch.equal(copy, originals[what]):
            raise StrategyError(f"refinement {refine.name} on layer {name} changed the {what} it was given in place; "
                                f"a refinement returns a new keep mask and changes nothing else (the toolkit keeps "
                                f"the dense values of what it keeps)")
    if not (isinstance(new, torch.Tensor) and new.dtype == torch.bool and new.shape == keep.shape):
        raise StrategyError(f"refinement {refine.name} on layer {name}: must return a bool mask of shape "
                            f"{tuple(keep.shape)}")
    if not bool((new.sum(1) == keep.sum(1)).all()):
        raise StrategyError(f"refinement {refine.name} on layer {name} changed a row's kept count (it may only swap "
                            f"weights within a row)")
    if nm is not None and not bool((new.reshape(-1, nm[1]).sum(1) == nm[0]).all()):
        raise StrategyError(f"refinement {refine.name} on layer {name}: not {nm[0]}:{nm[1]} in every group (it may "
                            f"only swap weights within a group of {nm[1]})")
    return new
