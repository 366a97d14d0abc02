"""`shrinkbench results --format csv` on a large store: time and peak memory of the streamed
export against reading the whole store into one table first (the peer: what the export did
before, `scan_store(...).with_config_columns().to_csv()`), each in its own process.

Builds a synthetic store of real record files (tests/analysis_fixtures.py). Peak memory is
the child process' maximum resident set size (includes the interpreter and pandas, ~100 MB).

    .venv/bin/python benchmarks/export_memory.py [--seeds 40]
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from analysis_fixtures import synthetic_store  # noqa: E402
from report_speed import COMPRESSIONS, SETTINGS, STRATEGIES  # noqa: E402

STREAMED = ("import sys, warnings; warnings.simplefilter('ignore'); from shrinkbench.analysis.load import stream_export;"
            "stream_export(sys.argv[1], open(sys.argv[2], 'w', newline=''), 'csv')")
WHOLE = ("import sys, warnings; warnings.simplefilter('ignore'); from shrinkbench.analysis.load import scan_store;"
         "scan_store(sys.argv[1]).with_config_columns().to_csv(sys.argv[2], index=False)")


def measure(code: str, store: Path, out: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one export in a fresh process."""
    start = time.perf_counter()
    child = subprocess.run([sys.executable, "-c", code, str(store), str(out)], cwd=ROOT,
                           capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if child.returncode:
        raise SystemExit(child.stderr)
    # ru_maxrss of the largest child so far: run the smaller one first (see main)
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40, help="units per operating point (default 40: ~18k records)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        synthetic_store(store, np.random.default_rng(0), STRATEGIES, compressions=COMPRESSIONS,
                        units=tuple((i, i) for i in range(args.seeds)), settings=SETTINGS)
        records = len(list((store / "runs").glob("*.json")))
        streamed_s, streamed_mb = measure(STREAMED, store, Path(tmp) / "streamed.csv")
        whole_s, whole_mb = measure(WHOLE, store, Path(tmp) / "whole.csv")
        same = (Path(tmp) / "streamed.csv").read_bytes() == (Path(tmp) / "whole.csv").read_bytes()
    print(f"{records:,} records; identical CSV: {same}")
    print(f"streamed export: {streamed_s:6.1f} s, peak RSS {streamed_mb:7.0f} MiB ({streamed_s / records * 1e3:.2f} ms per record)")
    print(f"whole table:     {whole_s:6.1f} s, peak RSS {whole_mb:7.0f} MiB ({whole_s / records * 1e3:.2f} ms per record)")
    print(f"ratio streamed / whole: time {streamed_s / whole_s:.2f}, memory {streamed_mb / whole_mb:.2f}")


if __name__ == "__main__":
    main()
