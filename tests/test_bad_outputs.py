"""Bad output paths of the analysis and bad options of the structured (vision) runs: one line on
stderr, exit 2, before any work, nothing written (as tests/test_trust.py shows for the vision
runner's input)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from shrinkbench.cli import main

from analysis_fixtures import synthetic_store
from runner_helpers import write_suite
from test_trust import snapshot

READ_ONLY = "/proc/self"
"""A folder no user can create files in (permission bits do not bind root, /proc does)."""


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return synthetic_store(tmp_path_factory.mktemp("store"), np.random.default_rng(0),
                           {"global_magnitude": 1.0, "random": -2.0})


# command -> (argv from (store, tmp), what stderr says)
OUTPUTS = {
    "report into a file": (lambda s, t: ["report", "--store", str(s), "--out", str(t / "a_file")], "is a file"),
    "report into a read-only folder": (lambda s, t: ["report", "--store", str(s), "--out", READ_ONLY],
                                       "cannot write into /proc/self"),
    "report under a file": (lambda s, t: ["report", "--store", str(s), "--out", str(t / "a_file" / "r")],
                            "which is a file"),
    "compare into a read-only folder": (lambda s, t: ["compare", "--store", str(s), "--method", "random", "--out",
                                                      f"{READ_ONLY}/cmp"], "cannot write into /proc/self"),
    "compare into a file": (lambda s, t: ["compare", "--store", str(s), "--method", "random", "--out",
                                          str(t / "a_file")], "is a file"),
    "results into a read-only folder": (lambda s, t: ["results", "--store", str(s), "--out", f"{READ_ONLY}/r.csv"],
                                        "cannot write into /proc/self"),
    "results under a file": (lambda s, t: ["results", "--store", str(s), "--out", str(t / "a_file" / "r.csv")],
                             "which is a file"),
    "results into an existing folder": (lambda s, t: ["results", "--store", str(s), "--out", str(t)],
                                        "is a folder; name the file"),
    "plan-seeds into a folder": (lambda s, t: ["plan-seeds", "--store", str(s), "--target", "1", "--out", str(t)],
                                 "is a folder"),
    "plan-seeds to an infinite target": (lambda s, t: ["plan-seeds", "--store", str(s), "--target", "inf"],
                                         "positive finite number"),
    "literature plot as gif": (lambda s, t: ["literature", "--dataset", "cifar10", "--model", "resnet56",
                                             "--plot", str(t / "x.gif")], "not .gif"),
}


@pytest.mark.parametrize("case", sorted(OUTPUTS))
def test_a_bad_output_path_is_one_line_exit_2_and_nothing_written(store, tmp_path, capsys, case):
    (tmp_path / "a_file").write_text("mine\n")
    argv, message = OUTPUTS[case]
    before, store_before = snapshot(tmp_path), snapshot(store)
    status = main(argv(store, tmp_path))
    out, err = capsys.readouterr()
    assert status == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert snapshot(tmp_path) == before and snapshot(store) == store_before, "nothing written"


@pytest.mark.skipif(os.geteuid() == 0, reason="permission bits do not bind root (the /proc cases cover it)")
def test_a_read_only_folder_is_refused_for_a_user(store, tmp_path, capsys):
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o555)
    assert main(["report", "--store", str(store), "--out", str(folder)]) == 2
    assert "cannot write into" in capsys.readouterr().err


# ------------------------------------------------------------------ structured and vision runs

PRUNE = ["prune", "--model", "lenet_300_100", "--dataset", "digits", "--strategy", "global_magnitude",
         "--compression", "2", "--quiet", "--threads", "1"]

RUNS = {
    "gradual with split budget": (lambda t, s: [*PRUNE, "--schedule", "gradual", "--split-budget", "--store", str(s)],
                                  "schedule gradual with prune_steps 1 has nothing to split"),
    "one step with split budget": (lambda t, s: [*PRUNE, "--split-budget", "--store", str(s)], "nothing to split"),
    "save-pruned into a file": (lambda t, s: [*PRUNE, "--save-pruned", "--store", str(t / "odd_store")],
                                "pruned is not a writable folder"),
    "benchmark report into a file": (lambda t, s: ["benchmark", "--suite", str(t / "s.toml"), "--store", str(s),
                                                   "--out", str(t / "a_file"), "--quiet"], "is a file"),
}


@pytest.mark.parametrize("case", sorted(RUNS))
def test_bad_run_options_are_one_line_exit_2_before_any_run(tmp_path, capsys, case):
    (tmp_path / "a_file").write_text("mine\n")
    (tmp_path / "odd_store").mkdir()
    (tmp_path / "odd_store" / "pruned").write_text("not a folder")
    write_suite(tmp_path / "s.toml", compressions="[1, 2]", latency=False)
    argv, message = RUNS[case]
    status = main(argv(tmp_path, tmp_path / "store"))
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "store").exists() and not list((tmp_path / "odd_store").glob("runs/*"))


def test_save_pruned_on_a_stored_run_is_refused_not_skipped(tmp_path, capsys):
    store = tmp_path / "store"
    assert main([*PRUNE, "--store", str(store)]) == 0
    capsys.readouterr()
    before = snapshot(store)
    assert main([*PRUNE, "--store", str(store), "--save-pruned"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stored without a saved model" in err
    assert snapshot(store) == before and not (store / "pruned").exists()


def test_the_largest_reachable_speedup_named_is_itself_reachable():
    """lenet5_caffe's largest channel speedup is 143.0799...: 143.09 was refused with 'about 143.1'."""
    from shrinkbench.core.errors import CompressionError
    from shrinkbench.vision.pruning import resolve_strategy
    from shrinkbench.vision.structured.prune import check_target

    strategy = resolve_strategy("global_l1")
    with pytest.raises(CompressionError) as refused:
        check_target("lenet5_caffe", None, strategy, "speedup", 143.09)
    shown = float(re.search(r"largest reachable is ([0-9.]+)", str(refused.value)).group(1))
    assert 143.0 < shown < 143.09
    check_target("lenet5_caffe", None, strategy, "speedup", shown)  # the number named is accepted
