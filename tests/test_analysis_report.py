"""Decisions on synthetic stores with known effects, tables, Pareto labels, the report
folder and the command line."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shrinkbench.analysis.cli import main
from shrinkbench.analysis.compare import compare, method_pairs
from shrinkbench.analysis.load import scan_store
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.pareto import pareto_labels
from shrinkbench.analysis.planner import plan_seeds
from shrinkbench.analysis.report import build_report
from shrinkbench.analysis.runs import run_table
from shrinkbench.analysis.tables import operating_point_table, table_latex, table_markdown
from analysis_fixtures import make_record, run_metrics, synthetic_store, write_record

UNITS5 = tuple((i, i) for i in range(5))


def _runs(tmp_path, effects, seed=0, **kw):
    synthetic_store(tmp_path, np.random.default_rng(seed), effects, **kw)
    return run_table(scan_store(tmp_path).table)


def _compare(runs, method, options=AnalysisOptions()):
    return compare(runs, method_pairs(runs, method), options, np.random.default_rng(0))


def test_a_clear_difference_is_called_better(tmp_path):
    runs = _runs(tmp_path, {"mine": 2.0, "global_magnitude": 0.0}, units=UNITS5)
    report = _compare(runs, "mine")
    rows = report.comparisons
    assert len(rows) == 4 and (rows["decision"] == "better").all()
    assert (rows["test"] == "paired t").all() and (rows["n_pairs"] == 5).all()
    assert rows["family"].iloc[0] == "mine vs baselines, mnist/lenet, post/test top1"
    assert (rows["family_size"] == 4).all() and (rows["p_adjusted"] >= rows["p_value"]).all()
    assert (rows["ci_low"] > 0).all()
    assert report.curve_level["difference"].iloc[0] == pytest.approx(2.0, abs=0.4)
    mirrored = _compare(runs, "global_magnitude")
    assert (mirrored.comparisons["decision"] == "worse").all()


def test_no_difference_is_equivalent_or_inconclusive(tmp_path):
    runs = _runs(tmp_path / "few", {"a": 0.0, "b": 0.0}, seed=3)
    assert set(_compare(runs, "a").comparisons["decision"]) <= {"equivalent", "inconclusive"}
    many = _runs(tmp_path / "many", {"a": 0.0, "b": 0.0}, seed=4, noise_sd=0.1,
                 units=tuple((i, i) for i in range(12)))
    assert (_compare(many, "a").comparisons["decision"] == "equivalent").all()


def test_underpowered_is_said_and_n_below_three_is_warned(tmp_path):
    runs = _runs(tmp_path, {"a": 0.3, "b": 0.0}, units=((0, 0), (1, 1)), noise_sd=1.0)
    rows = _compare(runs, "a").comparisons
    assert (rows["decision"] == "inconclusive").all() and rows["underpowered"].all()
    assert rows["warnings"].str.contains("n < 3").all()


def test_confounders_are_warned_and_unshared_base_models_use_welch(tmp_path):
    common = {"compression": 4.0}
    for seed in range(3):
        write_record(tmp_path, make_record(strategy="a", seed=seed, base_seed=seed, metrics=run_metrics(
            80 + seed, 4.0, 4.0), **common))
        write_record(tmp_path, make_record(strategy="b", seed=seed + 10, base_seed=seed + 10, finetune_epochs=5.0,
                                           code_version="v2", metrics=run_metrics(79 + seed, 4.0, 4.0),
                                           **common))
    runs = run_table(scan_store(tmp_path).table)
    report = _compare(runs, "a")
    row = report.comparisons.iloc[0]
    assert row["test"] == "Welch t" and row["n_pairs"] == 0
    assert "fine-tuning epochs differs" in row["warnings"] and "code version differs" in row["warnings"]
    assert "base weights differ" in row["warnings"]
    assert any("fine-tuning epochs" in w for w in report.warnings)


def test_runs_sharing_a_base_model_pair_by_it_whatever_their_run_seeds(tmp_path):
    for base in range(3):
        for seed in (base, base + 10):  # two run seeds per base model, different per strategy
            write_record(tmp_path, make_record(strategy="a", seed=seed, base_seed=base, compression=4.0,
                                               metrics=run_metrics(80 + base + 0.1 * seed, 4.0, 4.0)))
        write_record(tmp_path, make_record(strategy="b", seed=base + 20, base_seed=base, compression=4.0,
                                           metrics=run_metrics(79 + base, 4.0, 4.0)))
    runs = run_table(scan_store(tmp_path).table)
    row = _compare(runs, "a").comparisons.iloc[0]
    assert row["test"] == "paired t" and row["n_pairs"] == 3 and row["replication"] == "base models"
    # a's value per base model is the mean of its two run seeds: 80 + base + 0.1 * (2 base + 10) / 2
    assert row["mean_method"] == pytest.approx(np.mean([80 + b + 0.1 * (b + 5) for b in range(3)]))


def test_table_marks_only_a_significant_best(tmp_path):
    runs = _runs(tmp_path, {"clear": 3.0, "close": 2.95, "base": 0.0}, units=UNITS5, noise_sd=0.3)
    table = operating_point_table(runs)
    assert not table["best"].any()  # "clear" leads by 0.05 points only: never significant
    runs2 = _runs(tmp_path / "s2", {"clear": 3.0, "base": 0.0}, units=UNITS5)
    table2 = operating_point_table(runs2)
    best = table2[table2["best"]]
    assert set(best["strategy"]) == {"clear"} and len(best) == 4 and (best["best_q"] < 0.05).all()
    md = table_markdown(table2, AnalysisOptions())
    assert "**" in md and "(5)" in md and "±" in md
    tex = table_latex(table2, AnalysisOptions())
    assert r"\toprule" in tex and r"\textbf{" in tex and r"$\pm$" in tex and "\\_" not in md


def test_pareto_labels_are_read_from_the_decisions(tmp_path):
    runs = _runs(tmp_path, {"good": 2.0, "bad": -2.0}, units=UNITS5)
    report = compare(runs, [("good", "bad")], AnalysisOptions(), np.random.default_rng(0))
    labels = pareto_labels(runs, report.comparisons).set_index(["axis", "strategy", "compression"])
    assert (labels.loc[("compression", "good"), "label"] == "pareto").all()
    bad = labels.loc[("compression", "bad")]
    assert (bad["label"] == "dominated").all()
    assert bad["dominated_by"].str.startswith("good @").all()
    assert not (pareto_labels(runs)["label"] == "dominated").any()  # no verdict, no domination


def test_a_point_called_equivalent_is_never_dominated(tmp_path):
    """Issue 25, point 5: 'dominated by' beside 'equivalent' contradicted the verdicts."""
    runs = _runs(tmp_path, {"a": 1.0, "b": 0.0}, units=UNITS5)
    options = AnalysisOptions(rope=5.0)  # every difference here lies well inside ±5
    report = compare(runs, [("a", "b")], options, np.random.default_rng(0))
    assert (report.comparisons["decision"] == "equivalent").all()
    labels = pareto_labels(runs, report.comparisons)
    assert not (labels["label"] == "dominated").any()
    assert (labels[(labels["strategy"] == "b") & (labels["axis"] == "compression")]["label"] != "pareto").any()


def test_seed_planner_from_a_pilot(tmp_path):
    runs = _runs(tmp_path, {"a": 1.0, "b": 0.0})
    plan = plan_seeds(runs, 0.5, AnalysisOptions(), "a", "b")
    assert (plan["design"] == "paired").all() and (plan["pilot_n"] == 3).all()
    assert (plan["seeds_needed"] >= 2).all()
    bigger = plan_seeds(runs, 0.1, AnalysisOptions(), "a", "b")
    assert (bigger["seeds_needed"].to_numpy() >= plan["seeds_needed"].to_numpy()).all()


def test_report_writes_every_file(tmp_path):
    store = synthetic_store(tmp_path / "store", np.random.default_rng(0), {"global_magnitude": 1.0, "random": -2.0},
                            compressions=(2, 4, 8), top5=True, failed=1)
    (store / "runs" / "broken.json").write_text("{")
    with pytest.warns(Warning):
        scan = scan_store(store)
    out = tmp_path / "out"
    summary = build_report(scan, out, AnalysisOptions(interval="bootstrap", n_boot=200), per_seed_points=True)
    for name in ("report.md", "report.html", "summary.json", "tables/operating_points.tex",
                 "tables/operating_points.csv", "significance/comparisons.csv", "significance/significance.json",
                 "figures/top1_abs_vs_compression.pdf", "figures/top5_delta_vs_speedup.png"):
        assert (out / name).is_file(), name
    assert (out / "figures/top1_abs_vs_compression.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.rglob("*latency*")) and not list(out.rglob("*measured*"))  # masked: timing noise only
    assert not [p for p in out.rglob("*") if " " in p.name]  # file names without spaces
    page = (out / "report.html").read_text()
    # 8 curve figures (no latency figures of masked models) and the 2 of "Across settings" (3 compressions are 3 settings)
    assert page.count("data:image/png;base64,") == 10 and 'src="figures' not in page and 'src="across' not in page
    assert "No figures against measured latency" in page
    assert "broken.json" in page and "failed runs excluded" in page and "under-cover" in page
    saved = json.loads((out / "summary.json").read_text())
    assert saved["generator_seed"] == 0 and saved["failed_runs"] == 1 == summary["failed_runs"]
    comparisons = pd.read_csv(out / "significance/comparisons.csv")
    assert set(comparisons["decision"]) <= {"better", "worse", "equivalent", "inconclusive"}
    assert not list(out.rglob(".*"))  # no temporary files left behind


def test_cli_compare_json_and_errors(tmp_path, capsys):
    synthetic_store(tmp_path, np.random.default_rng(0), {"mine": 2.0, "base": 0.0}, units=UNITS5)
    assert main(["compare", "--store", str(tmp_path), "--method", "mine", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["decision"] for r in data["comparisons"]} == {"better"}
    assert data["generator_seed"] == 0 and data["curve_level"][0]["baseline"] == "base"
    assert main(["compare", "--store", str(tmp_path), "--method", "mine", "--baseline", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown baseline 'nope'") and err.count("\n") == 1
    assert main(["results", "--store", str(tmp_path), "--out", str(tmp_path / "t.csv")]) == 0
    exported = pd.read_csv(tmp_path / "t.csv")
    config_columns = [c for c in exported.columns if c.startswith("config.")]
    assert {"config.model", "config.finetune.epochs", "config.base.seed"} <= set(config_columns)
    assert (exported["config.model"] == exported["model"]).all()
    assert main(["plan-seeds", "--csv", str(tmp_path / "t.csv"), "--target", "0.5", "--format", "csv"]) == 0
    plan = capsys.readouterr().out
    assert plan.startswith("model,dataset,compression,strategy,pilot_n")
    assert main(["report", "--store", str(tmp_path), "--out", str(tmp_path / "rep"), "--formats", "png"]) == 0
    assert (tmp_path / "rep" / "report.html").is_file()
    assert main(["report", "--store", str(tmp_path / "missing")]) == 2


def test_the_seed_plan_uses_the_upper_limit_of_the_pilot_sd_and_plans_equivalence(tmp_path):
    """Issue 25, point 6: a 3-seed SD planned as if it were the truth ('2 seeds')."""
    from scipy import stats

    from shrinkbench.analysis.power import seeds_for_equivalence, seeds_needed
    from shrinkbench.analysis.significance import seed_plan_table

    runs = _runs(tmp_path, {"a": 1.0, "b": 0.0})
    options = AnalysisOptions()
    plan = plan_seeds(runs, 0.5, options, "a", "b")
    for r in plan.itertuples():
        assert r.sd_upper == pytest.approx(r.sd * np.sqrt(2 / stats.chi2.ppf(0.2, 2)))  # 80% limit, df = 2
        assert r.seeds_needed == seeds_needed(r.sd_upper, 0.5, r.alpha, 0.8, paired=True)
        assert r.seeds_needed >= seeds_needed(r.sd, 0.5, r.alpha, 0.8, paired=True)
        assert r.seeds_equivalence == seeds_for_equivalence(r.sd_upper, options.rope, r.alpha, 0.8)
    text = seed_plan_table(plan).text()
    assert "80% upper limit" in text and "Seeds: equivalence" in text
    stricter = plan_seeds(runs, 0.5, options, "a", "b", sd_confidence=0.95)
    assert (stricter["sd_upper"] > plan["sd_upper"]).all()


def test_equivalence_power_matches_a_simulation_of_the_decision():
    from scipy import stats

    from shrinkbench.analysis.power import equivalence_power

    rng = np.random.default_rng(1)
    n, alpha, sd = 8, 0.05 / 4, 0.3
    d = rng.normal(0.1, sd, (40_000, n))
    half = stats.t.ppf(1 - alpha / 2, n - 1) * d.std(axis=1, ddof=1) / np.sqrt(n)
    inside = np.mean((d.mean(axis=1) - half > -0.5) & (d.mean(axis=1) + half < 0.5))
    assert equivalence_power(0.5, sd, n, alpha, difference=0.1) == pytest.approx(inside, abs=0.01)


def test_methods_of_different_budgets_are_never_ranked_or_decided_together(tmp_path):
    """Issue 25, point 7: a 6-epoch method in one family and one 'best' with 2-epoch methods."""
    from shrinkbench.analysis.headline import summarize_settings

    rng = np.random.default_rng(9)
    for base in range(4):
        write_record(tmp_path, make_record(strategy="none", compression=1.0, base_seed=base, seed=base,
                                           metrics=run_metrics(90.0 + rng.normal(0, 0.1), 1.0, 1.0)))
        for strategy, top1, epochs in (("a", 88.0, 2.0), ("b", 86.0, 2.0), ("long", 89.5, 6.0)):
            for c in (4.0, 8.0):
                write_record(tmp_path, make_record(
                    strategy=strategy, compression=c, base_seed=base, seed=base, finetune_epochs=epochs,
                    metrics=run_metrics(top1 - c / 4 + rng.normal(0, 0.05), c, c)))
    runs = run_table(scan_store(tmp_path).table)
    options = AnalysisOptions()
    report = compare(runs, method_pairs(runs, "a"), options, np.random.default_rng(0))
    rows = report.comparisons
    same, other = rows[rows["baseline"] == "b"], rows[rows["baseline"] == "long"]
    assert set(same["family"]).isdisjoint(other["family"])
    assert (same["family_size"] == 2).all() and (other["family_size"] == 2).all()
    assert other["family"].iloc[0].endswith("baselines of 6 epochs (the method: 2 epochs)")
    table = operating_point_table(runs, options, rows)
    best = table[table["best"]]
    assert set(best["strategy"]) == {"a"}  # the best of the 2-epoch methods; "long" is ranked alone
    (summary,) = summarize_settings(report, table, "a")
    assert summary.best.startswith("a among methods trained 2 epochs")
