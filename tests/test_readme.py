"""The README's promises: its two commands exist, and its own-method example works."""
import json
import re
from pathlib import Path

from shrinkbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_two_commands_exist_and_ci_runs_the_test_command():
    block = re.search(r"## Two commands.*?```bash\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["./scripts/benchmark.sh", "./scripts/test.sh"]
    for command in commands:
        assert (ROOT / command).is_file()
    assert "./scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_own_method_example_runs_as_written(tmp_path, monkeypatch, capsys):
    code = re.search(r"## Add your own method.*?```python\n(.*?)```", README, re.S).group(1)
    (tmp_path / "mymethod.py").write_text(code)
    monkeypatch.chdir(tmp_path)
    args = ["prune", "--model", "lenet_300_100", "--dataset", "digits", "--strategy",
            "mymethod.py:SquaredMagnitude", "--compression", "8", "--seed", "0",
            "--base-epochs", "1", "--finetune-epochs", "1", "--store", "store", "--format", "json",
            "--threads", "1"]
    assert main(args) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["status"] == "ok" and record["config"]["strategy"] == "mymethod.py:SquaredMagnitude"
    assert len(record["provenance"]["strategy_source_sha256"]) == 64
    ratio = [m["value"] for m in record["metrics"] if m["metric"] == "compression_ratio" and m["stage"] == "post"]
    assert ratio[0] >= 8.0
