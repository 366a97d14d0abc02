"""A whole run's wall time against the original ShrinkBench (Blalock et al. 2020,
github.com/JJGO/shrinkbench) on the same work, in interleaved pairs (issue 24, item 1).

    git clone https://github.com/JJGO/shrinkbench /somewhere/jjgo/shrinkbench   # outside this repository
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/shrinkbench_pair.py \\
        --shrinkbench-src /somewhere/jjgo/shrinkbench [--pairs 3] [--threads 1] [--which at_init after_training] [--bare]

Both sides: Caffe LeNet-5 (conv 20 5x5, pool, conv 50 5x5, pool, fc 500, relu, fc 10) on
Fashion-MNIST, SGD lr 0.1 momentum 0.9 Nesterov, weight decay 5e-4, batch 128, 55,000
training images (our split holds 5,000 out for validation; ShrinkBench's loader gets the first
55,000 of the training set), global magnitude pruning to 4x compression.

- at_init: prune the initial weights, train 1 epoch.
  Ours: `shrinkbench prune --model lenet5_caffe --strategy global_magnitude --compression 4
  --when at_init --base-epochs 1` (at initialisation the pruned network trains with the base
  recipe: --base-epochs sets its epochs; --finetune-epochs is refused there).
  ShrinkBench: `PruningExperiment(..., train_kwargs={epochs: 1})` on the fresh model.
- after_training: train 1 epoch, prune, fine-tune 1 epoch.
  Ours: `shrinkbench prune ... --base-epochs 1 --finetune-epochs 1`.
  ShrinkBench: `TrainingExperiment` 1 epoch, then `PruningExperiment` of that model, 1 epoch.

Each side is a fresh process (imports included), ours with a fresh store (so its base model
is trained, not read from a cache), ShrinkBench with `num_workers` 0 (`--workers`) and its own
results folder in a temporary directory; the pairs alternate which side goes first. The
statement is the ratio ours / ShrinkBench of each pair (median, min, max), which a shared
machine's load moves much less than the seconds. The numbers are not compared: the two
tools split, augment and schedule differently; the work (steps, batch size, passes) is the same
but for our extra evaluation passes, which the record holds.

`--bare` adds a third side, in the same rotation: a bare PyTorch script (no toolkit) doing our
run's work with torch's own kernels: the IDX files read into memory, the same LeNet-5, SGD,
global magnitude pruning, and the evaluation passes our record holds (at_init: pre val and
test, the epoch's val, post test; after_training also the base model's). bare / ShrinkBench
is then the floor for a tool that computes what our record holds, and ours / bare what the
toolkit costs (or saves) beyond it.

ShrinkBench's package is named `shrinkbench` too, so it runs in its own process with a
folder holding only a link named `shrinkbench` to `--shrinkbench-src` first on its path
(checked: the imported package must be that folder). Where the source is absent the script
says so and exits 0 (a skip, not a failure). Fashion-MNIST comes from the toolkit's own data
search (`shrinkbench datasets`); ShrinkBench reads the same IDX files through torchvision.
"""
from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PEER = textwrap.dedent('''
    import sys, time
    t0 = time.perf_counter()
    import torch, torchvision
    from torch import nn
    from torch.utils.data import Subset
    torch.set_num_threads({threads})
    import shrinkbench
    assert set(shrinkbench.__path__) == {{{src!r}}}, shrinkbench.__path__
    from shrinkbench import datasets
    from shrinkbench.experiment import PruningExperiment, TrainingExperiment
    from torchvision import transforms

    T = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))])

    def FashionMNIST(train=True):
        data = torchvision.datasets.FashionMNIST({root!r}, train=train, transform=T, download=False)
        return Subset(data, range(55000)) if train else data
    datasets.FashionMNIST = FashionMNIST

    class LeNet5Caffe(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 20, 5), nn.Conv2d(20, 50, 5)
            self.pool1, self.pool2 = nn.MaxPool2d(2), nn.MaxPool2d(2)  # one module per use: its hooks need it
            self.fc1, self.fc2 = nn.Linear(800, 500), nn.Linear(500, 10)
            self.fc2.is_classifier = True
        def forward(self, x):
            x = self.pool2(self.conv2(self.pool1(self.conv1(x))))
            return self.fc2(torch.relu(self.fc1(x.flatten(1))))

    dl = dict(batch_size=128, num_workers={workers})
    train = dict(optim="SGD", epochs=1, lr=0.1, weight_decay=5e-4)
    model = LeNet5Caffe()
    if {after!r}:
        base = TrainingExperiment("FashionMNIST", model, dl_kwargs=dl, train_kwargs=train, path=None)
        base.run()
    exp = PruningExperiment("FashionMNIST", model, "GlobalMagWeight", 4, dl_kwargs=dl, train_kwargs=train,
                            pretrained=False)
    exp.run()
    print("PEER_SECONDS", time.perf_counter() - t0)
''')


BARE = textwrap.dedent('''
    import gzip, sys, time
    t0 = time.perf_counter()
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn
    torch.set_num_threads({threads})
    torch.manual_seed(0)

    def idx(name):
        with gzip.open({root!r} + "/" + name + ".gz") as f:
            data = f.read()
        dims = data[3]
        shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
        return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)

    def images(name):
        return (torch.from_numpy(idx(name).astype(np.float32) / 255.0).unsqueeze(1) - 0.2860) / 0.3530

    x_train, y_train = images("train-images-idx3-ubyte"), torch.from_numpy(idx("train-labels-idx1-ubyte").astype(np.int64))
    order = torch.randperm(60000)
    train, val = order[:55000], order[55000:]
    x_test, y_test = images("t10k-images-idx3-ubyte"), torch.from_numpy(idx("t10k-labels-idx1-ubyte").astype(np.int64))
    model = nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))
    weights = [m.weight for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]

    def evaluate(x, y):
        model.eval()
        with torch.inference_mode():
            correct = sum(int((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum()) for i in range(0, len(y), 1000))
        model.train()
        return correct / len(y)

    def epoch(masks=None):
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
        perm = train[torch.randperm(len(train))]
        for i in range(0, len(perm), 128):
            b = perm[i:i + 128]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x_train[b]), y_train[b]).backward()
            if masks is not None:
                torch._foreach_mul_([w.grad for w in weights], masks)
            opt.step()
        evaluate(x_train[val], y_train[val])

    def prune():
        flat = torch.cat([w.detach().abs().flatten() for w in weights])
        keep = flat.numel() // 4
        threshold = flat.kthvalue(flat.numel() - keep).values
        masks = [(w.detach().abs() > threshold).float() for w in weights]
        with torch.no_grad():
            torch._foreach_mul_(weights, masks)
        return masks

    if {after!r}:
        epoch()
        evaluate(x_test, y_test)  # the base model's test pass (its val pass is the epoch's)
    masks = prune()
    evaluate(x_train[val], y_train[val])  # pre val and test
    evaluate(x_test, y_test)
    epoch(masks)  # the epoch's val pass is post val
    evaluate(x_test, y_test)  # post test
    print("BARE_SECONDS", time.perf_counter() - t0)
''')


def fashion_files() -> Path | None:
    """The folder of the toolkit's Fashion-MNIST IDX files (None where it has none)."""
    from shrinkbench.vision.data.load import find_official

    try:
        _, _, location = find_official("fashion-mnist")
    except Exception:  # noqa: BLE001 - reported as a skip
        return None
    path = Path(location.split(" ")[0])
    return path if path.is_dir() else path.parent


def torchvision_root(idx_folder: Path, into: Path) -> Path:
    """A torchvision FashionMNIST root (`FashionMNIST/raw/<name>` without .gz) from the IDX files."""
    raw = into / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        gz, plain = idx_folder / f"{name}.gz", idx_folder / name
        if plain.exists():
            shutil.copyfile(plain, raw / name)
        else:
            with gzip.open(gz) as src, open(raw / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return into


def run_ours(which: str, threads: int, work: Path) -> float:
    store = Path(tempfile.mkdtemp(dir=work))
    cmd = [sys.executable, "-c", "import sys; from shrinkbench.cli import main; sys.exit(main(sys.argv[1:]))", "prune", "--model", "lenet5_caffe", "--dataset", "fashion-mnist",
           "--strategy", "global_magnitude", "--compression", "4", "--base-epochs", "1", "--threads", str(threads),
           "--store", str(store)]
    cmd += ["--when", "at_init"] if which == "at_init" else ["--finetune-epochs", "1"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run_peer(which: str, threads: int, workers: int, src: Path, root: Path, work: Path) -> float:
    folder = Path(tempfile.mkdtemp(dir=work))
    (folder / "shrinkbench").symlink_to(src.resolve(), target_is_directory=True)
    code = PEER.format(threads=threads, src=str(folder / "shrinkbench"), root=str(root), workers=workers,
                       after=which == "after_training")
    env = {**os.environ, "PYTHONPATH": str(folder)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = [line for line in done.stderr.splitlines() if line.strip()][-1:]
        raise SystemExit(f"ShrinkBench's run failed: {tail[0] if tail else done.returncode}")
    return seconds


def gzipped_idx(idx: Path, work: Path) -> Path:
    """A folder of the four Fashion-MNIST IDX files gzipped, as the bare script reads them
    (made once per benchmark, outside every timed side)."""
    gz = Path(tempfile.mkdtemp(dir=work)) / "idx"
    gz.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        src = idx / f"{name}.gz"
        if src.exists():
            shutil.copyfile(src, gz / f"{name}.gz")
        else:
            with open(idx / name, "rb") as plain, gzip.open(gz / f"{name}.gz", "wb") as out:
                shutil.copyfileobj(plain, out)
    return gz


def run_bare(which: str, threads: int, gz: Path, work: Path) -> float:
    """The same work as ours with nothing but torch: the data in memory, the same model, SGD,
    global magnitude and the evaluation passes our record holds, no pooling kernel of ours."""
    folder = Path(tempfile.mkdtemp(dir=work))
    code = BARE.format(threads=threads, root=str(gz), after=which == "after_training")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = [line for line in done.stderr.splitlines() if line.strip()][-1:]
        raise SystemExit(f"the bare run failed: {tail[0] if tail else done.returncode}")
    return seconds


def spread(values) -> str:
    """median (min-max) of per-pair ratios."""
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shrinkbench-src", required=True, help="a checkout of github.com/JJGO/shrinkbench")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0, help="ShrinkBench's DataLoader num_workers (default 0)")
    parser.add_argument("--which", nargs="+", default=["at_init", "after_training"],
                        choices=("at_init", "after_training"))
    parser.add_argument("--bare", action="store_true",
                        help="also time a bare PyTorch script doing our run's work (the floor of any tool "
                             "that computes what our record holds with torch's own kernels)")
    args = parser.parse_args(argv)
    src = Path(args.shrinkbench_src)
    if not (src / "experiment" / "prune.py").is_file():
        print(f"SKIP: no ShrinkBench source at {src}\n  (clone github.com/JJGO/shrinkbench there, pass "
              "--shrinkbench-src)")
        return 0
    idx = fashion_files()
    if idx is None:
        print("SKIP: Fashion-MNIST not found by the toolkit (`shrinkbench datasets` says where it looks)")
        return 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    import torch

    print(f"{os.cpu_count()} CPUs, load average {load:.1f} at start, threads {args.threads}, torch {torch.__version__}")
    print(f"ShrinkBench num_workers {args.workers}, {args.pairs} interleaved pairs per setting")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = torchvision_root(idx, work / "tv")
        gz = gzipped_idx(idx, work) if args.bare else None
        for which in args.which:
            ours, peer, bare = [], [], []
            sides = ["ours", "peer"] + (["bare"] if args.bare else [])
            for i in range(args.pairs):
                order = sides[i % len(sides):] + sides[:i % len(sides)]
                for side in (order if i % 2 == 0 else order[::-1]):
                    if side == "ours":
                        ours.append(run_ours(which, args.threads, work))
                    elif side == "peer":
                        peer.append(run_peer(which, args.threads, args.workers, src, root, work))
                    else:
                        bare.append(run_bare(which, args.threads, gz, work))
            ratios = [o / p for o, p in zip(ours, peer)]
            seconds = [("ours", ours), ("ShrinkBench", peer)] + ([("bare", bare)] if bare else [])
            print(f"{which}: " + "; ".join(f"{side} {' '.join(f'{t:.1f}' for t in ts)} s" for side, ts in seconds))
            print(f"  ours/ShrinkBench  {spread(ratios)}   median (min-max) of the pairs")
            if bare:
                print(f"  bare/ShrinkBench  {spread([b / p for b, p in zip(bare, peer)])}   the floor with torch's kernels")
                print(f"  ours/bare         {spread([o / b for o, b in zip(ours, bare)])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
