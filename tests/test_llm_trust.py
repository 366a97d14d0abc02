"""Bad input to the language-model track, the structured runs and the analysis outputs: refused
before any run in one line on stderr with exit 2, naming the user's class or file, leaving no
record, no claim and no stray file (as tests/test_trust.py shows for the vision runner); every
option of `prune-llm` and of an LLM suite acts or is refused; kept counts checked for every
scope; a killed GGUF conversion leaves nothing behind.

Models are tiny random LLaMA (and GPT-2) folders built here (`tiny` of tests/test_llm.py)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="the LLM track needs transformers (pip install .[llm])")

from shrinkbench.cli import build_parser, main  # noqa: E402
from shrinkbench.core.errors import ConfigError, DataNotFoundError, StrategyError  # noqa: E402

from test_llm import _cache, _tokenizer, tiny  # noqa: E402,F401  (fixtures)

ROOT = Path(__file__).resolve().parents[1]

STRATEGIES = '''
import os
import sys

import torch
from shrinkbench.llm.methods import LLMStrategy, keep_mask


class Mine(LLMStrategy):
    """declares a scope the toolkit cannot check, and keeps 90%"""
    scopes = ("mine",)
    default_scope = "mine"
    def prune(self, weight, inputs, sparsity, nm, scope):
        keep = keep_mask(weight.abs(), 0.1, nm, "layer")
        return weight * keep, keep


class GlobalPrune(LLMStrategy):
    """data-free, offers global, overrides prune(): global would never call it"""
    scopes = ("layer", "global")
    def prune(self, weight, inputs, sparsity, nm, scope):
        keep = keep_mask(-weight.abs(), sparsity, nm, "layer")
        return weight * keep, keep


class Shape(LLMStrategy):
    def score(self, weight, inputs):
        return weight[:1]


class Nan(LLMStrategy):
    def score(self, weight, inputs):
        return weight * float("nan")


class Inf(LLMStrategy):
    def score(self, weight, inputs):
        return weight / 0.0


class Text(LLMStrategy):
    def score(self, weight, inputs):
        return "keep the big ones"


class Exits(LLMStrategy):
    def score(self, weight, inputs):
        sys.exit(3)


class Raises(LLMStrategy):
    def score(self, weight, inputs):
        raise KeyError("gone")


class Count(LLMStrategy):
    """keeps everything at scope layer"""
    def prune(self, weight, inputs, sparsity, nm, scope):
        return weight, torch.ones_like(weight, dtype=torch.bool)


class IntMask(LLMStrategy):
    def prune(self, weight, inputs, sparsity, nm, scope):
        keep = keep_mask(weight.abs(), sparsity, nm, scope)
        return weight * keep, keep.int()


class IntWeight(LLMStrategy):
    def prune(self, weight, inputs, sparsity, nm, scope):
        keep = keep_mask(weight.abs(), sparsity, nm, scope)
        return (weight * keep).int(), keep


class NotPair(LLMStrategy):
    def prune(self, weight, inputs, sparsity, nm, scope):
        return weight


class NoScore(LLMStrategy):
    """implements nothing"""


class Power(LLMStrategy):
    def __init__(self, power=1):
        self.power = power
    def score(self, weight, inputs):
        return weight.abs() ** self.power


class CalibratedGlobal(LLMStrategy):
    """calibrated, with global as its default scope"""
    needs_inputs = True
    scopes = ("global", "row")
    default_scope = "global"
    def score(self, weight, inputs):
        return weight.abs()


class QuitsInScore(LLMStrategy):
    def score(self, weight, inputs):
        os._exit(0)
'''


@pytest.fixture(scope="module")
def bad(tiny, tmp_path_factory):
    """Bad model folders (each a copy of the tiny LLaMA with one fault), the strategies file, a
    second text, a tiny GPT-2 of 16 positions."""
    from safetensors.torch import load_file, save_file
    from transformers import GPT2Config, GPT2LMHeadModel

    root = tmp_path_factory.mktemp("bad")
    model = tiny / "model"

    def copy(name, drop=()):
        target = root / name
        shutil.copytree(model, target, ignore=shutil.ignore_patterns(*drop))
        return target

    copy("no_weights", drop=("*.safetensors",))
    truncated = copy("truncated") / "model.safetensors"
    truncated.write_bytes(truncated.read_bytes()[:-100])
    nan = copy("nan") / "model.safetensors"
    state = load_file(nan)
    state[next(k for k in state if k.endswith("q_proj.weight"))][0, 0] = float("nan")
    save_file(state, nan, metadata={"format": "pt"})
    copy("no_tokenizer", drop=("tokenizer*", "special_tokens_map.json"))
    zebra = copy("zebra") / "config.json"
    config = json.loads(zebra.read_text())
    zebra.write_text(json.dumps({**config, "model_type": "zebra", "architectures": ["ZebraForCausalLM"]}))
    tokenizer = _tokenizer(300)
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=16, n_embd=32, n_layer=2, n_head=4,
                                     bos_token_id=1, eos_token_id=2))
    gpt2.save_pretrained(root / "gpt2")
    tokenizer.save_pretrained(root / "gpt2")
    (root / "mine.py").write_text(STRATEGIES)
    (root / "quits_at_import.py").write_text("import os\nos._exit(0)\n")
    (root / "folder_text").mkdir()
    (root / "short.txt").write_text("\n".join(f"verse {i} of a short text" for i in range(10)) + "\n")
    return root


def base_args(tiny, store, *extra):
    return ["prune-llm", "--model", str(tiny / "model"), "--text", f"file:{tiny / 'text.txt'}", "--seq-len", "16",
            "--eval-windows", "2", "--threads", "1", "--store", str(store), *extra]


def mine(bad, cls):
    return ["--strategy", f"{bad / 'mine.py'}:{cls}"]


# (arguments after the base ones, or a function of (tiny, bad) giving them; what stderr must say)
PRUNE_LLM = {
    # a user's strategy, checked before any run, named by its class
    "unknown scope": (lambda t, b: mine(b, "Mine"), "declares scope 'mine'"),
    "global prune() never called": (lambda t, b: [*mine(b, "GlobalPrune"), "--scope", "global"], "overrides prune()"),
    "wrong shape": (lambda t, b: mine(b, "Shape"), "returned scores of shape (1, 16)"),
    "nan scores": (lambda t, b: mine(b, "Nan"), "non-finite scores"),
    "inf scores": (lambda t, b: mine(b, "Inf"), "non-finite scores"),
    "a string": (lambda t, b: mine(b, "Text"), "returned scores of shape str"),
    "sys.exit": (lambda t, b: mine(b, "Exits"), "SystemExit"),
    "an exception": (lambda t, b: mine(b, "Raises"), "raised while scoring: KeyError"),
    "wrong kept count": (lambda t, b: mine(b, "Count"), "kept 128, not 64 (scope layer at sparsity 0.5)"),
    "int mask": (lambda t, b: mine(b, "IntMask"), "bool mask) of shape (8, 16), got (float32 (8, 16), int32"),
    "int weight": (lambda t, b: mine(b, "IntWeight"), "it must be a floating tensor"),
    "not a pair": (lambda t, b: mine(b, "NotPair"), "prune must return (weight, bool mask), got Tensor"),
    "no score()": (lambda t, b: mine(b, "NoScore"), "implements neither score"),
    "parameter of the wrong type": (lambda t, b: [*mine(b, "Power"), "--param", 'power="x"'], "TypeError"),
    "unknown parameter": (lambda t, b: [*mine(b, "Power"), "--param", "base=2"], "has no parameter 'base'"),
    # options that would be silently overridden or ignored
    "sparsity with a pattern": (lambda t, b: ["--sparsity", "0.9", "--pattern", "2:4"],
                                "pattern 2:4 sets the sparsity to 0.5"),
    "dense with a sparsity": (lambda t, b: ["--strategy", "none", "--sparsity", "0.7"], "--strategy none"),
    "dense with a scope": (lambda t, b: ["--strategy", "none", "--scope", "row"], "--strategy none"),
    "scope with a pattern": (lambda t, b: ["--strategy", "wanda", "--scope", "layer", "--pattern", "2:4"],
                             "whatever the scope"),
    "window beyond the positions": (lambda t, b: ["--seq-len", "200"], "takes at most 128 positions"),
    "exclude matching nothing": (lambda t, b: ["--exclude", "*.no_such_proj"], "matches none of the 14 pruned"),
    "finetune lr without steps": (lambda t, b: ["--finetune-lr", "1e-3"], "give --finetune-steps"),
    "calibration for a data-free method": (lambda t, b: ["--calib-sequences", "4"], "is data-free"),
    "text root for a file": (lambda t, b: ["--text-root", str(b)], "does not read it"),
    "download with local files": (lambda t, b: ["--download"], "are local: leave it out"),
    "a device not here": (lambda t, b: ["--device", "cuda:7"], "device cuda:7"),
    # misleading messages
    "text shorter than a window": (lambda t, b: ["--text", f"file:{b / 'short.txt'}", "--seq-len", "100"],
                                   "0 window(s) of 100"),
    "text file that is a folder": (lambda t, b: ["--text", f"file:{b / 'folder_text'}"], "is a folder"),
    "global for a calibrated method": (lambda t, b: ["--strategy", "wanda", "--scope", "global"], "has no scope"),
    "a calibrated method's default global": (lambda t, b: mine(b, "CalibratedGlobal"), "pruned before; use row"),
    # model folders
    "missing weights": (lambda t, b: ["--model", str(b / "no_weights")], "holds no weights"),
    "truncated safetensors": (lambda t, b: ["--model", str(b / "truncated")], "are truncated"),
    "nan weights": (lambda t, b: ["--model", str(b / "nan")], "holds NaN or inf values"),
    "no tokenizer": (lambda t, b: ["--model", str(b / "no_tokenizer")], "no tokenizer could be loaded"),
    "unknown model_type": (lambda t, b: ["--model", str(b / "zebra")], "model_type 'zebra'"),
    "gpt2 shorter than the window": (lambda t, b: ["--model", str(b / "gpt2"), "--seq-len", "32"],
                                     "takes at most 16 positions"),
}


def leftovers(*folders: Path) -> list[str]:
    """Records, claims and temporary files under `folders`."""
    found = []
    for folder in folders:
        if folder.exists():
            found += [str(p) for p in folder.rglob("*") if p.is_file() and (
                p.suffix in (".json", ".claim", ".part") and "runs" in p.parts or "claims" in p.parts
                or p.name.startswith(".tmp-") or any(q.startswith(".tmp-") for q in p.parts))]
    return found


@pytest.mark.parametrize("case", sorted(PRUNE_LLM))
def test_bad_llm_input_is_one_line_exit_2_and_nothing_written(tiny, bad, tmp_path, capsys, case):
    extra, message = PRUNE_LLM[case]
    store = tmp_path / "store"
    threads = torch.get_num_threads()
    try:
        status = main(base_args(tiny, store, *extra(tiny, bad)))
    finally:
        torch.set_num_threads(threads)
    out, err = capsys.readouterr()
    assert status == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert not out
    if "mine.py:" in " ".join(extra(tiny, bad)):  # the user's class is named
        assert f"mine.py:{extra(tiny, bad)[1].rsplit(':', 1)[1]}" in err
    assert not leftovers(store, tmp_path / "cache"), "no record, no claim, no stray file"


def _cli(*args, cache: Path):
    return subprocess.run([sys.executable, "-m", "shrinkbench.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "SHRINKBENCH_CACHE": str(cache)}, timeout=600)


@pytest.mark.parametrize("where", ["score", "import"])
def test_os_exit_in_a_users_strategy_cannot_end_the_command_silently(tiny, bad, tmp_path, where):
    spec = f"{bad / 'mine.py'}:QuitsInScore" if where == "score" else f"{bad / 'quits_at_import.py'}:S"
    done = _cli(*base_args(tiny, tmp_path / "store", "--strategy", spec), cache=tmp_path / "cache")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stdout + done.stderr
    assert "os._exit(0)" in done.stderr and spec.rsplit("/", 1)[1].split(":")[0] in done.stderr
    assert not leftovers(tmp_path / "store")


# ------------------------------------------------------------------ suites

def write_llm_suite(path: Path, tiny, run: str = "", strategies: str = '["magnitude"]',
                    patterns: str = '["unstructured"]') -> Path:
    path.write_text(textwrap.dedent(f'''\
        name = "tiny-llm"
        track = "llm"
        [sweep]
        models = ["{tiny / 'model'}"]
        datasets = ["file:{tiny / 'text.txt'}"]
        strategies = {strategies}
        sparsities = [0.5]
        patterns = {patterns}
        seeds = [0]
        [run]
        seq_len = 16
        eval_windows = 2
        throughput_repeats = 1
        ''') + run)
    return path


SUITES = {
    "run sparsity": ({"run": "sparsity = 0.9\n"}, "[run] sparsity would be overridden"),
    "run seed": ({"run": "seed = 4\n"}, "[run] seed would be overridden"),
    "run strategy": ({"run": 'strategy = "wanda"\n'}, "[run] strategy would be overridden"),
    "run pattern": ({"run": 'pattern = "2:4"\n'}, "set it in [sweep] patterns"),
    "run scope": ({"run": 'scope = "row"\n'}, "[run] scope would be overridden"),
    "run sha": ({"run": 'model_sha256 = "x"\n'}, "computed from the files"),
    "finetune lr without steps": ({"run": "finetune_lr = 0.001\n"}, "set finetune_steps too"),
    "calibration without a calibrated method": ({"run": "calib_sequences = 4\n"}, "no strategy of this suite"),
    "unknown scope of a user's class": ({"strategies": '["{bad}/mine.py:Mine"]'}, "declares scope 'mine'"),
    "a user's class keeping the wrong count": ({"strategies": '["{bad}/mine.py:Count"]'}, "kept 128, not 64"),
}


@pytest.mark.parametrize("case", sorted(SUITES))
def test_bad_llm_suites_are_one_line_exit_2_before_any_run(tiny, bad, tmp_path, capsys, case):
    changes, message = SUITES[case]
    changes = {k: v.replace("{bad}", str(bad)) for k, v in changes.items()}
    suite, store = write_llm_suite(tmp_path / "s.toml", tiny, **changes), tmp_path / "store"
    status = main(["run", str(suite), "--store", str(store), "--quiet", "--threads", "1"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert not store.exists(), "nothing written"


@pytest.mark.parametrize("flag, message", [(["--save-pruned"], "the language-model track saves none"),
                                           (["--download"], "set download = true in its [run] table"),
                                           (["--data-root", "."], "--data-root acts on vision suites"),
                                           (["--loader-workers", "2"], "it reads no images")])
def test_vision_options_on_an_llm_suite_are_refused(tiny, tmp_path, capsys, flag, message):
    suite, store = write_llm_suite(tmp_path / "s.toml", tiny), tmp_path / "store"
    assert main(["run", str(suite), "--store", str(store), "--quiet", *flag]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not leftovers(store)


def test_add_strategy_of_a_bad_class_is_refused_before_the_sweep(tiny, bad, tmp_path, capsys):
    suite, store = write_llm_suite(tmp_path / "s.toml", tiny), tmp_path / "store"
    assert main(["run", str(suite), "--store", str(store), "--quiet", "--add-strategy",
                 f"{bad / 'mine.py'}:Shape"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mine.py:Shape" in err and "returned scores of shape" in err
    assert not leftovers(store)


def test_benchmark_and_the_python_api_read_perplexity_on_an_llm_store(tiny, tmp_path, capsys):
    import shrinkbench

    suite, store = write_llm_suite(tmp_path / "s.toml", tiny, strategies='["magnitude", "wanda"]',
                                   run="calib_sequences = 4\n"), tmp_path / "store"
    text = suite.read_text().replace("seeds = [0]", "seeds = [0, 1, 2]")
    suite.write_text(text)
    threads = torch.get_num_threads()
    try:
        status = main(["benchmark", "--suite", str(suite), "--store", str(store), "--quiet", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "perplexity" in out and (store / "report" / "report.md").is_file()
    report = shrinkbench.compare(str(store), "wanda [row]")
    assert set(report.comparisons["baseline"]) >= {"magnitude [layer]"}
    assert "perplexity" in (store / "report" / "report.md").read_text()
    summary = shrinkbench.report(str(store), str(tmp_path / "api_report"))
    # dense and magnitude run once (seed-free), wanda over the 3 seeds
    assert summary["runs"] == 5 and (tmp_path / "api_report" / "report.md").is_file()


# ------------------------------------------------------------------ every option acts or is refused

def _option_strings(command: str) -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {a.option_strings[-1] for a in sub._actions if a.option_strings and a.dest != "help"}


LORA = ["--finetune-steps", "1", "--finetune-method", "lora"]

# option -> (arguments for the run, arguments of the run it is compared with, "acts" or a refusal's words)
WALK = {
    "--model": (lambda t, b: ["--model", str(b / "twin")], [], "acts"),
    "--tokenizer": (lambda t, b: ["--tokenizer", str(t / "model")], [], "acts"),
    "--text": (lambda t, b: ["--text", f"file:{b / 'other.txt'}"], [], "acts"),
    "--protocol": (lambda t, b: ["--protocol", "llm-pruner", "--tasks", "none", "--dtype", "float32"],
                   ["--tasks", "none", "--dtype", "float32"], "acts"),
    "--calib-text": (lambda t, b: ["--calib-text", f"file:{b / 'other.txt'}", "--strategy", "wanda"],
                     ["--strategy", "wanda"], "acts"),
    "--strategy": (lambda t, b: ["--strategy", "wanda"], [], "acts"),
    "--param": (lambda t, b: ["--strategy", "sparsegpt", "--param", "blocksize=4"], ["--strategy", "sparsegpt"],
                "acts"),
    "--scope": (lambda t, b: ["--scope", "row"], [], "acts"),
    "--sparsity": (lambda t, b: ["--sparsity", "0.6"], [], "acts"),
    "--pattern": (lambda t, b: ["--pattern", "2:4"], [], "acts"),
    "--seed": (lambda t, b: ["--seed", "1", "--strategy", "wanda"], ["--strategy", "wanda"], "acts"),
    "--seq-len": (lambda t, b: ["--seq-len", "24"], [], "acts"),
    "--calib-sequences": (lambda t, b: ["--calib-sequences", "4", "--strategy", "wanda"], ["--strategy", "wanda"],
                          "acts"),
    "--eval-windows": (lambda t, b: ["--eval-windows", "3"], [], "acts"),
    "--exclude": (lambda t, b: ["--exclude", "*.mlp.down_proj"], [], "acts"),
    "--finetune-steps": (lambda t, b: ["--finetune-steps", "1"], [], "acts"),
    "--finetune-lr": (lambda t, b: ["--finetune-steps", "1", "--finetune-lr", "1e-3"], ["--finetune-steps", "1"],
                      "acts"),
    "--store": (lambda t, b: ["--store", str(b / "elsewhere")], [], "acts"),
    "--device": (lambda t, b: ["--device", "cuda:7"], [], "device cuda:7"),
    "--text-root": (lambda t, b: ["--text-root", str(b)], [], "does not read it"),
    "--download": (lambda t, b: ["--download"], [], "leave it out"),
    "--threads": (lambda t, b: ["--threads", "2"], [], "acts"),
    "--unit": (lambda t, b: ["--unit", "heads", "--sparsity", "0.5"], [], "acts"),
    "--save": (lambda t, b: ["--unit", "heads", "--sparsity", "0.5", "--save", str(b / "saved")],
               ["--unit", "heads", "--sparsity", "0.5"], "acts"),
    "--format": (lambda t, b: ["--format", "json"], [], "acts"),
    "--allocation": (lambda t, b: ["--allocation", "owl"], [], "acts"),
    "--allocation-param": (lambda t, b: ["--allocation", "owl", "--allocation-param", "lam=0.1"],
                           ["--allocation", "owl"], "acts"),
    "--ties": (lambda t, b: ["--ties", "seeded"], [], "acts"),
    "--finetune-method": (lambda t, b: ["--finetune-steps", "1", "--finetune-method", "lora"],
                          ["--finetune-steps", "1"], "acts"),
    "--lora-rank": (lambda t, b: [*LORA, "--lora-rank", "4"], LORA, "acts"),
    "--lora-alpha": (lambda t, b: [*LORA, "--lora-alpha", "8"], LORA, "acts"),
    "--lora-dropout": (lambda t, b: [*LORA, "--lora-dropout", "0"], LORA, "acts"),
    "--lora-target": (lambda t, b: [*LORA, "--lora-target", "k_proj"], LORA, "acts"),
    "--refine": (lambda t, b: ["--strategy", "wanda", "--refine", "dsnot"], ["--strategy", "wanda"], "acts"),
    "--refine-param": (lambda t, b: ["--strategy", "wanda", "--refine", "dsnot", "--refine-param", "threshold=0"],
                       ["--strategy", "wanda", "--refine", "dsnot"], "acts"),
    "--tasks": (lambda t, b: ["--tasks", "boolq", "--task-root", str(_boolq_folder(b))], [], "acts"),
    "--task-root": (lambda t, b: ["--task-root", str(_boolq_folder(b))], [], "name the tasks too"),
    "--dtype": (lambda t, b: ["--dtype", "bfloat16"], [], "acts"),
}


def _boolq_folder(root: Path) -> Path:
    """A task folder with four boolq examples in the hub dataset's fields (`shrinkbench.llm.tasks`)."""
    folder = root / "tasks"
    (folder / "boolq").mkdir(parents=True, exist_ok=True)
    (folder / "boolq" / "validation.jsonl").write_text("".join(
        json.dumps({"question": f"is the earth {w}", "passage": f"the earth was {w}.", "idx": i, "label": i % 2}) + "\n"
        for i, w in enumerate(("good", "void", "dark", "great"))))
    return folder


def _observed(store: Path, out: str) -> dict:
    """What a run leaves to see: its record's config and where it ran, the store, the output."""
    (path,) = list((store / "runs").glob("*.json"))
    record = json.loads(path.read_text())
    return {"config": record["config"], "perplexity": [m["value"] for m in record["metrics"]
                                                       if m["metric"] == "perplexity"],
            "threads": record["provenance"].get("threads"), "store": str(store), "json": out.startswith("{")}


def test_every_prune_llm_option_acts_or_is_refused(tiny, bad, tmp_path, capsys):
    assert _option_strings("prune-llm") == set(WALK), "a new option needs its line in WALK"
    shutil.copytree(tiny / "model", bad / "twin", dirs_exist_ok=True)
    (bad / "twin" / "generation_config.json").write_text("{}\n")  # same weights, another folder hash
    (bad / "other.txt").write_text((tiny / "text.txt").read_text().replace("earth", "stone"))
    threads = torch.get_num_threads()
    seen: dict[str, dict] = {}

    def run(args: list[str], name: str) -> tuple[int, str, str]:
        argv = base_args(tiny, tmp_path / name, *args)  # the last --store, --threads... given wins
        store = Path(args[args.index("--store") + 1]) if "--store" in args else tmp_path / name
        try:
            status = main(argv)
        finally:
            torch.set_num_threads(threads)
        out, err = capsys.readouterr()
        return status, out, err, store

    for option, (args, against, expected) in WALK.items():
        status, out, err, store = run(args(tiny, bad), f"with{option}")
        if expected != "acts":
            assert status == 2 and err.count("\n") == 1 and expected in err, (option, err)
            continue
        assert status == 0, (option, err)
        key = " ".join(against)
        if key not in seen:
            b_status, b_out, b_err, b_store = run(against, f"base{len(seen)}")
            assert b_status == 0, b_err
            seen[key] = _observed(b_store, b_out)
        assert _observed(store, out) != seen[key], f"{option} changed nothing"


# option of an LLM suite's [run] -> (its TOML line, "acts" or a refusal's words); a [run] line is
# compared with the suite without it (strategies magnitude and wanda, so calibration acts)
RUN_WALK = {
    "model": ('model = "x"', "would be overridden"),
    "model_sha256": ('model_sha256 = "x"', "computed from the files"),
    "tokenizer": ('tokenizer = "{tiny}/model"', "acts"),
    "tokenizer_sha256": ('tokenizer_sha256 = "x"', "computed from the files"),
    "dataset": ('dataset = "kjv"', "would be overridden"),
    "text_sha256": ('text_sha256 = "x"', "computed from the files"),
    "strategy": ('strategy = "wanda"', "would be overridden"),
    "strategy_params": ("strategy_params = {{}}", "would be overridden"),
    "strategy_sha256": ('strategy_sha256 = "x"', "computed from the files"),
    "strategy_label": ('strategy_label = "x"', "would be overridden"),
    "scope": ('scope = "row"', "would be overridden"),
    "sparsity": ("sparsity = 0.6", "would be overridden"),
    "pattern": ('pattern = "2:4"', "would be overridden"),
    "seed": ("seed = 3", "would be overridden"),
    "seq_len": ("seq_len = 24", "acts"),
    "calib_sequences": ("calib_sequences = 4", "acts"),
    "calib_batch": ("calib_batch = 2", "acts"),
    "eval_windows": ("eval_windows = 3", "acts"),
    "layers": ('layers = "attention"', "layers must be one of blocks"),
    "exclude": ('exclude = ["*.mlp.down_proj"]', "acts"),
    "finetune_steps": ("finetune_steps = 1", "acts"),
    "finetune_lr": ("finetune_steps = 1\nfinetune_lr = 0.001", "acts"),
    "finetune_batch": ("finetune_steps = 1\nfinetune_batch = 1", "acts"),
    "throughput_repeats": ("throughput_repeats = 2", "acts"),
    "threads": ("threads = 1", "acts"),
    "unit": ('unit = "heads"', "would be overridden"),
    "save_to": ('save_to = "{tiny}/saved"', "needs a structured unit"),
    "text_root": ('text_root = "{tiny}"', "does not read it"),
    "download": ("download = true", "leave it out"),
    "allocation": ('allocation = "owl"', "would be overridden"),
    "allocation_params": ("allocation_params = {{}}", "would be overridden"),
    "allocation_sha256": ('allocation_sha256 = "x"', "computed from the files"),
    "refine_sha256": ('refine_sha256 = "x"', "computed from the files"),
    "ties": ('ties = "seeded"', "acts"),
    "finetune_method": ('finetune_steps = 1\nfinetune_method = "lora"', "acts"),
    "lora_rank": ('finetune_steps = 1\nfinetune_method = "lora"\nlora_rank = 4', "acts"),
    "lora_alpha": ('finetune_steps = 1\nfinetune_method = "lora"\nlora_alpha = 8.0', "acts"),
    "lora_dropout": ('finetune_steps = 1\nfinetune_method = "lora"\nlora_dropout = 0.0', "acts"),
    "lora_targets": ('finetune_steps = 1\nfinetune_method = "lora"\nlora_targets = ["k_proj"]', "acts"),
    "refine": ('refine = "dsnot"', "would be overridden"),
    "refine_params": ("refine_params = {{}}", "would be overridden"),
    # its calibration text (without its zero-shot tasks, whose data would be refused first)
    "protocol": ('protocol = "llm-pruner"\ntasks = []', "c4-train.00000-of-01024.json.gz is not in"),
    "calib_text": ('calib_text = "kjv"', "would be overridden"),
    "calib_sha256": ('calib_sha256 = "x"', "computed from the files"),
    "tasks": ('tasks = ["boolq"]\ntask_root = "{tiny}/tasks"', "acts"),
    "tasks_sha256": ('tasks_sha256 = "x"', "computed from the files"),
    "task_root": ('task_root = "{tiny}/tasks"', "name the tasks too"),
    "dtype": ('dtype = "bfloat16"', "acts"),
}


def test_every_llm_suite_run_setting_acts_or_is_refused(tiny, tmp_path):
    import dataclasses

    from shrinkbench.llm.config import LLMRunConfig
    from shrinkbench.core.suite import load_suite

    assert {f.name for f in dataclasses.fields(LLMRunConfig)} == set(RUN_WALK), "a new field needs its line"

    def configs(run: str, name: str):
        suite = write_llm_suite(tmp_path / f"{name}.toml", tiny, strategies='["magnitude", "wanda"]')
        text = suite.read_text()
        for line in run.splitlines():  # a [run] key the base suite sets is replaced, not repeated
            text = "\n".join(t for t in text.splitlines() if not t.startswith(line.split(" = ")[0] + " = ")) + "\n"
        suite.write_text(text + run + "\n")
        return {c.run_id: c for c in load_suite(str(suite)).configs}

    base = configs("", "base")
    _boolq_folder(tiny)
    for field, (line, expected) in RUN_WALK.items():
        line = line.format(tiny=tiny)
        if expected == "acts":
            changed = configs(line, field)
            assert set(changed) != set(base), f"[run] {field} changed no run"
        else:
            with pytest.raises((ConfigError, DataNotFoundError), match=expected.replace("(", r"\(")):
                configs(line, field)


def test_a_scope_under_n_m_is_one_run_not_two_with_equal_numbers(tiny, tmp_path):
    from shrinkbench.core.suite import load_suite

    suite = write_llm_suite(tmp_path / "s.toml", tiny, patterns='["2:4"]',
                            strategies='[{name = "wanda", scope = "row"}, {name = "wanda", scope = "layer"}]')
    pruned = [c for c in load_suite(str(suite)).configs if not c.is_dense]
    assert len(pruned) == 1 and pruned[0].scope == "row" and pruned[0].sparsity == 0.5


def test_an_n_m_suite_runs_at_the_patterns_sparsity(tiny, tmp_path):
    from shrinkbench.core.suite import load_suite

    suite = write_llm_suite(tmp_path / "s.toml", tiny, patterns='["1:4", "2:4"]')
    assert sorted(c.sparsity for c in load_suite(str(suite)).configs) == [0.0, 0.5, 0.75]


# ------------------------------------------------------------------ kept counts after prune(), every scope

def _engine_model(tiny):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny / "model", dtype=torch.float32).eval()


class _OneMore:
    """Correct on the dry run's 8-row layer; one weight too many on the model's wider layers."""

    needs_inputs = needs_xtx = False
    scopes = ("row", "layer", "block", "global")
    default_scope = "layer"
    name = "one_more"

    def prune(self, weight, inputs, sparsity, nm, scope):
        from shrinkbench.llm.methods import keep_mask

        keep = keep_mask(weight.abs(), sparsity, nm, "row" if scope == "row" else "layer")
        if weight.shape[0] > 8 and scope != "mine":
            keep[0, (~keep[0]).nonzero()[0, 0]] = True
        return weight * keep, keep


@pytest.mark.parametrize("scope, nm, words", [("row", None, "rows must keep"), ("layer", None, "kept"),
                                               ("block", None, "kept"), ("layer", (2, 4), "not 2:4"),
                                               ("mine", None, "scope 'mine' is not one of")])
def test_the_kept_count_of_every_layer_is_checked_after_prune_for_every_scope(tiny, scope, nm, words):
    from shrinkbench.llm.engine import prune_model

    with pytest.raises(StrategyError, match=words):
        prune_model(_engine_model(tiny), _OneMore(), 0.5, nm, scope, (), None)


def test_global_keeps_the_exact_total_and_a_wrong_total_is_refused(tiny):
    from shrinkbench.llm.engine import check_total_kept
    from shrinkbench.llm.engine import prune_model
    from shrinkbench.llm.methods import Magnitude, keep_count

    masks = prune_model(_engine_model(tiny), Magnitude(), 0.3, None, "global", (), None)
    total = sum(m.numel() for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == keep_count(total, 0.3)
    first = next(iter(masks))
    masks[first] = masks[first].clone()
    masks[first].view(-1)[(~masks[first]).view(-1).nonzero()[0, 0]] = True  # one weight too many
    with pytest.raises(StrategyError, match="together kept"):
        check_total_kept(masks, 0.3, None, "global", "magnitude")


def test_a_strategy_declaring_an_unknown_scope_is_refused_even_when_its_counts_are_right():
    from shrinkbench.llm.checks import check_declaration
    from shrinkbench.llm.methods import Magnitude

    odd = Magnitude()
    odd.scopes, odd.default_scope = ("layer", "mine"), "layer"
    with pytest.raises(ConfigError, match="declares scope 'mine'"):
        check_declaration(odd, "odd")
    check_declaration(Magnitude(), "magnitude")  # the registered ones pass


# ------------------------------------------------------------------ a killed GGUF conversion

KILLED_CONVERSION = '''
import os, signal, sys
from pathlib import Path

import safetensors.torch
import transformers

from shrinkbench.llm import models

tiny = sys.argv[1]
real_model = transformers.AutoModelForCausalLM.from_pretrained
real_tokenizer = transformers.AutoTokenizer.from_pretrained
transformers.AutoModelForCausalLM.from_pretrained = lambda *a, **k: real_model(tiny)
transformers.AutoTokenizer.from_pretrained = lambda *a, **k: real_tokenizer(tiny)


def killed_while_writing(model, path, metadata=None):
    Path(path).write_bytes(bytes(1_000_000))  # part of the weights, then the kill
    os.kill(os.getpid(), signal.SIGKILL)


safetensors.torch.save_model = killed_while_writing
models._dequantized_folder(models.ModelSource("tiny", "gguf", tiny, "tiny.gguf"), "ab" * 32)
'''


def test_a_killed_gguf_conversion_is_removed_by_the_next_one(tiny, tmp_path, monkeypatch):
    from shrinkbench.llm import models

    cache = tmp_path / "cache"
    done = subprocess.run([sys.executable, "-c", KILLED_CONVERSION, str(tiny / "model")], capture_output=True,
                          text=True, env={**os.environ, "SHRINKBENCH_CACHE": str(cache)}, timeout=300)
    assert done.returncode == -9, done.stderr
    partial = [p for p in (cache / "llm").iterdir() if p.name.startswith(".tmp-")]
    assert len(partial) == 1 and (partial[0] / "model.safetensors").stat().st_size == 1_000_000
    real_model = transformers.AutoModelForCausalLM.from_pretrained
    real_tokenizer = transformers.AutoTokenizer.from_pretrained
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained",
                        lambda *a, **k: real_model(tiny / "model"))
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: real_tokenizer(tiny / "model"))
    folder = Path(models._dequantized_folder(models.ModelSource("tiny", "gguf", str(tiny), "tiny.gguf"), "ab" * 32))
    assert (folder / "COMPLETE").is_file() and (folder / "model.safetensors").stat().st_size > 1_000
    assert sorted(p.name for p in (cache / "llm").iterdir()) == [folder.name], "nothing of the killed one is left"


def test_one_seq_len_default_for_the_command_line_and_suites(tiny, tmp_path, capsys):
    """The tiny model has 128 positions: both refuse the one default, 256, with its number."""
    from shrinkbench.llm.config import DEFAULT_SEQ_LEN, LLMRunConfig
    from shrinkbench.core.suite import load_suite

    assert LLMRunConfig().seq_len == DEFAULT_SEQ_LEN == 256
    argv = [a for a in base_args(tiny, tmp_path / "store") if a not in ("--seq-len", "16")]
    assert main(argv) == 2
    assert "seq_len is 256" in capsys.readouterr().err
    suite = write_llm_suite(tmp_path / "s.toml", tiny)
    suite.write_text(suite.read_text().replace("seq_len = 16\n", ""))
    with pytest.raises(ConfigError, match="seq_len is 256"):
        load_suite(str(suite))


def test_a_diverging_fine_tune_fails_its_run_in_words_without_torch_warnings(tiny, tmp_path):
    done = _cli(*base_args(tiny, tmp_path / "store", "--finetune-steps", "5", "--finetune-lr", "1e30"),
                cache=tmp_path / "cache")
    assert done.returncode == 1 and "loss became nan" in done.stdout, done.stdout + done.stderr
    assert "Warning" not in done.stderr, done.stderr


def test_a_gguf_conversion_prints_no_progress_bars(tiny, tmp_path, monkeypatch, capfd):
    """Under --quiet nothing but the tool's own lines reach the terminal; the conversion's bars
    are transformers' (its own tqdm), switched off for it."""
    from transformers.utils import logging as hf_logging

    from shrinkbench.llm import models

    real_model = transformers.AutoModelForCausalLM.from_pretrained
    real_tokenizer = transformers.AutoTokenizer.from_pretrained

    def converting(*args, **kwargs):
        for _ in hf_logging.tqdm(range(3), desc="Converting and de-quantizing GGUF tensors"):
            pass
        return real_model(tiny / "model")

    hf_logging.enable_progress_bar()
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", converting)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: real_tokenizer(tiny / "model"))
    capfd.readouterr()
    models._dequantized_folder(models.ModelSource("tiny", "gguf", str(tiny), "tiny.gguf"), "cd" * 32)
    out, err = capfd.readouterr()
    assert "Converting" not in out + err and "it/s" not in out + err, err
