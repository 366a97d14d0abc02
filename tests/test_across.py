"""Ranking across settings (shrinkbench.analysis.across): data, block, verdicts, CLI, report."""
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis_fixtures import synthetic_store
from shrinkbench.analysis.across import across, complete_block, parse_keys, verdict_for
from shrinkbench.analysis.cli import main
from shrinkbench.analysis.errors import AnalysisError
from shrinkbench.analysis.options import AnalysisOptions


def runs_frame(values: dict, units: int = 3, rng=None, noise: float = 0.0) -> pd.DataFrame:
    """Runs of {(model, compression): {strategy: mean}} with `units` base models each (dense 90)."""
    rng = rng or np.random.default_rng(0)
    rows = []
    for (model, compression), by_method in values.items():
        for u in range(units):
            for strategy, mean in by_method.items():
                y = mean + rng.normal(0.0, noise) if noise else mean + (u - (units - 1) / 2) * 0.01
                rows.append({"model": model, "dataset": "d", "compression": float(compression), "strategy": strategy,
                             "unit": f"base {model}{u}", "replication": "base models", "y": y, "delta": y - 90.0})
    return pd.DataFrame(rows)


def test_values_are_means_over_units_then_over_the_cells_of_a_setting():
    values = {("m1", 2): {"a": 80.0, "b": 70.0}, ("m1", 4): {"a": 60.0, "b": 65.0},
              ("m2", 2): {"a": 50.0, "b": 40.0}}
    result = across(runs_frame(values), "model", AnalysisOptions())
    assert list(result.values.index) == ["m1", "m2"]
    assert result.values.loc["m1", "a"] == pytest.approx(70.0)  # (80 + 60) / 2
    assert result.values.loc["m1", "b"] == pytest.approx(67.5)
    assert result.methods == ["a", "b"] and result.ranks.tolist() == [1.0, 2.0]
    assert any("only 2 settings" in note for note in result.notes)


def test_settings_by_every_key_and_rank_order():
    values = {(m, c): {"a": 80.0 - c, "b": 81.0 - c, "c": 70.0 - c} for m in ("x", "y") for c in (2, 4, 8)}
    result = across(runs_frame(values), "model,compression", AnalysisOptions())
    assert result.n_settings == 6 and result.methods == ["b", "a", "c"]
    assert result.friedman.chi2 == pytest.approx(sps.friedmanchisquare(*result.values.to_numpy().T).statistic)


def test_verdicts_follow_the_simultaneous_interval():
    rng = np.random.default_rng(1)
    # a better than b by 2 points everywhere; b and c equal: 12 settings, small noise
    values = {(f"m{i}", 2): {"a": 80.0 + 5 * i + 2.0, "b": 80.0 + 5 * i, "c": 80.0 + 5 * i} for i in range(12)}
    result = across(runs_frame(values, rng=rng, noise=0.1), "model", AnalysisOptions(rope=0.5))
    assert verdict_for(result, "a", "b") == "better" and verdict_for(result, "b", "a") == "worse"
    assert verdict_for(result, "b", "c") == "equivalent"
    row = result.pairs[(result.pairs["method"] == "a") & (result.pairs["baseline"] == "c")].iloc[0]
    d = result.values["a"] - result.values["c"]
    half = sps.t.ppf(1 - 0.05 / (2 * 3), len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    assert (row.sim_low, row.sim_high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert result.families()[result.verdict_family] == 3
    assert not any("only" in n and "settings" in n for n in result.notes)


def test_lower_is_better_flips_ranks_and_verdicts():
    values = {(f"m{i}", 2): {"a": 10.0 + i, "b": 12.0 + i} for i in range(8)}
    result = across(runs_frame(values), "model", AnalysisOptions(direction="lower", rope=0.1))
    assert result.methods == ["a", "b"]
    assert verdict_for(result, "a", "b") == "better"
    row = result.pairs.iloc[0]
    assert row.difference == pytest.approx(-2.0, abs=0.05) and row.sim_high < 0


def test_complete_block_prefers_the_largest_block():
    values = {("x", c): {"a": 1.0, "b": 2.0, "c": 3.0} for c in (2, 4, 8, 16)}
    values[("x", 32)] = {"a": 1.0, "b": 2.0}
    values[("x", 64)] = {"a": 1.0, "b": 2.0, "d": 0.0}
    result = across(runs_frame(values), "compression", AnalysisOptions())
    assert sorted(result.methods) == ["a", "b", "c"] and result.n_settings == 4  # 12 cells beat 2 x 6
    assert result.dropped == ["d"]
    chosen = across(runs_frame(values), "compression", AnalysisOptions(), methods=["a", "b"])
    assert chosen.n_settings == 6 and chosen.dropped == []


def test_bad_input_is_one_clear_error():
    values = {("x", 2): {"a": 1.0, "b": 2.0}, ("x", 4): {"a": 1.0, "b": 2.0}}
    with pytest.raises(AnalysisError, match="setting keys among model, dataset, compression"):
        parse_keys("model,seed")
    with pytest.raises(AnalysisError, match="unknown method 'z'"):
        across(runs_frame(values), "compression", AnalysisOptions(), methods=["a", "z"])
    with pytest.raises(AnalysisError, match="two or more common settings \\(across model\\)"):
        across(runs_frame(values), "model", AnalysisOptions())
    with pytest.raises(AnalysisError, match="only one setting"):
        across(runs_frame(values), "model", AnalysisOptions(), methods=["a", "b"])
    with pytest.raises(AnalysisError, match="at least two methods"):
        across(runs_frame(values), "compression", AnalysisOptions(), methods=["a", "a"])
    assert complete_block(runs_frame(values).groupby(["model", "dataset", "compression", "strategy"])["y"].mean()
                          .unstack("strategy"), ("compression",)) == ["a", "b"]


def test_iqm_uses_units_within_settings():
    values = {(f"m{i}", 2): {"a": 85.0, "b": 80.0} for i in range(4)}
    result = across(runs_frame(values, units=4), "model", AnalysisOptions(n_boot=200))
    iqm = result.iqm.set_index("method")
    assert iqm.loc["a", "iqm"] == pytest.approx(-5.0, abs=0.02) and iqm.loc["b", "iqm"] == pytest.approx(-10.0, abs=0.02)
    assert iqm.loc["a", "units"] == 16 and iqm.loc["a", "what"] == "difference to dense"
    one_unit = across(runs_frame(values, units=1), "model", AnalysisOptions(n_boot=200))
    assert one_unit.iqm is None and any("no IQM" in n for n in one_unit.notes)


@pytest.fixture(scope="module")
def several_models(tmp_path_factory):
    store = tmp_path_factory.mktemp("across") / "store"
    settings = tuple((f"net{i}", "mnist") for i in range(6))
    return synthetic_store(store, np.random.default_rng(4), {"global_magnitude": 1.0, "layerwise_magnitude": 0.0,
                                                              "random": -3.0},
                           compressions=(2, 8), settings=settings)


def test_cli_rank_text_json_and_files(several_models, tmp_path, capsys):
    assert main(["rank", "--store", str(several_models), "--across", "model", "--n-boot", "200",
                 "--out", str(tmp_path / "out"), "--figure-formats", "png"]) == 0
    out = capsys.readouterr().out
    assert "Mean ranks across 6 settings" in out and "Friedman" in out and "Nemenyi" in out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"across.md", "across.json", "across_pairs.csv",
                                                              "across_cd.png", "across_iqm_profiles.png"}
    assert main(["rank", "--store", str(several_models), "--across", "model", "--n-boot", "200",
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["methods"][0] == "global_magnitude" and data["mean_ranks"]["random"] == 3.0
    assert set(data["families"].values()) == {3, 1}
    profile = data["performance_profile"]
    assert len(profile["thresholds"]) == len(profile["fraction"]) and len(profile["fraction"][0]) == 3


@pytest.mark.parametrize("argv, message", [
    (["--across", "seed"], "error: --across takes setting keys"),
    (["--method", "global_magnitude", "nope"], "error: unknown method 'nope'"),
    (["--interval", "bootstrap"], "error: rank does not use --interval"),
    (["--power", "0.9"], "error: rank does not use --power"),
    (["--figure-formats", "gif", "--out", "x"], "error: --figure-formats takes png, pdf and/or svg"),
])
def test_cli_rank_bad_input_is_one_line_exit_2(several_models, tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["rank", "--store", str(several_models), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message)
    assert not (tmp_path / "x").exists()


def test_report_has_an_across_settings_section(several_models, tmp_path):
    from shrinkbench.analysis.load import load_table
    from shrinkbench.analysis.report import build_report

    summary = build_report(load_table(str(several_models), None), tmp_path / "r", AnalysisOptions(n_boot=200),
                           formats=("png",))
    text = (tmp_path / "r" / "report.md").read_text()
    assert "## Across settings" in text and "across/across_cd.png" in summary["files"]


def test_report_without_several_settings_has_no_section(tmp_path):
    from shrinkbench.analysis.load import load_table
    from shrinkbench.analysis.report import build_report

    store = synthetic_store(tmp_path / "s", np.random.default_rng(0), {"global_magnitude": 0.0, "random": -1.0},
                            compressions=(4,))
    build_report(load_table(str(store), None), tmp_path / "r", AnalysisOptions(n_boot=200), formats=("png",))
    assert "Across settings" not in (tmp_path / "r" / "report.md").read_text()


def test_cd_cliques_by_hand():
    from shrinkbench.analysis.across_plots import cliques

    # ranks 1.0, 1.5, 2.9, 3.2 with CD 1.0: {0,1} and {2,3}; CD 2.0: {0,1,2} (2.9 - 1.0 < 2), {1,2,3}
    ranks = np.array([1.0, 1.5, 2.9, 3.2])
    assert cliques(ranks, 1.0) == [(0, 1), (2, 3)]
    assert cliques(ranks, 2.0) == [(0, 2), (1, 3)]
    assert cliques(ranks, 0.1) == []


def test_rank_reads_an_exported_csv_and_says_how_few_settings(several_models, tmp_path, capsys):
    assert main(["results", "--store", str(several_models), "--format", "csv", "--out", str(tmp_path / "t.csv")]) == 0
    capsys.readouterr()
    assert main(["rank", "--csv", str(tmp_path / "t.csv"), "--across", "compression", "--n-boot", "200"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Mean ranks across 2 settings" in out
    assert "only 2 settings (fewer than 5)" in out and "smallest two-sided p is 0.5" in out


def test_profile_of_a_lower_is_better_response_counts_values_below_the_threshold():
    values = {(f"m{i}", 2): {"a": 10.0 + i, "b": 20.0 + i} for i in range(3)}
    result = across(runs_frame(values, units=2), "model", AnalysisOptions(direction="lower", n_boot=200))
    profile = result.profile
    assert not profile["higher_is_better"]
    for tau, row in zip(profile["thresholds"], profile["fraction"]):
        for j, method in enumerate(result.methods):
            deltas = runs_frame(values, units=2).query("strategy == @method")["delta"].to_numpy()
            assert row[j] == pytest.approx((deltas < tau).mean())
