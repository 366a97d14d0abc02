"""What a protocol preset applies by default (its zero-shot tasks and dtype), SparseGPT's tasks
(lambada_openai, storycloze_2016), a suite's dtype checked against this machine's device at
load, and `--download` (the hub's and `datasets`' functions replaced by fakes: nothing is
fetched).

The harness runs for real, offline, on task files written here in each task's hub fields; the
model is a tiny random LLaMA built here. lambada_openai and storycloze_2016 are checked against
our own computation of each continuation's log-likelihood (and greedy match), and the
perplexity's bootstrap stderr against the harness's published resampling rule."""
from __future__ import annotations

import json
import math
import random
import statistics
from pathlib import Path

import pytest
import torch
from llm_helpers import bpe_tokenizer, write_hub_texts

pytest.importorskip("transformers", reason="the LLM track needs transformers (pip install .[llm])")
pytest.importorskip("lm_eval", reason="zero-shot tasks need lm-eval==0.4.13 (pip install .[llm])")
pa = pytest.importorskip("pyarrow", reason="WikiText-2's parquet files need pyarrow (pip install .[llm])")

from shrinkbench.core.errors import ConfigError  # noqa: E402
from shrinkbench.llm.config import LLMRunConfig  # noqa: E402
from shrinkbench.llm.protocols import PROTOCOLS  # noqa: E402

WORDS = ("earth light water day night seed tree deep firmament heaven field good void dark great small "
         "the of was and again").split()
SENTENCES = [f"the {a} of the {b} was {c} and the {a} was {d} ." for a in ("earth", "light", "water", "night")
             for b in ("deep", "field", "sea") for c in ("good", "void", "dark") for d in ("great", "small")]
SPLITS = {"arc_easy": "test", "arc_challenge": "test", "openbookqa": "test", "lambada_openai": "test",
          "storycloze_2016": "test"}


def _phrase(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _rows(rng, n=6):
    """n examples of every task the presets name, in the fields of its hub dataset."""
    rows = {
        "boolq": [{"question": _phrase(rng, 4), "passage": _phrase(rng, 8), "idx": i, "label": i % 2} for i in range(n)],
        "rte": [{"sentence1": _phrase(rng, 7), "sentence2": _phrase(rng, 4), "label": i % 2, "idx": i}
                for i in range(n)],
        "hellaswag": [{"ind": i, "activity_label": _phrase(rng, 2), "ctx_a": _phrase(rng, 5), "ctx_b": _phrase(rng, 2),
                       "ctx": "", "endings": [_phrase(rng, rng.randint(1, 6)) for _ in range(4)], "source_id": "x",
                       "split": "val", "split_type": "indomain", "label": str(i % 4)} for i in range(n)],
        "winogrande": [{"sentence": f"the {rng.choice(WORDS)} saw the {rng.choice(WORDS)} because _ was "
                                    f"{rng.choice(WORDS)}.", "option1": rng.choice(WORDS),
                        "option2": rng.choice(WORDS), "answer": str(1 + i % 2)} for i in range(n)],
        "openbookqa": [{"id": f"o{i}", "question_stem": _phrase(rng, 5),
                        "choices": {"text": [_phrase(rng, rng.randint(1, 5)) for _ in range(4)],
                                    "label": ["A", "B", "C", "D"]}, "answerKey": "ABCD"[i % 4]} for i in range(n)],
        "piqa": [{"goal": _phrase(rng, 5), "sol1": _phrase(rng, rng.randint(1, 6)), "sol2": _phrase(rng, 3),
                  "label": i % 2} for i in range(n)],
        # EleutherAI/lambada_openai: one field, a passage whose last word is the target
        "lambada_openai": [{"text": _phrase(rng, rng.randint(6, 12))} for _ in range(2 * n)],
        # LSDSem/story_cloze 2016: four sentences, two candidate endings, the right one 1 or 2
        "storycloze_2016": [{"story_id": f"s{i}", **{f"input_sentence_{k}": _phrase(rng, 5) + "." for k in range(1, 5)},
                             "sentence_quiz1": _phrase(rng, rng.randint(2, 6)) + ".",
                             "sentence_quiz2": _phrase(rng, rng.randint(2, 6)) + ".",
                             "answer_right_ending": 1 + i % 2} for i in range(2 * n)],
    }
    for task in ("arc_easy", "arc_challenge"):
        rows[task] = [{"id": f"q{i}", "question": _phrase(rng, 5),
                       "choices": {"text": [_phrase(rng, rng.randint(1, 5)) for _ in range(4)],
                                   "label": ["A", "B", "C", "D"]}, "answerKey": "ABCD"[i % 4]} for i in range(n)]
    return rows






def _write_tasks(folder: Path, rows: dict) -> Path:
    for task, docs in rows.items():
        (folder / task).mkdir(parents=True, exist_ok=True)
        (folder / task / f"{SPLITS.get(task, 'validation')}.jsonl").write_text("".join(json.dumps(d) + "\n"
                                                                                        for d in docs))
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(root with model/, data/ (WikiText-2 parquet, C4 shards), tasks/, text.txt; the task rows)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("preset_defaults")
    tokenizer = bpe_tokenizer(SENTENCES + [" ".join(WORDS)], 300)
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2,
                                 max_position_embeddings=64)).save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    data = root / "data"
    write_hub_texts(data, SENTENCES)
    (root / "text.txt").write_text("\n".join(SENTENCES), encoding="utf-8")
    rows = _rows(random.Random(0))
    _write_tasks(root / "tasks", rows)
    return root, rows


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Our cache, and empty `datasets` and hub caches: task data is only where a test puts it."""
    import datasets.config
    import huggingface_hub.constants

    from shrinkbench.llm import runner, tasks

    monkeypatch.setenv("SHRINKBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_hub"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_datasets")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf_hub"))
    tasks.check_tasks.cache_clear()
    runner._text.cache_clear()
    yield
    tasks.check_tasks.cache_clear()
    runner._text.cache_clear()


def _main(capsys, *argv) -> tuple[int, str, str]:
    from shrinkbench.cli import main

    threads = torch.get_num_threads()
    try:
        code = main(list(argv))
    finally:
        torch.set_num_threads(threads)
    out, err = capsys.readouterr()
    return code, out, err


def _refused(capsys, store: Path, *argv) -> str:
    code, _, err = _main(capsys, *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert not store.exists() or not any(store.rglob("*.json")), "a refused run wrote something"
    return err.strip()


def _preset_args(root: Path, store: Path, *extra) -> list[str]:
    return ["prune-llm", "--model", str(root / "model"), "--protocol", "wanda", "--strategy", "wanda",
            "--text-root", str(root / "data"), "--seq-len", "16", "--calib-sequences", "4", "--store", str(store),
            "--threads", "1", *extra]


# ------------------------------------------------------------------ 1. the preset decides tasks and dtype
def test_every_preset_resolves_its_own_tasks_metrics_and_dtype():
    for name in PROTOCOLS.names():
        preset, cfg = PROTOCOLS.get(name), LLMRunConfig(protocol=name)
        assert cfg.dtype == preset.dtype
        assert cfg.tasks == tuple(f"{t}:{preset.task_metrics[t]}" for t in preset.tasks)
    assert LLMRunConfig(protocol="offline").tasks == () and LLMRunConfig().dtype == "float32"
    # opting out: an empty list (a suite's `tasks = []`) or "none" (as --tasks and the label write it)
    for none in ([], "none"):
        opted = LLMRunConfig.from_dict({"protocol": "wanda", "tasks": none, "seq_len": 64})
        assert opted.tasks == () and opted.protocol_deviations(64) == {"tasks": "none"}


def test_the_wanda_preset_evaluates_its_seven_tasks_in_float16_by_default(world, tmp_path, capsys):
    from shrinkbench.core.store import Store

    root, rows = world
    store = tmp_path / "s"
    code, out, err = _main(capsys, *_preset_args(root, store, "--task-root", str(root / "tasks")))
    assert code == 0, err
    [record] = Store(store).records()
    assert record["status"] == "ok"
    assert record["config"]["dtype"] == "float16" and record["provenance"]["precision"] == "float16"
    wanda = PROTOCOLS.get("wanda")
    assert record["config"]["tasks"] == [f"{t}:acc" for t in wanda.tasks]
    assert set(record["tasks"]["post"]) == set(wanda.tasks)
    assert all(record["tasks"]["post"][t]["examples"] == len(rows[t]) for t in wanda.tasks)
    assert record["tasks"]["mean_takes"] == {t: "acc" for t in wanda.tasks}
    # what the run changed is what it set, not the tasks or the dtype: those are the preset's
    assert record["protocol"]["deviations"] == {"seq_len": 16, "calib_sequences": 4}
    assert "wanda@v1 modified: calib_sequences=4, seq_len=16" in out and "zero-shot" in out
    values = {(m["stage"], m["metric"]): m["value"] for m in record["metrics"]}
    assert values[("post", "zeroshot_mean")] == pytest.approx(
        sum(100 * record["tasks"]["post"][t]["acc"] for t in wanda.tasks) / 7)


def test_absent_preset_task_data_is_one_line_naming_every_task_and_the_ways_out(world, tmp_path, capsys):
    root, _ = world
    store = tmp_path / "s"
    err = _refused(capsys, store, *_preset_args(root, store))
    for task in PROTOCOLS.get("wanda").tasks:
        assert task in err
    assert "--task-root FOLDER" in err and "--download" in err and "--tasks none" in err
    # the way out: no tasks, recorded as a change of the preset
    code, out, err = _main(capsys, *_preset_args(root, store, "--tasks", "none"))
    assert code == 0, err
    assert "tasks=none" in out and "dtype=" not in out


def _no_half(monkeypatch):
    real = torch.nn.functional.linear

    def linear(x, w, b=None):  # a CPU without float16 matrix products, as torch reports it there
        if x.dtype == torch.float16:
            raise RuntimeError('"addmm_impl_cpu_" not implemented for \'Half\'')
        return real(x, w, b)

    monkeypatch.setattr(torch.nn.functional, "linear", linear)


def test_a_preset_dtype_the_device_cannot_run_names_the_way_out(world, tmp_path, capsys, monkeypatch):
    root, _ = world
    store = tmp_path / "s"
    _no_half(monkeypatch)
    err = _refused(capsys, store, *_preset_args(root, store, "--tasks", "none", "--device", "cpu"))
    assert "dtype float16 (the wanda preset's): this cpu cannot compute in it" in err
    assert "--dtype float32" in err and "wanda modified: dtype=float32" in err
    code, out, err = _main(capsys, *_preset_args(root, store, "--tasks", "none", "--dtype", "float32"))
    assert code == 0, err
    assert "dtype=float32" in out and "tasks=none" in out


# ------------------------------------------------------------------ 2. SparseGPT's tasks
def _model(root):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return (AutoModelForCausalLM.from_pretrained(root / "model", dtype=torch.float32).eval(),
            AutoTokenizer.from_pretrained(root / "model"))


def _continuation(model, tok, context: str, continuation: str) -> tuple[float, bool]:
    """(sum_t log p(cont_t | context, cont_<t), whether every cont_t is the argmax), the
    continuation's tokens being those of context + continuation after the context's."""
    whole = tok(context + continuation)["input_ids"]
    start = len(tok(context)["input_ids"])
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].double(), -1)
    ll = float(sum(logp[t - 1, whole[t]] for t in range(start, len(whole))))
    greedy = all(int(logp[t - 1].argmax()) == whole[t] for t in range(start, len(whole)))
    return ll, greedy


def test_lambada_and_storycloze_through_the_harness_agree_with_an_independent_computation(world):
    from shrinkbench.llm.tasks import evaluate

    root, rows = world
    model, tok = _model(root)
    got = evaluate(model, tok, ("lambada_openai", "storycloze_2016"), str(root / "tasks"), False)
    # lambada_openai: the last word after the rest of the passage
    scored = [_continuation(model, tok, " ".join(d["text"].split(" ")[:-1]), " " + d["text"].split(" ")[-1])
              for d in rows["lambada_openai"]]
    lls = [ll for ll, _ in scored]
    one = got["lambada_openai"]
    assert one["examples"] == len(rows["lambada_openai"]) and one["split"] == "test"
    assert one["acc"] == pytest.approx(sum(g for _, g in scored) / len(scored), abs=1e-12)
    assert one["perplexity"] == pytest.approx(math.exp(-sum(lls) / len(lls)), rel=1e-6)
    # its stderr: the harness's bootstrap, chunk i of 1,000 resamples drawn by random.Random(i)
    boot = []
    for i in range(100_000 // 1000):
        rnd = random.Random(i)
        boot += [math.exp(-statistics.fmean(rnd.choices(lls, k=len(lls)))) for _ in range(1000)]
    assert one["perplexity_stderr"] == pytest.approx(statistics.stdev(boot), rel=1e-4)
    # storycloze_2016: the right one of two endings after the four sentences
    hits = 0
    for d in rows["storycloze_2016"]:
        context = " ".join(d[f"input_sentence_{k}"] for k in range(1, 5))
        lls2 = [_continuation(model, tok, context, " " + d[f"sentence_quiz{j}"])[0] for j in (1, 2)]
        hits += (lls2.index(max(lls2)) + 1) == d["answer_right_ending"]
    n = len(rows["storycloze_2016"])
    assert got["storycloze_2016"]["acc"] == pytest.approx(hits / n, abs=1e-12)
    assert got["storycloze_2016"]["acc_stderr"] == pytest.approx(math.sqrt((hits / n) * (1 - hits / n) / (n - 1)))
    assert "acc_norm" not in got["storycloze_2016"]


def test_the_new_tasks_metrics_rows_and_registration():
    from shrinkbench.analysis.schema import HIGHER_IS_BETTER, UNITS
    from shrinkbench.core.metrics.registry import METRICS
    from shrinkbench.llm.tasks import task_metrics

    import shrinkbench.llm.metrics  # noqa: F401

    ppl = METRICS.get("lambada_openai_perplexity")
    assert ppl.higher_is_better is False and ppl.unit == "ppl" and "exp(-(1/n)" in ppl.definition
    for name in ("lambada_openai_acc", "storycloze_2016_acc"):
        assert METRICS.get(name).unit == "%" and METRICS.get(name).higher_is_better is True
        assert UNITS[name] == "%" and HIGHER_IS_BETTER[name] is True
    assert UNITS["lambada_openai_perplexity"] == "ppl" and HIGHER_IS_BETTER["lambada_openai_perplexity"] is False
    results = {"lambada_openai": {"acc": 0.25, "perplexity": 40.0}, "storycloze_2016": {"acc": 0.75}}
    rows = {r["metric"]: r["value"] for r in task_metrics("post", results, ("lambada_openai:acc",
                                                                              "storycloze_2016:acc"))}
    assert rows == {"lambada_openai_acc": 25.0, "lambada_openai_perplexity": 40.0, "storycloze_2016_acc": 75.0,
                    "zeroshot_mean": 50.0}  # the perplexity is a row of its own, never in the mean
    with pytest.raises(ConfigError, match="lambada_openai:perplexity is not an accuracy"):
        LLMRunConfig(tasks=("lambada_openai:perplexity",))


def test_storycloze_without_a_task_folder_is_refused_saying_where_its_data_comes_from(world, tmp_path, capsys):
    root, _ = world
    store = tmp_path / "s"
    for extra in ([], ["--download"]):  # the hub does not have it either
        err = _refused(capsys, store, "prune-llm", "--model", str(root / "model"), "--text",
                       f"file:{root / 'text.txt'}", "--seq-len", "16", "--eval-windows", "2", "--tasks",
                       "storycloze_2016", "--store", str(store), *extra)
        assert "storycloze_2016 reads only a local folder" in err and "--task-root FOLDER" in err
        assert "storycloze_2016/test.jsonl" in err and "on request" in err


# ------------------------------------------------------------------ 3. a suite's dtype and device at load
def _suite(path: Path, root: Path, run: str) -> Path:
    path.write_text(f'''name = "tiny"
track = "llm"
[sweep]
models = ["{root / 'model'}"]
datasets = ["file:{root / 'text.txt'}"]
strategies = ["magnitude"]
sparsities = [0.5]
seeds = [0]
[run]
seq_len = 16
eval_windows = 2
throughput_repeats = 1
{run}
''')
    return path


@pytest.mark.parametrize("dry", [False, True])
def test_a_suite_dtype_or_device_this_machine_cannot_run_is_refused_at_load(world, tmp_path, capsys, monkeypatch,
                                                                            dry):
    root, _ = world
    store = tmp_path / "store"
    dry_run = ["--dry-run"] if dry else []
    suite = _suite(tmp_path / "s.toml", root, 'dtype = "float16"')
    _no_half(monkeypatch)
    err = _refused(capsys, store, "run", str(suite), "--store", str(store), "--device", "cpu", *dry_run)
    assert "dtype float16: this cpu cannot compute in it" in err and 'dtype = "float32" in [run]' in err
    assert not store.exists()
    if not dry:  # the Python API checks the same before its sweep
        import shrinkbench

        with pytest.raises(ConfigError, match="dtype float16: this cpu cannot compute in it"):
            shrinkbench.run_suite(str(suite), store=str(store), progress=False)
        assert not store.exists()
    if not torch.cuda.is_available():  # a device this machine lacks: refused at load too, not run by run
        suite = _suite(tmp_path / "p.toml", root, "")
        err = _refused(capsys, store, "run", str(suite), "--store", str(store), "--device", "cuda", *dry_run)
        assert "device cuda asked for" in err and not store.exists()


def test_a_suite_whose_dtype_runs_here_is_planned_as_before(world, tmp_path, capsys):
    root, _ = world
    suite = _suite(tmp_path / "s.toml", root, 'dtype = "bfloat16"')
    code, out, err = _main(capsys, "run", str(suite), "--store", str(tmp_path / "store"), "--device", "cpu",
                           "--dry-run")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 2  # the dense run and magnitude


# ------------------------------------------------------------------ 4. --download, with fakes for the hub
def test_download_takes_the_download_path_for_texts_and_tasks_and_the_record_says_so(world, tmp_path, capsys,
                                                                                   monkeypatch):
    """With --download, WikiText-2 and C4 come through `huggingface_hub.hf_hub_download` and the
    tasks through `datasets.load_dataset` (both fakes serving the files written here, counting
    their calls); the record names the downloaded files and the tasks' source `hub`."""
    import datasets
    import huggingface_hub

    root, rows = world
    fetched: list[str] = []

    def fake_hf_hub_download(repo_id, filename, repo_type=None, **_):
        assert repo_type == "dataset" and repo_id in ("Salesforce/wikitext", "allenai/c4")
        fetched.append(filename)
        local = tmp_path / "hf_hub" / "fake" / filename
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes((root / "data" / filename).read_bytes())
        return str(local)

    loaded: list[str] = []
    real_load = datasets.load_dataset
    hub_to_task = {"aps/super_glue": "boolq", "nyu-mll/glue": "rte", "Rowan/hellaswag": "hellaswag",
                   "allenai/winogrande": "winogrande", "allenai/openbookqa": "openbookqa"}

    def fake_load_dataset(path=None, name=None, **kwargs):
        if path == "json":  # a task folder: the real reader
            return real_load(path=path, name=name, **kwargs)
        task = hub_to_task.get(path) or {"ARC-Easy": "arc_easy", "ARC-Challenge": "arc_challenge"}[name]
        loaded.append(task)
        one = datasets.Dataset.from_list(rows[task])
        return datasets.DatasetDict({"train": one, "validation": one, "test": one})

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_hf_hub_download)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    store = tmp_path / "s"
    argv = ["prune-llm", "--model", str(root / "model"), "--protocol", "wanda", "--strategy", "wanda", "--seq-len",
            "16", "--calib-sequences", "4", "--store", str(store), "--threads", "1"]
    # without --download: WikiText-2 is absent, one line, nothing fetched
    err = _refused(capsys, store, *argv)
    assert "pass --download" in err and not fetched and not loaded
    code, out, err = _main(capsys, *argv, "--download")
    assert code == 0, err
    assert sorted(set(fetched)) == sorted(["wikitext-2-raw-v1/train-00000-of-00001.parquet",
                                           "wikitext-2-raw-v1/test-00000-of-00001.parquet",
                                           "en/c4-train.00000-of-01024.json.gz",
                                           "en/c4-validation.00000-of-00008.json.gz"])
    assert set(loaded) == set(PROTOCOLS.get("wanda").tasks)
    from shrinkbench.core.store import Store

    [record] = Store(store).records()
    assert record["config"]["download"] is True and record["tasks"]["source"] == "hub"
    assert record["text"]["files"]["test"]["file"].startswith(str(tmp_path / "hf_hub"))
    assert record["text"]["calibration_text"]["files"]["train"]["file"].endswith("c4-train.00000-of-01024.json.gz")
    # the same examples from the hub and from a folder: the same run id (download is a location)
    tasks_dl = record["config"]["tasks_sha256"]
    from shrinkbench.llm.tasks import check_tasks

    assert tasks_dl == check_tasks(tuple(record["config"]["tasks"]), str(root / "tasks"), False)


def test_download_with_nothing_to_download_is_refused(world, tmp_path, capsys):
    root, _ = world
    store = tmp_path / "s"
    err = _refused(capsys, store, "prune-llm", "--model", str(root / "model"), "--text", f"file:{root / 'text.txt'}",
                   "--seq-len", "16", "--eval-windows", "2", "--store", str(store), "--download")
    assert "leave it out" in err
    # with task files from a folder too, nothing comes from the hub
    err = _refused(capsys, store, "prune-llm", "--model", str(root / "model"), "--text", f"file:{root / 'text.txt'}",
                   "--seq-len", "16", "--eval-windows", "2", "--store", str(store), "--download", "--tasks", "boolq",
                   "--task-root", str(root / "tasks"))
    assert "leave it out" in err


def test_download_fetches_a_hub_model_once_and_identifies_it_by_its_files(world, tmp_path, capsys, monkeypatch):
    """`huggingface_hub.snapshot_download` replaced by a fake hub holding the tiny model: with
    --download the model is fetched into the hub cache once (the second run finds the snapshot
    without the network), read from there, and its sha256 is that of its files."""
    import shutil

    import huggingface_hub

    from shrinkbench.core.store import Store
    from shrinkbench.llm.models import ModelSource, model_sha256

    root, _ = world
    snapshot = tmp_path / "hf_hub" / "models--fake-org--tiny-llama" / "snapshots" / "0123abc"
    calls: list[bool] = []

    def fake_snapshot_download(repo_id, local_files_only=False, **_):
        assert repo_id == "fake-org/tiny-llama"
        calls.append(local_files_only)
        if not snapshot.is_dir():
            if local_files_only:
                raise huggingface_hub.errors.LocalEntryNotFoundError("not in the cache")
            shutil.copytree(root / "model", snapshot)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    store = tmp_path / "s"
    argv = ["prune-llm", "--model", "fake-org/tiny-llama", "--text", f"file:{root / 'text.txt'}", "--seq-len", "16",
            "--eval-windows", "2", "--store", str(store), "--threads", "1"]
    err = _refused(capsys, store, *argv)
    assert "needs --download" in err and not calls
    code, out, err = _main(capsys, *argv, "--download")
    assert code == 0, err
    assert calls[:2] == [True, False]  # the cache first, then the download
    [record] = Store(store).records()
    assert record["base"]["kind"] == "hub" and record["base"]["downloaded_to"] == str(snapshot)
    assert record["config"]["download"] is True
    assert record["config"]["model_sha256"] == model_sha256(ModelSource("x", "folder", str(root / "model")))
    calls.clear()
    code, out, err = _main(capsys, *argv, "--download", "--strategy", "wanda")
    assert code == 0, err
    assert calls and all(calls), "a cached snapshot must not be downloaded again"


def test_download_acts_when_only_the_calibration_text_comes_from_the_hub(world, tmp_path, capsys, monkeypatch):
    """A local evaluation text calibrated on C4: --download is not refused, it fetches C4."""
    import huggingface_hub

    root, _ = world
    fetched: list[str] = []

    def fake_hf_hub_download(repo_id, filename, repo_type=None, **_):
        fetched.append(filename)
        local = tmp_path / "hf_hub" / "fake" / filename
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes((root / "data" / filename).read_bytes())
        return str(local)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_hf_hub_download)
    code, out, err = _main(capsys, "prune-llm", "--model", str(root / "model"), "--text", f"file:{root / 'text.txt'}",
                           "--calib-text", "c4", "--strategy", "wanda", "--seq-len", "16", "--eval-windows", "2",
                           "--calib-sequences", "2", "--store", str(tmp_path / "s"), "--threads", "1", "--download")
    assert code == 0, err
    assert "en/c4-train.00000-of-01024.json.gz" in fetched
