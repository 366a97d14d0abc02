"""Pruning at initialisation trains with the base recipe: a fine-tuning option there would not
act, so the CLI refuses it in one line; --base-epochs sets the epochs it trains."""
from __future__ import annotations

import json

import pytest

from shrinkbench.cli import main

RUN = ["prune", "--model", "lenet_300_100", "--dataset", "digits", "--strategy", "global_magnitude",
       "--compression", "2", "--threads", "1"]


@pytest.mark.parametrize("flags,when", [(["--finetune-epochs", "1"], ["--when", "at_init"]),
                                        (["--finetune-lr", "0.1", "--optimizer", "adam"], ["--when", "at_init"]),
                                        (["--finetune-epochs", "1"], ["--control", "from_scratch"])])
def test_finetune_options_that_would_not_act_are_refused(tmp_path, capsys, flags, when):
    assert main(RUN + when + flags + ["--store", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "would not act" in err and flags[0] in err and "--base-epochs" in err
    assert not (tmp_path / "store").exists()


def test_at_init_trains_the_base_epochs_it_is_given(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[base.train]\nbatch_size = 64\n[measure]\nlatency = false\n")
    store = tmp_path / "store"
    assert main(RUN + ["--when", "at_init", "--base-epochs", "2", "--config", str(config), "--store", str(store),
                       "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["config"]["when"] == "at_init" and record["config"]["base"]["train"]["epochs"] == 2
    assert record["budget"]["epochs"] == 2 and record["budget"]["finetune_epochs"] == 0
    assert [e["epoch"] for e in record["epochs"] if e["phase"] == "train"] == [1, 2]
