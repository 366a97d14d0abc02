"""The thread count a run computes with is part of its identity: torch's CPU kernels split their
sums by thread, so the same config at another thread count gives other numbers in the last bits.
The sweep pins the count before it compares run ids with the store; unpinned configs (records
written before) keep their run ids."""
from __future__ import annotations

import json

import pytest
import torch

from runner_helpers import tiny_config, write_suite
from shrinkbench.cli import main
from shrinkbench.core.errors import ShrinkBenchError
from shrinkbench.core.suite import load_suite
from shrinkbench.core.sweep import computing_with, pin_threads, run_one


def test_a_pinned_thread_count_is_part_of_the_run_and_base_identity():
    unpinned = tiny_config()
    one, two = unpinned.replace(threads=1), unpinned.replace(threads=2)
    assert "threads" not in unpinned.identity() and "threads" not in unpinned.base_identity()
    assert one.identity()["threads"] == 1 and one.base_identity()["threads"] == 1
    assert len({unpinned.run_id, one.run_id, two.run_id}) == 3
    assert len({unpinned.base_id, one.base_id, two.base_id}) == 3


def test_the_llm_config_pins_threads_the_same_way():
    from shrinkbench.llm.config import LLMRunConfig

    cfg = LLMRunConfig(model="smollm2-135m")
    assert "threads" not in cfg.identity() and cfg.replace(threads=1).identity()["threads"] == 1
    assert cfg.run_id != cfg.replace(threads=1).run_id


def test_pin_threads_fills_only_open_counts_and_refuses_nonsense():
    own = tiny_config(threads=3)
    pinned = pin_threads((tiny_config(), own), 1)
    assert [c.threads for c in pinned] == [1, 3]
    with pytest.raises(ShrinkBenchError, match="threads must be a whole number >= 1"):
        pin_threads((tiny_config(),), 0)
    with pytest.raises(ShrinkBenchError):
        tiny_config(threads=0)


def test_computing_with_sets_and_restores_torchs_count():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with computing_with(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with computing_with(None):
        assert torch.get_num_threads() == before


def test_a_pinned_run_computes_and_records_with_its_count(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        from shrinkbench.vision.validate import validate_config

        cfg = validate_config(tiny_config(compression=2.0, threads=1))
        assert run_one(cfg, str(tmp_path), "cpu").status == "ok"
        record = json.loads((tmp_path / "runs" / f"{cfg.run_id}.json").read_text())
        assert record["provenance"]["threads"] == 1 and record["config"]["threads"] == 1
        assert torch.get_num_threads() == 2  # restored after the run
    finally:
        torch.set_num_threads(before)


def test_the_command_line_pins_the_count_it_runs_with(tmp_path, capsys):
    suite = write_suite(tmp_path / "s.toml", compressions="[1, 2]")
    expected = {c.run_id for c in pin_threads(load_suite(str(suite)).configs, 1)}
    assert main(["run", str(suite), "--store", str(tmp_path / "store"), "--threads", "1", "--dry-run"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert listed == expected
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # no --threads: the local executor's count is torch's in this process
        assert main(["run", str(suite), "--store", str(tmp_path / "store"), "--dry-run"]) == 0
        listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()}
        assert listed == {c.run_id for c in pin_threads(load_suite(str(suite)).configs, 2)}
    finally:
        torch.set_num_threads(before)


def test_a_suites_own_thread_count_wins(tmp_path, capsys):
    suite = write_suite(tmp_path / "s.toml", compressions="[1]", extra="")
    suite.write_text(suite.read_text().replace("[run]\n", "[run]\nthreads = 3\n"))
    assert all(c.threads == 3 for c in load_suite(str(suite)).configs)
    assert main(["run", str(suite), "--store", str(tmp_path / "store"), "--threads", "1", "--dry-run"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert listed == {c.run_id for c in load_suite(str(suite)).configs}
