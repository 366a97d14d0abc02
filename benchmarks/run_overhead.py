"""A whole run's wall time against the pure compute of its training and evaluation steps.

The run is the default benchmark's setting (LeNet-300-100 on Fashion-MNIST, global
magnitude at 8x, 2 fine-tuning epochs), executed by the real runner with its base model
already cached (as in every run of a sweep but the first of each base seed). The peer is
a bare PyTorch loop, timed in the same process right after, doing exactly the run's
compute on tensors already in memory and normalised: the same number of SGD training
steps at the same batch size (forward, cross-entropy, backward, step) and the same
evaluation forward passes (validation and test, before and after fine-tuning, plus the
per-epoch validation pass). Everything else the runner does (data batching, pruning,
masks, metrics, latency measurement, the record) is the overhead.

    .venv/bin/python benchmarks/run_overhead.py [--threads 1] [--reps 3] [--no-latency]
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shrinkbench.vision.runner import execute, load_data  # noqa: E402
from shrinkbench.core.store import Store  # noqa: E402
from shrinkbench.core.suite import load_suite  # noqa: E402


def bare_compute(cfg, splits, model_factory) -> float:
    """Seconds of the run's training and evaluation steps in a bare loop."""
    spec = splits.spec
    mean, std = torch.tensor(spec.mean).view(1, -1, 1, 1), torch.tensor(spec.std).view(1, -1, 1, 1)

    def prepare(split):
        return (split.x.float().div(255) - mean) / std, split.y

    train_x, train_y = prepare(splits.train)
    evals = [prepare(splits.val), prepare(splits.test)]
    model = model_factory()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.finetune.lr, momentum=cfg.finetune.momentum,
                          nesterov=cfg.finetune.nesterov, weight_decay=cfg.finetune.weight_decay)
    bs, ebs = cfg.finetune.batch_size, cfg.measure.eval_batch_size
    g = torch.Generator().manual_seed(0)

    def evaluate(x, y):
        model.eval()
        with torch.inference_mode():
            for i in range(0, len(y), ebs):
                model(x[i:i + ebs]).argmax(1).eq(y[i:i + ebs]).sum()
        model.train()

    start = time.perf_counter()
    for x, y in evals:                       # stage pre: val and test
        evaluate(x, y)
    for _ in range(cfg.finetune.epochs):
        perm = torch.randperm(len(train_y), generator=g)
        for i in range(0, len(train_y), bs):
            idx = perm[i:i + bs]
            loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        evaluate(*evals[0])                  # per-epoch validation
    for x, y in evals:                       # stage post: val and test
        evaluate(x, y)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-latency", action="store_true", help="leave out the latency measurement")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from shrinkbench.vision.models import create_model
    from shrinkbench.vision.validate import validate_config

    suite = load_suite("default")
    cfg = next(c for c in suite.configs if c.strategy == "global_magnitude" and c.compression == 8.0)
    if args.no_latency:
        cfg = cfg.replace(measure=dataclasses.replace(cfg.measure, latency=False))
    cfg = validate_config(cfg)
    splits = load_data(cfg.dataset, cfg.data)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(tmp)
        t0 = time.perf_counter()
        execute(cfg, store, "cpu")  # trains and caches the base model
        print(f"first run (base model trained and cached): {time.perf_counter() - t0:.2f} s")
        walls, bares = [], []
        for _ in range(args.reps):
            walls.append(_timed(lambda: execute(cfg, store, "cpu")))
            bares.append(bare_compute(cfg, splits, lambda: create_model(cfg.model)))
    wall, bare = statistics.median(walls), statistics.median(bares)
    ratios = [w / b for w, b in zip(walls, bares)]
    print(f"run wall time  {wall:.2f} s (median of {args.reps}: {', '.join(f'{w:.2f}' for w in walls)})")
    print(f"bare compute   {bare:.2f} s (median of {args.reps}: {', '.join(f'{b:.2f}' for b in bares)})")
    print(f"ratio run / bare compute: {statistics.median(ratios):.2f} "
          f"(per repetition: {', '.join(f'{r:.2f}' for r in ratios)}; threads {args.threads}, "
          f"latency {'off' if args.no_latency else 'on'})")
    return 0


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    sys.exit(main())
