"""paper_figures/run_llm_calibration.py on synthetic language-model records with a known effect
of the calibration text: the verdict follows the toolkit's decision rule, and the figure and
its findings are written (no torch needed); the committed records of the suite
`llm-calibration-source` re-derive their run ids and give a verdict."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from analysis_fixtures import make_record, write_record

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "paper_figures"))
import run_llm_calibration  # noqa: E402


def _store(tmp_path: Path, penalty: dict[str, float], spread: float = 0.2) -> Path:
    """Perplexity on KJV: dense 25; Wanda 49, SparseGPT 40 calibrated on KJV; calibrated on
    fortunes `penalty[method]` higher; seed s adds s * spread (s * 1.1 * spread calibrated on
    fortunes): the paired difference is -penalty - 0.1 * spread * mean(s) = -penalty - 0.1 * spread."""
    store = tmp_path / "store"
    base = {"wanda": 49.0, "sparsegpt": 40.0}
    for seed in range(3):
        records = [("none", "kjv", 25.0, 1.0)]
        for method, value in base.items():
            records += [(method, "kjv", value + seed * spread, 2.0),
                        (method, "fortunes", value + penalty[method] + seed * spread * 1.1, 2.0)]
        for strategy, calib, ppl, compression in records:
            record = make_record(model="smollm2-135m", dataset="kjv", strategy=strategy, compression=compression,
                                 seed=seed, metrics=[{"stage": "post", "split": "test", "metric": "perplexity",
                                                      "value": ppl}])
            record["config"].update(track="llm", calib_text=calib, sparsity=0.5 if compression > 1 else 0.0)
            record["run_id"] = f"{strategy}-{calib}-{seed}"
            write_record(store, record)
    return store


def test_a_clear_penalty_of_the_other_text_is_supported(tmp_path):
    store = _store(tmp_path, {"wanda": 6.0, "sparsegpt": 3.0})
    files, summary = run_llm_calibration.make_figure(store, tmp_path / "out", formats=("png",))
    assert "SUPPORTED for smollm2-135m" in summary and "claim family: 2 tests" in summary
    assert "wanda calibrated on kjv minus wanda calibrated on fortunes: -6.02 ppl, better" in summary
    assert {p.name for p in files} == {"llm_calibration.png", "llm_calibration_findings.md"}


def test_no_difference_is_not_called_supported(tmp_path):
    store = _store(tmp_path, {"wanda": 0.0, "sparsegpt": 0.0}, spread=0.01)
    _, summary = run_llm_calibration.make_figure(store, tmp_path / "out", formats=("png",))
    assert "SUPPORTED" not in summary and "EQUIVALENT" in summary


def test_a_store_without_the_runs_is_one_clear_error(tmp_path):
    from shrinkbench.analysis.errors import AnalysisError

    (tmp_path / "empty" / "runs").mkdir(parents=True)
    with pytest.raises(AnalysisError):
        run_llm_calibration.make_figure(tmp_path / "empty", tmp_path / "out")


def test_the_committed_calibration_source_records_keep_their_ids_and_give_a_verdict(tmp_path):
    import json

    from shrinkbench.core.tracks import config_from_dict

    records = sorted((ROOT / "results" / "calibration-source" / "runs").glob("*.json"))
    assert len(records) == 30  # 6 dense, 2 methods x 2 calibration texts x 2 evaluation texts x 3 seeds
    calib = set()
    for path in records:
        record = json.loads(path.read_text())
        config = config_from_dict(record["config"], str(path))
        assert config.run_id == record["run_id"] == path.stem
        calib.add((config.dataset, config.calib_text))
        if not config.is_dense:
            assert record["dense"]["metrics"]["perplexity"] > 0 and "pre" not in record["windows_nll"]
    assert calib == {(e, c) for e in ("kjv", "fortunes") for c in ("kjv", "fortunes")}
    _, summary = run_llm_calibration.make_figure(ROOT / "results" / "calibration-source", tmp_path, formats=("png",))
    assert "for smollm2-135m** (claim family: 4 tests" in summary
