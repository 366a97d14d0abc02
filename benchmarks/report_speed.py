"""How long `shrinkbench report` takes on a store of >= 100,000 tidy rows.

Builds a synthetic store (real record JSON files, see tests/analysis_fixtures.py), then
times (1) reading the store into the tidy table, the peer every report must pay, and
(2) the whole report (read + figures in PNG and PDF + tables + all-pairs significance).
Prints rows, runs, seconds and the ratio report / read, the CPU time of the report process
and of its forked figure writers (analysis/background.py), and the conditions (CPUs, load).
`--sequential` saves the figures in turn in the report process (the way before the writers).
`--same-as DIR` checks that the report is byte for byte the one in DIR (written by an earlier
version with `--out DIR`), but for the two things that name the moment: the temporary store's
path in report.md/html and summary.json, and the PDFs' CreationDate.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/report_speed.py [--seeds 8] [--out DIR] [--sequential] [--same-as DIR]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from shrinkbench.analysis.load import scan_store  # noqa: E402
from shrinkbench.analysis.options import AnalysisOptions  # noqa: E402
from shrinkbench.analysis import report as report_module  # noqa: E402
from shrinkbench.analysis.background import default_workers  # noqa: E402
from analysis_fixtures import synthetic_store  # noqa: E402

STRATEGIES = {"global_magnitude": 1.0, "layerwise_magnitude": 0.0, "global_gradient": 0.6,
              "layerwise_gradient": 0.2, "global_activation": 0.4, "layerwise_activation": 0.1,
              "random": -2.0, "my_method": 1.2}
SETTINGS = tuple((m, d) for d in ("cifar10", "cifar100") for m in ("resnet20", "resnet56", "vgg16", "lenet"))
COMPRESSIONS = (2, 4, 8, 16, 32, 64, 128)


def _normalised(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".pdf":
        return re.sub(rb"/CreationDate \(D:[0-9Z]+\)", b"", data)
    if path.suffix in (".md", ".html", ".json"):
        return re.sub(rb'(Source: |"source": ")[^ "\n]+', rb"\1STORE", data)
    return data


def different_files(new: Path, old: Path) -> list[str]:
    """Relative paths that differ (or exist on one side only) between two report folders."""
    names = {p.relative_to(new) for p in new.rglob("*") if p.is_file()}
    names |= {p.relative_to(old) for p in old.rglob("*") if p.is_file()}
    return sorted(str(n) for n in names if not ((new / n).is_file() and (old / n).is_file()
                                                and _normalised(new / n) == _normalised(old / n)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--out", help="report folder (default: a temporary one)")
    parser.add_argument("--sequential", action="store_true", help="save figures in turn, no forked writers")
    parser.add_argument("--same-as", help="a report folder to compare with, file by file")
    args = parser.parse_args()
    if args.sequential:
        report_module.saving_in_background = contextlib.nullcontext
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        t0 = time.perf_counter()
        synthetic_store(store, np.random.default_rng(0), STRATEGIES, compressions=COMPRESSIONS,
                        units=tuple((i, i) for i in range(args.seeds)), settings=SETTINGS, top5=True, failed=3)
        built = time.perf_counter() - t0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            scan = scan_store(store)
            read = time.perf_counter() - t0
            out = Path(args.out) if args.out else Path(tmp) / "report"
            t0, cpu0 = time.perf_counter(), time.process_time()
            children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            summary = report_module.build_report(scan_store(store), out, AnalysisOptions())
            report, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            writers = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
            if args.same_as:
                differ = different_files(out, Path(args.same_as))
    rows, runs = len(scan.table), summary["runs"]
    print(f"store: {rows:,} tidy rows, {scan.records:,} records, {runs:,} runs analysed, built in {built:.1f} s")
    print(f"  ({len(SETTINGS)} settings x {len(STRATEGIES)} methods x {len(COMPRESSIONS)} ratios x {args.seeds} seeds)")
    print(f"read store:   {read:6.2f} s")
    print(f"full report:  {report:6.2f} s (read included; {len(summary['files'])} files)")
    print(f"ratio report / read: {report / read:.1f}")
    print(f"CPU: report process {cpu:.2f} s, figure writers {writers:.2f} s "
          f"({'sequential' if args.sequential else f'up to {default_workers()} forked at once'})")
    if args.same_as:
        print(f"same as {args.same_as}: " + ("yes, every file" if not differ else f"NO, {len(differ)} differ:"))
        for name in differ:
            print(f"  {name}")
    print(f"conditions: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")


if __name__ == "__main__":
    main()
