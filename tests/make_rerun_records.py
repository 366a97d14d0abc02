"""Write the records `tests/test_rerun_records.py` re-runs bit for bit (tests/data/rerun/).

    .venv/bin/python tests/make_rerun_records.py [--out tests/data/rerun]

Three small real runs on scikit-learn's digits at 1 thread, chosen to pass through every path
a speed change has touched (issue 24): LeNet-5 (Caffe) one-shot after training (max pooling in
training and evaluation, gradient masks during fine-tuning), LeNet-5 SNIP at initialisation
(gradient scores through the pooling), and LeNet-300-100 with gradual pruning (masks replaced
during training). The committed ones were written by the code before those changes (523cc40),
so the test shows the changes kept every number. Each record names the CPU capability it was
made on; the test skips where this machine's differs (other kernels, other last bits).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def configs():
    from runner_helpers import tiny_config
    from shrinkbench.vision.config import ScheduleConfig

    return {
        "lenet5_magnitude_after_training": tiny_config(model="lenet5_caffe", compression=4.0, threads=1),
        "lenet5_snip_at_init": tiny_config(model="lenet5_caffe", strategy="snip", compression=8.0, when="at_init",
                                           threads=1),
        "lenet300_gradual": tiny_config(compression=8.0, schedule=ScheduleConfig(kind="gradual", every=2),
                                        threads=1),
    }


def main() -> int:
    import torch

    from shrinkbench.core.store import Store
    from shrinkbench.vision.runner import execute
    from shrinkbench.vision.validate import validate_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "data" / "rerun"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    for name, cfg in configs().items():
        with tempfile.TemporaryDirectory() as tmp:
            record = execute(validate_config(cfg), Store(tmp), "cpu")
        assert record["status"] == "ok", record["error"]
        record["provenance"]["argv"] = ["tests/make_rerun_records.py"]  # no machine's paths in the repository
        (out / f"{name}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"{name}: {record['run_id']}, {record['provenance']['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
