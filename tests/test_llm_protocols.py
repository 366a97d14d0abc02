"""Protocol presets (`shrinkbench.llm.protocols`, `shrinkbench.llm.windows`) and the real data
formats of WikiText-2 and C4 (`shrinkbench.llm.text`).

Each preset's windows and calibration draw are checked on a small text whose token ids are
known by construction (a word-level tokenizer: word `wK` is id K + 10, BOS is 1), against
positions written down by hand and against the published loops (Wanda's `lib/data.py`,
SparseGPT's `datautils.py`, LLM-Pruner's `example_samples.py`) re-expressed in the test. The
data files are written here in the formats they are published in: the hub's parquet files of
wikitext-2-raw-v1, the `datasets` library's Arrow cache, and C4's gzip json-lines shards."""
from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from llm_helpers import write_c4_shard, write_hub_texts, write_parquet

pytest.importorskip("transformers", reason="the LLM track needs transformers (pip install .[llm])")
pa = pytest.importorskip("pyarrow", reason="WikiText-2's parquet files need pyarrow (pip install .[llm])")

from shrinkbench.core.errors import ConfigError, DataNotFoundError  # noqa: E402
from shrinkbench.llm.config import LLMRunConfig  # noqa: E402
from shrinkbench.llm.protocols import PROTOCOLS, draw_calibration  # noqa: E402
from shrinkbench.llm.text import TextSplits, read_text  # noqa: E402
from shrinkbench.llm.windows import calibration_set, evaluation_windows, second_windows  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class WordTokenizer:
    """`wK` -> K + 10, anything else -> 2; BOS (1) first where special tokens are asked for (as
    LLaMA's tokenizer adds it by default)."""

    def __call__(self, text, add_special_tokens=True):
        ids = [int(w[1:]) + 10 if w[:1] == "w" and w[1:].isdigit() else 2 for w in text.split()]
        return {"input_ids": ([1] if add_special_tokens else []) + ids}

    def __len__(self):
        return 1000


def words(start: int, count: int) -> str:
    return " ".join(f"w{k}" for k in range(start, start + count))


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SHRINKBENCH_CACHE", str(tmp_path / "cache"))


def _text(train_docs, test_docs, name="small") -> TextSplits:
    return TextSplits(name, "\n\n".join(train_docs), "\n\n".join(test_docs), {}, tuple(train_docs), tuple(test_docs))


TOK = WordTokenizer()
TEST = [words(0, 10), words(10, 11)]            # 21 words: ids 10..30
TRAIN = [words(100, 3), words(200, 9), words(300, 8), words(400, 12), words(500, 7)]


# ------------------------------------------------------------------ evaluation windows
def test_offline_windows_are_the_first_non_overlapping_windows_without_special_tokens():
    cfg = LLMRunConfig(seq_len=8, eval_windows=2)
    assert cfg.protocol == "offline" and cfg.preset.special_tokens is False
    got = evaluation_windows(cfg, _text(TRAIN, TEST), TOK, "k")
    assert got.tolist() == [list(range(10, 18)), list(range(18, 26))]


@pytest.mark.parametrize("name", ["wanda", "sparsegpt", "llm-pruner"])
def test_published_presets_read_every_whole_window_with_bos(name):
    # "\n\n".join(test) tokenized once: BOS, ids 10..30 (22 tokens) -> 2 whole windows of 8, the rest dropped
    cfg = LLMRunConfig(protocol=name, seq_len=8)
    assert cfg.eval_windows == 0 and cfg.dataset == "wikitext2"
    got = evaluation_windows(cfg, _text(TRAIN, TEST, "wikitext2"), TOK, "k")
    assert got.tolist() == [[1] + list(range(10, 17)), list(range(17, 25))]


def test_llm_pruner_is_128_tokens_and_wanda_the_models_context():
    assert LLMRunConfig(protocol="llm-pruner").seq_len == 128
    assert LLMRunConfig(protocol="wanda").seq_len is None  # filled from max_position_embeddings when validated
    assert LLMRunConfig().seq_len == 256 and LLMRunConfig().eval_windows == 16


def test_sparsegpt_c4_validation_is_the_first_documents_joined_with_spaces_cut_to_256_windows():
    docs = [words(1000 + 10 * i, 3) for i in range(1200)]  # 1,200 documents of 3 words
    cfg = LLMRunConfig(protocol="sparsegpt", seq_len=8)
    got = second_windows(cfg, _text(TRAIN, docs, "c4"), TOK)
    # ' '.join(first 1,100) -> BOS + 3,300 ids; [: 256 * 8] = 2,048 tokens -> 256 windows of 8
    assert got.shape == (256, 8)
    flat = [1] + [1000 + 10 * i + j + 10 for i in range(1100) for j in range(3)]
    assert got.reshape(-1).tolist() == flat[:2048]
    short = second_windows(LLMRunConfig(protocol="wanda", seq_len=100), _text(TRAIN, docs, "c4"), TOK)
    assert short.shape == (33, 100)  # 3,301 tokens of the 1,100 documents: 33 whole windows of 100


# ------------------------------------------------------------------ calibration draws
def _published(seed, count, length, counts, rule):
    """The published loops, with token counts `counts` per document."""
    rng = random.Random(seed)
    out, history = [], []
    for _ in range(count):
        while True:
            i = rng.randint(0, len(counts) - 1)
            n = counts[i]
            if rule == "wanda" and n > length:
                break
            if rule == "llm-pruner" and n >= length and i not in history:
                history.append(i)
                break
        top = n - length if rule == "llm-pruner" else n - length - 1
        out.append((i, rng.randint(0, top)))
    return out


def test_wanda_draws_documents_longer_than_the_window_at_the_published_positions():
    cfg = LLMRunConfig(protocol="wanda", seq_len=8, strategy="wanda", calib_sequences=3)
    text = _text(TRAIN, TEST, "c4")
    windows, positions = calibration_set(cfg, text, TOK, "k", 3, None, 0)
    counts = [4, 10, 9, 13, 8]  # with BOS; Wanda keeps only > 8: documents 1, 2 and 3
    assert positions == _published(0, 3, 8, counts, "wanda")
    assert all(counts[i] > 8 for i, _ in positions)
    # written down: random.Random(0).randint(0, 4) gives 3, 3, 0, 2, ...: document 3 (13 tokens > 8) at
    # offset randint(0, 13 - 8 - 1) = 3; document 0 (4 tokens) is redrawn; document 2 (9) at randint(0, 0) = 0; ...
    assert positions == [(3, 3), (2, 0), (3, 2)]
    for (i, o), row in zip(positions, windows.tolist()):
        ids = TOK(TRAIN[i])["input_ids"]
        assert row == ids[o: o + 8]
    assert positions == _published(0, 3, 8, counts, "wanda")


def test_sparsegpt_draws_as_wanda_and_skips_a_document_of_exactly_the_window():
    counts = [4, 10, 9, 13, 8]  # document 4 has exactly 8 tokens with BOS: `>` redraws it
    for seed in range(20):
        _, positions = calibration_set(LLMRunConfig(protocol="sparsegpt", seq_len=8, strategy="wanda"),
                                       _text(TRAIN, TEST, "c4"), TOK, "k", 3, None, seed)
        assert positions == _published(seed, 3, 8, counts, "wanda") and all(i != 4 for i, _ in positions)


def test_llm_pruner_draws_distinct_documents_of_at_least_its_64_tokens():
    cfg = LLMRunConfig(protocol="llm-pruner", strategy="wanda")
    assert cfg.calib_sequences == 10 and cfg.preset.calib_len == 64
    train = [words(1000 * i, n) for i, n in enumerate([70, 63, 64, 100, 80, 65, 90, 66, 200, 64, 75, 5])]
    counts = [n + 1 for n in [70, 63, 64, 100, 80, 65, 90, 66, 200, 64, 75, 5]]
    windows, positions = calibration_set(cfg, _text(train, TEST, "c4"), TOK, "k", 10, None, 42)
    assert positions == _published(42, 10, 64, counts, "llm-pruner")
    assert len({i for i, _ in positions}) == 10 and windows.shape == (10, 64)
    assert all(counts[i] >= 64 and 0 <= o <= counts[i] - 64 for i, o in positions)


def test_offline_draw_is_uniform_starts_of_the_torch_generator():
    ids = torch.arange(100, 140)
    gen = torch.Generator().manual_seed(5)
    got = draw_calibration("windows", 0, 4, 8, ids=ids, generator=gen)
    expected = torch.randint(0, 40 - 8 + 1, (4,), generator=torch.Generator().manual_seed(5)).tolist()
    assert [o for _, o in got] == expected and all(i == -1 for i, _ in got)


def test_a_draw_that_cannot_succeed_is_one_clear_error():
    with pytest.raises(ConfigError, match="no train document has more than 64 tokens"):
        draw_calibration("documents-longer", 0, 1, 64, documents=["a"] * 3, tokenize=lambda i: 5)


# ------------------------------------------------------------------ config and identity
def test_unknown_preset_is_refused_naming_the_presets():
    with pytest.raises(ConfigError, match="unknown protocol 'nope'; the presets are offline, wanda, sparsegpt, llm-pruner"):
        LLMRunConfig(protocol="nope")


def test_offline_keeps_its_ids_and_a_preset_or_another_calibration_text_changes_them():
    base = LLMRunConfig(strategy="wanda")
    assert "protocol" not in base.identity() and "calib_text" not in base.identity()
    assert LLMRunConfig(strategy="wanda", calib_text="kjv").run_id == base.run_id
    assert LLMRunConfig(strategy="wanda", calib_text="c4").run_id != base.run_id
    wanda = LLMRunConfig(protocol="wanda", strategy="wanda", seq_len=256)
    assert wanda.identity()["protocol"] == "wanda" and wanda.identity()["protocol_version"] == 1
    assert wanda.calib_text == "c4" and wanda.calib_sequences == 128
    # the preset decides the dtype (float16) and the zero-shot tasks (its seven, acc) where the run
    # leaves them out; a run that sets others says so in its deviations and label
    assert wanda.dtype == "float16" and wanda.tasks == tuple(f"{t}:acc" for t in PROTOCOLS.get("wanda").tasks)
    assert wanda.identity()["dtype"] == "float16" and len(wanda.identity()["tasks"]) == 7
    assert wanda.protocol_deviations(256) == {} and wanda.protocol_deviations(2048) == {"seq_len": 256}
    off = {"dtype": "float32", "tasks": "none"}
    opted_out = LLMRunConfig(protocol="wanda", strategy="wanda", seq_len=256, dtype="float32", tasks=())
    assert opted_out.protocol_deviations(256) == off and "dtype" not in opted_out.identity()
    assert LLMRunConfig(protocol="wanda", strategy="wanda", seq_len=256, eval_windows=4, tasks=(),
                        dtype="float32").protocol_label(256) == "wanda@v1 modified: dtype=float32, eval_windows=4, tasks=none"
    assert LLMRunConfig(protocol="llm-pruner").tasks[-1] == "openbookqa:acc_norm"  # its metric per task
    assert LLMRunConfig(protocol="sparsegpt").tasks[0] == "lambada_openai:acc"
    assert LLMRunConfig().protocol_deviations() == {}  # offline: float32, no tasks
    assert LLMRunConfig().tasks == () and LLMRunConfig().dtype == "float32"
    # the ids of records that opted out (explicit float32, no tasks) re-derive from their configs
    assert LLMRunConfig.from_dict(opted_out.to_dict()).run_id == opted_out.run_id


def test_every_preset_has_its_table_row_in_the_docs():
    doc = (ROOT / "docs" / "llm.md").read_text()
    for name in PROTOCOLS.names():
        assert f"| `{name}` |" in doc


# ------------------------------------------------------------------ real data formats




WIKI_TRAIN = ["", " = Valkyria Chronicles III = \n", "", " Senjō no Valkyria 3 is a game . \n"]
WIKI_TEST = ["", " = Robert Boulter = \n", "", " Robert Boulter is an English actor . \n"]


def test_wikitext2_reads_the_hubs_parquet_files_and_records_their_sha256(tmp_path):
    root = tmp_path / "wikitext"
    write_parquet(root / "wikitext-2-raw-v1" / "train-00000-of-00001.parquet", WIKI_TRAIN)
    write_parquet(root / "wikitext-2-raw-v1" / "test-00000-of-00001.parquet", WIKI_TEST)
    text = read_text("wikitext2", str(root))
    assert text.test == "\n\n".join(WIKI_TEST) and text.train_docs == tuple(WIKI_TRAIN)
    test_file = root / "wikitext-2-raw-v1" / "test-00000-of-00001.parquet"
    assert text.info["files"]["test"]["file_sha256"] == hashlib.sha256(test_file.read_bytes()).hexdigest()
    assert text.info["test_sha256"] == hashlib.sha256(text.test.encode()).hexdigest()


def test_wikitext2_reads_the_datasets_librarys_arrow_cache(tmp_path):
    cache = tmp_path / "datasets"
    for split, rows in (("train", WIKI_TRAIN), ("test", WIKI_TEST)):
        path = cache / "wikitext" / "wikitext-2-raw-v1" / "0.0.0" / "b08601e04326c79d" / f"wikitext-{split}.arrow"
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.table({"text": pa.array(rows, pa.string())})
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)  # the datasets library's ArrowWriter: an Arrow IPC stream
    text = read_text("wikitext2", str(cache))
    assert text.test_docs == tuple(WIKI_TEST) and text.train == "\n\n".join(WIKI_TRAIN)


def test_c4_reads_its_gzip_json_line_shards(tmp_path):
    root = tmp_path / "c4"
    train = [f"Document {k} of the train shard. " * (k + 1) for k in range(5)]
    valid = [f"Validation document {k}." for k in range(3)]
    write_c4_shard(root / "en" / "c4-train.00000-of-01024.json.gz", train)
    write_c4_shard(root / "en" / "c4-validation.00000-of-00008.json.gz", valid)
    text = read_text("c4", str(root))
    assert text.train_docs == tuple(train) and text.test_docs == tuple(valid)
    shard = root / "en" / "c4-train.00000-of-01024.json.gz"
    assert text.info["files"]["train"]["file_sha256"] == hashlib.sha256(shard.read_bytes()).hexdigest()


def test_absent_data_says_download_and_a_foreign_file_says_its_format(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "no-datasets"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hub"))
    with pytest.raises(DataNotFoundError, match="pass --download"):
        read_text("c4", str(tmp_path / "empty"))
    bad = tmp_path / "bad"
    (bad / "en").mkdir(parents=True)
    (bad / "en" / "c4-train.00000-of-01024.json.gz").write_bytes(b"not gzip")
    with pytest.raises(ConfigError, match="not in the expected format"):
        read_text("c4", str(bad))


# ------------------------------------------------------------------ the command line, end to end
def _cli(*args, env=None):
    import os

    return subprocess.run([sys.executable, "-m", "shrinkbench.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=900)


def test_unknown_protocol_on_the_command_line_is_one_line_exit_2(tmp_path):
    done = _cli("prune-llm", "--protocol", "nope", "--store", str(tmp_path / "store"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "unknown protocol 'nope'" in done.stderr and not (tmp_path / "store").exists()


SENTENCES = [f"the {a} of the {b} was {c} and the {a} was {d} ." for a in ("earth", "light", "water", "night")
             for b in ("deep", "field", "sea") for c in ("good", "void", "dark") for d in ("great", "small")]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny LLaMA (context 32) with a BPE tokenizer that adds BOS, and WikiText-2 / C4 files."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("protocols")
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(SENTENCES, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"],
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                           show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=32))
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    data = root / "data"
    write_hub_texts(data, SENTENCES)
    (root / "kjv.txt").write_text("\n".join(SENTENCES), encoding="utf-8")
    return root


def test_a_wanda_preset_run_records_its_protocol_both_texts_and_the_dense_reference(world, tmp_path):
    store = tmp_path / "store"
    cache = {"SHRINKBENCH_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    done = _cli("prune-llm", "--model", str(world / "model"), "--protocol", "wanda", "--strategy", "wanda",
                "--text-root", str(world / "data"), "--store", str(store), "--threads", "1", "--tasks", "none",
                "--dtype", "float32", env=cache)
    assert done.returncode == 0, done.stderr
    assert "perplexity on wikitext2: dense" in done.stdout and "perplexity on C4 validation: dense" in done.stdout
    (path,) = (store / "runs").glob("*.json")
    record = json.loads(path.read_text())
    assert record["protocol"]["name"] == "wanda"
    assert record["protocol"]["deviations"] == {"dtype": "float32", "tasks": "none"}  # the preset's: float16, 7 tasks
    assert "wanda@v1 modified: dtype=float32, tasks=none" in done.stdout
    assert record["config"]["seq_len"] == 32 and record["config"]["calib_text"] == "c4"  # the model's context
    assert len(record["calibration_positions"]) == 128 and record["text"]["special_tokens"] is True
    assert record["text"]["second"]["eval_windows"] == 256  # 1,100 documents hold more than 256 x 32 tokens
    metrics = {(m["stage"], m["metric"]) for m in record["metrics"]}
    assert ("post", "perplexity_c4") in metrics and ("pre", "perplexity") not in metrics
    assert set(record["dense"]["metrics"]) == {"perplexity", "nll", "perplexity_c4", "nll_c4"}
    assert record["text"]["files"]["test"]["file_sha256"] and record["text"]["calibration_text"]["files"]

    # the offline preset on the same text and model in the same store: compare refuses, naming what
    # differs; asked, it warns, and the comparison across presets carries the confounder
    for strategy in ("magnitude", "wanda"):
        done = _cli("prune-llm", "--model", str(world / "model"), "--text", "wikitext2", "--text-root",
                    str(world / "data"), "--strategy", strategy, "--seq-len", "16", "--eval-windows", "2",
                    "--store", str(store), "--threads", "1", env=cache)
        assert done.returncode == 0, done.stderr
    refused = _cli("compare", "--store", str(store), "--metric", "perplexity", "--method", "wanda [row]")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "2 protocol presets (offline@v1; wanda@v1)" in refused.stderr
    assert "differ in seq_len, stride, eval_windows, special_tokens, calib_text, calib_sequences, calib_len, draw, second" \
        in refused.stderr, refused.stderr
    report = _cli("report", "--store", str(store), "--out", str(tmp_path / "report"))
    assert report.returncode == 2 and "protocol presets" in report.stderr and not (tmp_path / "report").exists()
    asked = _cli("compare", "--store", str(store), "--metric", "perplexity", "--method", "wanda [row]",
                 "--across-protocols")
    assert asked.returncode == 0, asked.stderr
    assert "compared as asked (--across-protocols)" in asked.stderr
    assert "language-model protocol preset differs" in asked.stderr


def test_bad_input_of_a_preset_is_one_line_exit_2_and_nothing_written(world, tmp_path):
    env = {"SHRINKBENCH_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
           "HF_HUB_CACHE": str(tmp_path / "no-hub"), "HF_DATASETS_CACHE": str(tmp_path / "no-datasets")}
    store = tmp_path / "store"
    cases = [
        # llm-pruner's 128-token context is longer than this model's 32 positions
        (["--protocol", "llm-pruner", "--text-root", str(world / "data")], "takes at most 32 positions"),
        # WikiText-2 is absent and --download not given
        (["--protocol", "wanda", "--text-root", str(tmp_path / "empty")], "pass --download"),
        # a tokenizer that does not belong to the model (more ids than its embedding rows)
        (["--tokenizer", str(world / "big"), "--text", f"file:{world / 'kjv.txt'}", "--seq-len", "16"],
         "tokenizer"),
    ]
    big = world / "big"
    if not big.exists():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(world / "model")
        tok.add_tokens([f"extra{k}" for k in range(400)])
        tok.save_pretrained(big)
    for args, words in cases:
        done = _cli("prune-llm", "--model", str(world / "model"), "--store", str(store), *args, env=env)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert words in done.stderr and not store.exists()
