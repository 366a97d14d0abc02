"""SmolLM2-135M pruned with Wanda, then zero-shot accuracy through lm-evaluation-harness on the
model in memory, from local task files: the local-task path end to end, and its time.

    python benchmarks/llm_zero_shot.py [--examples 20] [--threads 1] [--keep FOLDER]

The eight tasks (the Wanda line's seven and piqa) are written as `<folder>/<task>/<split>.jsonl` in
each hub dataset's fields, `--examples` examples each, their text drawn from KJV verses (the
offline text) with a fixed seed: the accuracies are of made-up questions and mean nothing; the
point is the path (prune-llm --tasks ... --task-root ...) and what it costs. Two runs, in this
order: the same Wanda run (50%, 8 calibration windows of 128 tokens, 4 evaluation windows) without
tasks and with them; their wall-clock difference is the harness's share. Prints the times,
threads and machine; the load of other jobs is not controlled: quote it with the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPLITS = {"arc_easy": "test", "arc_challenge": "test", "openbookqa": "test"}
TASKS = ("boolq", "rte", "hellaswag:acc_norm", "winogrande", "arc_easy:acc_norm", "arc_challenge:acc_norm",
         "openbookqa:acc_norm", "piqa:acc_norm")


def write_tasks(folder: Path, examples: int, seed: int = 0) -> None:
    from shrinkbench.llm.text import read_text

    verses = [v for v in read_text("kjv").train.splitlines() if 40 < len(v) < 160]
    rng = random.Random(seed)

    def verse():
        return rng.choice(verses)

    def words(n):
        return " ".join(verse().split()[:n])

    rows = {
        "boolq": [{"question": words(6).lower(), "passage": verse(), "idx": i, "label": i % 2} for i in range(examples)],
        "rte": [{"sentence1": verse(), "sentence2": words(7), "label": i % 2, "idx": i} for i in range(examples)],
        "hellaswag": [{"ind": i, "activity_label": words(2), "ctx_a": words(8), "ctx_b": words(3), "ctx": "",
                       "endings": [words(rng.randint(3, 9)) for _ in range(4)], "source_id": "kjv", "split": "val",
                       "split_type": "indomain", "label": str(i % 4)} for i in range(examples)],
        "winogrande": [{"sentence": words(6) + " _ " + words(4), "option1": rng.choice(verse().split()),
                        "option2": rng.choice(verse().split()), "answer": str(1 + i % 2)} for i in range(examples)],
        "piqa": [{"goal": words(8), "sol1": words(rng.randint(3, 10)), "sol2": words(rng.randint(3, 10)),
                  "label": i % 2} for i in range(examples)],
        "openbookqa": [{"id": str(i), "question_stem": words(8), "answerKey": "ABCD"[i % 4],
                        "choices": {"text": [words(rng.randint(2, 6)) for _ in range(4)], "label": list("ABCD")}}
                       for i in range(examples)],
    }
    for task in ("arc_easy", "arc_challenge"):
        rows[task] = [{"id": str(i), "question": words(10) + "?", "answerKey": "ABCD"[i % 4],
                       "choices": {"text": [words(rng.randint(2, 6)) for _ in range(4)], "label": list("ABCD")}}
                      for i in range(examples)]
    for task, docs in rows.items():
        (folder / task).mkdir(parents=True, exist_ok=True)
        (folder / task / f"{SPLITS.get(task, 'validation')}.jsonl").write_text(
            "".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")


def run(store: Path, threads: int, extra: list[str]) -> tuple[float, dict]:
    args = [sys.executable, "-m", "shrinkbench.cli", "prune-llm", "--model", "smollm2-135m", "--strategy", "wanda",
            "--seq-len", "128", "--calib-sequences", "8", "--eval-windows", "4", "--threads", str(threads),
            "--store", str(store), "--format", "json", *extra]
    t = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        sys.exit(f"prune-llm failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return seconds, json.loads(done.stdout)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", type=int, default=20, help="examples per task (default 20)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--keep", default=None, help="write the task files and store here instead of a temporary folder")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(a.keep or tmp)
        write_tasks(work / "tasks", a.examples)
        plain_s, _ = run(work / "store-plain", a.threads, [])
        tasks_s, record = run(work / "store-tasks", a.threads,
                              ["--tasks", ",".join(TASKS), "--task-root", str(work / "tasks")])
    values = {m["metric"]: m["value"] for m in record["metrics"] if m["stage"] == "post"}
    section = record["tasks"]
    print(f"SmolLM2-135M, wanda 50%, 8 calibration x 128 tokens, 4 evaluation windows; {len(TASKS)} tasks x "
          f"{a.examples} local examples (made up from KJV: accuracies meaningless), lm-eval "
          f"{section['harness_version']}, {section['num_fewshot']}-shot, batch {section['batch_size']}")
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, torch threads {a.threads}, other jobs not controlled")
    print(f"run without tasks: {plain_s:.1f} s; with tasks: {tasks_s:.1f} s; the harness's share: "
          f"{tasks_s - plain_s:.1f} s ({(tasks_s - plain_s) / (len(TASKS) * a.examples):.2f} s per example)")
    print(f"zeroshot_mean {values['zeroshot_mean']:.2f}% over " + ", ".join(
        f"{n} {m}" for n, m in section["mean_takes"].items()))
    for name, one in section["post"].items():
        extra = f", acc_norm {100 * one['acc_norm']:.1f}" if "acc_norm" in one else ""
        print(f"  {name:14s} v{one['version']} n={one['examples']}: acc {100 * one['acc']:.1f} "
              f"(stderr {100 * one['acc_stderr']:.1f}){extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
