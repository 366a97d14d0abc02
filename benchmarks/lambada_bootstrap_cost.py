"""The cost of lm-evaluation-harness's bootstrap stderr of lambada_openai's perplexity, as
`shrinkbench.llm.tasks.evaluate` runs it: in this process (`DISABLE_MULTIPROC`), the harness's
default 100,000 resamples (`shrinkbench.llm.tasks.BOOTSTRAP_ITERS`), on a full-size split of
5,153 log-likelihoods (lambada_openai's test split; values drawn here, the cost does not depend
on them). Prints the seconds and the conditions.

    python benchmarks/lambada_bootstrap_cost.py [--examples 5153]
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5153)
    args = parser.parse_args()
    os.environ.update(DISABLE_MULTIPROC="1", TQDM_DISABLE="1")
    from lm_eval.api.metrics import bootstrap_stderr, perplexity

    from shrinkbench.llm.tasks import BOOTSTRAP_ITERS, harness_version

    rng = random.Random(0)
    lls = [-rng.expovariate(0.5) for _ in range(args.examples)]
    start = time.perf_counter()
    stderr = bootstrap_stderr(perplexity, lls, BOOTSTRAP_ITERS)
    seconds = time.perf_counter() - start
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    print(f"bootstrap stderr of perplexity over {args.examples} examples, {BOOTSTRAP_ITERS} resamples, in one process: "
          f"{seconds:.1f} s (stderr {stderr:.4f})")
    print(f"conditions: lm-eval {harness_version()}, Python {platform.python_version()}, {os.cpu_count()} cores, "
          f"load average {load[0]}")


if __name__ == "__main__":
    main()
