"""Measured against theoretical speedup of channel-pruned, compacted zoo models, and of
weight masks at the same theoretical speedup; where Torch-Pruning handles the model, our
compacted model's latency against Torch-Pruning's compaction of the same channels.

    python benchmarks/structured_speedup.py [--models cifar_vgg16_bn lenet5_caffe ...]
        [--speedups 2 4 8] [--batch-sizes 1 64] [--repeats 15] [--threads N]

For each model and target: the model (random init, BatchNorm statistics left at their
defaults: latency does not depend on the values) is channel-pruned to the theoretical
speedup with `--strategy` (default layerwise_l1) and compacted; the dense model and the
compacted one are timed in alternation (`shrinkbench.core.metrics.cost.time_alternating`,
median of `--repeats` passes after warm-up), as are the dense model and a weight-masked one
(global magnitude at the same speedup target) on dense kernels. Torch-Pruning (`pip install
torch-pruning`, optional) prunes the same output channels of every layer of a copy through
its dependency graph (its tracer misses the zoo's option-A ResNet shortcuts, so ResNets are
reported without it); its latency is timed in alternation with ours, giving the ratio
ours / Torch-Pruning. Every time depends on the machine and its load: run it on an idle
machine and quote the thread count with the numbers.

Rounded channel counts (issue 24, item 5):

    python benchmarks/structured_speedup.py --models cifar_vgg16_bn --speedups 4 --batch-sizes 64 \
        --round-to 1 8 16 --repeats 21 --threads 1

prunes the model once per `--round-to` value (1: the exact-target counts; r: every layer a
multiple of r, `RunConfig.round_to`), compacts each, and times the dense model and every
compacted one in round-robin (each round: dense, then each variant, the order rotated every
round), so each variant's speedup is the median over rounds of dense time / its time in the
same round (IQR in brackets): ratios of interleaved pairs, which a shared machine's load
moves much less than absolute times. Then, per layer, each Conv/Linear layer alone on its own
input (captured from one forward pass) is timed the same way, but on its second call in a row
(so that no variant runs in the caches another one left: `_round_robin`): its theoretical speedup (dense
MACs / pruned MACs), measured speedup, and its share of the dense and of the pruned model's
time; "other" is the whole model minus its Conv/Linear layers (BatchNorm, ReLU, pooling).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from shrinkbench.core.macs import count_macs  # noqa: E402
from shrinkbench.core.metrics.cost import time_alternating  # noqa: E402
from shrinkbench.vision.models import create_model, model_spec  # noqa: E402
from shrinkbench.vision.pruning import resolve_strategy  # noqa: E402
from shrinkbench.vision.pruning.granularity import granularity  # noqa: E402
from shrinkbench.vision.structured.compact import removed_indices  # noqa: E402
from shrinkbench.vision.kernels import fast_max_pooling  # noqa: E402

MODELS = ("lenet5_caffe", "cifar_resnet20", "cifar_resnet56", "cifar_vgg16_bn")


def theoretical(model, shape) -> float:
    from shrinkbench.core.metrics.structure import measure_structure

    return measure_structure(model, count_macs(model, shape))["theoretical_speedup"]


def torch_pruning_copy(dense: torch.nn.Module, masks, shape) -> torch.nn.Module | None:
    """Torch-Pruning's compaction of the channels our masks removed (None where it fails)."""
    try:
        import torch_pruning as tp
    except ImportError:
        return None
    groups, removed = masks.structure
    gone = removed_indices(groups, removed)
    model = copy.deepcopy(dense).eval()
    try:
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, *shape))
        modules = dict(model.named_modules())
        for layer in groups.layers:
            idxs = sorted(gone.get((f"{layer}.weight", 0), ()))
            if not idxs:
                continue
            module = modules[layer]
            fn = tp.prune_linear_out_channels if isinstance(module, torch.nn.Linear) else tp.prune_conv_out_channels
            group = graph.get_pruning_group(module, fn, idxs=idxs)
            if not graph.check_pruning_group(group):
                return None
            group.prune()
        model(torch.zeros(2, *shape))
    except Exception:  # noqa: BLE001 - its tracer fails on some models
        return None
    return model


def _round_robin(fns, repeats: int, warmup: int, calls: int = 1) -> list[list[float]]:
    """Times of each callable: per round, `calls` calls of each in a row, the last one timed; the
    order rotated every round. With calls=1 the call after the first callable is always (but in
    one round of each rotation) the second one, which then runs in the caches the first one left:
    a layer with a 16 MB input measured 2.6x after the dense layer and 4.1-4.3x elsewhere (the same
    weights and input in all three columns, 8.1-8.4 ms each timed alone). calls=2 times each
    callable after itself (the per-layer table); whole models measure the same either way
    (3.30-3.38x, calls 1, 2 and 4)."""
    import time

    times = [[] for _ in fns]
    with torch.inference_mode():
        for i in range(warmup + repeats):
            k = i % len(fns)
            for j in list(range(k, len(fns))) + list(range(k)):
                for _ in range(calls):
                    start = time.perf_counter()
                    fns[j]()
                    elapsed = time.perf_counter() - start
                if i >= warmup:
                    times[j].append(elapsed)
    return times


def _ratio_text(dense: list[float], variant: list[float]) -> tuple[float, str]:
    import numpy as np

    ratios = np.array(dense) / np.array(variant)
    q1, q2, q3 = np.percentile(ratios, [25, 50, 75])
    return float(q2), f"{q2:.2f} [{q1:.2f}, {q3:.2f}]"


def _leaf_inputs(model: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The input of every leaf module (no children) in one forward pass."""
    inputs = {}
    hooks = [m.register_forward_pre_hook(lambda mod, args, name=n: inputs.setdefault(name, args[0].detach().clone()))
             for n, m in model.named_modules() if not list(m.children())]
    with torch.inference_mode():
        model(x)
    for h in hooks:
        h.remove()
    return inputs


def rounding_study(name: str, speedup: float, batch: int, rounds: list[int], strategy: str, repeats: int,
                   warmup: int, pooling: str = "torch") -> None:
    """Whole-model and per-layer speedups of the model compacted at each round_to (see the
    docstring); `pooling` "channels-last" times every model with its max pooling through
    `shrinkbench.vision.kernels` (the same function, bit for bit)."""
    spec = model_spec(name)
    dense = create_model(name).eval()
    channel = granularity("channel")
    variants = {}
    for r in rounds:
        pruned = copy.deepcopy(dense)
        masks = channel.prune(pruned, resolve_strategy(strategy), "speedup", speedup, excluded=spec.excluded,
                              batches=[], generator=torch.Generator(), input_shape=spec.input_shape, round_to=r)
        variants[r] = channel.deployed(pruned, masks, spec.input_shape, spec.excluded).eval()
    with contextlib.ExitStack() as stack:
        if pooling == "channels-last":
            for model in [dense, *variants.values()]:
                stack.enter_context(fast_max_pooling(model))
        _rounding_tables(name, speedup, batch, rounds, strategy, repeats, warmup, pooling, spec, dense, variants)


def _rounding_tables(name, speedup, batch, rounds, strategy, repeats, warmup, pooling, spec, dense, variants) -> None:
    x = torch.randn(batch, *spec.input_shape)
    dense_macs = count_macs(dense, spec.input_shape)
    print(f"\n{name} at speedup {speedup:g}, batch {batch}, strategy {strategy}, max pooling: {pooling}")
    print(f"  whole model, round-robin over {repeats} rounds (median and IQR of dense / variant within a round)")
    times = _round_robin([lambda: dense(x)] + [lambda m=m: m(x) for m in variants.values()], repeats, warmup)
    for (r, model), t in zip(variants.items(), times[1:]):
        theory = dense_macs.macs / count_macs(model, spec.input_shape).macs
        measured, text = _ratio_text(times[0], t)
        widths = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        print(f"  round_to {r:3d}: theoretical {theory:.3f}x, measured {text}x = {measured / theory:.2f} of "
              f"theoretical")
        print(textwrap.fill(f"conv widths {widths}", 98, initial_indent="    ", subsequent_indent="      "))
    print(textwrap.fill("per layer (each leaf module alone on its captured input, round-robin, each timed on its "
                        "second call in a row; speedup = dense / "
                        "pruned, median of per-round ratios; share = of the summed leaf times; theory = MACs ratio "
                        "for Conv/Linear, input-size ratio for the rest)", 98, initial_indent="  ",
                        subsequent_indent="  "))
    whole = [statistics.median(t) for t in times]
    dense_in = _leaf_inputs(dense, x)
    inputs = {r: _leaf_inputs(m, x) for r, m in variants.items()}
    mods = {r: dict(m.named_modules()) for r, m in variants.items()}
    dense_mods = dict(dense.named_modules())
    layer_macs = [{layer.name: layer.macs for layer in count_macs(m, spec.input_shape).layers}
                  for m in [dense] + list(variants.values())]
    rows = []  # (name, kind, [median time per model], [theory per variant], [measured per variant])
    for leaf in dense_in:
        fns = [lambda leaf=leaf: dense_mods[leaf](dense_in[leaf])] + [
            lambda r=r, leaf=leaf: mods[r][leaf](inputs[r][leaf]) for r in rounds]
        t = _round_robin(fns, repeats, warmup, calls=2)
        kind = type(dense_mods[leaf]).__name__
        if leaf in layer_macs[0]:
            theory = [layer_macs[0][leaf] / layer_macs[j][leaf] for j in range(1, len(rounds) + 1)]
        else:
            theory = [dense_in[leaf].numel() / inputs[r][leaf].numel() for r in rounds]
        rows.append((leaf, kind, [statistics.median(v) for v in t], theory,
                     [_ratio_text(t[0], t[j])[0] for j in range(1, len(rounds) + 1)]))
    totals = [sum(row[2][j] for row in rows) for j in range(len(rounds) + 1)]
    header = "  ".join(f"r={r}: theory  meas  share" for r in rounds)
    print(f"  {'layer':18} {'dense share':>11}  {header}")

    def line(label, dense_share, cells):
        print(f"  {label:18} {dense_share:11.1%}  " + "  ".join(
            f"{th:10.2f} {me:5.2f} {sh:6.1%}" for th, me, sh in cells))

    for name, kind, med, theory, measured in rows:
        if kind in ("Conv2d", "Linear"):
            line(name, med[0] / totals[0], [(theory[j], measured[j], med[j + 1] / totals[j + 1])
                                           for j in range(len(rounds))])
    for kind in sorted({row[1] for row in rows} - {"Conv2d", "Linear"}):
        group = [row for row in rows if row[1] == kind]
        d = sum(row[2][0] for row in group)
        cells = []
        for j in range(len(rounds)):
            v = sum(row[2][j + 1] for row in group)
            th = d / sum(row[2][0] / row[3][j] for row in group)
            cells.append((th, d / v, v / totals[j + 1]))
        line(f"all {kind} ({len(group)})", d / totals[0], cells)
    bound = []
    for j in range(len(rounds)):
        at_theory = sum(row[2][0] / row[3][j] for row in rows)
        bound.append(f"r={rounds[j]}: {totals[0] / at_theory:.2f}x")
    print(textwrap.fill("if every leaf ran at its own theoretical speedup (elementwise layers scale with channels, "
                        "not MACs), the model would measure " + ", ".join(bound) + "; summed leaf times / "
                        "whole-model median: " + ", ".join(f"{tot / w:.2f}" for tot, w in zip(totals, whole)),
                        98, initial_indent="  ", subsequent_indent="  "))


def median_ratio(fast, slow) -> float:
    return statistics.median(slow) / statistics.median(fast)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--speedups", nargs="+", type=float, default=[2.0, 4.0, 8.0])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 64])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--strategy", default="layerwise_l1", help="channel strategy (default: layerwise_l1)")
    parser.add_argument("--round-to", nargs="+", type=int, default=None, metavar="R",
                        help="instead of the table: compare these round_to values (1 = exact counts) in "
                             "round-robin, whole model and per layer")
    parser.add_argument("--pooling", nargs="+", default=["torch"], choices=("torch", "channels-last"),
                        help="with --round-to: time max pooling with torch's NCHW kernel and/or through "
                             "channels-last (shrinkbench.vision.kernels: the same function), each a study")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.round_to:
        import os

        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"threads {torch.get_num_threads()}, {os.cpu_count()} CPUs, load average {load:.1f} at start, "
              f"torch {torch.__version__}, repeats {args.repeats} after {args.warmup} warm-up rounds")
        for name in args.models:
            for speedup in args.speedups:
                for b in args.batch_sizes:
                    for pooling in args.pooling:
                        rounding_study(name, speedup, b, args.round_to, args.strategy, args.repeats, args.warmup,
                                       pooling)
        return 0
    print(f"threads {torch.get_num_threads()}, repeats {args.repeats} (median), strategy {args.strategy}")
    print(f"{'model':16} {'target':>6} {'theory':>7} {'batch':>5} {'measured':>8} {'weights':>8} {'ours/TP':>8}")
    channel, weight = granularity("channel"), granularity("weight")
    for name in args.models:
        spec = model_spec(name)
        dense = create_model(name).eval()
        for speedup in args.speedups:
            pruned = copy.deepcopy(dense)
            masks = channel.prune(pruned, resolve_strategy(args.strategy), "speedup", speedup, excluded=spec.excluded,
                                  batches=[], generator=torch.Generator(), input_shape=spec.input_shape)
            small = channel.deployed(pruned, masks, spec.input_shape, spec.excluded).eval()
            masked = copy.deepcopy(dense)
            weight.prune(masked, resolve_strategy("global_magnitude"), "speedup", speedup, excluded=spec.excluded,
                         batches=[], generator=torch.Generator(), input_shape=spec.input_shape)
            theirs = torch_pruning_copy(dense, masks, spec.input_shape)
            for b in args.batch_sizes:
                x = torch.randn(b, *spec.input_shape)
                mine, ref = time_alternating(small, dense, x, args.warmup, args.repeats)
                masked_times, ref2 = time_alternating(masked.eval(), dense, x, args.warmup, args.repeats)
                tp_text = "-"
                if theirs is not None:
                    ours, tp_times = time_alternating(small, theirs, x, args.warmup, args.repeats)
                    tp_text = f"{statistics.median(ours) / statistics.median(tp_times):.2f}"
                print(f"{name:16} {speedup:6g} {theoretical(pruned, spec.input_shape):7.2f} {b:5d} "
                      f"{median_ratio(mine, ref):8.2f} {median_ratio(masked_times, ref2):8.2f} {tp_text:>8}")
    print("measured: dense latency / compacted latency; weights: dense / weight-masked (dense kernels); "
          "ours/TP: our compacted latency / Torch-Pruning's (1 = as fast; - = Torch-Pruning not installed or failed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
