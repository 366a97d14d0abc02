"""What a researcher reads first: the summary at the top of the terminal output and of the
HTML report (checked in a real headless Chromium where one is installed), outputs that agree
with each other, terminal lines within 100 columns, and LaTeX that compiles cleanly (checked
with pdflatex where TeX is installed)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from shrinkbench.analysis.benchmark import benchmark_summary
from shrinkbench.analysis.compare import compare, method_pairs
from shrinkbench.analysis.headline import ratio_list, summarize_settings, summary_text
from shrinkbench.analysis.load import scan_store
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.render import latex_escape
from shrinkbench.analysis.runs import run_table
from shrinkbench.analysis.tables import FLOAT_ROWS, operating_point_table, table_latex
from analysis_fixtures import synthetic_store

EFFECTS = {"global_magnitude": 1.0, "layerwise_magnitude": 0.9, "random": -2.0, "global_gradient": 0.2}
COMPRESSIONS = (2, 4, 8, 16, 32)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return synthetic_store(tmp_path_factory.mktemp("store"), np.random.default_rng(0), EFFECTS,
                           compressions=COMPRESSIONS, top5=True)


@pytest.fixture(scope="module")
def printed(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return benchmark_summary(store, out), out


def test_ratio_lists_join_consecutive_doublings():
    assert ratio_list([2, 4, 8, 32]) == "2–8×, 32×"
    assert ratio_list([16.0]) == "16×"
    assert ratio_list([4, 2, 16]) == "2–4×, 16×"
    assert ratio_list([]) == "no ratio"


def test_the_terminal_opens_with_the_summary_and_fits_100_columns(printed):
    text, _ = printed
    lines = text.splitlines()
    assert lines[0].startswith("SUMMARY")
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    assert text.index("SUMMARY") < text.index("Ratio  Baseline")
    assert "random (2–32×)" in lines[2]  # what global_magnitude beats, per ratio, comes first


def test_every_summary_verdict_is_a_row_of_the_report(store):
    runs = run_table(scan_store(store).table)
    options = AnalysisOptions()
    report = compare(runs, method_pairs(runs, "global_magnitude"), options, np.random.default_rng(0))
    table = operating_point_table(runs, options, report.comparisons)
    (summary,) = summarize_settings(report, table, "global_magnitude")
    rows = report.comparisons
    said = dict(summary.verdicts)
    for r in rows.itertuples():
        kind = "inconclusive, underpowered" if r.decision == "inconclusive" and r.underpowered else {
            "better": "better than", "worse": "worse than", "equivalent": "equivalent to"}.get(r.decision, r.decision)
        listed = said[kind]
        entry = re.search(rf"{r.baseline} \(([^)]*)\)", listed).group(1)
        assert f"{r.compression:g}" in re.split(r"[–×, ]+", entry) or "–" in entry
    family = rows["family"].iloc[0]
    assert any(family in f and f"m={int(rows['family_size'].iloc[0])}" in f for f in summary.families)
    assert "n = 3 base models" == summary.n_text


def test_the_tables_best_marks_agree_with_the_report_beside_them(tmp_path):
    # two methods close together: the report on "a" calls it equivalent or inconclusive to "b";
    # the table may then not mark "a" as significantly best at any ratio
    store = synthetic_store(tmp_path, np.random.default_rng(1), {"a": 1.0, "b": 0.95, "c": -3.0},
                            units=tuple((i, i) for i in range(5)), noise_sd=0.05)
    runs = run_table(scan_store(store).table)
    options = AnalysisOptions()
    report = compare(runs, method_pairs(runs, "a"), options, np.random.default_rng(0))
    table = operating_point_table(runs, options, report.comparisons)
    for row in table[table["best"]].itertuples():
        mine = report.comparisons[np.isclose(report.comparisons["compression"], row.compression)]
        if row.strategy == "a":
            assert (mine["decision"] == "better").all()
    against_b = report.comparisons[report.comparisons["baseline"] == "b"]
    assert (against_b["decision"] != "better").any()
    marked_a = table[table["best"] & (table["strategy"] == "a")]
    for c in marked_a["compression"]:
        assert against_b.loc[np.isclose(against_b["compression"], c), "decision"].eq("better").all()


def _probe(html: str) -> str:
    script = ('<script>window.addEventListener("load",()=>{const top=e=>e.getBoundingClientRect().top+window.scrollY;'
              'const p=document.createElement("pre");p.id="probe";p.textContent=JSON.stringify({summary:'
              'top(document.getElementById("summary")),figure:top(document.querySelector("figure")),'
              'table:top(document.querySelector("table"))});document.body.appendChild(p);});</script>')
    return html.replace("</body>", script + "</body>")


@pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
                    reason="no headless Chromium installed (Debian: apt install chromium)")
def test_the_html_report_shows_the_summary_first_in_a_real_browser(printed, tmp_path):
    _, out = printed
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    page = tmp_path / "probe.html"
    page.write_text(_probe((out / "report.html").read_text()))
    flags = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
             "--window-size=1280,900"]
    done = subprocess.run(flags + ["--virtual-time-budget=5000", "--dump-dom", page.as_uri()], capture_output=True,
                          text=True, timeout=120)
    dom = done.stdout
    if done.returncode != 0 and "<html" not in dom:
        pytest.skip(f"the installed Chromium does not start here: {done.stderr.strip().splitlines()[-1:]}")
    found = re.search(r'<pre id="probe">([^<]*)</pre>', dom)
    assert found, "the browser did not lay the page out"
    where = json.loads(found.group(1))
    assert where["summary"] < 900, where  # on the first screen
    assert where["summary"] < where["figure"] and where["summary"] < where["table"], where
    shot = tmp_path / "first_screen.png"
    subprocess.run(flags + [f"--screenshot={shot}", (out / "report.html").as_uri()], capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_report_opens_with_the_summary(printed):
    _, out = printed
    md = (out / "report.md").read_text()
    assert md.index("## Summary") < md.index("![") and md.index("## Summary") < md.index("| Method")


def _outside_math(tex: str) -> str:
    return re.sub(r"\$[^$]*\$", "", tex)


def test_latex_sets_comparisons_and_minus_signs_in_math():
    assert latex_escape("p < 0.05") == "p $<$ 0.05"
    assert latex_escape("-0.28 [-1.5, 2]") == "$-$0.28 [$-$1.5, 2]"
    assert latex_escape("fashion-mnist") == "fashion-mnist"  # a hyphen in a word stays one
    assert r"\allowbreak" in latex_escape("lenet_300_100/x", breakable=True)


def test_the_latex_table_has_no_text_mode_symbols(store):
    runs = run_table(scan_store(store).table)
    tex = table_latex(operating_point_table(runs), AnalysisOptions())
    plain = _outside_math("\n".join(line for line in tex.splitlines() if not line.startswith("%")))
    assert "<" not in plain and ">" not in plain and not re.search(r"(^|[\s\[(])-\d", plain, re.M)
    assert re.search(r"\d+\.\d\d \$\\pm\$ \d+\.\d\d ", tex) and "std over 3 units" in tex


def _paper_table(tmp_path):
    """A user's method, a baseline and the method's control, as the `methods` route stores them."""
    effects = {"mymethod.py:Mine": 1.5, "global_magnitude": 0.0, "mymethod.py:Mine [shuffled]": -3.0}
    store = synthetic_store(tmp_path / "store", np.random.default_rng(2), effects, compressions=(8, 32),
                            units=tuple((i, i) for i in range(5)), noise_sd=0.05)
    runs = run_table(scan_store(store).table)
    options = AnalysisOptions()
    report = compare(runs, method_pairs(runs, "mymethod.py:Mine"), options, np.random.default_rng(0))
    table = operating_point_table(runs, options, report.comparisons)
    return table_latex(table, options, report.comparisons, "mymethod.py:Mine"), report


def test_the_latex_table_is_one_a_researcher_pastes(tmp_path):
    """Issue 25, point 9: readable names, controls apart, verdict marks, a short caption, the
    document's font size, no scaling, only booktabs."""
    tex, report = _paper_table(tmp_path)
    body = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))
    assert "mymethod.py" not in body and "Mine [shuffled]" in body
    assert "resizebox" not in body and "\\small" not in body and "graphicx" not in tex
    caption = re.search(r"\\caption\{(.*)\}", body).group(1)
    assert len(_outside_math(caption)) < 300
    lines = body.splitlines()
    controls = lines.index(r"\multicolumn{5}{l}{\textit{Controls}} \\")
    assert all("shuffled" not in line for line in lines[:controls]) and "shuffled" in "".join(lines[controls:])
    decisions = report.comparisons.set_index(["baseline", "compression"])["decision"]
    assert decisions[("global_magnitude", 8.0)] == "better"
    baseline_rows = [line for line in lines if line.startswith("global\\_magnitude")]
    assert baseline_rows and all(line.count("$^{+}$") == 1 for line in baseline_rows)


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="no pdflatex (Debian: apt install texlive-latex-base texlive-latex-recommended)")
def test_the_latex_table_compiles_without_overfull_lines_or_lost_characters(printed, tmp_path):
    _, out = printed
    tex, _ = _paper_table(tmp_path)
    (tmp_path / "mine.tex").write_text(tex)
    log = _pdflatex(tmp_path, f"\\input{{{out / 'tables' / 'operating_points.tex'}}}\\input{{mine.tex}}")
    assert "Overfull \\hbox" not in log and "Missing character" not in log
    assert (tmp_path / "doc.pdf").read_bytes()[:4] == b"%PDF"


def _pdflatex(folder, body: str) -> str:
    """Compile `body` in an article that loads booktabs (the one package the tables need); its log."""
    (folder / "doc.tex").write_text("\\documentclass{article}\\usepackage{booktabs}\\tracinglostchars=2\n"
                                    f"\\begin{{document}}{body}\\end{{document}}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=folder,
                          capture_output=True, text=True, timeout=120)
    log = (folder / "doc.log").read_text(errors="replace")
    assert done.returncode == 0, log[-2000:]
    return log


def _many_methods_table(tmp_path):
    """Twenty methods at three ratios: 60 rows, more than a page holds."""
    effects = {f"method_{i:02d}": 0.1 * i for i in range(20)}
    store = synthetic_store(tmp_path / "many", np.random.default_rng(3), effects, compressions=(2, 8, 32),
                            units=tuple((i, i) for i in range(3)), noise_sd=0.05)
    return table_latex(operating_point_table(run_table(scan_store(store).table)), AnalysisOptions())


def test_a_setting_too_long_for_a_page_is_one_table_per_ratio(tmp_path):
    tex = _many_methods_table(tmp_path)
    floats = tex.split(r"\begin{table}")[1:]
    rows = [sum(1 for line in part.splitlines() if line.endswith(r"\\") and "toprule" not in line) - 1
            for part in floats]
    assert len(floats) >= 3 and max(rows) <= FLOAT_ROWS and sum(rows) > FLOAT_ROWS
    for ratio in (2, 8, 32):
        assert sum(f" at {ratio}$\\times$" in part for part in floats) == 1


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="no pdflatex (Debian: apt install texlive-latex-base texlive-latex-recommended)")
def test_a_long_table_compiles_without_a_float_too_large(tmp_path):
    (tmp_path / "many.tex").write_text(_many_methods_table(tmp_path))
    log = _pdflatex(tmp_path, "\\input{many.tex}")
    assert "Float too large" not in log and "Overfull \\hbox" not in log


def test_a_method_keeps_its_colour_whatever_is_drawn_beside_it():
    from shrinkbench.analysis.curves import strategy_styles
    from shrinkbench.analysis.palette import CONTEXT_COLORS, CRITERION_COLORS, NAMED_COLORS, SPARE_COLORS, method_color

    alone = strategy_styles({"my_method", "global_magnitude"})
    crowded = strategy_styles({"my_method", "aaa", "zzz", "snip", "wanda", "global_magnitude", "layerwise_gradient"})
    assert alone["my_method"] == crowded["my_method"] and alone["global_magnitude"] == crowded["global_magnitude"]
    assert method_color("global_magnitude [when=init]@1a2b3c") == method_color("global_magnitude")
    assert crowded["layerwise_gradient"]["linestyle"] == "--" and crowded["snip"]["linestyle"] == "-"
    named = {**{k: v for k, v in NAMED_COLORS.items() if k not in ("magnitude", "random_channels", "none")},
             **{k: v for k, v in CRITERION_COLORS.items()}}
    assert len(set(named.values())) == len(named)  # distinct methods, distinct colours
    method_colours = set(named.values()) | set(SPARE_COLORS)
    assert not method_colours & set(CONTEXT_COLORS) and not set(SPARE_COLORS) & set(named.values())


def test_a_collapsed_method_is_cut_off_and_named(tmp_path):
    from shrinkbench.analysis.bands import curve_points
    from shrinkbench.analysis.curves import CUT_BELOW_DENSE, curve_figure

    store = synthetic_store(tmp_path, np.random.default_rng(0), {"fine": 0.0, "collapsed": -60.0}, compressions=(2, 4))
    runs = run_table(scan_store(store).table)
    points = curve_points(runs, AnalysisOptions(), np.random.default_rng(0))
    fig = curve_figure(points, "compression", False, "Top-1", "band")
    ax = fig.axes[0]
    dense = points.loc[points["strategy"] == "none", "mean"].iloc[0]
    assert ax.get_ylim()[0] == pytest.approx(dense - CUT_BELOW_DENSE)
    title = ax.title.get_text()
    assert "collapsed 2×" in title and "collapsed 4×" in title and "fine" not in title.split("\n", 1)[1]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    drawn = FigureCanvasAgg(fig)
    drawn.draw()
    renderer = drawn.get_renderer()
    assert not ax.texts  # nothing written over the data
    assert ax.title.get_window_extent(renderer).y0 >= ax.get_window_extent(renderer).y1  # the note sits above it


def _inside_canvas(fig) -> None:
    """Every legend and text of `fig` lies inside its canvas (bounding boxes, rendered)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    drawn = FigureCanvasAgg(fig)
    drawn.draw()  # axis labels find their places when drawn
    renderer = drawn.get_renderer()
    canvas = fig.bbox
    boxes = [legend.get_window_extent(renderer) for legend in fig.legends]
    boxes += [t.get_window_extent(renderer) for ax in fig.axes for t in (ax.title, ax.xaxis.label) if t.get_text()]
    boxes += [fig._suptitle.get_window_extent(renderer)] if fig._suptitle is not None else []
    assert fig.legends and boxes
    for box in boxes:
        assert box.x0 >= canvas.x0 - 0.5 and box.x1 <= canvas.x1 + 0.5, (box, canvas)
        assert box.y0 >= canvas.y0 - 0.5 and box.y1 <= canvas.y1 + 0.5, (box, canvas)
    legend = fig.legends[0].get_window_extent(renderer)
    for ax in fig.axes:  # the legend is below the panels, not over them
        if ax.get_visible():
            assert legend.y1 <= ax.get_window_extent(renderer).y0 + 0.5


def test_legends_stay_inside_the_canvas_and_every_method_and_control_is_distinguishable(tmp_path):
    """Issue 25, point 8: legends cut off on both sides, a method and its controls drawn alike."""
    from shrinkbench.analysis.bands import curve_points
    from shrinkbench.analysis.curves import curve_figure, speedup_gap_figure, strategy_styles

    effects = {"mymethod.py:MagnitudeMovementScore": 0.5, "mymethod.py:MagnitudeMovementScore [shuffled]": -1.0,
               "mymethod.py:MagnitudeMovementScore [inverted]": -5.0, "global_magnitude [LR rewinding to epoch 4]": 0.2,
               "mymethod.py:MagnitudeMovementScore [from scratch]": -0.5, "global_magnitude": 0.0,
               "layerwise_magnitude": -0.3, "snip [at init]": -1.0, "grasp [at init]": -1.2, "lamp": 0.1,
               "erk_magnitude": 0.0, "global_gradient": -0.2, "random": -4.0}
    store = synthetic_store(tmp_path, np.random.default_rng(3), effects, compressions=(8, 32))
    runs = run_table(scan_store(store).table)
    points = curve_points(runs, AnalysisOptions(), np.random.default_rng(0))
    for fig in (curve_figure(points, "compression", False, "Top-1", "band"),
                curve_figure(points, "compression", True, "Top-1", "band"), speedup_gap_figure(
                    points.assign(measured_speedup=points["theoretical_speedup"]))):
        _inside_canvas(fig)
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert not any("mymethod.py" in label for label in labels)
    styles = strategy_styles(effects)
    drawn = {(s["color"], str(s["linestyle"]), s["marker"]) for s in styles.values()}
    assert len(drawn) == len(effects)  # no two methods or controls drawn alike


def test_figures_against_a_speedup_equal_to_compression_are_not_drawn_twice(tmp_path):
    from shrinkbench.analysis.report import build_report

    # the fixture's layerwise methods have theoretical speedup == compression, like an MLP
    store = synthetic_store(tmp_path / "s", np.random.default_rng(0), {"layerwise_a": 0.0, "layerwise_b": -1.0},
                            compressions=(2, 4))
    build_report(scan_store(store), tmp_path / "out", formats=("png",))
    figures = {p.name for p in (tmp_path / "out" / "figures").iterdir()}
    assert "top1_abs_vs_compression.png" in figures and not any("_vs_speedup" in f for f in figures)
    assert "No figures against theoretical speedup" in (tmp_path / "out" / "report.md").read_text()


def test_long_method_names_become_keys_so_compare_fits_100_columns(tmp_path, capsys):
    from shrinkbench.analysis.cli import main as analysis_main

    long_names = {"global_magnitude [weight rewinding to epoch 0, shuffled]": 0.5,
                  "global_magnitude [weight rewinding to epoch 0, reinit]": 0.0, "mine": 1.0}
    store = synthetic_store(tmp_path, np.random.default_rng(0), long_names, compressions=(2, 4, 8))
    assert analysis_main(["compare", "--store", str(store), "--method", "mine"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    flat = " ".join(out.split())
    assert "m1 = global_magnitude [weight rewinding to epoch 0, reinit]" in flat  # the key is named
    assert "global_magnitude [weight rewinding to epoch 0, shuffled]" in flat  # and the summary keeps names


def test_one_method_against_many_gets_a_forest_plot_of_the_deciding_intervals(tmp_path):
    """Issue 25, point 8: fifteen curves in one panel; the forest plot draws each verdict's interval."""
    from shrinkbench.analysis.forest import forest_figure, method_rows
    from shrinkbench.analysis.report import build_report

    effects = {"mymethod.py:MagnitudeMovementScore": 0.8, "mymethod.py:MagnitudeMovementScore [shuffled]": -1.0, "global_magnitude": 0.0,
               "layerwise_magnitude": -0.3, "random": -4.0}
    store = synthetic_store(tmp_path / "store", np.random.default_rng(5), effects, compressions=(8, 32),
                            units=tuple((i, i) for i in range(5)), noise_sd=0.1)
    scan = scan_store(store)
    summary = build_report(scan, tmp_path / "out", AnalysisOptions(), method="mymethod.py:MagnitudeMovementScore", formats=("png",))
    assert "figures/forest_top1_mnist_lenet.png" in summary["files"]
    runs = run_table(scan.table)
    report = compare(runs, method_pairs(runs, "mymethod.py:MagnitudeMovementScore"), AnalysisOptions(), np.random.default_rng(0))
    fig = forest_figure(report.comparisons, report.curve_level, "mymethod.py:MagnitudeMovementScore", 0.5, "points", "lenet", "mnist")
    _inside_canvas(fig)
    rows = method_rows(report.comparisons, "mymethod.py:MagnitudeMovementScore")
    panel = fig.axes[0]  # the lowest ratio: each row's drawn interval is the simultaneous one
    drawn = sorted(tuple(np.round(line.get_xdata(), 6)) for line in panel.lines if line.get_gid() == "interval")
    first = rows[np.isclose(rows["compression"], 8.0)]
    assert drawn == sorted(tuple(np.round([r.sim_low, r.sim_high], 6)) for r in first.itertuples())
    labels = [t.get_text() for t in panel.get_yticklabels()]
    assert labels[-1] == "MagnitudeMovementScore [shuffled]" and "mymethod.py" not in " ".join(labels)  # controls last (bottom)
