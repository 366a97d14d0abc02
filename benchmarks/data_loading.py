"""One epoch of Fashion-MNIST training batches (batch 128, shuffled): our in-memory path
against torchvision's per-sample PIL DataLoader and against a bare tensor-slicing loop.

    .venv/bin/python benchmarks/data_loading.py [--repeats 3] [--model] [--workers 0 2]

All loaders read the same arrays (the Debian files via `load_splits`, or `--dataset digits`);
torchvision's `FashionMNIST.__getitem__` is used as is, on an instance given those arrays
(no download). Each repeat times one epoch of every candidate in turn (round robin, so load
from other processes hits all alike); we report the minimum and the median over repeats and
ratios of minima against the bare loop. With `--model`, each batch also trains LeNet-300-100 one SGD step,
so the ratios show what the data path costs inside a real epoch.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import FashionMNIST

from shrinkbench.vision.data import TensorSplit, batches, load_splits

BATCH = 128
BARE = "bare loop: float32 pre-normalised, randperm + index_select"
OURS = "shrinkbench batches (uint8 in memory, normalised per batch)"


def bare_loop(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> Iterable:
    """Pre-normalised float32 tensors, a permutation, index_select: the least any loader can do."""
    order = torch.randperm(len(y), generator=generator)
    for start in range(0, len(y), BATCH):
        index = order[start : start + BATCH]
        yield x.index_select(0, index), y.index_select(0, index)


def bare_loop_fancy_indexing(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> Iterable:
    """The same with ``x[index]`` (advanced indexing), as most hand-written loops do."""
    order = torch.randperm(len(y), generator=generator)
    for start in range(0, len(y), BATCH):
        index = order[start : start + BATCH]
        yield x[index], y[index]


def torchvision_loader(split: TensorSplit, mean: float, std: float, workers: int, generator: torch.Generator) -> DataLoader:
    dataset = FashionMNIST.__new__(FashionMNIST)  # torchvision's class, our arrays, no files
    dataset.data, dataset.targets = split.x[:, 0], split.y
    dataset.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
    dataset.target_transform = None
    return DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers, generator=generator)


def epoch_seconds(make_epoch: Callable[[], Iterable], step: Callable[[torch.Tensor, torch.Tensor], None]) -> float:
    start = time.perf_counter()
    for x, y in make_epoch():
        step(x, y)
    return time.perf_counter() - start


def timed_round_robin(candidates: dict[str, Callable[[], Iterable]], step, repeats: int) -> dict[str, list[float]]:
    """Each repeat runs every candidate once, so load from other processes hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, make in candidates.items():
            times[name].append(epoch_seconds(make, step))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "digits"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="*", default=[0], help="worker counts for torchvision's DataLoader")
    parser.add_argument("--model", action="store_true", help="also train LeNet-300-100 one step per batch")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    splits = load_splits(args.dataset)
    spec, train = splits.spec, splits.train
    if train.x.dtype != torch.uint8:
        train = TensorSplit(torch.round(train.x * 255).to(torch.uint8), train.y)
    mean, std = spec.mean[0], spec.std[0]
    normalised = ((train.x.float() / 255 - mean) / std).contiguous()
    float_split = TensorSplit(normalised * std + mean, train.y)  # 0..1 floats: the float32-in-memory variant

    if args.model:
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

        def step(x: torch.Tensor, y: torch.Tensor) -> None:
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    else:

        def step(x: torch.Tensor, y: torch.Tensor) -> None:
            pass

    def ours(split: TensorSplit) -> Callable[[], Iterable]:
        generator = torch.Generator().manual_seed(0)
        return lambda: batches(split, BATCH, shuffle=True, generator=generator, augment=True, spec=spec)

    generator = torch.Generator().manual_seed(0)
    candidates: dict[str, Callable[[], Iterable]] = {
        BARE: lambda: bare_loop(normalised, train.y, generator),
        "bare loop with x[index] instead of index_select": lambda: bare_loop_fancy_indexing(normalised, train.y, generator),
        OURS: ours(train),
        "shrinkbench batches (float32 in memory)": ours(float_split),
    }
    for workers in args.workers:
        loader = torchvision_loader(train, mean, std, workers, torch.Generator().manual_seed(0))
        candidates[f"torchvision FashionMNIST + DataLoader, per-sample PIL, {workers} workers"] = lambda loader=loader: loader

    print(f"{args.dataset} train: {len(train)} examples, batch {BATCH}, {args.threads} threads, "
          f"{'LeNet-300-100 SGD step per batch' if args.model else 'data only'}, {args.repeats} round-robin repeats")
    epoch_seconds(candidates[BARE], step)  # warm-up
    times = timed_round_robin(candidates, step, args.repeats)
    best = {name: min(t) for name, t in times.items()}
    print("   min (s)  median (s)  min/bare-min  loader")
    for name, t in times.items():
        print(f"{best[name]:9.4f}  {statistics.median(t):10.4f}  {best[name] / best[BARE]:11.2f}x  {name}")
    ours_time = best[OURS]
    for name, seconds in best.items():
        if name.startswith("torchvision"):
            print(f"shrinkbench in-memory path is {seconds / ours_time:.1f}x faster than {name} (min over repeats)")


if __name__ == "__main__":
    main()
