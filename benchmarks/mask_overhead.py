"""Cost of enforcing pruning masks during fine-tuning, against the same dense loop.

For each model: prune to `--compression` (global magnitude), then time blocks of training
steps (as many as take about `--block-seconds`, at least 3) on the same pre-generated
Fashion-MNIST-shaped random batches:

    dense:   forward, cross-entropy, backward, SGD step (momentum 0.9, weight decay 5e-4)
    masked:  the same, the masks enforced as the training loop does: `masks.hook_gradients()`
             (grad *= mask as backward writes each weight's gradient), and masks.mask_weights()
             once at the end of the block (the training loop's per-epoch guard)
    after:   the same, with masks.mask_gradients() after backward instead of the hooks (one
             pass over every gradient: the way before; its time inside the mask calls is
             printed as a share of its step)
    control: a second, identical dense loop (an A/A comparison: the noise floor of this machine)

The four loops run in rotating, alternately reversed order over `--reps` repetitions so
that drift (thermal, other load) hits all alike. Printed per model: median ms per step,
the ratio masked / dense (median of the per-repetition paired ratios, with its
interquartile range; the target is <= 1.03), the same ratios for after / dense and control /
dense, and, on CPU, the time spent inside after's two mask calls as a share of its step.

    .venv/bin/python benchmarks/mask_overhead.py [--block-seconds 0.5] [--reps 15] [--threads 1] [--device cpu]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shrinkbench.vision.models import create_model, model_spec  # noqa: E402
from shrinkbench.vision.pruning import MaskSet, prune, resolve_strategy  # noqa: E402

MODELS = ("lenet_300_100", "lenet5_caffe", "cifar_resnet20_1x28x28")
VARIANTS = ("dense", "masked", "after", "control")


def make_batches(n: int, batch_size: int, device: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(batch_size, 1, 28, 28, generator=g).to(device),
             torch.randint(0, 10, (batch_size,), generator=g).to(device)) for _ in range(n)]


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_block(model, optimizer, masks: MaskSet | None, hooked: bool, batches, device: str) -> tuple[float, float]:
    """(seconds for len(batches) training steps, seconds inside the mask calls after backward;
    CPU only). `hooked`: the gradients are masked by hooks during backward."""
    in_masks = 0.0
    hooks = masks.hook_gradients() if masks is not None and hooked else None
    synchronize(device)
    start = time.perf_counter()
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        if masks is not None and not hooked:
            t = time.perf_counter()
            masks.mask_gradients()
            in_masks += time.perf_counter() - t
        optimizer.step()
    if masks is not None:
        t = time.perf_counter()
        masks.mask_weights()
        in_masks += time.perf_counter() - t
    synchronize(device)
    seconds = time.perf_counter() - start
    if hooks is not None:
        hooks.remove()
    return seconds, in_masks


def paired(times: dict[str, list[float]], a: str, b: str) -> tuple[float, float, float]:
    """Median and quartiles of the per-repetition ratios a / b."""
    ratios = sorted(x / y for x, y in zip(times[a], times[b]))
    q1, median, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    return median, q1, q3


def measure(name: str, args) -> dict:
    base = create_model(name, seed=0).to(args.device)
    masks = prune(base, resolve_strategy("global_magnitude"), args.compression,
                  excluded=model_spec(name).excluded, batches=[], generator=torch.Generator())
    loops = {}
    for variant in VARIANTS:
        model = copy.deepcopy(base).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        own_masks = (MaskSet.from_state_dict(masks.state_dict()).attach(model)
                     if variant in ("masked", "after") else None)
        loops[variant] = (model, optimizer, own_masks, variant == "masked")
    batches = make_batches(3, args.batch_size, args.device)
    for variant in VARIANTS:  # warm-up
        run_block(*loops[variant], batches, args.device)
    per_step = run_block(*loops["dense"], batches, args.device)[0] / len(batches)
    steps = max(3, min(500, round(args.block_seconds / per_step)))
    batches = make_batches(steps, args.batch_size, args.device)
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    in_masks: list[float] = []
    for rep in range(args.reps):
        order = VARIANTS[rep % len(VARIANTS):] + VARIANTS[: rep % len(VARIANTS)]
        for variant in (order if rep % 2 == 0 else order[::-1]):
            seconds, masking = run_block(*loops[variant], batches, args.device)
            times[variant].append(seconds)
            if variant == "after":
                in_masks.append(masking / seconds)
    return {"model": name, "steps": steps,
            "dense_ms": 1e3 * statistics.median(times["dense"]) / steps,
            "masked_ms": 1e3 * statistics.median(times["masked"]) / steps,
            "masked": paired(times, "masked", "dense"), "after": paired(times, "after", "dense"),
            "control": paired(times, "control", "dense"),
            "mask_share": statistics.median(in_masks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--block-seconds", type=float, default=0.5, help="length of a timed block")
    parser.add_argument("--reps", type=int, default=15, help="timed blocks per variant")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--compression", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {args.device}, threads {torch.get_num_threads()}, batch {args.batch_size}, "
          f"{args.reps} blocks of ~{args.block_seconds:g} s per loop, compression {args.compression:g}")
    worst = 0.0  # one block of short lines per model: readable at 100 columns
    for name in args.models:
        r = measure(name, args)
        worst = max(worst, r["masked"][0])
        share = f"{r['mask_share']:.2%} of its step in the mask calls" if args.device == "cpu" else ""
        print(f"{r['model']}: {r['steps']} steps per block, dense {r['dense_ms']:.3f} ms, masked "
              f"{r['masked_ms']:.3f} ms per step; ratios median [IQR]")
        print(f"  masked/dense   {'%.3f [%.3f, %.3f]' % r['masked']}   (hooks, as training does)")
        print(f"  after/dense    {'%.3f [%.3f, %.3f]' % r['after']}   {share}")
        print(f"  control/dense  {'%.3f [%.3f, %.3f]' % r['control']}   (A/A: the noise floor)")
    print(f"largest ratio masked / dense: {worst:.3f} (target <= 1.03)")


if __name__ == "__main__":
    main()
