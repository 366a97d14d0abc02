"""The language-model baselines a reviewer asks for, on one pretrained model: perplexity of
magnitude, Wanda, SparseGPT and RIA at 50/60/70/80% unstructured and at 2:4 and 4:8, each with
the uniform layer allocation and (unstructured only) with OWL's, and DSnoT's mask refinement on
top of Wanda (suite `llm-baselines-smollm2`, shipped with the package; records in
`results/reference`).

The papers report, on LLaMA-7B: OWL at 70% lowers Wanda's WikiText-2 perplexity from 85.77 to
24.55 (Yin et al. 2024, its README); DSnoT lowers Wanda's at 60% and 70% (Zhang et al. 2024).
Tested here, not assumed, each claim as its own family (the toolkit's decision rule,
`shrinkbench.analysis.decision`; lower perplexity is better):

- "OWL improves Wanda at 70%": Wanda+OWL minus Wanda (uniform) at 70% unstructured, paired
  over the calibration seeds: a family of 1 test;
- "DSnoT improves Wanda": Wanda+DSnoT minus Wanda at every target (50-80%, 2:4, 4:8), paired
  over the calibration seeds: a family of 6 tests.

Magnitude with the uniform allocation is data-free: its seeds would repeat one number, so it is
one run (`seed_free`), drawn as a point without an interval. A pretrained model is ONE set of
weights: every verdict holds for SmolLM2-135M only, with the calibration seeds as replicates.

    python paper_figures/run_llm_baselines.py [--store DIR] [--out DIR] [--rerun]
"""
from __future__ import annotations

import json
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
from shrinkbench.analysis.render import Table, latex_escape  # noqa: E402
from shrinkbench.analysis.schema import DENSE_STRATEGY  # noqa: E402
from shrinkbench.analysis.units import seed_free, unit_values  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIGURE = "llm_baselines"
SUITE = "llm-baselines-smollm2"
MODEL = "smollm2-135m"
TEXT = "kjv"
OPTIONS = AnalysisOptions(metric="perplexity", rope=0.5)
METHODS = ("magnitude", "wanda", "sparsegpt", "ria")
SPARSITIES = (0.5, 0.6, 0.7, 0.8)
NM = ("2:4", "4:8")
TARGETS = tuple(f"{s:.0%}" for s in SPARSITIES) + NM
"""Every target a method runs at: the unstructured sparsities, then the N:M patterns."""
OWL_CLAIM = "OWL improves Wanda at 70%"
DSNOT_CLAIM = "DSnoT improves Wanda"
STYLE = {"uniform": ("-", "o"), "owl": ("--", "s"), "dsnot": (":", "^")}
"""Line style and marker of each variant: uniform allocation, OWL allocation, DSnoT refinement."""
PERPLEXITY_FLOOR = 1.0
"""Perplexity = exp(mean NLL) >= 1: the lower end of a drawn or tabled interval is clipped there."""
PUBLISHED = {"wanda": 85.77, "wanda+owl": 24.55}
"""LLaMA-7B, WikiText-2, 70% unstructured, as OWL's README reports them."""


def has_runs(store: Path, model: str = MODEL) -> bool:
    """Whether the store holds a run of this suite (an OWL run of `model`), read without parsing every metric."""
    for path in Path(store, "runs").glob("*.json"):
        try:
            config = json.loads(path.read_text()).get("config", {})
        except (OSError, ValueError):
            continue
        if config.get("model") == model and config.get("allocation") == "owl":
            return True
    return False


def run_settings(configs: pd.DataFrame) -> dict[str, dict]:
    """run id -> the record's allocation, refinement, pattern and target sparsity, from the
    store scan's `config.*` columns (`shrinkbench.analysis.load.StoreScan.configs`; a record from
    before allocations says uniform, before refinements none)."""

    def column(name: str) -> list:
        key = f"config.{name}"
        return [None if pd.isna(v) else v for v in configs[key]] if key in configs else [None] * len(configs)

    out = {}
    for run_id, allocation, refine, pattern, sparsity in zip(configs["run_id"], column("allocation"), column("refine"),
                                                             column("pattern"), column("sparsity")):
        pattern = pattern or "unstructured"
        out[run_id] = {"allocation": allocation or "uniform", "refine": refine or "", "pattern": pattern,
                       "target": pattern if pattern != "unstructured" else f"{float(sparsity or 0):.0%}"}
    return out


def variant_name(method: str, allocation: str, refine: str) -> str:
    """`wanda`, `wanda+owl`, `wanda+dsnot`."""
    return method + ("+owl" if allocation == "owl" else "") + (f"+{refine}" if refine else "")


def baseline_runs(store: Path, model: str = MODEL) -> pd.DataFrame:
    """The run table (y = post/test perplexity) of `model` on the suite's text, one row per run
    with `method`, `variant` (method, allocation, refinement) and `target` (50%..80%, 2:4, 4:8)."""
    from shrinkbench.analysis.load import load_table
    from shrinkbench.analysis.runs import run_table

    scan = load_table(str(store))
    table = scan.table
    table = table[(table["model"] == model) & (table["dataset"] == TEXT)]
    table = table[table["granularity"].isin(["weight", *NM])]  # weight pruning only: structured runs are elsewhere
    if table.empty:
        raise AnalysisError(f"store {store} holds no run of {model} on {TEXT}; run `shrinkbench run {SUITE} --store "
                            f"{store}` (or this script with --rerun)")
    runs = run_table(table, OPTIONS)
    settings = run_settings(scan.configs)  # read in the same pass as the table
    runs = runs[runs["run_id"].isin(list(settings))].copy()
    for key in ("allocation", "refine", "target"):
        runs[key] = [settings[r][key] for r in runs["run_id"]]
    runs["method"] = [s.split(" [")[0] for s in runs["strategy"]]
    runs["variant"] = [variant_name(m, a, r) for m, a, r in zip(runs["method"], runs["allocation"], runs["refine"])]
    dense = runs["strategy"] == DENSE_STRATEGY
    runs = runs[dense | (runs["method"].isin(METHODS) & runs["target"].isin(TARGETS))].copy()
    if not (runs["variant"] == "wanda").any():
        raise AnalysisError(f"store {store} holds no Wanda run of {model} on {TEXT}; run `shrinkbench run {SUITE} "
                            f"--store {store}`")
    return runs


def _pair(runs: pd.DataFrame, method: str, baseline: str, target: str, claim: str) -> dict | None:
    mine = runs[(runs["variant"] == method) & (runs["target"] == target)]
    base = runs[(runs["variant"] == baseline) & (runs["target"] == target)]
    if mine.empty or base.empty:
        return None
    stats = compare_values(unit_values(mine), unit_values(base), OPTIONS, (seed_free(mine), seed_free(base)))
    return {"target": target, "method": f"{method} [{target}]", "baseline": f"{baseline} [{target}]", **stats,
            "replication": mine["replication"].iloc[0], "family": claim}


def claim_rows(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{claim: its rows decided as one family}: OWL against uniform for Wanda at 70%; Wanda+DSnoT
    against Wanda at every target."""
    owl = [_pair(runs, "wanda+owl", "wanda", "70%", OWL_CLAIM)]
    dsnot = [_pair(runs, "wanda+dsnot", "wanda", target, DSNOT_CLAIM) for target in TARGETS]
    return {claim: _findings.claim_rows([pd.DataFrame([r for r in rows if r])], claim, OPTIONS)
            for claim, rows in ((OWL_CLAIM, owl), (DSNOT_CLAIM, dsnot))}


def point_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per variant and target: mean perplexity over the calibration seeds, its 95% t interval
    (the value itself for a seed-free run) and n."""
    rows = []
    for (variant, target), sub in runs[runs["strategy"] != DENSE_STRATEGY].groupby(["variant", "target"]):
        values = unit_values(sub)
        mean, low, high = _plots.unit_interval(values, OPTIONS.confidence)
        low = max(low, PERPLEXITY_FLOOR)  # a t interval can reach below 1, which no perplexity can
        rows.append({"variant": variant, "target": target, "mean": mean, "low": low, "high": high, "n": len(values),
                     "seed_free": seed_free(sub)})
    return pd.DataFrame(rows)


def _variants(summary: pd.DataFrame) -> list[str]:
    order = [variant_name(m, a, r) for m in METHODS for a, r in (("uniform", ""), ("owl", ""), ("uniform", "dsnot"))]
    return [v for v in order if v in set(summary["variant"])]


def _style(variant: str) -> tuple[str, str, str]:
    """(color, line style, marker): the color is the method's, the style the variant's."""
    method = variant.split("+")[0]
    kind = "owl" if "+owl" in variant else "dsnot" if "+dsnot" in variant else "uniform"
    linestyle, marker = STYLE[kind]
    return method_color(method), linestyle, marker


def draw(runs: pd.DataFrame):
    """Left: perplexity (log) against unstructured sparsity, one line per variant (color: the
    method; solid uniform, dashed OWL, dotted DSnoT), 95% t intervals over the calibration seeds.
    Right: the N:M patterns as grouped bars. The dense model dotted in both."""
    summary = point_summary(runs)
    variants = _variants(summary)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1.5, 1]})
    ax = axes[0]
    offsets = np.linspace(-0.012, 0.012, max(len(variants), 1))
    for offset, variant in zip(offsets, variants):
        at = summary[(summary["variant"] == variant) & summary["target"].isin(TARGETS[:len(SPARSITIES)])]
        if at.empty:
            continue
        at = at.assign(x=[float(t.rstrip("%")) / 100 for t in at["target"]]).sort_values("x")
        color, linestyle, marker = _style(variant)
        label = variant + (" (data-free: one run)" if at["seed_free"].all() else "")
        ax.errorbar(at["x"] + offset, at["mean"], yerr=[at["mean"] - at["low"], at["high"] - at["mean"]],
                    color=color, linestyle=linestyle, marker=marker, markersize=5, capsize=3, linewidth=1.3,
                    label=label)
    dense = unit_values(runs[runs["strategy"] == DENSE_STRATEGY])
    for axis in axes:
        if len(dense):
            axis.axhline(float(dense.mean()), color="black", linestyle=(0, (1, 2)), linewidth=1,
                         label=f"dense {float(dense.mean()):.2f}" if axis is axes[0] else None)
        axis.set_yscale("log")
    ax.set_xticks(SPARSITIES, TARGETS[:len(SPARSITIES)])
    ax.set_xlabel("unstructured sparsity of the pruned layers")
    ax.set_ylabel("perplexity, held-out KJV text (log scale)")
    ax.set_title("unstructured: uniform (solid), OWL (dashed), Wanda+DSnoT (dotted)", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="upper left", ncol=2)
    ax = axes[1]
    bars = [v for v in variants if "+owl" not in v]
    width = 0.8 / max(len(bars), 1)
    for i, variant in enumerate(bars):
        color, _, _ = _style(variant)
        for j, target in enumerate(NM):
            at = summary[(summary["variant"] == variant) & (summary["target"] == target)]
            if at.empty:
                continue
            row = at.iloc[0]
            x = j + (i - (len(bars) - 1) / 2) * width
            ax.bar(x, row["mean"], width * 0.9, color=color, alpha=0.8, hatch="//" if "+dsnot" in variant else "",
                   edgecolor="black", linewidth=0.5, label=variant if j == 0 else None)
            ax.errorbar(x, row["mean"], yerr=[[row["mean"] - row["low"]], [row["high"] - row["mean"]]], color="black",
                        capsize=3, linewidth=1)
    ax.set_xticks(range(len(NM)), [f"{p} semi-structured" for p in NM])
    nm = summary[summary["target"].isin(NM)]
    top = float(nm["high"].max()) if len(nm) else 10.0
    ax.set_ylim(top=top * 6)  # headroom: the legend sits above the bars, inside the canvas
    ax.set_title("N:M (OWL is defined for unstructured sparsity only)", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="upper left", ncol=3)
    fig.suptitle("SmolLM2-135M, one-shot pruning: the LLM baselines (mean of the calibration seeds, 95% t intervals; "
                 "lower is better)", fontsize=10)
    fig.tight_layout()
    return fig


def means_table(runs: pd.DataFrame) -> Table:
    """Mean perplexity [95% t interval] per variant (rows) and target (columns)."""
    summary = point_summary(runs)
    body = []
    for variant in _variants(summary):
        cells = [variant]
        for target in TARGETS:
            at = summary[(summary["variant"] == variant) & (summary["target"] == target)]
            if at.empty:
                cells.append("–")
                continue
            r = at.iloc[0]
            cells.append(f"{r['mean']:.1f}" + ("" if r["seed_free"] or r["n"] < 2 else f" [{r['low']:.1f}, {r['high']:.1f}]"))
        body.append(cells)
    n = int(runs["unit"].nunique())
    return Table("Perplexity by method and target", ["Method"] + list(TARGETS), body, ["l"] + ["r"] * len(TARGETS),
                 f"Mean over {n} calibration seeds [95% t interval, its lower end clipped at 1, the least "
                 f"perplexity]; a data-free method (magnitude, uniform) is one "
                 f"run without an interval. SmolLM2-135M, offline protocol (held-out KJV, 16 windows of 256 tokens).")


def latex_table(runs: pd.DataFrame) -> str:
    """`means_table` as a LaTeX document that compiles on its own (booktabs, graphicx), scaled to
    the text width."""
    table = means_table(runs)
    rows = [" & ".join(latex_escape(c) for c in row) + r" \\" for row in table.rows]
    head = " & ".join(latex_escape(h) for h in table.headers) + r" \\"
    return "\n".join([r"\documentclass{article}", r"\usepackage{booktabs}", r"\usepackage{graphicx}",
                      r"\usepackage[margin=1.5cm]{geometry}", r"\begin{document}", r"\begin{table}[t]", r"\centering",
                      r"\resizebox{\textwidth}{!}{%",  # seven columns of intervals: fit the text width
                      r"\begin{tabular}{l" + "r" * len(TARGETS) + "}", r"\toprule", head, r"\midrule", *rows,
                      r"\bottomrule", r"\end{tabular}}", r"\caption{" + latex_escape(table.note) + "}",
                      r"\end{table}", r"\end{document}", ""])


def findings(runs: pd.DataFrame, store: Path) -> tuple[str, str]:
    """(summary for the README's generated block, the full findings with the tables)."""
    claims = claim_rows(runs)
    model = runs["model"].iloc[0]
    lines = [f"Setting: {model} on the held-out 10% of the King James Bible (suite `{SUITE}`, store "
             f"`{_common.shown_path(store)}`), {len(runs)} runs; response post/test perplexity (lower is better), "
             f"{int(runs['unit'].nunique())} calibration seeds as replicates of ONE pretrained model; each claim is "
             f"its own family.", ""]
    for claim, rows in claims.items():
        lines.append(_findings.llm_claim_line(claim, _findings.verdict(rows, +1), model, rows,
                                              empty="no runs to compare"))
    summary = point_summary(runs)
    at70 = summary[summary["target"] == "70%"].set_index("variant")["mean"]
    dense = runs[runs["strategy"] == DENSE_STRATEGY]["y"].mean()
    reading = ", ".join(f"{v} {at70[v]:.1f}" for v in _variants(summary) if v in at70)
    lines += ["", f"**Reading (generated).** Dense perplexity {dense:.2f}. At 70% unstructured: {reading}. On "
              f"LLaMA-7B OWL's README reports Wanda {PUBLISHED['wanda']} -> Wanda+OWL {PUBLISHED['wanda+owl']} at 70%."]
    details = [_findings.llm_options_line(OPTIONS), "", means_table(runs).markdown(level=4), ""]
    for claim, rows in claims.items():
        if len(rows):
            details += [_findings.markdown_table(rows, claim, "target", "Target", unit=""), ""]
    return "\n".join(lines), "\n".join(details)


def make_figure(store: Path, out: Path, formats=_common.FORMATS, model: str = MODEL) -> tuple[list[Path], str]:
    """Draw the figure, write its findings and the standalone LaTeX table; (files, the summary)."""
    runs = baseline_runs(store, model)
    summary, details = findings(runs, store)
    files = _common.figure_with_findings(draw(runs), summary, details, out, FIGURE, formats)
    tex = Path(out) / f"{FIGURE}_table.tex"
    tex.write_text(latex_table(runs), encoding="utf-8")
    return files + [tex], summary


def main(argv=None) -> int:
    return _common.suite_figure_main(__doc__.splitlines()[0], REPO, MODEL, SUITE, FIGURE, make_figure, argv)


if __name__ == "__main__":
    sys.exit(main())
