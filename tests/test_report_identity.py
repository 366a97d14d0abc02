"""The report's files do not depend on how fast it is made.

- Figures saved by forked writers (`analysis.background`) are byte for byte those of a
  sequential save, and every figure, table and text file of the report is identical
  between the two (PDF dates pinned with SOURCE_DATE_EPOCH).
- The text outputs (tables, significance, the ranking across settings, summary) of a
  generated store are byte for byte those written by the code before the report was made
  faster (commit ff95120: one bootstrap resample at a time, figures saved in turn):
  their sha256 below were taken from that commit's report on the same store. Floating-point
  last bits may differ under other numpy / scipy / pandas versions, so that comparison runs
  only with the versions it was taken with.
- A writer that fails raises its one line in the parent.
"""
import contextlib
import hashlib
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy

from analysis_fixtures import synthetic_store
from shrinkbench.analysis import background, report
from shrinkbench.analysis.errors import AnalysisError
from shrinkbench.analysis.load import scan_store
from shrinkbench.analysis.options import AnalysisOptions

GOLDEN_VERSIONS = {"numpy": "2.4.6", "scipy": "1.17.1", "pandas": "3.1.1"}
GOLDEN_TEXT = {  # sha256 of each text file, from commit ff95120 on `_store`
    "across/across.json": "cf7eab3f93687b7e2c9f408b33d0c2b8e62d2da2dffd9350c794cebf86093508",
    "across/across.md": "4ed93fc2512f70c29471c1eb37ff59e23c05d50d152543de330a724969578247",
    "across/across_pairs.csv": "3a38583835a8ec848f6eb7aca81255b7f1e7b28f7ec7f1f781fe3a306917beca",
    "significance/comparisons.csv": "056a24960ac1f076c140d14c6a1d83404e35ac1519c0b1fd84e1ecc4a8af0be7",
    "significance/curve_level.csv": "f2addb8dd2b41f5540137db65870402c946dac4ff951e1976218cc0035e8835f",
    "significance/pareto.csv": "314e3f88c7c13abcb0c04f4dffb3f2327fffb9ea2b6ae30749662f686f89d260",
    # ff95120's file plus `"across_protocols": false` in its options (the option issue 20 added
    # later; the files were diffed: that line is the only difference)
    "significance/significance.json": "dd4f1147eeb7e493139b69b01fb45f8daac7d54ff5af427864cfe5bf28b788fe",
    "significance/significance.md": "a86d9044907d41dc1dea396779f2e3433ddae57f581560a985a059afe29665a4",
    "tables/operating_points.csv": "c2bca71f7f2c8739dd1257dba7bee6abf6a0e66601120a942964be15d5c7e564",
    "tables/operating_points.md": "4992f0ce4fc86c969fe1a6359cfd7a1e7ed5fdcfc2bcf1721b7e37be458cddb0",
    "tables/operating_points.tex": "ffed38149b751e1f5c41e6ec79d2af2154b25cda5d64291105d35f038dd792f5",
}


def _store(folder):
    return synthetic_store(folder / "store", np.random.default_rng(3),
                           {"global_magnitude": 1.0, "layerwise_magnitude": 0.0, "random": -2.0},
                           compressions=(2, 4, 8), units=((0, 0), (1, 1), (2, 2)),
                           settings=(("lenet", "mnist"), ("resnet20", "cifar10")), top5=True, failed=1)


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _report(store, out):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = report.build_report(scan_store(store), out, AnalysisOptions(n_boot=200))
    return summary, _files(out)


@pytest.fixture
def pinned_dates(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")


def test_background_writers_give_the_bytes_of_a_sequential_report(tmp_path, monkeypatch, pinned_dates):
    store = _store(tmp_path)
    summary, forked = _report(store, tmp_path / "report")
    monkeypatch.setattr(report, "saving_in_background", contextlib.nullcontext)  # every save at once, in turn
    again, sequential = _report(store, tmp_path / "report")
    assert summary == again
    assert sorted(forked) == sorted(sequential) == sorted(summary["files"])
    assert sum(name.endswith(".png") for name in forked) >= 8 and sum(name.endswith(".pdf") for name in forked) >= 8
    assert [name for name in forked if forked[name] != sequential[name]] == []


@pytest.mark.skipif({"numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__} != GOLDEN_VERSIONS,
                    reason=f"the golden hashes were taken with {GOLDEN_VERSIONS}")
def test_text_outputs_are_those_of_the_report_before_it_was_made_faster(tmp_path, pinned_dates):
    _, files = _report(_store(tmp_path), tmp_path / "report")
    assert {name: hashlib.sha256(files[name]).hexdigest() for name in GOLDEN_TEXT} == GOLDEN_TEXT


def test_a_failing_writer_raises_its_line_in_the_parent(tmp_path):
    def fail():
        raise OSError("disk full")

    with pytest.raises(AnalysisError, match="writing a figure failed: OSError: disk full"):
        with background.saving_in_background(workers=2):
            background.submit(lambda: (tmp_path / "ok").write_text("x"))
            background.submit(fail)
    assert (tmp_path / "ok").read_text() == "x"  # the other writer finished


def test_outside_the_block_a_write_happens_at_once(tmp_path):
    background.submit(lambda: (tmp_path / "now").write_text("y"))
    assert (tmp_path / "now").read_text() == "y"
