"""Start-up cost of the command line: how long the listing commands take, against a bare
Python interpreter started in the same run (the peer), and what a command that needs torch
pays for importing it.

    python benchmarks/startup.py [--repeats 7]

Each command is started as a fresh process `repeats` times, interleaved with the others
(so drift in the machine's load hits all alike); the table gives the median wall time and
its ratio to `python -c pass`. Targets: `--help`, `zoo`, `strategies` and `metrics` under
one second on an idle machine; they import neither torch nor pandas (checked by
tests/test_packaging.py, which times nothing).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass (peer)": [sys.executable, "-c", "pass"],
    "shrinkbench --help": [sys.executable, "-m", "shrinkbench.cli", "--help"],
    "shrinkbench zoo": [sys.executable, "-m", "shrinkbench.cli", "zoo"],
    "shrinkbench strategies": [sys.executable, "-m", "shrinkbench.cli", "strategies"],
    "shrinkbench metrics": [sys.executable, "-m", "shrinkbench.cli", "metrics"],
    "import torch (reference)": [sys.executable, "-c", "import torch"],
    "import shrinkbench.vision.runner": [sys.executable, "-c", "import shrinkbench.vision.runner"],
}


def measure(repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(repeats):
        for name, argv in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - start)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="starts of each command (default 7)")
    args = parser.parse_args(argv)
    times = measure(args.repeats)
    peer = statistics.median(times["python -c pass (peer)"])
    width = max(map(len, times))
    print(f"{'command'.ljust(width)}  median s  ratio to bare python  (n = {args.repeats}, interleaved)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name.ljust(width)}  {median:8.3f}  {median / peer:6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
