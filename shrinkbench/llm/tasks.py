"""Zero-shot task accuracy through lm-evaluation-harness, on the pruned model in memory.

The harness (`lm-eval`, pinned to 0.4.13 in the `llm` extra; the version is recorded) scores
every task as a multiple choice: for each example and each choice c the log-likelihood
ll_c = sum_t log p(c_t | prompt, c_<t) of the choice's tokens after the task's prompt, then

- `acc`      = mean over examples of [argmax_c ll_c == gold],
- `acc_norm` = mean over examples of [argmax_c ll_c / len(c) == gold], len in characters
  (the harness's length normalisation; HellaSwag's numbers differ by 15 points between the two:
  68.48 with acc_norm, 53.19 with acc for LLaMA-7B),
- `stderr`   = sqrt(acc (1 - acc) / (n - 1)), the sample standard error the harness reports.

The model is handed to the harness as an object (`lm_eval.models.huggingface.HFLM(pretrained=
model)`): nothing is saved and reloaded, so what is evaluated is exactly the pruned model.
0-shot only, batch size `EVAL_BATCH` (fixed, so the numbers do not depend on a setting).

Tasks (`TASKS`): the seven of the Wanda line (Sun et al. 2023, "A Simple and Effective Pruning
Approach for LLMs", Table 2: boolq, rte, hellaswag, winogrande, arc_easy, arc_challenge,
openbookqa), LLM-Pruner's set (Ma et al. 2023: piqa in place of rte) and SparseGPT's (Frantar &
Alistarh 2023, Table 4: Lambada, PIQA, ARC-Easy, ARC-Challenge, StoryCloze: lambada_openai,
piqa, arc_easy, arc_challenge, storycloze_2016), each with the harness's own task definition
(prompt, choices, split, `version`).

- `lambada_openai` is scored as a continuation, not a choice: ll_i = log p(w_i | passage_i) of
  example i's last word w_i (its tokens after the rest of the passage), `acc` = mean_i
  [every token of w_i is the model's greedy argmax], `perplexity` = exp(-(1/n) sum_i ll_i) (the
  harness's aggregation; lower is better, recorded as `lambada_openai_perplexity`, never in the
  mean), its stderr the harness's bootstrap (`BOOTSTRAP_ITERS` resamples, in this process).
- `storycloze_2016` (the 2016 Story Cloze Test, `test` split: the four sentences, then
  `sentence_quiz1` or `sentence_quiz2`, gold `answer_right_ending` 1 or 2) is not downloadable:
  its authors hand the files out on request, so it reads only a `task_root` folder and is refused
  in one line without one. A run names its tasks as
`task:metric` (`hellaswag:acc_norm`); a bare name takes `acc`, the metric every task has, and is
written out in the config, so a record always says which metric its mean takes per task.
Recorded per task: `<task>_acc` and, where the task has it, `<task>_acc_norm` (percent, the
registered metrics); in the record's `tasks` section the harness's raw values, stderr, number of
examples, the task's version and the split. `zeroshot_mean` = the mean over the run's tasks of
the metric each names.

Where the data comes from (each task's `split`, in the rows of its hub dataset):

- the user's `datasets` cache (default; read offline: nothing is downloaded without
  `download=True`, `--download`, which fetches what is missing from the hub);
- a local folder (`task_root`): `<task_root>/<task>/<split>.jsonl`, one JSON object per line in
  the hub dataset's own fields (boolq: question, passage, label; arc: question, choices
  {text, label}, answerKey; ...). The harness's task definition is used with its data source
  swapped for these files (a local task definition: `dataset_path: json`, `data_files`).

`tasks_sha256` (part of the run's identity) is the sha256 of every task's evaluated examples as
canonical JSON, so the same examples give the same run id from the cache or from a folder.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from shrinkbench.core.errors import ConfigError
from shrinkbench.core.registry import Registry

HARNESS = "lm-eval"
HARNESS_VERSION = "0.4.13"
"""The version pyproject pins (the `llm` extra); the record states the one that ran."""
EVAL_BATCH = 8
NUM_FEWSHOT = 0
BOOTSTRAP_ITERS = 100_000
"""Resamples of the harness's bootstrap stderr of a perplexity (lambada_openai; its default, so
the stderr is the one its users report); accuracies' stderr is closed-form."""
METRICS = ("acc", "acc_norm")


@dataclass(frozen=True)
class ZeroShotTask:
    """A task as the harness defines it: its name there, the split it evaluates, the accuracies
    it reports (a run's mean takes one of them), the hub dataset it reads; `extra`: metrics it
    also reports that are not accuracies (recorded, never in the mean: lambada_openai's
    perplexity); `local_only`: its data is not on the hub, only a `task_root` folder holds it."""

    name: str
    split: str
    metrics: tuple[str, ...]
    hub: str
    extra: tuple[str, ...] = ()
    local_only: str | None = None
    """Why the task reads only a local folder (where its data comes from), or None."""

    @property
    def reported(self) -> tuple[str, ...]:
        return self.metrics + self.extra


STORYCLOZE_SOURCE = ("the Story Cloze Test's authors hand its files out on request (cs.rochester.edu/nlp/rocstories), "
                     "and the harness's hub dataset LSDSem/story_cloze needs them as a manual download")
TASKS: Registry[ZeroShotTask] = Registry("zero-shot task")
for _task in (ZeroShotTask("boolq", "validation", ("acc",), "aps/super_glue boolq"),
              ZeroShotTask("rte", "validation", ("acc",), "nyu-mll/glue rte"),
              ZeroShotTask("hellaswag", "validation", METRICS, "Rowan/hellaswag"),
              ZeroShotTask("winogrande", "validation", ("acc",), "allenai/winogrande winogrande_xl"),
              ZeroShotTask("arc_easy", "test", METRICS, "allenai/ai2_arc ARC-Easy"),
              ZeroShotTask("arc_challenge", "test", METRICS, "allenai/ai2_arc ARC-Challenge"),
              ZeroShotTask("openbookqa", "test", METRICS, "allenai/openbookqa main"),
              ZeroShotTask("piqa", "validation", METRICS, "baber/piqa"),
              ZeroShotTask("lambada_openai", "test", ("acc",), "EleutherAI/lambada_openai default",
                           extra=("perplexity",)),
              ZeroShotTask("storycloze_2016", "test", ("acc",), "LSDSem/story_cloze 2016 (manual download)",
                           local_only=STORYCLOZE_SOURCE)):
    TASKS.register(_task.name, _task)

WANDA_TASKS = ("boolq", "rte", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa")
LLM_PRUNER_TASKS = ("boolq", "piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa")


def metric_name(task: str, metric: str) -> str:
    """The registered metric of `metric` (acc, acc_norm) on `task`: `hellaswag_acc_norm`."""
    return f"{task}_{metric}"


def parse_tasks(entries) -> tuple[str, ...]:
    """`task` or `task:metric` entries -> `task:metric` (a bare name takes acc); one-line
    ConfigErrors for an unknown task, a metric the task does not report, a task named twice."""
    if isinstance(entries, str):
        if entries.strip().lower() == "none":  # as --tasks none and a label's `tasks=none` write it
            return ()
        entries = tuple(e for e in entries.split(",") if e.strip())
    out, seen = [], set()
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip():
            raise ConfigError(f"tasks: each entry is a task name or task:metric, got {entry!r}")
        name, _, chosen = entry.strip().partition(":")
        if name not in TASKS:
            raise ConfigError(f"tasks: {TASKS.unknown_message(name)}")
        task = TASKS.get(name)
        chosen = chosen or "acc"
        if chosen in task.extra:
            raise ConfigError(f"tasks: {name}:{chosen} is not an accuracy, and the mean over tasks takes one per task; "
                              f"write {name}:acc ({name}'s {chosen} is recorded with it)")
        if chosen not in task.metrics:
            raise ConfigError(f"tasks: {name} reports {' and '.join(task.reported)}, not {chosen!r}; write "
                              f"{name}:{task.metrics[0]}" + (f" or {name}:{task.metrics[1]}" if len(task.metrics) > 1
                                                            else ""))
        if task.name in seen:
            raise ConfigError(f"tasks: {name} is named twice")
        seen.add(task.name)
        out.append(f"{task.name}:{chosen}")
    return tuple(out)


def split_entry(entry: str) -> tuple[str, str]:
    name, _, chosen = entry.partition(":")
    return name, chosen


# ------------------------------------------------------------------------ the harness
def harness():
    """The `lm_eval` module, or a one-line ConfigError saying how to install it."""
    try:
        import lm_eval
    except ImportError:
        raise ConfigError(f"zero-shot tasks run through lm-evaluation-harness: pip install {HARNESS}=="
                          f"{HARNESS_VERSION} (or .[llm])") from None
    import datasets

    for name in ("lm-eval", "lm_eval", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)  # their per-task notices are not this tool's output
    datasets.disable_progress_bars()
    return lm_eval


def harness_version() -> str:
    from shrinkbench.core.provenance import _version

    return _version(HARNESS)


@functools.lru_cache(maxsize=1)
def _manager():
    harness()
    from lm_eval.tasks import TaskManager

    return TaskManager()


def task_file(root: str | Path, name: str) -> Path:
    return Path(root) / name / f"{TASKS.get(name).split}.jsonl"


def task_config(name: str, root: str | None) -> dict[str, Any]:
    """The harness's definition of task `name` (its YAML, functions resolved); with `root`, its
    data source swapped for `<root>/<name>/<split>.jsonl` and every other split removed."""
    from lm_eval.tasks._yaml_loader import load_yaml

    entry = _manager().task_index[name]
    config = dict(load_yaml(entry.yaml_path, resolve_func=True))
    config.pop("tag", None)
    config.pop("group", None)
    if root is not None:
        split = TASKS.get(name).split
        config.update(dataset_path="json", dataset_name=None,
                      dataset_kwargs={"data_files": {split: str(task_file(root, name).resolve())}},
                      training_split=None, validation_split=None, test_split=None, fewshot_split=None)
        config["test_split" if split == "test" else "validation_split"] = split
    return config


@contextlib.contextmanager
def offline(enabled: bool) -> Iterator[None]:
    """While `enabled`, `datasets` and the hub client read only their caches."""
    if not enabled:
        yield
        return
    import datasets.config
    import huggingface_hub.constants as hub

    before = datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE = before


def check_task_root(names, root: str) -> None:
    folder = Path(root)
    if not folder.is_dir():
        raise ConfigError(f"task folder {root!r} is not a folder (it holds <task>/<split>.jsonl files)")
    missing = [str(task_file(folder, n).relative_to(folder)) for n in names if not task_file(folder, n).is_file()]
    if missing:
        raise ConfigError(f"task folder {root} lacks {', '.join(missing)}: each task needs its evaluated split as "
                          f"<task>/<split>.jsonl in the hub dataset's fields (docs/llm.md)")
    for name in names:
        path = task_file(folder, name)
        with path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    ok = not line.strip() or isinstance(json.loads(line), dict)
                except json.JSONDecodeError:
                    ok = False
                if not ok:
                    raise ConfigError(f"task {name}: line {number} of {path} is not a JSON object (each line holds "
                                      f"one example in the hub dataset's fields)")


def load_tasks(entries: tuple[str, ...], root: str | None, download: bool) -> dict[str, Any]:
    """{task name: the harness's Task with its data loaded}; a one-line ConfigError where data is
    missing (absent from the cache without `download`, a folder without its files, unreadable)."""
    harness()
    from lm_eval.api.task import ConfigurableTask

    names = [split_entry(e)[0] for e in entries]
    if root is not None:
        check_task_root(names, root)
    else:
        local = [n for n in names if TASKS.get(n).local_only]
        if local:
            raise ConfigError(f"task {', '.join(local)} reads only a local folder ({TASKS.get(local[0]).local_only}): "
                              f"give --task-root FOLDER with {local[0]}/{TASKS.get(local[0]).split}.jsonl in the hub "
                              f"dataset's fields, or leave the task out (--tasks; a suite: task_root, tasks in [run])")
    built, missing = {}, {}
    for name in names:
        try:
            with offline(not download):
                built[name] = ConfigurableTask(config=task_config(name, root))
            docs = built[name].eval_docs
            if len(docs) == 0:
                raise ValueError("no examples")
        except (KeyboardInterrupt, ConfigError):
            raise
        except Exception as exc:
            detail = " ".join(str(exc).split())[:160]
            if root is not None:
                raise ConfigError(f"task {name}: {task_file(root, name)} cannot be read as the task's examples "
                                  f"({type(exc).__name__}: {detail})") from None
            if download:
                raise ConfigError(f"task {name}: its data ({TASKS.get(name).hub}, split {TASKS.get(name).split}) could "
                                  f"not be downloaded ({type(exc).__name__}: {detail})") from None
            missing[name] = TASKS.get(name).hub
    if missing:
        raise ConfigError(f"zero-shot task data not in the datasets cache: {', '.join(missing)} "
                          f"({'; '.join(missing.values())}); give their files with --task-root FOLDER, fetch them "
                          f"with --download, or run without tasks: --tasks none (a suite's [run]: task_root, "
                          f"download = true, tasks = []; a preset's tasks left out are a recorded change)")
    return built


def docs_sha256(tasks: dict[str, Any]) -> str:
    """sha256 over each task's name and its evaluated examples as canonical JSON, in order."""
    h = hashlib.sha256()
    for name in sorted(tasks):
        h.update(name.encode() + b"\0")
        for doc in tasks[name].eval_docs:
            h.update(json.dumps(doc, sort_keys=True, default=str, ensure_ascii=False).encode() + b"\n")
    return h.hexdigest()


@functools.lru_cache(maxsize=8)
def check_tasks(entries: tuple[str, ...], root: str | None, download: bool) -> str:
    """Before any run: every task's data is there; the sha256 of what will be evaluated."""
    return docs_sha256(load_tasks(entries, root, download))


# ------------------------------------------------------------------------ evaluating
def evaluate(model, tokenizer, entries: tuple[str, ...], root: str | None, download: bool,
             planned_sha256: str | None = None) -> dict[str, Any]:
    """Run the harness 0-shot on `model` as it is in memory; {task: {version, split, examples,
    acc, acc_stderr[, acc_norm, acc_norm_stderr]}} with the harness's raw fractions. With
    `planned_sha256`, examples that changed since the run was planned are a ConfigError."""
    harness()
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    tasks = load_tasks(entries, root, download)
    if planned_sha256 is not None and docs_sha256(tasks) != planned_sha256:
        raise ConfigError(f"the examples of tasks {', '.join(tasks)} changed since this run was planned (sha256 "
                          f"{docs_sha256(tasks)[:12]}, planned with {planned_sha256[:12]}); start the sweep again")
    class QuietHFLM(HFLM):  # the harness's progress bars are not this tool's output
        def loglikelihood(self, requests, disable_tqdm: bool = False):
            return super().loglikelihood(requests, disable_tqdm=True)

    import copy

    # a copy: the harness sets padding on its tokenizer, and the run's is shared by the process
    # (`shrinkbench.llm.models.shared_tokenizer`)
    lm = QuietHFLM(pretrained=model, tokenizer=copy.deepcopy(tokenizer), batch_size=EVAL_BATCH)
    with offline(not download), _no_request_bars(), _bootstrap_in_process():
        out = simple_evaluate(model=lm, tasks=list(tasks.values()), task_manager=_manager(),  # indexed once
                              num_fewshot=NUM_FEWSHOT, random_seed=0, bootstrap_iters=BOOTSTRAP_ITERS,
                              numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0, log_samples=False,
                              verbosity=None)
    results = {}
    for name in tasks:
        got = out["results"][name]
        one = {"version": out["versions"][name], "split": TASKS.get(name).split,
               "examples": int(out["n-samples"][name]["effective"])}
        for m in TASKS.get(name).reported:
            one[m] = float(got[f"{m},none"])
            one[f"{m}_stderr"] = float(got[f"{m}_stderr,none"])
        results[name] = one
    return results


@contextlib.contextmanager
def _bootstrap_in_process() -> Iterator[None]:
    """The harness's bootstrap of a perplexity's stderr (lambada_openai) in this process, quietly:
    `DISABLE_MULTIPROC` makes it loop here instead of forking a pool from a process that holds the
    model (the same resamples: chunk i draws from `random.Random(i)` either way); its print and
    progress bar are not this tool's output."""
    import io
    import os

    before = {k: os.environ.get(k) for k in ("DISABLE_MULTIPROC", "TQDM_DISABLE")}
    os.environ.update(DISABLE_MULTIPROC="1", TQDM_DISABLE="1")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _no_request_bars() -> Iterator[None]:
    """Without the progress bar the harness draws while it builds each task's requests."""
    import lm_eval.api.task as harness_task
    from tqdm import tqdm

    before = harness_task.tqdm
    harness_task.tqdm = functools.partial(tqdm, disable=True)
    try:
        yield
    finally:
        harness_task.tqdm = before


def task_metrics(stage: str, results: dict[str, Any], entries: tuple[str, ...]) -> list[dict]:
    """The record's metric rows of one stage: every task's acc (and acc_norm) in percent, and
    `zeroshot_mean` over the metric each entry names."""
    from shrinkbench.core.metrics.registry import METRICS

    zeroshot_mean = METRICS.get("zeroshot_mean").fn  # registered by shrinkbench.llm.metrics (imports this module)

    rows = [{"stage": stage, "split": "test", "metric": metric_name(name, m), "value": 100.0 * one[m]}
            for name, one in results.items() for m in TASKS.get(name).metrics]
    rows += [{"stage": stage, "split": "test", "metric": metric_name(name, m), "value": one[m]}
             for name, one in results.items() for m in TASKS.get(name).extra]  # not percentages
    chosen = [100.0 * results[n][m] for n, m in map(split_entry, entries)]
    rows.append({"stage": stage, "split": "test", "metric": "zeroshot_mean", "value": zeroshot_mean(chosen)})
    return rows


def task_record(entries: tuple[str, ...], root: str | None, download: bool, sha256: str | None) -> dict[str, Any]:
    """What the record says of the tasks besides their numbers."""
    return {"harness": HARNESS, "harness_version": harness_version(), "num_fewshot": NUM_FEWSHOT,
            "batch_size": EVAL_BATCH, "bootstrap_iters": BOOTSTRAP_ITERS, "mean_takes": dict(map(split_entry, entries)),
            "source": "folder" if root is not None else ("hub" if download else "datasets cache"),
            "sha256": sha256}
