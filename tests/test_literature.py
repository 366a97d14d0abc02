"""The literature loader and the literature figures.

Expected numbers are computed by hand from named rows of `Results-Grid view.csv` (the row
is named by its `Name` id) and from published facts (81 papers). Tests on the real corpus
skip when it is absent; the figure scripts also run on a tiny corpus written here.
"""
from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest

from shrinkbench.analysis import literature as lit
from shrinkbench.analysis.errors import AnalysisError

FIGURES = Path(__file__).resolve().parent.parent / "paper_figures"
SCRIPTS = ("lit_efficient_architectures", "lit_tradeoff_curves", "lit_corpus_statistics")


def _corpus() -> Path | None:
    try:
        return lit.literature_path()
    except AnalysisError:
        return None


CORPUS = _corpus()
needs_corpus = pytest.mark.skipif(
    CORPUS is None, reason=f"literature corpus not found: set ${lit.ENV_VAR} or reinstall the package")


@pytest.fixture(scope="module")
def results():
    return lit.load_results(CORPUS)


def row(results, result_id: str) -> pd.Series:
    rows = results.rows[results.rows["result_id"] == result_id]
    assert len(rows) == 1, f"result {result_id} is not among the used rows"
    return rows.iloc[0]


# ------------------------------------------------------------------ cells and paths

def test_cells_are_parsed_as_percent_points():
    assert lit.parse_percent("93.55%") == 93.55
    assert lit.parse_percent(" -0.180% ") == -0.18
    assert math.isnan(lit.parse_percent(""))
    assert lit.parse_number("2.6400") == 2.64
    with pytest.raises(ValueError):
        lit.parse_percent("about 90%")


def test_names_are_canonicalised_lightly():
    assert lit.canonical_name("resnet50") == "ResNet-50"
    assert lit.canonical_name("VGG16") == "VGG-16"
    assert lit.canonical_name("cifar10") == "CIFAR-10"
    assert lit.canonical_name("VGG-Torch-CIFAR10") == "VGG-Torch-CIFAR10"
    assert lit.model_group("CaffeNet") == lit.model_group("AlexNet") == "AlexNet/CaffeNet"
    assert lit.architecture_family("MobileNet-v2") == "MobileNetV2"
    assert lit.architecture_family("VGG-16_BN") == "VGG-BN"


def test_a_missing_corpus_is_a_one_line_error_naming_the_places(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    with pytest.raises(AnalysisError, match="nowhere") as err:
        lit.literature_path(missing)
    assert "\n" not in str(err.value)
    monkeypatch.setenv(lit.ENV_VAR, str(missing))
    with pytest.raises(AnalysisError, match=lit.ENV_VAR):
        lit.load_results()
    monkeypatch.setenv(lit.ENV_VAR, str(tmp_path))
    assert lit.literature_path() == tmp_path.resolve()


# ------------------------------------------------------------------ hand-checked rows

@needs_corpus
def test_percent_strings_and_gflops_ratio(results):
    # row 54, autopruner ImageNet ResNet-50: Top1 "73.04%", OrigTop1 "76.15%", Top5 "91.25%",
    # OrigTop5 "92.87%", GFLOPS 2.6400, OrigGFLOPS 7.729, no parameter counts.
    r = row(results, "54")
    assert r.top1 == pytest.approx(73.04)
    assert r.delta_top1 == pytest.approx(73.04 - 76.15)  # -3.11
    assert r.delta_top5 == pytest.approx(91.25 - 92.87)  # -1.62
    assert r.theoretical_speedup == pytest.approx(7.729 / 2.64)  # 2.9277
    assert r.theoretical_speedup_from == "OrigGFLOPS/GFLOPS"
    assert math.isnan(r.compression_ratio)
    assert r.source == "reported"


@needs_corpus
def test_error_rates_become_accuracies(results):
    # row 142, pruning-filters CIFAR-10 ResNet-56: Err1 "6.90%", OrigTop1 "93.04%",
    # MParams 0.77 of OrigMParams 0.85, GFLOPS 0.112 of OrigGFLOPS 0.125.
    r = row(results, "142")
    assert (r.top1, r.top1_from) == (pytest.approx(100 - 6.90), "100-Err1")
    assert r.delta_top1 == pytest.approx(93.10 - 93.04)  # +0.06
    assert r.compression_ratio == pytest.approx(0.85 / 0.77)  # 1.1039
    assert r.theoretical_speedup == pytest.approx(0.125 / 0.112)  # 1.1161
    # row 558, ding-auto-balanced CIFAR-10 ResNet-56: Err1 "7.06%", OrigErr1 "6.10%".
    r = row(results, "558")
    assert r.orig_top1 == pytest.approx(93.90)
    assert r.delta_top1 == pytest.approx(-0.96)


@needs_corpus
def test_saved_and_kept_fractions_become_ratios(results):
    # rows 128 and 393, channel-lasso-lstsq ImageNet VGG-16: savedFLOPS "50.00%" and
    # "75.00%" (the paper's 2x and 4x), dTop5 "0.000%" and "-1.000%".
    assert row(results, "128").theoretical_speedup == pytest.approx(2.0)
    r = row(results, "393")
    assert (r.theoretical_speedup, r.theoretical_speedup_from) == (pytest.approx(4.0),
                                                                  "1/(1-savedFLOPS)")
    assert r.delta_top5 == pytest.approx(-1.0)
    # row 90, apple-pfa CIFAR-10 ResNet-56 (PFA-En): keptParams "61.50%", keptFLOPS
    # "69.90%", dTop1 "-0.180%", NumTrials 10, no absolute accuracy.
    r = row(results, "90")
    assert r.compression_ratio == pytest.approx(1 / 0.615)  # 1.6260
    assert r.theoretical_speedup == pytest.approx(1 / 0.699)  # 1.4306
    assert (r.delta_top1, r.num_trials) == (pytest.approx(-0.18), 10)
    assert math.isnan(r.top1)
    # row 503, soft-filter-pruning CIFAR-10 ResNet-56 (Fine-Tune): savedFLOPS "52.60%",
    # Top1 "93.35%" +- "0.31%" over 3 trials against OrigTop1 "93.59%".
    r = row(results, "503")
    assert r.theoretical_speedup == pytest.approx(1 / (1 - 0.526))  # 2.1097
    assert (r.delta_top1, r.std_top1, r.num_trials) == (pytest.approx(-0.24), 0.31, 3)


@needs_corpus
def test_old_new_ratios_and_derived_accuracy(results):
    # row 324, babu-training-sparse ImageNet AlexNet: old/new Nparam 10.30 (and 60.9/5.9 =
    # 10.32, within the tolerance, so no conflict).
    r = row(results, "324")
    assert (r.compression_ratio, r.compression_ratio_from) == (pytest.approx(10.3), "old/new Nparam")
    assert "324" not in set(results.conflicts["result_id"])
    # row 330, amc-automl-han ImageNet MobileNet: dTop1 "-0.400%" against OrigTop1 "70.60%",
    # savedParams "50.00%": the pruned top-1 is derived as 70.6 - 0.4.
    r = row(results, "330")
    assert (r.top1, r.top1_from) == (pytest.approx(70.2), "OrigTop1 + dTop1")
    assert r.compression_ratio == pytest.approx(2.0)


@needs_corpus
def test_delta_sign_convention_and_conflicts(results):
    # row 50, google-state-of-sparsity ImageNet ResNet-50: Top1 76.52, OrigTop1 76.69 and
    # dTop1 -0.17 agree, so dTop1 is pruned minus dense.
    r = row(results, "50")
    assert r.delta_top1 == pytest.approx(76.52 - 76.69)
    assert "50" not in set(results.conflicts["result_id"])
    # row 365, zhuang-discriminative-channel ImageNet ResNet-50: Err1 "23.60%" against
    # OrigTop1 "76.01%" gives +0.39, but its dTop1 reads -1.06 (the value of row 527):
    # the difference of the two accuracies is kept and the clash is listed.
    r = row(results, "365")
    assert r.delta_top1 == pytest.approx(76.40 - 76.01)
    clash = results.conflicts[(results.conflicts["result_id"] == "365")
                              & (results.conflicts["quantity"] == "delta_top1")]
    assert clash["other"].tolist() == [pytest.approx(-1.06)]


@needs_corpus
def test_every_input_row_is_used_or_skipped_with_a_reason(results):
    with open(CORPUS / lit.RESULTS_FILE, newline="", encoding="utf-8-sig") as handle:
        ids = [r["Name"] for r in csv.DictReader(handle)]
    used, skipped = set(results.rows["result_id"]), set(results.skipped["result_id"])
    assert results.n_input == len(ids) == 551
    assert used | skipped == set(ids) and not used & skipped
    assert results.skipped["reason"].str.len().gt(0).all()
    assert results.skipped_counts().sum() == len(ids) - len(used)
    # rows 465 (only the 2nd conv layer accelerated) and 478 (all 5 conv layers).
    assert results.skipped.set_index("result_id").loc["465", "reason"].startswith("ratio covers only")
    assert row(results, "478").theoretical_speedup == pytest.approx(3.0)
    assert (results.rows["source"] == "reported").all()


# ------------------------------------------------------------------ papers, architectures

@needs_corpus
def test_81_papers_and_their_venues():
    papers = lit.load_papers(CORPUS)
    assert len(papers) == 81  # the paper's abstract: "results across 81 papers"
    assert papers["paper"].is_unique and papers["year"].notna().all()
    # Venues-Grid view.csv counts each venue's papers independently ("Field 5").
    with open(CORPUS / "Venues-Grid view.csv", newline="", encoding="utf-8-sig") as handle:
        venues = {r["Name"]: int(r["Field 5"]) for r in csv.DictReader(handle) if r["Name"]}
    counts = papers["venue"].value_counts()
    assert {v: int(counts.get(v, 0)) for v in venues} == venues


@needs_corpus
def test_architecture_summaries_follow_their_file_conventions():
    archs = lit.load_architectures(CORPUS).set_index(["origin", "name"])
    keras = archs.loc[("keras/keras-models-summary.csv", "ResNet-50")]
    assert (keras.top1, keras.params) == (pytest.approx(74.9), 25636712)  # 0.749 as a fraction
    assert math.isnan(keras.macs)
    torch_table = archs.loc["pytorch-pretrained/ModelsComparison.csv"]
    # Its "FLOPs" are conv-only multiply-accumulates: ResNet-50 4,089,184,256 MACs in our
    # convention (ARCHITECTURE.md), VGG-16 15,470,264,320 minus its Linear layers'
    # 25088*4096 + 4096*4096 + 4096*1000 = 123,633,664.
    assert torch_table.loc["ResNet-50", "macs"] == pytest.approx(4_089_184_256, rel=2e-3)
    assert torch_table.loc["VGG-16", "macs"] == pytest.approx(15_470_264_320 - 123_633_664, rel=1e-3)
    assert torch_table.loc["VGG-16", "params"] == 138_357_544
    effnet = archs.loc[("efficientnet/efficientnet-models-summary.csv", "EfficientNet-B0")]
    assert (effnet.params, effnet.macs, effnet.family) == (5.3e6, pytest.approx(0.39e9), "EfficientNet")


@needs_corpus
def test_corpus_statistics_match_an_independent_count():
    stats = lit.corpus_statistics(CORPUS)
    with open(CORPUS / lit.PAPERS_FILE, newline="", encoding="utf-8-sig") as handle:
        papers = list(csv.DictReader(handle))
    compared = [len([p for p in r["Compares To"].split(",") if p.strip()]) for r in papers]
    assert stats.n_papers == 81
    assert stats.compares_at_most(0) == compared.count(0)
    assert stats.compares_at_most(3) == sum(c <= 3 for c in compared)
    assert int(stats.papers_per_year.sum()) == 81
    with open(CORPUS / lit.RESULTS_FILE, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    vgg = {r["Paper"] for r in rows if (r["Dataset"], r["Model"]) == ("ImageNet", "VGG-16")}
    assert stats.top_pairs.iloc[0][["dataset", "model", "papers"]].tolist() == ["ImageNet", "VGG-16", len(vgg)]
    assert stats.reporting.loc["all results", "trial_count"] == sum(bool(r["NumTrials"]) for r in rows)
    assert "81" in lit.format_statistics(stats)


# ------------------------------------------------------------------ figure scripts

def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"_test_{name}", FIGURES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    """Two papers, one result per plotted pair plus an unusable row, and three summaries."""
    root = tmp_path / "literature"
    def result(i, paper, dataset, model, **cells):
        return {"Name": str(i), "Paper": paper, "Dataset": dataset, "Model": model, **cells}
    results = [
        result(1, "a", "ImageNet", "VGG-16", Top1="68.00%", OrigTop1="70.00%", Top5="88.00%",
               OrigTop5="89.00%", savedParams="90.00%", **{"old/new FLOPS": "3.0"}),
        result(2, "a", "ImageNet", "ResNet-50", Err1="25.00%", OrigTop1="76.00%", keptFLOPS="50.00%"),
        result(3, "b", "ImageNet", "CaffeNet", dTop5="-1.000%", MParams="6.1", OrigMParams="61.0"),
        result(4, "b", "CIFAR-10", "ResNet-56", Top1="93.00%", NumTrials="3", stdTop1="0.20%",
               OrigTop1="93.50%", GFLOPS="0.0625", OrigGFLOPS="0.125"),
        result(5, "b", "MNIST", "LeNet-5"),
        result(6, "b", "MNIST", "LeNet-5", Top1="n/a", savedParams="50%"),
    ]
    _write_csv(root / lit.RESULTS_FILE, list(lit.RESULT_COLUMNS), results)
    _write_csv(root / lit.PAPERS_FILE, ["Name", "Date", "Venue", "Compares To", "Results"], [
        {"Name": "a", "Date": "2018-3", "Venue": "ICLR", "Compares To": "", "Results": "1,2"},
        {"Name": "b", "Date": "2019-6", "Venue": "NIPS", "Compares To": "a", "Results": "3,4,5,6"}])
    _write_csv(root / "efficientnet/efficientnet-models-summary.csv",
               ["Model", "Top1", "Top5", "MParams", "GFLOPS"],
               [{"Model": "EfficientNet-B0", "Top1": "76.3", "Top5": "93.2", "MParams": "5.3", "GFLOPS": "0.39"}])
    _write_csv(root / "keras/keras-models-summary.csv",
               ["Model", "Parameters", "Top-1 Accuracy", "Top-5 Accuracy"],
               [{"Model": "VGG-16", "Parameters": "138357544", "Top-1 Accuracy": "0.713", "Top-5 Accuracy": "0.901"}])
    _write_csv(root / "pytorch-pretrained/ModelsComparison.csv",
               ["Model", "FLOPs", "# Parameters", "Top-1 (%)", "Top-5 (%)"],
               [{"Model": m, "FLOPs": f, "# Parameters": p, "Top-1 (%)": t, "Top-5 (%)": "90"}
                for m, f, p, t in (("VGG-16", "15.35", "138357544", "71.63"),
                                   ("ResNet-50", "4.09", "25557032", "76.01"),
                                   ("MobileNet-v2", "0.31", "3505960", "71.81"))])
    return root


def test_tiny_corpus_rows_and_skips(tiny_corpus):
    results = lit.load_results(tiny_corpus)
    assert results.rows["result_id"].tolist() == ["1", "2", "3", "4"]
    assert results.rows.set_index("result_id").loc["1", "compression_ratio"] == pytest.approx(10.0)
    reasons = results.skipped.set_index("result_id")["reason"]
    assert reasons["5"] == "no numbers reported" and reasons["6"].startswith("unparseable value")
    # result 1: savedParams 90% -> 10x, old/new FLOPS 3, top-1 68 (-2 points), top-5 88 (-1).
    long = lit.as_metric_rows(results.rows)
    first = long[long["result_id"] == "1"].set_index("metric")["value"].to_dict()
    assert first == pytest.approx({"compression_ratio": 10.0, "theoretical_speedup": 3.0, "top1": 68.0,
                                   "top5": 88.0, "delta_top1": -2.0, "delta_top5": -1.0})
    assert set(long["source"]) == {"reported"} and set(long["stage"]) == {"post"}
    # result 2: Err1 25% -> top-1 75, one point below 76; keptFLOPS 50% -> 2x.
    second = long[long["result_id"] == "2"].set_index("metric")["value"].to_dict()
    assert second == pytest.approx({"theoretical_speedup": 2.0, "top1": 75.0, "delta_top1": -1.0})


def test_a_corpus_without_usable_rows_gives_empty_frames_with_all_columns(tiny_corpus):
    path = tiny_corpus / lit.RESULTS_FILE
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame[frame["Name"] == "5"].to_csv(path, index=False)
    results = lit.load_results(tiny_corpus)
    assert results.rows.empty and list(results.rows.columns) == list(lit.ROW_COLUMNS)
    assert results.skipped_counts().to_dict() == {"no numbers reported": 1}


@pytest.mark.parametrize("name", SCRIPTS)
def test_figure_scripts_write_their_files_on_a_tiny_corpus(name, tiny_corpus, tmp_path, capsys):
    out = tmp_path / "figures"
    assert _script(name).main(["--literature", str(tiny_corpus), "--out", str(out)]) == 0
    written = [Path(line.removeprefix("wrote ")) for line in capsys.readouterr().out.splitlines()
               if line.startswith("wrote ")]
    assert written and all(p.parent == out and p.stat().st_size > 0 for p in written)
    pngs = [p for p in written if p.suffix == ".png"]
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert all(p.read_bytes()[:4] == b"%PDF" for p in written if p.suffix == ".pdf")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


@needs_corpus
@pytest.mark.parametrize("name", SCRIPTS)
def test_figure_scripts_run_on_the_real_corpus(name, tmp_path, capsys):
    out = tmp_path / "figures"
    assert _script(name).main(["--literature", str(CORPUS), "--out", str(out), "--formats", "png"]) == 0
    assert sorted(p.suffix for p in out.iterdir()) and all(p.stat().st_size > 0 for p in out.iterdir())


def test_figure_script_reports_a_missing_corpus_in_one_line(tmp_path, capsys):
    out = tmp_path / "figures"
    code = _script("lit_tradeoff_curves").main(["--literature", str(tmp_path / "absent"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "absent" in err
    assert not out.exists()


def test_the_loader_and_figures_do_not_import_torch():
    import subprocess
    import sys
    code = ("import sys; sys.path.insert(0, 'paper_figures'); import shrinkbench.analysis.literature, "
            "lit_tradeoff_curves, lit_efficient_architectures, lit_corpus_statistics; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    root = FIGURES.parent
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=60)


def test_literature_command_lists_reported_results_and_draws_ours_over_them(tiny_corpus, tmp_path, capsys):
    import numpy as np

    from shrinkbench.analysis.bands import curve_points
    from shrinkbench.analysis.cli import main as analysis_main
    from shrinkbench.analysis.load import scan_store
    from shrinkbench.analysis.options import AnalysisOptions
    from shrinkbench.analysis.overlay import overlay_figure, reported_results
    from shrinkbench.analysis.runs import run_table
    from analysis_fixtures import synthetic_store

    rows = lit.load_results(tiny_corpus).rows
    reported = reported_results(rows, "cifar10", "cifar_resnet56")  # zoo names, mapped to the corpus'
    assert reported["label"].tolist() == ["b"] and reported["delta_top1"].iloc[0] == pytest.approx(-0.5)
    assert reported_results(rows, "imagenet", "imagenet_alexnet")["model"].tolist() == ["CaffeNet"]
    assert reported_results(rows, "cifar10", "cifar_resnet56", method="nothing").empty
    store = synthetic_store(tmp_path / "store", np.random.default_rng(0), {"global_magnitude": 0.0},
                            compressions=(2, 4), settings=(("cifar_resnet56", "cifar10"),))
    points = curve_points(run_table(scan_store(store).table), AnalysisOptions(), np.random.default_rng(0))
    fig = overlay_figure(reported, points, "speedup", "t")
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "reported: b" in labels and any(label.startswith("reproduced: global_magnitude") for label in labels)
    plot = tmp_path / "overlay.png"
    assert analysis_main(["literature", "--literature", str(tiny_corpus), "--dataset", "cifar10", "--model",
                          "cifar_resnet56", "--store", str(store), "--plot", str(plot), "--axis", "speedup"]) == 0
    out = capsys.readouterr().out
    assert "Reported by the papers" in out and "-0.50" in out and plot.read_bytes()[:4] == b"\x89PNG"
    assert analysis_main(["literature", "--literature", str(tiny_corpus), "--dataset", "fashion-mnist",
                          "--model", "lenet5_caffe"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none of its papers reports one" in err
