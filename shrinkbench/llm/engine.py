"""Pruning a causal LM layer by layer, block by block (the protocol of SparseGPT and Wanda).

1. The transformer blocks are the longest `nn.ModuleList` of the model whose modules hold
   `nn.Linear` layers (LLaMA: `model.layers`; OPT: `model.decoder.layers`). The pruned layers
   are every `nn.Linear` inside them (minus `exclude` patterns); embeddings, final norm and LM
   head are not pruned.
2. A data-free strategy (magnitude) prunes every layer from its weights; with scope `global`
   one threshold covers all of them.
3. A calibrated strategy: the calibration sequences run through the embeddings once; the
   inputs of block 0 are captured (hidden states and the keyword arguments the model passes,
   e.g. rotary position embeddings). For each block in order: its layers' input statistics are
   summed over all calibration tokens (`LayerInputs`), its layers are pruned, and the block
   runs again on its inputs to give the next block's inputs, so a block is calibrated on what
   the already-pruned blocks before it produce.
4. A layer allocation other than `uniform` (`shrinkbench.llm.allocation`) first sets each layer's
   exact kept count; one that needs inputs (OWL) measures them in a pass of the DENSE model over
   the same calibration windows (`dense_input_stats`), as the published code does, before any
   layer is pruned. Each layer then gets its `AllocatedSparsity`.
5. A strategy's `input_order` (RIA's channel permutation for N:M) permutes the layer's input
   columns (and their statistics) before it prunes; the N:M check applies in that order and the
   result is mapped back.
6. Every selection counts its tie-decided decisions into the run's `TieLedger` and, where the
   ledger has a generator (`ties = "seeded"`), breaks ties in the order it draws.
7. A mask refinement (`refine`, `shrinkbench.llm.refine`, e.g. DSnoT, or a user's) runs on each
   layer right after the strategy's mask (in the column order of step 5 where the strategy
   permutes, so its N:M groups are the strategy's), on the layer's dense weight and its inputs' statistics
   (with the per-sequence moments), before the block's output is computed for the next block
   (the protocol of DSnoT's code); the layer keeps its dense values where the refined mask
   keeps. A data-free strategy with a refinement runs on the calibrated path.
8. With a `work_device` (a GPU while the model stays in CPU memory), only the block in work is
   on it: SparseGPT's sequential procedure for models larger than the accelerator; each block's
   statistics are freed before the next block's are made, and the masks return to the model's
   device.
"""
from __future__ import annotations

import contextlib
import fnmatch
from typing import Callable

import torch
from torch import nn

from shrinkbench.core.errors import ConfigError, StrategyError
from shrinkbench.llm.methods import (AllocatedSparsity, LayerInputs, LLMStrategy, TieLedger, all_finite,
                                     checked_scores, keep_count, selecting)

Masks = dict[str, torch.Tensor]


def decoder_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """(name, ModuleList) of the transformer blocks; a ConfigError if there are none."""
    best = None
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) and all(
                any(isinstance(m, nn.Linear) for m in block.modules()) for block in module):
            if best is None or len(module) > len(best[1]):
                best = (name, module)
    if best is None:
        raise ConfigError(f"{type(model).__name__} has no list of transformer blocks holding nn.Linear layers; "
                          f"only models whose blocks use nn.Linear can be pruned")
    return best


def block_linears(block: nn.Module, prefix: str, exclude: tuple[str, ...]) -> dict[str, nn.Linear]:
    found = {}
    for name, module in block.named_modules():
        full = f"{prefix}.{name}" if name else prefix
        if isinstance(module, nn.Linear) and not any(fnmatch.fnmatchcase(full, p) for p in exclude):
            found[full] = module
    return found


def pruned_layers(model: nn.Module, exclude: tuple[str, ...] = ()) -> dict[str, nn.Linear]:
    """Every pruned linear layer by its full name, block by block."""
    name, blocks = decoder_blocks(model)
    layers: dict[str, nn.Linear] = {}
    for i, block in enumerate(blocks):
        layers.update(block_linears(block, f"{name}.{i}", exclude))
    if not layers:
        raise ConfigError("exclude removes every linear layer of the transformer blocks; nothing is left to prune")
    return layers


def check_nm_widths(layers: dict[str, nn.Linear], nm) -> None:
    if nm is None:
        return
    for name, layer in layers.items():
        if layer.in_features % nm[1]:
            raise ConfigError(f"layer {name} has {layer.in_features} inputs, not a multiple of M={nm[1]}; "
                              f"exclude it or choose another N:M")


def checked_prune(strategy: LLMStrategy, weight: torch.Tensor, inputs, sparsity, nm, scope, name: str):
    """(new weight, keep mask) of `strategy.prune` on one layer, checked (`check_prune_result`);
    whatever the strategy raises (or an `os._exit`, see `shrinkbench.llm.checks`) becomes a
    one-line StrategyError naming the layer."""
    return checked_prune_ordered(strategy, weight, inputs, sparsity, nm, scope, name)[:2]


def checked_prune_ordered(strategy: LLMStrategy, weight: torch.Tensor, inputs, sparsity, nm, scope, name: str):
    """`checked_prune`, with the column order the strategy formed its N:M groups in (None: the
    columns' own order) as a third element."""
    from shrinkbench.core.usercode import no_process_exit

    order = None
    try:
        with no_process_exit():
            if nm is not None and getattr(strategy, "input_order", None) is not None:
                order = strategy.input_order(weight, inputs, nm)
            if order is not None:
                order = _checked_order(strategy, order, weight.shape[1], name)
                weight, inputs = weight[:, order], _permuted(inputs, order)
            result = strategy.prune(weight, inputs, sparsity, nm, scope)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise StrategyError(f"strategy {strategy.name} on layer {name}: prune must return (weight, bool mask), "
                                f"got {type(result).__name__}")
    except (KeyboardInterrupt, ConfigError, StrategyError):
        raise
    except BaseException as exc:
        raise StrategyError(f"strategy {strategy.name} raised on layer {name}: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())}") from None
    check_prune_result(strategy, name, weight, *result, sparsity, nm, scope)
    if order is None:
        return (*result, None)
    new, keep = torch.empty_like(result[0]), torch.empty_like(result[1])
    new[:, order], keep[:, order] = result
    return new, keep, order


def _checked_order(strategy, order, cols: int, name: str) -> torch.Tensor:
    if not (isinstance(order, torch.Tensor) and order.dim() == 1 and order.numel() == cols
            and not order.is_floating_point()
            and bool((torch.sort(order.cpu()).values == torch.arange(cols)).all())):
        raise StrategyError(f"strategy {strategy.name} on layer {name}: input_order must return a permutation of "
                            f"the layer's {cols} input columns")
    return order.to(torch.int64)


def _permuted(inputs: LayerInputs | None, order: torch.Tensor) -> LayerInputs | None:
    if inputs is None:
        return None
    xtx = inputs.xtx[order][:, order] if inputs.xtx is not None else None
    return LayerInputs(inputs.tokens, inputs.sq_norm[order], xtx, inputs.sequences,
                       inputs.sums[order] if inputs.sums is not None else None,
                       inputs.seq_var[order] if inputs.seq_var is not None else None)


def _apply(layer: nn.Linear, strategy: LLMStrategy, inputs, sparsity, nm, scope, name: str,
           refine=None) -> torch.Tensor:
    weight = layer.weight.data
    new, keep, order = checked_prune_ordered(strategy, weight, inputs, sparsity, nm, scope, name)
    from shrinkbench.llm.refine import refines

    if refine is not None and refines(refine, name):
        from shrinkbench.core.usercode import no_process_exit
        from shrinkbench.llm.refine import checked_refine

        with no_process_exit():
            scores = checked_scores(strategy, weight, inputs) if nm is not None else None
        if order is None:
            keep = checked_refine(refine, name, weight, keep, inputs, nm, scores)
        else:  # refined in the column order the strategy formed its N:M groups in, then mapped back
            refined = checked_refine(refine, name, weight[:, order], keep[:, order], _permuted(inputs, order), nm,
                                     scores[:, order])
            keep = torch.empty_like(refined)
            keep[:, order] = refined
        new = weight  # a refinement keeps the dense values of what it keeps (strategies that score only)
    torch.mul(new.to(weight.dtype), keep, out=layer.weight.data)
    return keep


def check_prune_result(strategy, name, weight, new, keep, sparsity, nm, scope) -> None:
    """A strategy's (weight, mask) must have the weight's shape, a floating weight with finite
    values, a bool mask and the exact count its scope promises (N:M: N kept in every group of
    M; `global`: the layers together, `check_total_kept`)."""
    if not (isinstance(keep, torch.Tensor) and keep.dtype == torch.bool and keep.shape == weight.shape
            and isinstance(new, torch.Tensor) and new.shape == weight.shape):
        what = ", ".join(f"{type(t).__name__}" if not isinstance(t, torch.Tensor) else
                         f"{str(t.dtype).replace('torch.', '')} {tuple(t.shape)}" for t in (new, keep))
        raise StrategyError(f"strategy {strategy.name} on layer {name}: prune must return (weight, bool mask) of "
                            f"shape {tuple(weight.shape)}, got ({what})")
    if not new.is_floating_point():
        raise StrategyError(f"strategy {strategy.name} on layer {name}: prune returned a {new.dtype} weight; it must "
                            f"be a floating tensor")
    if not all_finite(new):
        raise StrategyError(f"strategy {strategy.name} on layer {name} produced non-finite weights")
    if nm is not None:
        per_group = keep.reshape(-1, nm[1]).sum(1, dtype=torch.int16 if nm[1] < 2 ** 15 else torch.int64)
        if not bool((per_group == nm[0]).all()):
            raise StrategyError(f"strategy {strategy.name} on layer {name}: not {nm[0]}:{nm[1]} in every group")
    elif scope == "row" and isinstance(sparsity, AllocatedSparsity):
        q, rows = sparsity.kept // weight.shape[0], keep.sum(1)
        if int(rows.sum()) != sparsity.kept or not bool(((rows == q) | (rows == q + 1)).all()):
            raise StrategyError(f"strategy {strategy.name} on layer {name}: its allocated {sparsity.kept} kept "
                                f"weights must be {q} or {q + 1} per row (scope row)")
    elif scope == "row":
        expect = keep_count(weight.shape[1], sparsity)
        if not bool((keep.sum(1) == expect).all()):
            raise StrategyError(f"strategy {strategy.name} on layer {name}: rows must keep {expect} each")
    elif scope in ("layer", "block"):
        if int(keep.sum()) != keep_count(keep.numel(), sparsity):
            raise StrategyError(f"strategy {strategy.name} on layer {name} kept {int(keep.sum())}, not "
                                f"{keep_count(keep.numel(), sparsity)} (scope {scope} at sparsity {sparsity:g})")
    elif scope != "global":
        raise StrategyError(f"strategy {strategy.name} on layer {name}: scope {scope!r} is not one of "
                            f"row, layer, block, global, whose kept counts the toolkit checks")


def _sparsity_of(sparsity, name: str):
    """The sparsity a layer is pruned at: the run's, or its allocated one."""
    return sparsity[name] if isinstance(sparsity, dict) else sparsity


def prune_data_free(model, strategy: LLMStrategy, sparsity, nm, scope, exclude, ledger: TieLedger | None = None
                    ) -> Masks:
    layers = pruned_layers(model, exclude)
    check_nm_widths(layers, nm)
    if scope != "global" or nm is not None or isinstance(sparsity, dict):
        return {n: _apply(layer, strategy, None, _sparsity_of(sparsity, n), nm, scope, n) for n, layer in layers.items()}
    from shrinkbench.core.selection import tied_top_k, top_k_mask
    from shrinkbench.core.usercode import no_process_exit

    with no_process_exit():
        scores = {n: checked_scores(strategy, layer.weight.data, None).to(torch.float64)
                  for n, layer in layers.items()}
    flat = torch.cat([s.reshape(-1) for s in scores.values()])
    k = keep_count(flat.numel(), sparsity)
    if ledger is not None:
        ledger.decisions += flat.numel()
        ledger.tied += tied_top_k(flat, k)
    keep_all = top_k_mask(flat, k, ledger.generator if ledger is not None else None)
    masks, offset = {}, 0
    for n, layer in layers.items():
        size = layer.weight.numel()
        masks[n] = keep_all[offset: offset + size].reshape(layer.weight.shape)
        layer.weight.data.mul_(masks[n])
        offset += size
    return masks


class _Captured(Exception):
    pass


@contextlib.contextmanager
def outside_blocks_on(model: nn.Module, device: torch.device | None):
    """While inside: every module of `model` but its transformer blocks is on `device` (the blocks
    stay where they are); afterwards all of it is back on the device it was on. None: nothing moves."""
    if device is None:
        yield
        return
    prefix, blocks = decoder_blocks(model)
    parent = model.get_submodule(prefix.rpartition(".")[0]) if "." in prefix else model
    attr = prefix.rpartition(".")[2]
    home = next(model.parameters()).device

    def move_all_but_blocks(to):
        setattr(parent, attr, nn.ModuleList())
        try:
            model.to(to)
        finally:
            setattr(parent, attr, blocks)

    move_all_but_blocks(device)
    try:
        yield
    finally:
        move_all_but_blocks(home)


def capture_block_inputs(model: nn.Module, blocks: nn.ModuleList, batches: list[torch.Tensor]):
    """[(hidden states, keyword arguments)] that block 0 receives, one per batch of ids."""
    captured = []

    def hook(module, args, kwargs):
        hidden = args[0] if args else kwargs.pop("hidden_states")
        captured.append((hidden.detach(), {k: v for k, v in kwargs.items() if k != "hidden_states"}))
        raise _Captured

    handle = blocks[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        for ids in batches:
            try:
                model(input_ids=ids, use_cache=False)
            except _Captured:
                pass
    finally:
        handle.remove()
    return captured


def _block_output(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def block_input_stats(block: nn.Module, layers: dict[str, nn.Linear], states, needs_xtx: bool,
                      moments: bool = False) -> dict[str, LayerInputs]:
    """Each layer's `LayerInputs` summed over every calibration token, from one pass of `block`
    over `states` (its inputs); `moments`: also the per-sequence moments a mask refinement uses
    (`sequences`, `sums`, `seq_var`)."""
    stats = {n: LayerInputs(0, torch.zeros(layer.in_features, dtype=torch.float64, device=layer.weight.device),
                            torch.zeros(layer.in_features, layer.in_features, dtype=torch.float64,
                                        device=layer.weight.device)
                            if needs_xtx else None) for n, layer in layers.items()}
    if moments:
        for s in stats.values():
            s.sums, s.seq_var = torch.zeros_like(s.sq_norm), torch.zeros_like(s.sq_norm)

    def collector(name):
        def hook(module, args):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).to(torch.float64)
            s = stats[name]
            s.tokens += x.shape[0]
            s.sq_norm += (x * x).sum(0)
            if s.xtx is not None:
                s.xtx += x.T @ x
            if s.sums is not None:  # per-sequence moments (a refinement's)
                seqs = args[0].detach().to(torch.float64)
                seqs = seqs.reshape(-1, seqs.shape[-2], seqs.shape[-1]) if seqs.dim() > 1 else seqs
                s.sequences += seqs.shape[0]
                s.sums += x.sum(0)
                s.seq_var += seqs.var(dim=1, unbiased=False).sum(0)
        return hook

    handles = [layer.register_forward_pre_hook(collector(n)) for n, layer in layers.items()]
    try:
        for hidden, kwargs in states:
            block(hidden, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return stats


def prune_calibrated(model, strategy: LLMStrategy, sparsity, nm, scope, exclude, batches: list[torch.Tensor],
                     progress: Callable[[int, int], None] | None = None, refine=None,
                     work_device: torch.device | None = None) -> Masks:
    """Calibrate and prune block by block (see the module docstring); with `work_device`, only
    the block in work is on it (step 8 of the module docstring), the masks are returned on the
    model's own device."""
    prefix, blocks = decoder_blocks(model)
    check_nm_widths(pruned_layers(model, exclude), nm)
    masks: Masks = {}
    with torch.no_grad():
        with outside_blocks_on(model, work_device):
            states = capture_block_inputs(model, blocks, [b.to(work_device) if work_device else b for b in batches])
        for index, block in enumerate(blocks):
            home = next(block.parameters()).device
            if work_device is not None:
                block.to(work_device)
            layers = block_linears(block, f"{prefix}.{index}", exclude)
            stats = block_input_stats(block, layers, states, strategy.needs_xtx, moments=refine is not None)
            for n, layer in layers.items():
                masks[n] = _apply(layer, strategy, stats[n], _sparsity_of(sparsity, n), nm, scope, n, refine)
            stats = None  # freed before the next block's are made: one block's statistics at a time
            states = [(_block_output(block(hidden, **kwargs)), kwargs) for hidden, kwargs in states]
            if work_device is not None:
                block.to(home)
                masks.update({n: masks[n].to(home) for n in layers})
            if progress is not None:
                progress(index + 1, len(blocks))
    return masks


def dense_input_stats(model, exclude, batches: list[torch.Tensor]) -> dict[str, LayerInputs]:
    """Every pruned layer's `LayerInputs` (no Gram matrix) from the dense model: block by block,
    each block run on the previous dense block's outputs; nothing is pruned."""
    prefix, blocks = decoder_blocks(model)
    found: dict[str, LayerInputs] = {}
    with torch.no_grad():
        states = capture_block_inputs(model, blocks, batches)
        for index, block in enumerate(blocks):
            found.update(block_input_stats(block, block_linears(block, f"{prefix}.{index}", exclude), states, False))
            states = [(_block_output(block(hidden, **kwargs)), kwargs) for hidden, kwargs in states]
    return found


def allocate(model, allocation, sparsity: float, exclude, batches: list[torch.Tensor] | None
             ) -> dict[str, AllocatedSparsity]:
    """Each pruned layer's `AllocatedSparsity` under `allocation` (`shrinkbench.llm.allocation`)."""
    from shrinkbench.llm.allocation import LayerView, allocated_counts

    prefix, blocks = decoder_blocks(model)
    layers = pruned_layers(model, exclude)
    stats = dense_input_stats(model, exclude, batches or []) if allocation.needs_inputs else {}
    block_of = {n: int(n[len(prefix) + 1:].split(".")[0]) for n in layers}
    views = [LayerView(n, block_of[n], layer.weight.data, stats[n].sq_norm if n in stats else None,
                       stats[n].tokens if n in stats else 0) for n, layer in layers.items()]
    kept = allocated_counts(allocation, views, sparsity)
    return {v.name: AllocatedSparsity(k, v.weight.numel()) for v, k in zip(views, kept)}


def prune_model(model, strategy: LLMStrategy, sparsity: float, nm, scope: str, exclude: tuple[str, ...],
                batches: list[torch.Tensor] | None, progress=None, allocation=None,
                ledger: TieLedger | None = None, refine=None, work_device: torch.device | None = None) -> Masks:
    """Prune `model` in place; the keep masks of the pruned layers, each layer's kept count
    checked for its scope (and all layers' together for scope `global` or an allocation).
    `allocation` (None: uniform) sets each layer's count; `ledger` counts the ties (and breaks
    them with its generator); `refine`: a `MaskRefinement` run on each layer's mask (step 7 of
    the module docstring); `work_device`: a calibrated strategy computes there with one block at
    a time on it (step 8)."""
    from shrinkbench.llm.allocation import UNIFORM

    ledger = ledger if ledger is not None else TieLedger()
    per_layer = None
    if allocation is not None and allocation.name != UNIFORM:
        per_layer = allocate(model, allocation, sparsity, exclude, batches)
    with selecting(ledger):
        if strategy.needs_inputs or refine is not None:
            masks = prune_calibrated(model, strategy, per_layer or sparsity, nm, scope, exclude, batches or [],
                                     progress, refine, work_device)
        else:
            masks = prune_data_free(model, strategy, per_layer or sparsity, nm, scope, exclude, ledger)
    if per_layer:
        kept, total = sum(int(m.sum()) for m in masks.values()), sum(m.numel() for m in masks.values())
        if kept != keep_count(total, sparsity):
            raise StrategyError(f"strategy {strategy.name} with allocation {allocation.name}: the pruned layers "
                                f"together kept {kept:,} of {total:,} weights, not {keep_count(total, sparsity):,}")
    else:
        check_total_kept(masks, sparsity, nm, scope, strategy.name)
    return masks


def check_total_kept(masks: dict[str, torch.Tensor], sparsity: float, nm, scope: str, label: str) -> None:
    """After pruning: every layer's kept count was checked by scope (`check_prune_result`);
    for scope `global` the layers together keep round(N (1 - s)) of their N weights."""
    if nm is not None or scope != "global" or not masks:
        return
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    if kept != keep_count(total, sparsity):
        raise StrategyError(f"strategy {label}: the pruned layers together kept {kept:,} of {total:,} weights, not "
                            f"{keep_count(total, sparsity):,} (scope global at sparsity {sparsity:g})")
