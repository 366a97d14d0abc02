"""The decision rule's calibration: simulations (small, seeded) with the rates asserted within
Monte-Carlo tolerance, and store-level tests that the whole pipeline uses the same units."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from shrinkbench.analysis.calibration import curve_level_coverage, false_verdicts, main
from shrinkbench.analysis.family_calibration import family_rates
from shrinkbench.analysis.compare import compare, method_pairs
from shrinkbench.analysis.decision import compare_values
from shrinkbench.analysis.load import scan_store
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.runs import run_table, summarize
from shrinkbench.analysis.significance import comparison_tables, curve_level_table

from analysis_fixtures import make_record, run_metrics, synthetic_store, write_record

REPS = 500


def band(p: float, reps: int = REPS) -> float:
    """~99.9% binomial band half-width of a rate p estimated from `reps` draws."""
    return 3.3 * math.sqrt(p * (1 - p) / reps)


def test_base_models_not_run_pairs_are_the_units_of_a_verdict():
    rng = np.random.default_rng(11)
    many = false_verdicts(3, 3, REPS, rng)
    assert many.naive > 0.2  # every run a unit: pseudo-replication, far above 5%
    assert abs(many.toolkit - 0.05) < band(0.05) and many.general == many.toolkit
    one_each = false_verdicts(5, 1, REPS, rng)
    assert abs(one_each.toolkit - 0.05) < band(0.05)
    single = false_verdicts(1, 5, REPS, rng)
    assert single.toolkit > 0.3 and single.general == 0.0  # about these weights only, never general


def test_the_t_interval_covers_and_the_bootstrap_does_not_at_small_n():
    rng = np.random.default_rng(12)
    for n in (3, 5):
        coverage = curve_level_coverage(n, REPS, rng, n_boot=500)
        assert abs(coverage.t - 0.95) < band(0.95), n
        assert coverage.bootstrap < 0.95 - band(0.95), n  # the percentile bootstrap under-covers
    assert curve_level_coverage(3, REPS, rng, n_boot=500).bootstrap < 0.85


FAMILY_REPS = 200


@pytest.mark.parametrize("n", [3, 10])
def test_every_verdict_of_a_family_together_is_false_at_most_alpha_of_the_time(n):
    """The real decision (adjust_family) on whole mixed families: false better/worse, false
    equivalent (true difference exactly at the ROPE) and any false verdict at most 5%."""
    per_ratio, curve = family_rates(n, FAMILY_REPS, np.random.default_rng(40 + n))
    assert per_ratio.m == 16 and curve.m == 4
    for rates in (per_ratio, curve):
        assert rates.any_false <= 0.05 + band(0.05, FAMILY_REPS), rates
        assert rates.any_false >= max(rates.false_direction, rates.false_equivalent)
    if n == 10:  # the rule before (two Holm budgets, the dense point as data) says "equivalent" too often
        assert curve.any_false_before > 0.05 + band(0.05, FAMILY_REPS)


def test_the_calibration_command_prints_the_family_table_and_a_complete_help(capsys):
    assert main(["--reps", "20", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "False verdicts of whole families" in out
    for heading in ("False better/worse", "False equivalent", "Any false verdict"):
        assert heading in out
    assert all(re.search(rf"^{level} +{n} ", out, re.M) for level in ("per ratio", "curve level") for n in (3, 5, 10))
    assert max(len(line) for line in out.splitlines()) <= 100
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "how often its intervals cover the truth." in text and "docs/statistics.md." in text
    assert "Every run a unit" in out and "3 base models x 3 run seeds" in out
    assert "Student-t (the toolkit's)" in out and "Percentile bootstrap" in out
    assert main(["--reps", "3"]) == 2


# ------------------------------------------------------------------ the same units in the whole pipeline

def _product_store(tmp_path, bases=3, seeds=3, rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    units = tuple((b, s) for b in range(bases) for s in range(seeds))
    return synthetic_store(tmp_path, rng, {"a": 0.5, "b": 0.0}, compressions=(2, 4), units=units)


def test_compare_averages_run_seeds_within_a_base_model(tmp_path):
    runs = run_table(scan_store(_product_store(tmp_path)).table)
    report = compare(runs, [("a", "b")], AnalysisOptions(), np.random.default_rng(0))
    row = report.comparisons.iloc[0]
    assert row["replication"] == "base models" and row["n_method"] == 3 and row["n_pairs"] == 3
    assert row["df"] == 2  # three base models, not nine runs
    at = runs[runs["compression"] == row["compression"]]
    means = {s: at[at["strategy"] == s].groupby("base_seed")["y"].mean() for s in ("a", "b")}
    expected = compare_values(means["a"], means["b"], AnalysisOptions())
    assert row["p_value"] == pytest.approx(expected["p_value"])
    assert row["difference"] == pytest.approx(expected["difference"])
    points = summarize(runs).set_index(["strategy", "compression"])
    assert points.loc[("a", 2.0), "n"] == 3 and points.loc[("a", 2.0), "runs"] == 9
    assert all(report.curve_level["n_method"] == 3)


def test_one_base_model_is_a_loud_caveat_never_a_general_verdict(tmp_path):
    runs = run_table(scan_store(_product_store(tmp_path, bases=1, seeds=5)).table)
    report = compare(runs, [("a", "b")], AnalysisOptions(), np.random.default_rng(0))
    assert (report.comparisons["replication"] == "run seeds of one base model").all()
    assert not report.comparisons["general"].any() and not report.curve_level["general"].any()
    assert any("ONE base model" in w and "these starting weights only" in w for w in report.warnings)
    text = "\n".join(t.text() for t in comparison_tables(report))
    decided = report.comparisons[report.comparisons["decision"] != "inconclusive"]
    assert len(decided) and text.count("(these starting weights only)") >= len(decided)
    assert "n counts the run seeds of ONE base model" in text


def test_the_curve_level_interval_is_student_t_and_the_bootstrap_is_labelled(tmp_path):
    runs = run_table(scan_store(synthetic_store(tmp_path, np.random.default_rng(3), {"a": 1.0, "b": 0.0})).table)
    plain = compare(runs, [("a", "b")], AnalysisOptions(), np.random.default_rng(0))
    row = plain.curve_level.iloc[0]
    assert row["interval"] == "t" and math.isnan(row["boot_low"])
    assert row["ci_low"] < row["difference"] < row["ci_high"] and row["test"] == "paired t"
    table = curve_level_table(plain)
    assert "Student-t CI" in table.headers[3] and not any("bootstrap" in h for h in table.headers)
    assert not any("under-cover" in w for w in plain.warnings)
    boot = compare(runs, [("a", "b")], AnalysisOptions(interval="bootstrap"), np.random.default_rng(0))
    assert np.isfinite(boot.curve_level["boot_low"]).all()
    assert any("bootstrap" in h and "valid from n = 10" in h for h in curve_level_table(boot).headers)
    assert any("under-cover" in w and "3 units" in w for w in boot.warnings)


def test_the_curve_level_is_the_pruned_range_without_the_dense_point(tmp_path):
    runs = run_table(scan_store(synthetic_store(tmp_path, np.random.default_rng(4), {"a": 1.0, "b": 0.0})).table)
    report = compare(runs, [("a", "b")], AnalysisOptions(), np.random.default_rng(0))
    assert report.curve_level["x_from"].iloc[0] == pytest.approx(2.0, rel=0.01)  # the lowest pruned ratio
    assert report.curve_level["family"].iloc[0] == report.comparisons["family"].iloc[0] + " over whole curves"
    assert "pruned" in curve_level_table(report).note and "1× is no part of it" in curve_level_table(report).note


def test_a_method_above_its_baseline_over_the_pruned_range_is_better_not_equivalent(tmp_path):
    """Issue 25, point 1: +0.65 over 8-32x (the methods suite's ladder 1x, 8x, 32x) was called
    'equivalent' over 1-32x, where the dense point forces a zero difference."""
    units = tuple((i, i) for i in range(5))
    store = synthetic_store(tmp_path, np.random.default_rng(8), {"a": 0.65, "b": 0.0}, compressions=(8, 32),
                            units=units, noise_sd=0.03)
    runs = run_table(scan_store(store).table)
    level = compare(runs, [("a", "b")], AnalysisOptions(), np.random.default_rng(0)).curve_level.iloc[0]
    assert level["x_from"] == pytest.approx(8.0, rel=0.01) and level["x_to"] == pytest.approx(32.0, rel=0.01)
    assert level["difference"] == pytest.approx(0.65, abs=0.1) and level["decision"] == "better"
    assert level["sim_low"] > 0.5


def test_every_verdict_names_its_family_and_size_in_compare_and_report(tmp_path):
    from shrinkbench.analysis.report import build_report

    store = synthetic_store(tmp_path / "store", np.random.default_rng(5), {"a": 0.6, "b": 0.0, "c": 0.1})
    scan = scan_store(store)
    runs = run_table(scan.table)
    options = AnalysisOptions()
    asked = compare(runs, method_pairs(runs, "a"), options, np.random.default_rng(0))
    for table in comparison_tables(asked):
        assert table.headers[-1] == "Family" and all(row[-1].startswith("m=") for row in table.rows)
        assert "Family:" in table.note and "m=" in table.note
    build_report(scan, tmp_path / "report", options, method="a", formats=("png",))
    written = (tmp_path / "report" / "significance" / "comparisons.csv").read_text()
    import pandas as pd
    from io import StringIO

    reported = pd.read_csv(StringIO(written))
    # asked about one method, the report uses the family compare uses: the same verdicts, the same m
    assert list(reported["decision"]) == list(asked.comparisons["decision"])
    assert list(reported["family"]) == list(asked.comparisons["family"])
    assert list(reported["family_size"]) == list(asked.comparisons["family_size"])


def test_the_printed_interval_and_p_are_the_ones_that_decided(tmp_path):
    """Issue 25, point 2: every verdict can be checked against the interval and p beside it."""
    runs = run_table(scan_store(synthetic_store(tmp_path, np.random.default_rng(6),
                                                {"a": 0.8, "b": 0.0, "c": 0.4, "d": 0.8}, noise_sd=0.05)).table)
    options = AnalysisOptions()
    rows = compare(runs, method_pairs(runs, "a"), options, np.random.default_rng(0)).comparisons
    inside = (rows["sim_low"] > -options.rope) & (rows["sim_high"] < options.rope)
    excludes_zero = (rows["sim_low"] > 0) | (rows["sim_high"] < 0)
    assert inside.any() and excludes_zero.any()
    assert (rows.loc[inside, "decision"] == "equivalent").all()
    assert (rows.loc[~inside & excludes_zero, "decision"] == "better").all()
    assert (rows.loc[~inside & ~excludes_zero, "decision"] == "inconclusive").all()
    decided = rows["decision"] != "inconclusive"
    assert ((rows["p_deciding"] < options.alpha) == decided).all()  # the printed p decides too
    assert (rows.loc[inside, "p_deciding_test"] == "equivalence").all()
    wider = rows["sim_high"] - rows["sim_low"] >= rows["ci_high"] - rows["ci_low"] - 1e-12
    assert wider.all()
    text = "\n".join(t.text() for t in comparison_tables(compare(runs, method_pairs(runs, "a"), options,
                                                                 np.random.default_rng(0))))
    for r in rows.itertuples():  # the deciding interval is printed beside each verdict
        assert f"[{r.sim_low:.2f}, {r.sim_high:.2f}]" in text


def test_a_lower_is_better_metric_flips_better_and_worse(tmp_path):
    for base in range(3):
        for strategy, loss in (("a", 0.30), ("b", 0.50)):
            metrics = [{"stage": "post", "split": "test", "metric": "loss", "value": loss + 0.01 * base},
                       {"stage": "post", "split": "none", "metric": "compression_ratio", "value": 4.0}]
            write_record(tmp_path, make_record(strategy=strategy, compression=4.0, base_seed=base, seed=base,
                                               metrics=metrics))
        write_record(tmp_path, make_record(strategy="none", compression=1.0, base_seed=base, seed=base,
                                           metrics=run_metrics(90.0, 1.0, 1.0)))
    options = AnalysisOptions(metric="loss", rope=0.05)
    runs = run_table(scan_store(tmp_path).table, options)
    row = compare(runs, [("a", "b")], options, np.random.default_rng(0)).comparisons.iloc[0]
    assert row["difference"] < 0 and row["decision"] == "better" and row["share_better"] == 1.0
