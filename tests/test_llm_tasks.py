"""Zero-shot task accuracy through lm-evaluation-harness (run for real, offline), dtype, and
calibration with one block at a time on the work device.

The harness reads task files written here in each task's own hub format (a local task
definition: the harness's YAML with `dataset_path: json` pointing at them); the model is a tiny
random LLaMA built here. The harness's accuracies are checked against an independent
computation: each choice's log-likelihood from our own forward pass, argmax, and argmax over
log-likelihood per character of the choice (acc_norm)."""
from __future__ import annotations

import json
import math
import random

import pytest
import torch
from llm_helpers import bpe_tokenizer

pytest.importorskip("transformers", reason="the LLM track needs transformers (pip install .[llm])")
pytest.importorskip("lm_eval", reason="zero-shot tasks need lm-eval==0.4.13 (pip install .[llm])")

from shrinkbench.core.errors import ConfigError  # noqa: E402
from shrinkbench.llm.config import LLMRunConfig  # noqa: E402

WORDS = ("earth light water day night seed tree deep firmament heaven field good void dark great small "
         "the of was and again").split()
LINES = [f"line {i}: the {w} of the {v} was {u} and {w} again." for i, (w, v, u) in enumerate(
    (w, v, u) for w in WORDS[:7] for v in WORDS[7:11] for u in WORDS[11:16])]


def _tokenizer(vocab: int):
    return bpe_tokenizer(LINES, vocab)


def _phrase(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _task_rows(rng, n=10):
    """n examples of every task, in the fields of its hub dataset."""
    rows = {}
    rows["boolq"] = [{"question": _phrase(rng, 4), "passage": _phrase(rng, 8), "idx": i, "label": i % 2}
                     for i in range(n)]
    rows["rte"] = [{"sentence1": _phrase(rng, 7), "sentence2": _phrase(rng, 4), "label": i % 2, "idx": i}
                   for i in range(n)]
    rows["hellaswag"] = [{"ind": i, "activity_label": _phrase(rng, 2), "ctx_a": _phrase(rng, 5), "ctx_b": _phrase(rng, 2),
                          "ctx": "", "endings": [_phrase(rng, rng.randint(1, 6)) for _ in range(4)],
                          "source_id": "x", "split": "val", "split_type": "indomain", "label": str(i % 4)}
                         for i in range(n)]
    rows["winogrande"] = [{"sentence": f"the {rng.choice(WORDS)} saw the {rng.choice(WORDS)} because _ was "
                                       f"{rng.choice(WORDS)}.", "option1": rng.choice(WORDS),
                           "option2": rng.choice(WORDS), "answer": str(1 + i % 2)} for i in range(n)]
    for task in ("arc_easy", "arc_challenge"):
        rows[task] = [{"id": f"q{i}", "question": _phrase(rng, 5),
                       "choices": {"text": [_phrase(rng, rng.randint(1, 5)) for _ in range(4)],
                                   "label": ["A", "B", "C", "D"]}, "answerKey": "ABCD"[i % 4]} for i in range(n)]
    rows["openbookqa"] = [{"id": f"o{i}", "question_stem": _phrase(rng, 5),
                           "choices": {"text": [_phrase(rng, rng.randint(1, 5)) for _ in range(4)],
                                       "label": ["A", "B", "C", "D"]}, "answerKey": "ABCD"[i % 4]} for i in range(n)]
    rows["piqa"] = [{"goal": _phrase(rng, 5), "sol1": _phrase(rng, rng.randint(1, 6)),
                     "sol2": _phrase(rng, rng.randint(1, 6)), "label": i % 2} for i in range(n)]
    return rows


SPLITS = {"arc_easy": "test", "arc_challenge": "test", "openbookqa": "test"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(root with model/ and tasks/, the task rows)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("llm_tasks")
    tokenizer = _tokenizer(300)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    LlamaForCausalLM(config).save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    (root / "text.txt").write_text("\n".join(LINES), encoding="utf-8")
    rows = _task_rows(random.Random(0))
    for task, docs in rows.items():
        (root / "tasks" / task).mkdir(parents=True)
        (root / "tasks" / task / f"{SPLITS.get(task, 'validation')}.jsonl").write_text(
            "".join(json.dumps(d) + "\n" for d in docs))
    return root, rows


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SHRINKBENCH_CACHE", str(tmp_path / "cache"))


def _model(root):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return (AutoModelForCausalLM.from_pretrained(root / "model", dtype=torch.float32).eval(),
            AutoTokenizer.from_pretrained(root / "model"))


# ------------------------------------------------------------------ an independent reference
def _loglikelihood(model, tok, context: str, continuation: str) -> float:
    """sum_t log p(cont_t | context, cont_<t), the continuation's tokens being those of
    context + continuation after the context's (the harness's convention, written out here)."""
    whole = tok(context + continuation)["input_ids"]
    start = len(tok(context)["input_ids"])
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].double(), -1)
    return float(sum(logp[t - 1, whole[t]] for t in range(start, len(whole))))


def _prompt_and_choices(task, doc):
    """Each task's prompt, choices and gold answer as the harness's task YAML defines them."""
    if task == "boolq":
        return f"{doc['passage']}\nQuestion: {doc['question']}?\nAnswer:", ["no", "yes"], doc["label"]
    if task == "piqa":
        return f"Question: {doc['goal']}\nAnswer:", [doc["sol1"], doc["sol2"]], doc["label"]
    if task in ("arc_easy", "arc_challenge"):
        return (f"Question: {doc['question']}\nAnswer:", doc["choices"]["text"],
                doc["choices"]["label"].index(doc["answerKey"]))
    if task == "openbookqa":
        return doc["question_stem"], doc["choices"]["text"], doc["choices"]["label"].index(doc["answerKey"])
    if task == "hellaswag":  # its process_docs; the phrases here hold no brackets for its clean-up to change
        ctx = doc["ctx_a"] + " " + doc["ctx_b"].capitalize()
        return f"{doc['activity_label']}: {ctx}", doc["endings"], int(doc["label"])
    raise AssertionError(task)


def _reference(model, tok, task, docs):
    acc = norm = 0
    for doc in docs:
        prompt, choices, gold = _prompt_and_choices(task, doc)
        lls = [_loglikelihood(model, tok, prompt, " " + c) for c in choices]
        acc += max(range(len(lls)), key=lambda j: lls[j]) == gold
        norm += max(range(len(lls)), key=lambda j: lls[j] / len(choices[j])) == gold
    return acc / len(docs), norm / len(docs)


def test_the_harness_on_the_model_in_memory_agrees_with_an_independent_computation(tiny):
    from shrinkbench.llm.tasks import evaluate

    root, rows = tiny
    model, tok = _model(root)
    tasks = ("boolq", "piqa:acc_norm", "arc_easy:acc_norm", "arc_challenge", "openbookqa:acc_norm",
             "hellaswag:acc_norm")
    got = evaluate(model, tok, tasks, str(root / "tasks"), False)
    differs = False
    for name in ("boolq", "piqa", "arc_easy", "arc_challenge", "openbookqa", "hellaswag"):
        acc, norm = _reference(model, tok, name, rows[name])
        n = len(rows[name])
        assert got[name]["examples"] == n
        assert got[name]["acc"] == pytest.approx(acc, abs=1e-12), name
        assert got[name]["acc_stderr"] == pytest.approx(math.sqrt(acc * (1 - acc) / (n - 1)), rel=1e-9), name
        if "acc_norm" in got[name]:
            assert got[name]["acc_norm"] == pytest.approx(norm, abs=1e-12), name
            differs |= norm != acc
        else:
            assert name == "boolq"
        assert got[name]["version"] == {"boolq": 2.0}.get(name, 1.0)
        assert got[name]["split"] == SPLITS.get(name, "validation")
    assert differs, "the test data must make acc and acc_norm differ somewhere, or acc_norm is not tested"


def test_a_run_records_every_task_and_the_mean_of_the_metrics_it_names(tiny, tmp_path, capfd):
    from shrinkbench.cli import main
    from shrinkbench.core.store import Store

    root, rows = tiny
    tasks = "boolq,rte,hellaswag:acc_norm,winogrande,arc_easy:acc_norm,arc_challenge:acc_norm,openbookqa:acc_norm,piqa"
    code = main(["prune-llm", "--model", str(root / "model"), "--text", f"file:{root / 'text.txt'}",
                 "--strategy", "wanda", "--seq-len", "16", "--calib-sequences", "4", "--eval-windows", "2",
                 "--tasks", tasks, "--task-root", str(root / "tasks"), "--store", str(tmp_path / "s"),
                 "--threads", "1"])
    assert code == 0
    out, err = capfd.readouterr()
    assert "zero-shot (lm-eval 0.4.13, 0-shot): mean" in out
    assert "it/s" not in err and "%|" not in err, err  # no progress bars of the harness or of datasets
    [record] = [r for r in Store(tmp_path / "s").records()]
    values = {(m["stage"], m["metric"]): m["value"] for m in record["metrics"]}
    section = record["tasks"]
    assert section["harness"] == "lm-eval" and section["harness_version"] == "0.4.13"
    assert section["num_fewshot"] == 0 and section["source"] == "folder"
    assert section["mean_takes"] == {"boolq": "acc", "rte": "acc", "hellaswag": "acc_norm", "winogrande": "acc",
                                     "arc_easy": "acc_norm", "arc_challenge": "acc_norm",
                                     "openbookqa": "acc_norm", "piqa": "acc"}
    for name, one in section["post"].items():
        assert one["examples"] == len(rows[name])
        assert values[("post", f"{name}_acc")] == pytest.approx(100 * one["acc"])
        assert ("acc_norm" in one) == (name in ("hellaswag", "arc_easy", "arc_challenge", "openbookqa", "piqa"))
    chosen = [100 * section["post"][n][m] for n, m in section["mean_takes"].items()]
    assert values[("post", "zeroshot_mean")] == pytest.approx(sum(chosen) / 8)
    assert "pre" not in section and not any(stage == "pre" for stage, _ in values)  # `pre` only before a fine-tune
    assert record["config"]["tasks"][2] == "hellaswag:acc_norm" and record["config"]["tasks"][0] == "boolq:acc"
    assert record["config"]["tasks_sha256"] and record["provenance"]["versions_llm"]["lm-eval"] == "0.4.13"


def test_the_task_metrics_are_registered_with_direction_unit_and_definition():
    from shrinkbench.core.metrics.registry import METRICS
    from shrinkbench.llm.tasks import TASKS

    for name in TASKS.names():
        for m in TASKS.get(name).metrics:
            info = METRICS.get(f"{name}_{m}")
            assert info.higher_is_better is True and info.unit == "%" and name in info.definition
    assert "acc_norm" in METRICS.get("zeroshot_mean").definition
    assert not any(f"{n}_acc_norm" in METRICS for n in ("boolq", "rte", "winogrande"))


def test_tasks_dtype_and_their_identity():
    plain = LLMRunConfig()
    assert "tasks" not in plain.identity() and "dtype" not in plain.identity() and "tasks_sha256" not in plain.identity()
    with_tasks = LLMRunConfig(tasks=("hellaswag", "piqa:acc_norm"))
    assert with_tasks.tasks == ("hellaswag:acc", "piqa:acc_norm")
    assert with_tasks.run_id != plain.run_id
    assert LLMRunConfig(tasks=("hellaswag:acc_norm",)).run_id != LLMRunConfig(tasks=("hellaswag:acc",)).run_id
    assert LLMRunConfig(dtype="bfloat16").identity()["dtype"] == "bfloat16"
    assert LLMRunConfig(dtype="bfloat16").run_id != plain.run_id
    assert LLMRunConfig.from_dict({"tasks": ["boolq"]}).tasks == ("boolq:acc",)


@pytest.mark.parametrize("tasks, says", [
    (("hellaswg",), "hellaswag"), (("boolq:acc_norm",), "boolq reports acc"), (("mmlu",), "zero-shot task"),
    (("boolq", "boolq:acc"), "named twice")])
def test_bad_task_names_are_refused_in_one_line(tasks, says):
    with pytest.raises(ConfigError, match=says):
        LLMRunConfig(tasks=tasks)
    with pytest.raises(ConfigError, match="dtype must be one of"):
        LLMRunConfig(dtype="int8")


def _refused(capsys, tmp_path, root, *extra):
    from shrinkbench.cli import main

    code = main(["prune-llm", "--model", str(root / "model"), "--text", f"file:{root / 'text.txt'}", "--seq-len", "16",
                 "--eval-windows", "2", "--store", str(tmp_path / "s"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert not (tmp_path / "s" / "runs").exists() or not any((tmp_path / "s" / "runs").iterdir())
    return err


def test_bad_task_input_is_one_line_exit_2_and_nothing_written(tiny, tmp_path, capsys, monkeypatch):
    root, _ = tiny
    empty = tmp_path / "empty_tasks"
    (empty / "boolq").mkdir(parents=True)
    assert "is not a folder" in _refused(capsys, tmp_path, root, "--tasks", "boolq", "--task-root",
                                         str(tmp_path / "nowhere"))
    err = _refused(capsys, tmp_path, root, "--tasks", "boolq", "--task-root", str(empty))
    assert "lacks boolq/validation.jsonl" in err
    (empty / "boolq" / "validation.jsonl").write_text("not json\n")
    assert "line 1 of" in _refused(capsys, tmp_path, root, "--tasks", "boolq", "--task-root", str(empty))
    (empty / "boolq" / "validation.jsonl").write_text('{"question": "no passage or label"}\n')
    assert "cannot be read as the task's examples" in _refused(capsys, tmp_path, root, "--tasks", "boolq",
                                                              "--task-root", str(empty))
    assert "hellaswag" in _refused(capsys, tmp_path, root, "--tasks", "hellaswg")
    assert "name the tasks too" in _refused(capsys, tmp_path, root, "--task-root", str(root / "tasks"))
    # no local folder, an empty datasets cache and no --download: refused, nothing fetched
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_hub"))
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_datasets")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf_hub"))
    from shrinkbench.llm import tasks as tasks_module

    tasks_module.check_tasks.cache_clear()
    err = _refused(capsys, tmp_path, root, "--tasks", "piqa")
    assert "piqa" in err and "--download" in err


def test_a_dtype_the_device_cannot_run_is_refused_before_the_run(tiny, tmp_path, capsys, monkeypatch):
    from shrinkbench.llm import placement

    placement.check_dtype("bfloat16", torch.device("cpu"))  # this CPU computes in bfloat16
    real = torch.nn.functional.linear

    def no_half(x, w, b=None):  # a CPU without float16 matrix products, as torch reports it there
        if x.dtype == torch.float16:
            raise RuntimeError('"addmm_impl_cpu_" not implemented for \'Half\'')
        return real(x, w, b)

    monkeypatch.setattr(torch.nn.functional, "linear", no_half)
    with pytest.raises(ConfigError, match="dtype float16: this cpu cannot compute in it"):
        placement.check_dtype("float16", torch.device("cpu"))
    root, _ = tiny
    assert "float16" in _refused(capsys, tmp_path, root, "--dtype", "float16")


def test_bfloat16_runs_on_the_cpu_and_is_recorded(tiny, tmp_path):
    from shrinkbench.cli import main
    from shrinkbench.core.store import Store

    root, _ = tiny
    code = main(["prune-llm", "--model", str(root / "model"), "--text", f"file:{root / 'text.txt'}", "--strategy",
                 "sparsegpt", "--pattern", "2:4", "--seq-len", "16", "--calib-sequences", "4", "--eval-windows", "2",
                 "--dtype", "bfloat16", "--store", str(tmp_path / "s"), "--threads", "1"])
    assert code == 0
    [record] = Store(tmp_path / "s").records()
    assert record["status"] == "ok" and record["provenance"]["precision"] == "bfloat16"
    assert record["config"]["dtype"] == "bfloat16"
    from shrinkbench.analysis.schema import record_identity

    assert record_identity(record)["compute"].endswith("bfloat16")  # the analysis's compute confounder names it
    values = {(m["stage"], m["metric"]): m["value"] for m in record["metrics"]}
    assert values[("post", "sparsity")] == pytest.approx(0.5) and math.isfinite(values[("post", "perplexity")])


# ------------------------------------------------------------------ one block on the work device
def test_block_by_block_with_a_work_device_moves_one_block_at_a_time_and_changes_nothing(tiny):
    from shrinkbench.llm.engine import decoder_blocks, prune_model
    from shrinkbench.llm.methods import SparseGPT

    root, _ = tiny
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, 200, (2, 16), generator=g) for _ in range(2)]
    plain, _ = _model(root)
    masks_plain = prune_model(plain, SparseGPT(), 0.5, None, "block", (), batches)
    moved, _ = _model(root)
    _, blocks = decoder_blocks(moved)
    calls = []
    for i, block in enumerate(blocks):
        original = block.to

        def spy(*args, _i=i, _original=original, **kwargs):
            calls.append(_i)
            return _original(*args, **kwargs)

        block.to = spy
    masks_moved = prune_model(moved, SparseGPT(), 0.5, None, "block", (), batches, work_device=torch.device("cpu"))
    assert calls == [0, 0, 1, 1]  # each block to the work device and back, in order, one at a time
    assert decoder_blocks(moved)[1] is blocks  # the blocks are put back after the capture
    for name in masks_plain:
        assert torch.equal(masks_plain[name], masks_moved[name])
    for (n1, p1), (n2, p2) in zip(plain.named_parameters(), moved.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2)


def test_task_files_changed_after_planning_are_refused(tiny, tmp_path):
    from shrinkbench.llm.tasks import check_tasks, evaluate

    root, rows = tiny
    folder = tmp_path / "tasks"
    (folder / "piqa").mkdir(parents=True)
    (folder / "piqa" / "validation.jsonl").write_text("".join(json.dumps(d) + "\n" for d in rows["piqa"]))
    planned = check_tasks(("piqa:acc",), str(folder), False)
    assert planned == check_tasks(("piqa:acc",), str(root / "tasks"), False)  # same examples, same sha256
    (folder / "piqa" / "validation.jsonl").write_text("".join(json.dumps(d) + "\n" for d in rows["piqa"][:-1]))
    model, tok = _model(root)
    with pytest.raises(ConfigError, match="changed since this run was planned"):
        evaluate(model, tok, ("piqa:acc",), str(folder), False, planned)


def test_the_device_map_puts_whole_blocks_on_the_gpu_as_far_as_they_fit():
    from transformers import LlamaConfig, LlamaForCausalLM

    from shrinkbench.llm.placement import device_map_for

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                                         num_attention_heads=4, num_key_value_heads=2))
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    assert set(device_map_for(model, 0, 2 * size).values()) == {0}  # it fits: all of it on GPU 0
    split = device_map_for(model, 0, int(0.7 * size))
    on_gpu = [k for k, v in split.items() if k.startswith("model.layers.") and v == 0]
    on_cpu = [k for k, v in split.items() if k.startswith("model.layers.") and v == "cpu"]
    assert on_gpu and on_cpu and all(k.count(".") == 2 for k in on_gpu + on_cpu)  # whole blocks, never a part
    assert max(int(k.rsplit(".", 1)[1]) for k in on_gpu) < min(int(k.rsplit(".", 1)[1]) for k in on_cpu)
    assert split["model.embed_tokens"] == 0  # the GPU is filled in the order of the modules


def _fake_hub_cache(cache, rows):
    """boolq as the `datasets` cache holds a hub dataset after a download (`aps___super_glue/boolq/
    <version>/<hash>/` with its arrow files and dataset_info.json), built here from local rows."""
    import shutil

    import datasets

    src = cache.parent / "boolq.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in rows))
    datasets.load_dataset("json", data_files={"train": str(src), "validation": str(src)}, cache_dir=str(cache))
    [built] = [p for p in cache.glob("json/*/*/*") if p.is_dir()]
    dest = cache / "aps___super_glue" / "boolq" / built.parts[-2] / built.parts[-1]
    shutil.copytree(built, dest)
    info = json.loads((dest / "dataset_info.json").read_text())
    (dest / "dataset_info.json").write_text(json.dumps({**info, "config_name": "boolq", "dataset_name": "super_glue"}))
    for f in dest.glob("json-*.arrow"):
        f.rename(dest / f.name.replace("json-", "super_glue-"))


def test_task_data_from_the_datasets_cache_is_read_offline_and_matches_the_folder(tiny, tmp_path, monkeypatch):
    import datasets.config

    from shrinkbench.llm.tasks import check_tasks, evaluate

    root, rows = tiny
    cache = tmp_path / "hf_datasets"
    _fake_hub_cache(cache, rows["boolq"])
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    check_tasks.cache_clear()
    assert check_tasks(("boolq:acc",), None, False) == check_tasks(("boolq:acc",), str(root / "tasks"), False)
    model, tok = _model(root)
    assert evaluate(model, tok, ("boolq:acc",), None, False) == evaluate(model, tok, ("boolq:acc",),
                                                                          str(root / "tasks"), False)
