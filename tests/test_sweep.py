"""Suites, re-runs, kills and concurrent sweeps on one store."""
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from shrinkbench.cli import main
from shrinkbench.core.errors import ShrinkBenchError, UnknownNameError
from shrinkbench.core.store import Store
from shrinkbench.core.suite import load_suite
from shrinkbench.core.sweep import pin_threads

from runner_helpers import write_suite

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def shrinkbench(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "shrinkbench.cli", *args, "--threads", "1"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def stored_ids(store: Path) -> list[str]:
    return sorted(json.loads(p.read_text())["run_id"] for p in (store / "runs").glob("*.json"))


def test_suite_expands_and_dedups_the_dense_run(tmp_path):
    suite = load_suite(str(write_suite(tmp_path / "s.toml", seeds="[0, 1]")))
    # 2 strategies x {2, 4} x 2 seeds + 1 dense per seed
    assert len(suite.configs) == 2 * 2 * 2 + 2
    assert sum(c.is_dense for c in suite.configs) == 2
    assert len({c.run_id for c in suite.configs}) == len(suite.configs)


def test_zip_seeding_pairs_base_and_run_seeds(tmp_path):
    path = write_suite(tmp_path / "s.toml", seeds="[0, 1, 2]")
    text = path.read_text().replace("seeds = [0, 1, 2]", 'seeds = [0, 1, 2]\nbase_seeds = [5, 6, 7]\nseeding = "zip"')
    path.write_text(text)
    pairs = {(c.base.seed, c.seed) for c in load_suite(str(path)).configs}
    assert pairs == {(5, 0), (6, 1), (7, 2)}


def test_by_default_every_run_seed_has_its_own_base_model_and_the_design_is_said(tmp_path, capsys):
    path = write_suite(tmp_path / "s.toml", seeds="[0, 1, 2]")
    suite = load_suite(str(path))
    assert {(c.base.seed, c.seed) for c in suite.configs} == {(0, 0), (1, 1), (2, 2)}
    assert "3 base model(s) x 1 run seed(s)" in suite.design and "replicates" in suite.design
    product = path.read_text().replace("seeds = [0, 1, 2]", 'seeds = [0, 1, 2]\nbase_seeds = [0]\nseeding = "product"')
    (tmp_path / "p.toml").write_text(product)
    one = load_suite(str(tmp_path / "p.toml"))
    assert {(c.base.seed, c.seed) for c in one.configs} == {(0, 0), (0, 1), (0, 2)}
    assert "these starting weights only" in one.design
    (tmp_path / "z.toml").write_text(path.read_text().replace("seeds = [0, 1, 2]", "seeds = [0, 1, 2]\nbase_seeds = [0]"))
    with pytest.raises(ShrinkBenchError, match='seeding = "product"'):
        load_suite(str(tmp_path / "z.toml"))
    assert main(["run", str(tmp_path / "p.toml"), "--dry-run", "--store", str(tmp_path / "store")]) == 0
    err = capsys.readouterr().err
    assert max(len(line) for line in err.splitlines()) <= 100  # wrapped for a terminal
    err = " ".join(err.replace("\n    ", " ").split())
    assert 'seeding = "product"' in err and "these starting weights only" in err


@pytest.mark.parametrize("mutate,message", [
    (lambda t: t.replace('compressions = [1, 2, 4]', 'compressions = [1, 2, 4'), "not valid TOML"),
    (lambda t: t.replace('[finetune]\nepochs = 1', '[finetune]\nepochs = "many"'), "finetune.epochs: expected an integer"),
    (lambda t: t.replace('lr = 0.05\nbatch_size = 64\n[run]', 'lrr = 0.05\nbatch_size = 64\n[run]'), "unknown setting 'finetune.lrr'"),
    (lambda t: t.replace('seeds = [0]', 'seeds = 0'), "[sweep] seeds must be a non-empty list"),
    (lambda t: t.replace('[sweep]', '[sweeps]'), "unknown section [sweeps]"),
    (lambda t: t.replace('compressions = [1, 2, 4]', 'compressions = [1, 2, 1e6]'), "largest reachable"),
])
def test_malformed_suite_says_where(tmp_path, mutate, message):
    path = write_suite(tmp_path / "bad.toml")
    path.write_text(mutate(path.read_text()))
    with pytest.raises(ShrinkBenchError) as err:
        load_suite(str(path))
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_unknown_strategy_in_suite_lists_close_matches(tmp_path):
    path = write_suite(tmp_path / "s.toml", strategies=('"layerwise_magnitud"',))
    with pytest.raises(UnknownNameError, match="layerwise_magnitude"):
        load_suite(str(path))


def test_cli_errors_are_one_line_and_write_nothing(tmp_path, capsys):
    store = tmp_path / "store"
    assert main(["prune", "--model", "lenet_300_100", "--dataset", "digits", "--strategy", "random",
                 "--compression", "0.5", "--store", str(store)]) == 2
    assert main(["run", str(tmp_path / "missing.toml"), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "compression must be >= 1" in err and "not found" in err
    assert not store.exists()


def test_rerun_skips_finished_runs_and_nothing_is_duplicated(tmp_path):
    suite = write_suite(tmp_path / "s.toml")
    store = tmp_path / "store"
    first = shrinkbench("run", str(suite), "--store", str(store), "--quiet")
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert "5 run now" in err
    second = shrinkbench("run", str(suite), "--store", str(store), "--quiet")
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0 and "5 already stored, 0 run now" in err
    assert len(stored_ids(store)) == 5


def test_kill_mid_sweep_loses_only_the_run_in_flight_and_rerun_completes(tmp_path):
    suite = write_suite(tmp_path / "s.toml", seeds="[0, 1]")
    store = tmp_path / "store"
    expected = {c.run_id for c in pin_threads(load_suite(str(suite)).configs, 1)}  # the sweeps' --threads 1
    proc = shrinkbench("run", str(suite), "--store", str(store), "--quiet")
    deadline = time.time() + 300
    while time.time() < deadline and len(list((store / "runs").glob("*.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = set(stored_ids(store))
    assert 2 <= len(done_before) < len(expected)
    for rid in done_before:  # every record that exists is complete and readable
        assert Store(store).state(rid).status == "ok"
    again = shrinkbench("run", str(suite), "--store", str(store), "--quiet")
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    ids = stored_ids(store)
    assert set(ids) == expected and len(ids) == len(expected)
    assert not list((store / "claims").glob("*.claim")), "the dead sweep's claim was taken over and released"


def test_two_sweeps_on_one_store_duplicate_nothing_and_lose_nothing(tmp_path):
    suite = write_suite(tmp_path / "s.toml", seeds="[0, 1]", base_seeds="[0]", seeding="product")
    store = tmp_path / "store"
    expected = {c.run_id for c in pin_threads(load_suite(str(suite)).configs, 1)}  # the sweeps' --threads 1
    procs = [shrinkbench("run", str(suite), "--store", str(store), "--quiet") for _ in range(2)]
    results = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1] for r in results]
    ids = stored_ids(store)
    assert Counter(ids).most_common(1)[0][1] == 1 and set(ids) == expected
    # a run "being run by another process" by one sweep was finished by the other
    assert len(list((store / "bases").glob("*.pt"))) == 1, "the shared base model was trained once"


def test_corrupt_record_is_reported_and_skipped_then_rerun(tmp_path):
    suite = write_suite(tmp_path / "s.toml", compressions="[1, 2]", strategies=('"random"',))
    store = tmp_path / "store"
    assert main(["run", str(suite), "--store", str(store), "--quiet", "--threads", "1"]) == 0
    victim = sorted((store / "runs").glob("*.json"))[0]
    victim.write_text('{"schema": 1, "run_id": "trunc')
    with pytest.warns(UserWarning, match="not valid JSON"):
        records = list(Store(store).records())
    assert len(records) == 1
    assert main(["run", str(suite), "--store", str(store), "--quiet", "--threads", "1"]) == 0
    assert Store(store).state(victim.stem).status == "ok"


def test_variants_multiply_the_sweep_and_are_named(tmp_path):
    path = write_suite(tmp_path / "s.toml", compressions="[1, 4]", extra=(
        '[variants.A.base.train]\nlr = 0.1\n[variants.B.base.train]\noptimizer = "adam"\nlr = 0.001\n'))
    suite = load_suite(str(path))
    assert len(suite.configs) == 2 * 3
    by_variant = {}
    for cfg in suite.configs:
        by_variant.setdefault(suite.variant_of[cfg.run_id], set()).add(cfg.base.train.optimizer)
        assert cfg.base.train.epochs == 1, "a variant overrides only what it names"
    assert by_variant == {"A": {"sgd"}, "B": {"adam"}}
