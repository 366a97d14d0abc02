"""Loading the store and CSVs, validation errors, the per-run table and dense deltas,
and that the analysis package never imports torch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shrinkbench.analysis.errors import AnalysisError, StoreWarning
from shrinkbench.analysis.load import read_csv, scan_store, validate
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.runs import failed_runs, run_table, summarize
from shrinkbench.analysis.schema import REQUIRED_COLUMNS
from analysis_fixtures import make_record, run_metrics, synthetic_store, write_record

ROOT = Path(__file__).resolve().parents[1]


def test_import_analysis_never_imports_torch():
    code = ("import importlib, pkgutil, sys\n"
            "import shrinkbench.analysis as analysis\n"
            "for m in pkgutil.iter_modules(analysis.__path__):\n"
            "    if not m.name.startswith('__'):\n"
            "        importlib.import_module('shrinkbench.analysis.' + m.name)\n"
            "bad = sorted(n for n in sys.modules if n == 'torch' or n.startswith('torch.'))\n"
            "print(len(list(pkgutil.iter_modules(analysis.__path__))), bad)\n"
            "sys.exit(1 if bad else 0)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_store_is_read_and_failed_runs_counted(tmp_path):
    synthetic_store(tmp_path, np.random.default_rng(0), {"global_magnitude": 0.0}, compressions=(2, 4),
                    failed=2)
    (tmp_path / "bases").mkdir()
    (tmp_path / "bases" / "ignored.json").write_text("not json at all")
    scan = scan_store(tmp_path)
    assert scan.records == 3 * 3 + 2 and not scan.skipped
    table = scan.table
    assert set(REQUIRED_COLUMNS) <= set(table.columns)
    assert len(failed_runs(table)) == 2
    assert (table.loc[table["metric"] == "failed", "status"] == "failed").all()
    runs = run_table(table)
    assert len(runs) == 3 * 3  # failed runs are excluded from the statistics
    assert table["base_seed"].dtype.kind == "i" and table["value"].dtype.kind == "f"


def test_corrupt_and_wrong_schema_records_are_skipped_with_a_warning(tmp_path):
    synthetic_store(tmp_path, np.random.default_rng(0), {"random": 0.0}, compressions=(2,))
    runs = tmp_path / "runs"
    (runs / "partial.json").write_text('{"schema": 1, "run_id": "ab')
    wrong = make_record(strategy="random", compression=8.0, metrics=run_metrics(80.0, 8.0, 8.0))
    wrong["schema"] = 99
    (runs / "wrong.json").write_text(json.dumps(wrong))
    keyless = make_record(strategy="random", compression=8.0, metrics=[])
    del keyless["config"]["model"]
    (runs / "keyless.json").write_text(json.dumps(keyless))
    with pytest.warns(StoreWarning) as caught:
        scan = scan_store(tmp_path)
    messages = " ".join(str(w.message) for w in caught)
    for name in ("partial.json", "wrong.json", "keyless.json"):
        assert name in messages
    assert "schema 99" in messages and "'model'" in messages
    assert {Path(s.path).name for s in scan.skipped} == {"partial.json", "wrong.json", "keyless.json"}
    assert scan.records == 6


def test_missing_store_and_missing_columns_are_one_line_errors(tmp_path):
    with pytest.raises(AnalysisError, match="does not exist"):
        scan_store(tmp_path / "nowhere")
    frame = pd.DataFrame({"model": ["m"], "dataset": ["d"], "strategy": ["s"], "compression": [2.0],
                          "base_seed": [0], "stage": ["post"], "split": ["test"], "metric": ["top1"],
                          "value": [1.0]})
    with pytest.raises(AnalysisError) as err:
        validate(frame)
    assert "seed" in str(err.value).split("(required")[0] and "\n" not in str(err.value)
    path = tmp_path / "t.csv"
    frame.drop(columns=["value", "metric"]).to_csv(path, index=False)
    with pytest.raises(AnalysisError, match="metric, value"):
        read_csv(path)
    bad = frame.assign(seed=0, stage="during")
    with pytest.raises(AnalysisError, match="'stage'"):
        validate(bad)
    with pytest.raises(AnalysisError, match="numeric"):
        validate(frame.assign(seed="x"))


def test_csv_round_trip_keeps_the_table(tmp_path):
    synthetic_store(tmp_path / "s", np.random.default_rng(1), {"global_magnitude": 0.5}, compressions=(2,))
    table = scan_store(tmp_path / "s").table
    table.to_csv(tmp_path / "t.csv", index=False)
    again = read_csv(tmp_path / "t.csv")
    pd.testing.assert_frame_equal(table, again, check_dtype=False)


def _hand_frame() -> pd.DataFrame:
    """Two units, dense and one method, with hand-picked accuracies."""
    rows = []
    values = {("none", 1.0, 0): 90.0, ("none", 1.0, 1): 92.0, ("m", 4.0, 0): 89.0, ("m", 4.0, 1): 90.5}
    for (strategy, compression, seed), top1 in values.items():
        common = {"model": "lenet", "dataset": "mnist", "strategy": strategy, "compression": compression,
                  "base_seed": seed, "seed": seed, "stage": "post"}
        rows.append({**common, "split": "test", "metric": "top1", "value": top1})
        rows.append({**common, "split": "val", "metric": "top1", "value": top1 + 5})
        rows.append({**common, "split": "none", "metric": "compression_ratio", "value": compression * 1.01})
    return pd.DataFrame(rows)


def test_run_table_and_dense_deltas_by_hand():
    table = validate(_hand_frame())  # only the required columns: defaults and run ids are filled
    runs = run_table(table).set_index(["strategy", "seed"])
    assert runs.loc[("m", 0), "delta"] == pytest.approx(-1.0)
    assert runs.loc[("m", 1), "delta"] == pytest.approx(-1.5)
    assert runs.loc[("m", 0), "compression_ratio"] == pytest.approx(4.04)
    point = summarize(run_table(table)).set_index("strategy").loc["m"]
    assert point["mean"] == pytest.approx(89.75) and point["n"] == 2
    assert point["delta_mean"] == pytest.approx(-1.25)
    assert point["delta_std"] == pytest.approx(np.std([-1.0, -1.5], ddof=1))
    val = run_table(table, AnalysisOptions(split="val")).set_index(["strategy", "seed"])
    assert val.loc[("m", 1), "y"] == pytest.approx(95.5)
    with pytest.raises(AnalysisError, match="post/test"):
        run_table(table, AnalysisOptions(stage="pre"))


def test_dense_is_matched_on_the_fine_tuning_budget(tmp_path):
    for epochs, dense_acc, acc in ((2.0, 90.0, 88.0), (8.0, 91.0, 90.5)):
        write_record(tmp_path, make_record(strategy="none", compression=1.0, finetune_epochs=epochs,
                                           metrics=run_metrics(dense_acc, 1.0, 1.0)))
        write_record(tmp_path, make_record(strategy="m", compression=4.0, finetune_epochs=epochs,
                                           metrics=run_metrics(acc, 4.0, 4.0)))
    runs = run_table(scan_store(tmp_path).table).set_index(["strategy", "finetune_epochs"])
    assert runs.loc[("m", 2.0), "delta"] == pytest.approx(-2.0)
    assert runs.loc[("m", 8.0), "delta"] == pytest.approx(-0.5)


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_the_streamed_export_equals_the_whole_table_whatever_the_chunk(tmp_path, kind):
    import io

    from shrinkbench.analysis.files import frame_records, to_json
    from shrinkbench.analysis.load import stream_export

    store = synthetic_store(tmp_path, np.random.default_rng(0), {"a": 1.0, "b": 0.0}, compressions=(2, 4), failed=2)
    extra = make_record(strategy="a", compression=8.0, metrics=run_metrics(80.0, 8.0, 8.0))
    extra["config"]["only_here"] = 3  # a config key one record has: NaN elsewhere, as in a merge
    write_record(store, extra)
    (store / "runs" / "broken.json").write_text("{")
    with pytest.warns(StoreWarning):
        whole = scan_store(store).with_config_columns()
    expected = whole.to_csv(index=False) if kind == "csv" else to_json(frame_records(whole))
    for chunk in (1, 4, 1000):
        out = io.StringIO()
        with pytest.warns(StoreWarning, match="broken.json"):
            records = stream_export(store, out, kind, chunk_records=chunk)
        assert records == len(whole["run_id"].unique())
        if kind == "csv":
            assert out.getvalue() == expected
        else:
            assert json.loads(out.getvalue()) == json.loads(expected)
