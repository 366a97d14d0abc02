"""A command line that explains itself: every flag has help, one word per concept (the
resampling seed is not called a run seed), and a warning when shared cores slow the runs."""
from __future__ import annotations

import argparse

import numpy as np

from shrinkbench import cli
from shrinkbench.analysis.cli import main as analysis_main
from shrinkbench.core.sweep import contention_warning
from analysis_fixtures import synthetic_store


def _actions(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("shrinkbench",)):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, path + (name,))
        elif action.dest != "help":
            yield path, action


def test_every_flag_and_argument_of_every_command_has_help():
    missing = [f"{' '.join(path)} {'/'.join(a.option_strings) or a.dest}" for path, a in _actions(cli.build_parser())
               if not a.help or not a.help.strip()]
    assert not missing, missing
    commands = {path[1] for path, _ in _actions(cli.build_parser()) if len(path) > 1}
    assert {"prune", "run", "benchmark", "compare", "report", "plan-seeds", "results", "zoo", "prune-llm"} <= commands


def test_the_analysis_seed_is_named_as_the_resampling_seed(tmp_path, capsys):
    store = synthetic_store(tmp_path, np.random.default_rng(0), {"a": 1.0, "b": 0.0}, compressions=(2,))
    helps = {a.dest: a for path, a in _actions(cli.build_parser()) if path[-1] == "compare"}
    assert "--resample-seed" in helps["seed"].option_strings and "not a run seed" in helps["seed"].help
    assert analysis_main(["compare", "--store", str(store), "--method", "a", "--resample-seed", "3",
                          "--format", "json"]) == 0
    new = capsys.readouterr().out
    assert analysis_main(["compare", "--store", str(store), "--method", "a", "--seed", "3", "--format", "json"]) == 0
    assert capsys.readouterr().out == new  # the old spelling still works, meaning the same
    assert analysis_main(["report", "--store", str(store), "--out", str(tmp_path / "r"),
                          "--figure-formats", "svg"]) == 0
    assert list((tmp_path / "r" / "figures").glob("*.svg"))


def test_busy_cores_with_several_threads_are_warned_about():
    assert "--threads 1" in contention_warning(load=3.4, cores=2, threads=2)
    assert contention_warning(load=3.4, cores=2, threads=1) == ""  # one thread per process does not collapse
    assert contention_warning(load=1.2, cores=2, threads=2) == ""  # this process alone
