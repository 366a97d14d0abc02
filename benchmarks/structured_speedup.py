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
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from shrinkbench.core.macs import count_macs  # noqa: E402
from shrinkbench.core.metrics.cost import time_alternating  # noqa: E402
from shrinkbench.vision.models import create_model, model_spec  # noqa: E402
from shrinkbench.vision.pruning import resolve_strategy  # noqa: E402
from shrinkbench.vision.pruning.granularity import granularity  # noqa: E402
from shrinkbench.vision.structured.compact import removed_indices  # noqa: E402

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
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
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
