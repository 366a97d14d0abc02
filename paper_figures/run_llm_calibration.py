"""How much the calibration source moves perplexity: Wanda and SparseGPT at 50% on SmolLM2-135M,
calibrated on each of two offline English texts and evaluated on the held-out part of each
(suite `llm-calibration-source`, shipped with the package; records in
`results/calibration-source`).

The papers calibrate on C4 and evaluate on WikiText-2; the field's issue trackers report that
the calibration text alone moves a result (RedPajama against C4: 7.10 against 7.26). Tested
here, not assumed:

- the claim "calibrating on the evaluation text's own domain gives lower perplexity than
  calibrating on the other text": for each method and evaluation text, perplexity with
  in-domain calibration minus perplexity with the other text's, paired over the calibration
  seeds; one family (2 methods x the evaluation texts present), lower is better, the
  toolkit's decision rule (`shrinkbench.analysis.decision`). A pretrained model is ONE set of
  weights: the verdict holds for SmolLM2-135M only.

    python paper_figures/run_llm_calibration.py [--store DIR] [--out DIR] [--rerun]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
import _findings  # noqa: E402
import _plots  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from shrinkbench.analysis.decision import compare_values  # noqa: E402
from shrinkbench.analysis.errors import AnalysisError  # noqa: E402
from shrinkbench.analysis.options import AnalysisOptions  # noqa: E402
from shrinkbench.analysis.palette import method_color  # noqa: E402
from shrinkbench.analysis.schema import DENSE_STRATEGY  # noqa: E402
from shrinkbench.analysis.units import unit_values  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIGURE = "llm_calibration"
SUITE = "llm-calibration-source"
STORE = REPO / "results" / "calibration-source"
MODEL = "smollm2-135m"
OPTIONS = AnalysisOptions(metric="perplexity", rope=0.5)
CLAIM = "calibrating on the evaluation text's own domain lowers perplexity"
METHODS = ("wanda", "sparsegpt")
TEXTS = {"kjv": "King James Bible", "fortunes": "Debian fortunes"}
HATCH = {"kjv": "", "fortunes": "//"}


def calibration_texts(configs: pd.DataFrame) -> dict[str, str]:
    """run id -> the text its calibration windows came from, from the store scan's `config.*`
    columns (`shrinkbench.analysis.load.StoreScan.configs`; the evaluation text where the record
    names none)."""
    calib = configs["config.calib_text"] if "config.calib_text" in configs else pd.Series(None, index=configs.index)
    return {run_id: text if isinstance(text, str) and text else dataset
            for run_id, text, dataset in zip(configs["run_id"], calib, configs["config.dataset"])}


def calibration_runs(store: Path, model: str = MODEL) -> pd.DataFrame:
    """The run table (y = post/test perplexity) of `model` with `calib_text` and the method."""
    from shrinkbench.analysis.load import load_table
    from shrinkbench.analysis.runs import run_table

    scan = load_table(str(store))
    table = scan.table[scan.table["model"] == model]
    if table.empty:
        raise AnalysisError(f"store {store} holds no run of {model}; run `shrinkbench run {SUITE} --store {store}` "
                            f"(or this script with --rerun)")
    runs = run_table(table, OPTIONS)
    runs["calib_text"] = runs["run_id"].map(calibration_texts(scan.configs))  # read in the same pass as the table
    runs["method"] = [s.split(" [")[0] for s in runs["strategy"]]
    return runs[runs["dataset"].isin(list(TEXTS))].copy()


def claim_rows(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for text in TEXTS:
        other = next(t for t in TEXTS if t != text)
        for method in METHODS:
            at = runs[(runs["dataset"] == text) & (runs["method"] == method)]
            own, foreign = at[at["calib_text"] == text], at[at["calib_text"] == other]
            if own.empty or foreign.empty:
                continue
            stats = compare_values(unit_values(own), unit_values(foreign), OPTIONS)
            rows.append({"compression": 2.0, "evaluated": text, "method": f"{method} calibrated on {text}",
                         "baseline": f"{method} calibrated on {other}", **stats,
                         "replication": own["replication"].iloc[0], "family": ""})
    return _findings.claim_rows([pd.DataFrame(rows)], CLAIM, OPTIONS)


def draw(runs: pd.DataFrame):
    """Perplexity on each evaluation text (panels) of each method calibrated on each text: mean
    of the calibration seeds with its 95% t interval, seeds as dots; the dense model dotted."""
    present = [t for t in TEXTS if (runs["dataset"] == t).any()]
    fig, axes = plt.subplots(1, len(present), figsize=(5.6 * len(present), 4.4), squeeze=False)
    width = 0.38
    for ax, text in zip(axes[0], present):
        at = runs[runs["dataset"] == text]
        for i, method in enumerate(METHODS):
            for j, calib in enumerate(TEXTS):
                sub = at[(at["method"] == method) & (at["calib_text"] == calib)]
                if sub.empty:
                    continue
                mean, low, high = _plots.unit_interval(unit_values(sub), OPTIONS.confidence)
                x = i + (j - 0.5) * width
                ax.bar(x, mean, width * 0.9, color=method_color(method), alpha=0.75 if calib == text else 0.4,
                       hatch=HATCH[calib], edgecolor="black", linewidth=0.6,
                       label=f"{method}, calibrated on {TEXTS[calib]}")
                ax.errorbar(x, mean, yerr=[[mean - low], [high - mean]], color="black", capsize=4, linewidth=1)
                ax.scatter(np.full(len(sub), x), sub["y"], color="black", s=8, zorder=3)
                ax.text(x, high * 1.01, f"{mean:.1f}", ha="center", va="bottom", fontsize=8)
        dense = unit_values(at[at["strategy"] == DENSE_STRATEGY])
        if len(dense):
            ax.axhline(float(dense.mean()), color="black", linestyle=":", label=f"dense {float(dense.mean()):.2f}")
        ax.set_xticks(range(len(METHODS)), [f"{m} (50%)" for m in METHODS])
        ax.set_ylabel(f"perplexity, held-out {TEXTS[text]}")
        ax.set_title(f"evaluated on {TEXTS[text]}", fontsize=9)
        top = float(at["y"].max()) if len(at) else 1.0
        ax.set_ylim(0, top * 1.75)  # headroom: the legend sits above the bars, inside the canvas
        ax.legend(fontsize=7, frameon=False, loc="upper left")
    fig.suptitle("SmolLM2-135M, one-shot 50% unstructured: the calibration source (mean of 3 seeds, 95% t intervals, "
                 "seeds as dots; lower is better)", fontsize=9)
    fig.tight_layout()
    return fig


def findings(runs: pd.DataFrame, store: Path) -> tuple[str, str]:
    rows = claim_rows(runs)
    lines = [f"Setting: {runs['model'].iloc[0]}, Wanda and SparseGPT at 50% unstructured, calibrated on each of "
             f"{', '.join(TEXTS)}, evaluated on "
             f"{', '.join(sorted(set(runs['dataset'])))} (suite `{SUITE}`, store `{_common.shown_path(store)}`), "
             f"{len(runs)} runs; response post/test perplexity (lower is better), {int(runs['unit'].nunique())} "
             f"calibration seeds as replicates of ONE pretrained model.", ""]
    verdict = _findings.verdict(rows, +1)
    lines.append(_findings.llm_claim_line(CLAIM[0].upper() + CLAIM[1:], verdict, runs["model"].iloc[0], rows,
                                          where=lambda r: f"on {r.evaluated}, "))
    means = runs[runs["strategy"] != DENSE_STRATEGY].groupby(["dataset", "method", "calib_text"])["y"].mean()
    dense = runs[runs["strategy"] == DENSE_STRATEGY].groupby("dataset")["y"].mean()
    parts = []
    for text in [t for t in TEXTS if (runs["dataset"] == t).any()]:
        moves = [f"{m} {means[(text, m, text)]:.1f} (own) against {means[(text, m, o)]:.1f} ({o})"
                 for m in METHODS for o in TEXTS if o != text
                 if (text, m, text) in means and (text, m, o) in means]
        if moves:
            parts.append(f"evaluated on {text} (dense {dense.get(text, float('nan')):.2f}): " + ", ".join(moves))
    lines += ["", "**Reading (generated).** " + "; ".join(parts) + "."]
    details = [_findings.llm_options_line(OPTIONS), "",
               _findings.markdown_table(rows, "Own-domain against other-text calibration", "compression",
                                        "Compression")]
    return "\n".join(lines), "\n".join(details)


def make_figure(store: Path, out: Path, formats=_common.FORMATS, model: str = MODEL) -> tuple[list[Path], str]:
    runs = calibration_runs(store, model)
    summary, details = findings(runs, store)
    return _common.figure_with_findings(draw(runs), summary, details, out, FIGURE, formats), summary


def main(argv=None) -> int:
    return _common.suite_figure_main(__doc__.splitlines()[0], REPO, MODEL, SUITE, FIGURE, make_figure, argv, str(STORE))


if __name__ == "__main__":
    sys.exit(main())
