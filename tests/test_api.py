"""The Python API (`import shrinkbench`): lazy (no torch at import), and each entry point
gives what the command line gives for the same input."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import shrinkbench as sb
from runner_helpers import TINY_TRAIN, tiny_config, write_suite

SETTINGS = {"base": {"train": TINY_TRAIN.__dict__}, "finetune": TINY_TRAIN.__dict__, "score_batch_size": 64,
            "measure": tiny_config().measure.__dict__}


def test_importing_the_package_loads_no_torch():
    code = "import sys, shrinkbench; shrinkbench.list_models(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_unknown_names_list_what_is_offered():
    with pytest.raises(AttributeError, match="offers: .*compare.*prune"):
        sb.prunee  # noqa: B018
    assert {"prune", "run_suite", "load_results", "compare", "report", "create_model"} <= set(dir(sb))


def test_prune_run_suite_load_and_compare_through_the_api(tmp_path):
    store = tmp_path / "store"
    record = sb.prune("lenet_300_100", "global_magnitude", 4, dataset="digits", store=str(store),
                      settings={k: (dict(v) if isinstance(v, dict) else v) for k, v in SETTINGS.items()})
    assert record["status"] == "ok" and record["config"]["compression"] == 4
    assert json.loads((store / "runs" / f"{record['run_id']}.json").read_text())["run_id"] == record["run_id"]
    suite = write_suite(tmp_path / "tiny.toml", compressions="[1, 4]", seeds="[0, 1]")
    report = sb.run_suite(str(suite), store=str(store), threads=1, progress=False)
    assert report.count("failed") == 0 and len(report.outcomes) == 6
    table = sb.load_results(str(store))
    assert {"metric", "value", "config.strategy"} <= set(table.columns)
    assert set(table["config.strategy"]) >= {"global_magnitude", "random", "none"}
    verdicts = sb.compare(str(store), "global_magnitude", ["random"])
    assert set(verdicts.comparisons["baseline"]) == {"random"} and verdicts.comparisons["family_size"].iloc[0] >= 1
    summary = sb.report(str(store), str(tmp_path / "report"), method="global_magnitude")
    assert (tmp_path / "report" / "report.html").is_file() and summary["runs"] >= 6


def test_the_extension_guides_method_with_parameters_runs(tmp_path):
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[1] / "docs" / "extending.md").read_text()
    code = re.search(r"```python\n(.*?)```", guide, re.S).group(1)
    (tmp_path / "mymethod.py").write_text(code)
    settings = {k: (dict(v) if isinstance(v, dict) else v) for k, v in SETTINGS.items()}
    record = sb.prune("lenet_300_100", f"{tmp_path / 'mymethod.py'}:PowerMagnitude", 4, dataset="digits",
                      store=str(tmp_path / "store"), params={"power": 3}, label="power3", settings=settings)
    assert record["status"] == "ok" and record["config"]["strategy_params"] == {"power": 3}
    assert record["config"]["strategy_label"] == "power3"
    other = sb.prune("lenet_300_100", f"{tmp_path / 'mymethod.py'}:PowerMagnitude", 4, dataset="digits",
                     store=str(tmp_path / "store"), params={"power": 1}, label="power1", settings=settings)
    assert other["run_id"] != record["run_id"]  # parameters are part of the identity
