"""The shipped across-models LLM suite parses and resolves (dry run) where its models exist: the
registered SmolLM2 wheel and two tiny random LLaMA folders built here, as its description says."""
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "shrinkbench" / "suites" / "llm-across-models.toml"


def _tiny_llama(folder: Path, seed: int) -> None:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{chr(97 + i): 3 + i for i in range(26)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def test_suite_says_what_would_make_it_a_real_claim():
    data = tomllib.loads(SUITE.read_text())
    assert len(data["sweep"]["models"]) >= 2 and data["track"] == "llm"
    text = " ".join(data["description"].split())
    assert "NOT a real claim" in text and "at least 5" in text and "rank --across model" in text


def test_suite_dry_run_over_several_models(tmp_path, monkeypatch, capsys):
    pytest.importorskip("transformers")
    from shrinkbench.core.errors import ShrinkBenchError
    from shrinkbench.llm.models import resolve_model

    try:
        resolve_model("smollm2-135m")
    except ShrinkBenchError as exc:
        pytest.skip(f"the SmolLM2 wheel is not installed: {exc}")
    for name, seed in (("tiny-llama-a", 0), ("tiny-llama-b", 1)):
        _tiny_llama(tmp_path / "llm-models" / name, seed)
    monkeypatch.chdir(tmp_path)
    from shrinkbench.cli import main

    assert main(["run", str(SUITE), "--dry-run", "--threads", "1", "--store", str(tmp_path / "store")]) == 0
    out = capsys.readouterr().out
    for model in ("smollm2-135m", "llm-models/tiny-llama-a", "llm-models/tiny-llama-b"):
        # the dense model is seed-free: one run (seed 0) per model, not one per seed
        assert f"{model}/kjv wanda" in out and f"{model}/kjv dense seed 0" in out
        assert f"{model}/kjv dense seed 1" not in out
