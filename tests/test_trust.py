"""Trusting the store: a user's method is identified by its code, stray copies count once, user
code cannot end a command silently, a misbehaving strategy fails its own run, bad input is one
line with exit 2 and leaves the store as it was, and a finished sweep leaves the store clean."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from shrinkbench.cli import main
from shrinkbench.vision.models import create_model
from shrinkbench.core.store import Store

from runner_helpers import write_suite

METHOD = '''
from shrinkbench.vision.pruning import Strategy


class Mine(Strategy):
    """Keeps the LARGEST weights."""
    scope = "global"

    def __init__(self, power: int = 1):
        self.power = power

    def score(self, ctx):
        return {n: w.detach().abs() ** self.power for n, w in ctx.weights.items()}
'''
SMALLEST = METHOD.replace('"""Keeps the LARGEST weights."""', '"""Keeps the SMALLEST weights."""').replace(
    "return {n: w.detach().abs() ** self.power", "return {n: -w.detach().abs() ** self.power")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes (empty when the folder does not exist)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def records(store: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((store / "runs").glob("*.json"))]


def user_suite(tmp_path: Path, method_file: Path, extra_strategy: str = "") -> Path:
    names = ('"global_magnitude"', f'"{method_file}:Mine"') + ((extra_strategy,) if extra_strategy else ())
    return write_suite(tmp_path / "suite.toml", strategies=names, compressions="[1, 8]", latency=False)


def test_editing_a_strategy_file_makes_new_runs_and_keeps_both_apart(tmp_path, capsys):
    method = tmp_path / "mymethod.py"
    method.write_text(METHOD)
    suite, store = user_suite(tmp_path, method), tmp_path / "store"
    assert main(["run", str(suite), "--store", str(store), "--quiet", "--threads", "1"]) == 0
    method.write_text(SMALLEST)  # same name, different code
    assert main(["run", str(suite), "--store", str(store), "--quiet", "--threads", "1"]) == 0
    assert "1 run now" in capsys.readouterr().err  # the edited method ran; the rest was stored
    mine = [r for r in records(store) if r["config"]["strategy"].endswith(":Mine")]
    assert len(mine) == 2 and len({r["config"]["strategy_sha256"] for r in mine}) == 2
    for record in mine:  # each record keeps the hash and path of the code that made it
        assert record["provenance"]["strategy_source_sha256"] == record["config"]["strategy_sha256"]
        assert record["provenance"]["strategy_source"] == str(method.resolve())
    top1 = {r["config"]["strategy_sha256"]: [m["value"] for m in r["metrics"]
                                             if (m["stage"], m["split"], m["metric"]) == ("pre", "test", "top1")][0]
            for r in mine}
    assert len(set(top1.values())) == 2  # different numbers, both kept
    name = f"{method}:Mine"
    assert main(["compare", "--store", str(store), "--method", name, "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert "2 versions of its code" in err and err.count("\n") == len(err.splitlines())
    rows = [line.split(",") for line in out.splitlines()[1:]]
    methods = {row[out.splitlines()[0].split(",").index("method")] for row in rows}
    assert methods == {f"{name}@{sha[:12]}" for sha in top1}


def test_parameters_enter_the_identity_and_a_label_names_the_method(tmp_path, capsys):
    method = tmp_path / "mymethod.py"
    method.write_text(METHOD)
    entry = f'{{name = "{method}:Mine", params = {{power = 2}}, label = "squares"}}'
    suite, store = user_suite(tmp_path, method, entry), tmp_path / "store"
    assert main(["run", str(suite), "--store", str(store), "--quiet", "--threads", "1"]) == 0
    mine = [r for r in records(store) if r["config"]["strategy"].endswith(":Mine")]
    assert sorted(r["config"].get("strategy_params", {}).get("power", 1) for r in mine) == [1, 2]
    assert len({r["run_id"] for r in mine}) == 2
    assert main(["compare", "--store", str(store), "--method", "squares", "--format", "csv"]) == 0
    assert "squares" in capsys.readouterr().out
    bad = suite.read_text().replace("power = 2", "strength = 2")
    (tmp_path / "bad.toml").write_text(bad)
    assert main(["run", str(tmp_path / "bad.toml"), "--store", str(store)]) == 2
    assert "no parameter 'strength'; it takes power" in capsys.readouterr().err


def test_a_stray_copy_of_a_record_counts_once_and_is_named(tmp_path, capsys):
    suite, store = write_suite(tmp_path / "s.toml", compressions="[1, 4]", latency=False), tmp_path / "store"
    assert main(["run", str(suite), "--store", str(store), "--quiet", "--threads", "1"]) == 0
    assert main(["results", "--store", str(store), "--format", "csv"]) == 0
    before = capsys.readouterr().out.count("\n")
    original = sorted((store / "runs").glob("*.json"))[0]
    shutil.copy(original, store / "runs" / "copy of a record.json")
    assert main(["results", "--store", str(store), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == before
    assert "copy of a record.json" in err and original.name in err and "count that run twice" in err


def test_stored_nan_strings_make_a_record_unusable_and_nan_numbers_are_said(tmp_path, capsys):
    suite, store = write_suite(tmp_path / "s.toml", compressions="[1, 4]", latency=False), tmp_path / "store"
    assert main(["run", str(suite), "--store", str(store), "--quiet", "--threads", "1"]) == 0
    first, second = sorted((store / "runs").glob("*.json"))[:2]
    for path, value in ((first, "NaN"), (second, float("nan"))):
        record = json.loads(path.read_text())
        record["metrics"][0]["value"] = value
        path.write_text(json.dumps(record))
    assert main(["results", "--store", str(store), "--format", "csv"]) == 0
    err = capsys.readouterr().err
    assert f"skipped {first}" in err and "non-numeric value 'NaN'" in err
    assert f"{second}: non-finite value" in err


def test_a_corrupt_only_record_is_named_with_its_reason(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "abc.json").write_text('{"schema": 1, "run_id": "ab')
    assert main(["results", "--store", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "abc.json: not valid JSON" in err


# ------------------------------------------------------------------ misbehaving user code

BAD_STRATEGIES = {
    "exits at import": ("import sys\nsys.exit(0)\n", "called sys.exit(0)"),
    "wrong shape": ("class S(Strategy):\n    def score(self, ctx):\n        return {n: w.detach().flatten() for n, w in "
                    "ctx.weights.items()}\n", "has shape"),
    "nan scores": ("class S(Strategy):\n    def score(self, ctx):\n        return {n: w.detach() * float('nan') for n, w in "
                   "ctx.weights.items()}\n", "non-finite scores"),
    "not a tensor": ("class S(Strategy):\n    def score(self, ctx):\n        return {n: 1.0 for n in ctx.weights}\n",
                     "no score tensor"),
    "bad scope": ("class S(Strategy):\n    scope = 'everywhere'\n    def score(self, ctx):\n        return {}\n",
                  "scope 'everywhere'"),
    "raises": ("class S(Strategy):\n    def score(self, ctx):\n        raise KeyError('gone')\n", "raised KeyError"),
}


@pytest.mark.parametrize("case", sorted(BAD_STRATEGIES))
def test_a_misbehaving_strategy_is_refused_before_the_sweep_in_one_line(tmp_path, capsys, case):
    body, message = BAD_STRATEGIES[case]
    method = tmp_path / "bad.py"
    method.write_text("from shrinkbench.vision.pruning import Strategy\n" + body)
    suite, store = write_suite(tmp_path / "s.toml", strategies=(f'"{method}:S"',), latency=False), tmp_path / "store"
    assert main(["run", str(suite), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not store.exists(), "nothing written"


def test_sys_exit_in_a_strategy_file_cannot_end_prune_silently(tmp_path):
    method = tmp_path / "quits.py"
    method.write_text("import sys\nsys.exit(0)\n")
    done = subprocess.run([sys.executable, "-m", "shrinkbench.cli", "prune", "--model", "lenet_300_100",
                           "--dataset", "digits", "--strategy", f"{method}:S", "--compression", "2",
                           "--store", str(tmp_path / "store")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "sys.exit(0)" in done.stderr
    assert not (tmp_path / "store").exists()


def test_a_scoring_error_at_run_time_fails_that_run_and_the_sweep_goes_on(tmp_path, capsys):
    method = tmp_path / "late.py"
    method.write_text(textwrap.dedent('''
        from shrinkbench.vision.pruning import Strategy

        class Late(Strategy):
            """Scores fine on the dry run's random batch, fails on real data."""
            def score(self, ctx):
                if not ctx.dry_run:
                    raise ValueError("cannot handle real data")
                return {n: w.detach().abs() for n, w in ctx.weights.items()}
        '''))
    suite = write_suite(tmp_path / "s.toml", strategies=('"global_magnitude"', f'"{method}:Late"'), latency=False)
    store = tmp_path / "store"
    assert main(["run", str(suite), "--store", str(store), "--quiet", "--threads", "1"]) == 1
    by_strategy = {}
    for record in records(store):
        by_strategy.setdefault(record["config"]["strategy"].rsplit(":", 1)[-1], []).append(record)
    assert {r["status"] for r in by_strategy["Late"]} == {"failed"}
    assert all("cannot handle real data" in r["error"] for r in by_strategy["Late"])
    assert {r["status"] for r in by_strategy["global_magnitude"]} == {"ok"}
    assert "failed" in capsys.readouterr().err


# ------------------------------------------------------------------ bad input: one line, exit 2, store as it was

def _checkpoint_with_nan(tmp_path: Path) -> Path:
    state = create_model("lenet_300_100").state_dict()
    state["fc1.weight"][0, 0] = float("nan")
    path = tmp_path / "nan.pt"
    torch.save(state, path)
    return path


class Boom:
    def __reduce__(self):
        return (os.system, (f"touch {Path(os.environ.get('BOOM_MARK', '/tmp/boom-marker'))}",))


@pytest.fixture
def stored(tmp_path):
    """A store holding one finished tiny sweep."""
    suite, store = write_suite(tmp_path / "s.toml", compressions="[1, 2]", latency=False), tmp_path / "store"
    assert main(["run", str(suite), "--store", str(store), "--quiet", "--threads", "1"]) == 0
    return suite, store


PRUNE = ["prune", "--model", "lenet_300_100", "--dataset", "digits", "--strategy", "random", "--compression", "2"]
CASES = {
    "negative threads": (lambda t, s, st: ["run", str(s), "--store", str(st), "--threads", "-3"], "--threads: must be >= 1"),
    "zero threads": (lambda t, s, st: ["run", str(s), "--store", str(st), "--threads", "0"], "--threads: must be >= 1"),
    "word threads": (lambda t, s, st: ["run", str(s), "--store", str(st), "--threads", "two"], "whole number"),
    "store is a file": (lambda t, s, st: ["run", str(s), "--store", str(s)], "is a file, not a folder"),
    "store in /proc": (lambda t, s, st: ["run", str(s), "--store", "/proc/shrinkbench-x"], "cannot create the store"),
    "runs is a file": (lambda t, s, st: ["run", str(s), "--store", str(t / "odd")], "runs is a file, not a folder"),
    "missing data root": (lambda t, s, st: ["run", str(s), "--store", str(st), "--data-root", str(t / "nowhere")],
                          "is not a folder"),
    "val_size too large": (lambda t, s, st: ["run", str(t / "val.toml"), "--store", str(st)],
                           "data.val_size must be between 0 and 1499"),
    "checkpoint with nan": (lambda t, s, st: [*PRUNE, "--store", str(st), "--base-checkpoint", str(t / "nan.pt")],
                            "non-finite values"),
    "malicious pickle": (lambda t, s, st: [*PRUNE, "--store", str(st), "--base-checkpoint", str(t / "evil.pt")],
                         "not a readable torch weights file"),
    "unknown option": (lambda t, s, st: ["run", str(s), "--stroe", str(st)], "unrecognized arguments"),
    "unknown strategy": (lambda t, s, st: [*PRUNE[:6], "randm", *PRUNE[7:], "--store", str(st)], "did you mean"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_the_store_is_unchanged(stored, tmp_path, capsys, monkeypatch, case):
    suite, store = stored
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "runs").write_text("not a folder")
    (tmp_path / "val.toml").write_text(suite.read_text() + "[data]\nval_size = 5000\n")
    _checkpoint_with_nan(tmp_path)
    marker = tmp_path / "boom-marker"
    monkeypatch.setenv("BOOM_MARK", str(marker))
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"fc1.weight": Boom()}))
    before = snapshot(store)
    argv, message = CASES[case]
    status = main(argv(tmp_path, suite, store))
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert snapshot(store) == before, "the store is unchanged"
    assert not marker.exists(), "a checkpoint is never executed"
    assert not Path("/proc/shrinkbench-x").exists()


# ------------------------------------------------------------------ a finished sweep leaves the store clean

def test_a_finished_sweep_leaves_no_dead_claims_or_leftovers(tmp_path):
    suite, store = write_suite(tmp_path / "s.toml", compressions="[1, 2]", latency=False), tmp_path / "store"
    assert main(["run", str(suite), "--store", str(store), "--quiet", "--threads", "1"]) == 0
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process of this machine that is gone now
    owner = {**json.loads(json.dumps({"pid": pid})), "host": os.uname().nodename,
             "pidns": os.readlink("/proc/self/ns/pid"), "time": 0}
    run_id = records(store)[0]["run_id"]
    (store / "claims").mkdir(exist_ok=True)
    (store / "claims" / f"{run_id}.claim").write_text(json.dumps(owner))  # a claim on a run with a record
    from shrinkbench.core.store import temporary_path

    leftover = temporary_path(store / "runs" / f"{run_id}.json")
    leftover = leftover.with_name(leftover.name.replace(f".tmp-{os.getpid()}-", f".tmp-{pid}-", 1))
    leftover.write_text("{half")  # a killed writer's file, minutes old
    assert main(["run", str(suite), "--store", str(store), "--quiet", "--threads", "1"]) == 0
    assert not list((store / "claims").glob("*")) and not list((store / "runs").glob(".tmp-*"))
    assert Store(store).tidy() == 0
