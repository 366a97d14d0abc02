"""paper_figures/run_llm_baselines.py on synthetic language-model records with known effects:
each claim is its own family decided by the toolkit's rule, a data-free method is one value
(not replicates), and the figure, its findings and a LaTeX table that compiles are written (no
torch needed); the committed records of `llm-baselines-smollm2` give both verdicts."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis_fixtures import make_record, write_record

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "paper_figures"))
import run_llm_baselines  # noqa: E402

BASE = {"magnitude": 400.0, "wanda": 100.0, "sparsegpt": 80.0, "ria": 95.0}
TARGETS = [(0.5, "unstructured"), (0.6, "unstructured"), (0.7, "unstructured"), (0.8, "unstructured"),
           (0.5, "2:4"), (0.5, "4:8")]


def _store(tmp_path: Path, owl_gain: float, dsnot_gain: float, spread: float = 0.3) -> Path:
    """Perplexity: method base x (1 + 2 (sparsity - 0.5)) (x 2 at N:M), seed s adds s * spread;
    OWL lowers it by `owl_gain` (unstructured only), DSnoT on Wanda by `dsnot_gain` + s * spread / 10;
    magnitude (uniform) is one seed-free run; one seed-free dense run."""
    store = tmp_path / "store"

    def add(strategy, sparsity, pattern, seed, ppl, allocation="uniform", refine=None, free=False):
        compression = 1.0 if strategy == "none" else 1 / (1 - sparsity)
        record = make_record(model="smollm2-135m", dataset="kjv", strategy=strategy, compression=compression,
                             seed=seed, metrics=[{"stage": "post", "split": "test", "metric": "perplexity",
                                                  "value": ppl}])
        record["config"].update(track="llm", sparsity=sparsity, pattern=pattern, allocation=allocation, refine=refine,
                                granularity="weight" if pattern == "unstructured" else pattern)
        record["seed_free"] = free
        record["run_id"] = f"{strategy}-{allocation}-{refine}-{pattern}-{sparsity}-{seed}"
        write_record(store, record)

    add("none", 0.0, "unstructured", 0, 25.0, free=True)
    for sparsity, pattern in TARGETS:
        scale = (1 + 2 * (sparsity - 0.5)) * (2 if pattern != "unstructured" else 1)
        add("magnitude", sparsity, pattern, 0, BASE["magnitude"] * scale, free=True)
        for seed in range(3):
            for method in ("wanda", "sparsegpt", "ria"):
                value = BASE[method] * scale + seed * spread
                add(method, sparsity, pattern, seed, value)
                if pattern == "unstructured":
                    add(method, sparsity, pattern, seed, value - owl_gain, allocation="owl")
            value = BASE["wanda"] * scale + seed * spread
            add("wanda", sparsity, pattern, seed, value - dsnot_gain - seed * spread / 10, refine="dsnot")
    return store


def test_clear_gains_are_supported_each_in_its_own_family(tmp_path):
    store = _store(tmp_path, owl_gain=30.0, dsnot_gain=5.0)
    files, summary = run_llm_baselines.make_figure(store, tmp_path / "out", formats=("png",))
    assert "OWL improves Wanda at 70% — SUPPORTED for smollm2-135m** (claim family: 1 test," in summary
    assert "DSnoT improves Wanda — SUPPORTED for smollm2-135m** (claim family: 6 tests" in summary
    assert "wanda+owl [70%] minus wanda [70%]: -30.00 ppl, better" in summary
    assert {p.name for p in files} == {"llm_baselines.png", "llm_baselines_findings.md", "llm_baselines_table.tex"}
    details = (tmp_path / "out" / "llm_baselines_findings.md").read_text()
    assert "| magnitude | 400.0 | 480.0 | 560.0 | 640.0 | 800.0 | 800.0 |" in details  # one value, no interval
    assert "| wanda+owl | 70.3 [69.6, 71.0] |" in details  # mean 100.3 - 30, t interval of 0, 0.3, 0.6


def test_no_gain_is_not_called_supported(tmp_path):
    store = _store(tmp_path, owl_gain=0.0, dsnot_gain=0.0, spread=0.01)
    _, summary = run_llm_baselines.make_figure(store, tmp_path / "out", formats=("png",))
    assert "SUPPORTED" not in summary and summary.count("EQUIVALENT") == 2


def test_a_store_without_the_runs_is_one_clear_error(tmp_path):
    from shrinkbench.analysis.errors import AnalysisError

    (tmp_path / "empty" / "runs").mkdir(parents=True)
    with pytest.raises(AnalysisError):
        run_llm_baselines.make_figure(tmp_path / "empty", tmp_path / "out")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex (Debian: apt install texlive-latex-base)")
def test_the_latex_table_compiles_on_its_own(tmp_path):
    store = _store(tmp_path, owl_gain=30.0, dsnot_gain=5.0)
    run_llm_baselines.make_figure(store, tmp_path / "out", formats=("png",))
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "llm_baselines_table.tex"],
                          cwd=tmp_path / "out", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]


def test_the_committed_baseline_records_keep_their_ids_and_give_both_verdicts(tmp_path):
    import json

    from shrinkbench.analysis.load import load_table
    from shrinkbench.core.tracks import config_from_dict

    store = ROOT / "results" / "reference"
    settings = run_llm_baselines.run_settings(load_table(str(store)).configs)
    kinds = set()
    for run_id, setting in settings.items():
        record = json.loads((store / "runs" / f"{run_id}.json").read_text())
        config = record["config"]
        if config.get("model") != "smollm2-135m" or config.get("unit", "weight") != "weight" \
                or record.get("protocol") is None:
            continue  # vision runs, structured runs
        assert config_from_dict(config, run_id).run_id == run_id
        kinds.add((config["strategy"], setting["allocation"], setting["refine"], setting["target"], config["seed"]))
    for method in ("wanda", "sparsegpt", "ria"):  # three seeds of every calibrated variant at every target
        for target in ("50%", "60%", "70%", "80%", "2:4", "4:8"):
            assert {(method, "uniform", "", target, s) for s in (0, 1, 2)} <= kinds
            if target.endswith("%"):
                assert {(method, "owl", "", target, s) for s in (0, 1, 2)} <= kinds
    assert {("wanda", "uniform", "dsnot", t, s) for t in ("50%", "70%", "2:4") for s in (0, 1, 2)} <= kinds
    assert ("magnitude", "uniform", "", "70%", 0) in kinds and ("magnitude", "uniform", "", "70%", 1) not in kinds
    _, summary = run_llm_baselines.make_figure(store, tmp_path, formats=("png",))
    assert "OWL improves Wanda at 70% —" in summary and "(claim family: 1 test," in summary
    assert "DSnoT improves Wanda —" in summary and "(claim family: 6 tests," in summary
