"""Sanity checks of pruning at initialisation (Frankle, Dziugaite, Roy, Carbin 2021), on our own
runs: does a method's mask matter beyond its per-layer densities?

Each method (SNIP, GraSP, SynFlow and magnitude at initialisation; magnitude after training
with the weights rewound to initialisation, the lottery-ticket procedure) is run as published
and with three controls on its mask: `layerwise_shuffle` (each layer's mask permuted, its
density kept), `reinit` (the mask kept, new initial weights) and `invert` (the lowest-scored
weights kept). Every run trains its sparse network from initial weights with the base recipe,
so all have the same budget. Each control is compared with its method paired over base
models (n = 3). Published expectations, tested, not assumed:

- magnitude after training is hurt by shuffling and by reinitialising (its mask and its
  initial values carry information): one family, the 2 controls x the compressions;
- the at-init methods are not hurt by them (what they find is per-layer densities): a claim
  of no effect, so it needs equivalence (TOST within the ROPE), one family of the 4
  methods x 2 controls x compressions; a method is `not hurt` where every one of its tests
  is equivalent, `hurt` where any is significantly worse;
- inverting the scores is reported per method (one family), with no claim: Frankle et al.
  found it hurts SNIP, SynFlow and magnitude but not GraSP.

    python paper_figures/run_prune_at_init.py [--store DIR] [--out DIR] [--rerun]
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
import _findings  # noqa: E402
import _runs  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from shrinkbench.analysis.decision import compare_values  # noqa: E402
from shrinkbench.analysis.options import AnalysisOptions  # noqa: E402
from shrinkbench.analysis.palette import context_colors  # noqa: E402
from shrinkbench.analysis.render import fmt  # noqa: E402
from shrinkbench.analysis.runs import setting_label  # noqa: E402
from shrinkbench.analysis.schema import CONTROL_TAGS, DENSE_STRATEGY  # noqa: E402
from shrinkbench.analysis.units import unit_values  # noqa: E402

FIGURE = "prune_at_init"
OPTIONS = AnalysisOptions()
CONTROLS = ("layerwise_shuffle", "reinit", "invert")
CONTROL_COLORS = context_colors(["none", "layerwise_shuffle", "reinit", "invert"])  # no method uses these
CONTROL_NAMES = {"none": "as published", "layerwise_shuffle": "layerwise shuffled", "reinit": "reinitialised",
                 "invert": "inverted"}
AFTER_TRAINING = "after training"


def method_of(strategy: str, control: str) -> str:
    """The method a run's label belongs to: its label without the control's tag."""
    if control == "none":
        return strategy
    tag = re.escape(CONTROL_TAGS[control])
    return re.sub(rf"(, {tag}\]|\[{tag}\])$", lambda m: "]" if m.group(0).startswith(",") else "", strategy).strip()


def method_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs of the methods (not dense, not random) with `method` and `kind` (at init or
    after training) columns."""
    sub = runs[(runs["strategy"] != DENSE_STRATEGY) & ~runs["strategy"].str.startswith("random")].copy()
    sub["method"] = [method_of(s, c) for s, c in zip(sub["strategy"], sub["control"])]
    sub["kind"] = np.where(sub["when"] == "at_init", "at init", AFTER_TRAINING)
    return sub


def short(method: str) -> str:
    """`snip [at init]` -> `SNIP`; the after-training magnitude run -> `magnitude after training (LTR)`."""
    name = method.split(" [")[0]
    pretty = {"snip": "SNIP", "grasp": "GraSP", "synflow": "SynFlow", "global_magnitude": "magnitude"}.get(name, name)
    return pretty + (" at init" if "at init" in method and name == "global_magnitude" else "") + \
        (" after training (LTR)" if "rewinding" in method else "")


def control_rows(sub: pd.DataFrame, controls) -> pd.DataFrame:
    """Each control against its method at each compression, paired over base models."""
    rows = []
    for (method, compression), point in sub.groupby(["method", "compression"]):
        published = point[point["control"] == "none"]
        for control in controls:
            variant = point[point["control"] == control]
            if published.empty or variant.empty:
                continue
            stats = compare_values(unit_values(variant), unit_values(published), OPTIONS)
            rows.append({"compression": compression, "method": f"{short(method)}, {CONTROL_NAMES[control]}",
                         "baseline": short(method), "kind": point["kind"].iloc[0], "control": control,
                         "method_key": method, **stats, "replication": point["replication"].iloc[0], "family": ""})
    return pd.DataFrame(rows)


def claim_tables(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The three families (see the module docstring), each decided as one claim."""
    rows = control_rows(method_table(runs), CONTROLS)
    if rows.empty:
        empty = pd.DataFrame(columns=["family", "family_size", "decision", "baseline", "control", "compression"])
        return empty, empty, empty
    moved = rows["control"].isin(["layerwise_shuffle", "reinit"])
    hurt = _findings.claim_rows([rows[(rows["kind"] == AFTER_TRAINING) & moved]],
                                "magnitude after training is hurt by shuffling and reinitialising", OPTIONS)
    robust = _findings.claim_rows([rows[(rows["kind"] == "at init") & moved]],
                                  "the at-init methods are not hurt by shuffling or reinitialising", OPTIONS)
    inverted = _findings.claim_rows([rows[rows["control"] == "invert"]], "inverting the scores", OPTIONS)
    return hurt, robust, inverted


def chance_level(model: str) -> float:
    """Top-1 of guessing, 100 / classes (in %)."""
    from shrinkbench.vision.models import model_spec

    return 100.0 / model_spec(model).num_classes


def draw(points: pd.DataFrame, runs: pd.DataFrame, title: str):
    """One panel per compression: each control's paired difference from its method (control
    minus as published, top-1 points) with the family's simultaneous interval, the ROPE as a
    band; under each method its accuracy as published, marked where it is at chance."""
    rows = pd.concat([t for t in claim_tables(runs) if len(t)], ignore_index=True)
    sub = method_table(runs)
    chance = chance_level(runs["model"].iloc[0])
    methods = sorted(sub["method"].unique(), key=lambda m: ("rewinding" in m, m))
    compressions = sorted(sub["compression"].unique())
    fig, axes = plt.subplots(1, len(compressions), figsize=(6.5 * len(compressions), 5.5), sharey=True,
                             squeeze=False)
    offsets = {c: (i - 1) * 0.22 for i, c in enumerate(CONTROLS)}
    random = runs[runs["strategy"].str.startswith("random")]
    for ax, compression in zip(axes[0], compressions):
        ax.axhspan(-OPTIONS.rope, OPTIONS.rope, color="0.9", label=f"ROPE ±{OPTIONS.rope:g}")
        ax.axhline(0, color="0.4", linewidth=0.8)
        labels = []
        for i, method in enumerate(methods):
            published = unit_values(sub[(sub["method"] == method) & (sub["control"] == "none")
                                        & (sub["compression"] == compression)])
            mean = float(published.mean()) if len(published) else float("nan")
            labels.append(f"{short(method).replace(' (LTR)', chr(10) + '(LTR)')}\n{mean:.1f}%"
                          + (" (chance)" if mean <= chance + 1.0 else ""))
            for control in CONTROLS:
                row = rows[(rows["method_key"] == method) & (rows["control"] == control)
                           & np.isclose(rows["compression"], compression)]
                if row.empty:
                    continue
                r = row.iloc[0]
                ax.errorbar(i + offsets[control], r["difference"], yerr=[[r["difference"] - r["sim_low"]],
                                                                         [r["sim_high"] - r["difference"]]],
                            fmt="o", color=CONTROL_COLORS[control], capsize=3, markersize=5,
                            label=CONTROL_NAMES[control] if i == 0 else None,
                            markerfacecolor=CONTROL_COLORS[control] if r["decision"] in ("worse", "better")
                            else "white")
        ax.set_xticks(np.arange(len(methods)), labels, fontsize=8)
        rand = unit_values(random[np.isclose(random["compression"], compression)])
        extra = f"; random layerwise at init {float(rand.mean()):.1f}%" if len(rand) else ""
        ax.set_title(f"compression {compression:g}x{extra}", fontsize=10)
        ax.set_ylabel("control − as published, top-1 test (points)")
        ax.set_yscale("symlog", linthresh=2.0)
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    axes[0][0].legend(fontsize=7, frameon=False, loc="lower left")
    fig.suptitle(f"{title}\npaired over base models; bars: simultaneous 95% intervals of each claim's family (the intervals that decided); "
                 "filled: significant; y axis linear within ±2, logarithmic beyond", fontsize=10)
    fig.tight_layout()
    return fig


def findings(runs: pd.DataFrame, model: str, dataset: str, data: _runs.FigureData) -> tuple[str, str]:
    lines = [f"Setting: {setting_label(model, dataset)}. {data.summary()}.", ""]
    hurt, robust, inv = claim_tables(runs)
    lines.append(f"- **Magnitude after training (LTR) is hurt by layerwise shuffling and by reinitialisation — claim "
                 f"{_findings.verdict(hurt, -1).upper()}** (claim family: {_findings.family_text(hurt)}): "
                 + "; ".join(f"{CONTROL_NAMES[r.control]} at {r.compression:g}x: {r.difference:+.2f} points "
                             f"({r.decision}; {_findings.tested(r)})" for r in hurt.itertuples()) + ".")
    for method, part in robust.groupby("baseline", sort=True):
        decisions = set(part["decision"])
        word = ("NOT HURT (equivalent)" if decisions == {"equivalent"} else
                "HURT" if "worse" in decisions else "NOT SHOWN")
        lines.append(f"- **{method}: not hurt by shuffling or reinitialisation — {word}** (claim family: "
                     f"{_findings.family_text(robust)}, ROPE ±{OPTIONS.rope:g} points): "
                     + "; ".join(f"{CONTROL_NAMES[r.control]} at {r.compression:g}x: {r.difference:+.2f} "
                                 f"[simultaneous {fmt(r.sim_low)}, {fmt(r.sim_high)}], {r.decision}"
                                 for r in part.itertuples()) + ".")
    lines.append("- **Inverting the scores** (reported, no claim; family: "
                 f"{_findings.family_text(inv)}): "
                 + "; ".join(f"{r.baseline} at {r.compression:g}x {r.difference:+.2f} points ({r.decision})"
                             for r in inv.itertuples()) + ".")
    lines += ["", reading(hurt, robust, inv, runs, chance_level(model))]
    details = [_findings.options_line(OPTIONS), "",
               _findings.markdown_table(hurt, "Magnitude after training (LTR) against its controls"),
               _findings.markdown_table(robust, "At-init methods against their shuffled and reinitialised masks"),
               _findings.markdown_table(inv, "Inverted scores against the method")]
    return "\n".join(lines), "\n".join(details)


def reading(hurt: pd.DataFrame, robust: pd.DataFrame, inv: pd.DataFrame, runs: pd.DataFrame,
            chance: float) -> str:
    """The interpretation of the verdicts, generated from them."""
    parts = []
    if len(hurt):
        parts.append(f"Shuffling or reinitialising the lottery-ticket mask changes its accuracy by "
                     f"{fmt(hurt['difference'].min())} to {fmt(hurt['difference'].max())} points "
                     f"({_findings.join(sorted(set(hurt['decision'])))}).")
    if len(robust):
        spread = robust.groupby("baseline")["difference"].agg(["min", "max"])
        equivalent = int((robust["decision"] == "equivalent").sum())
        parts.append("For the at-init methods the same controls move accuracy by "
                     + "; ".join(f"{m} {fmt(r['min'])} to {fmt(r['max'])}" for m, r in spread.iterrows())
                     + " points: " + (
                         f"none is significantly hurt, but equivalence is shown at only {equivalent} of "
                         f"{len(robust)} points, so these runs cannot tell their masks from per-layer densities "
                         "either way." if not (robust["decision"] == "worse").any() else
                         "some are significantly hurt, so their masks carry information beyond per-layer densities "
                         "here."))
        collapsed = robust[robust["mean_baseline"] <= chance + 1.0][["baseline", "compression"]].drop_duplicates()
        if len(collapsed):
            parts.append("At chance as published (every layer's density cannot rescue a layer pruned away), so "
                         "its controls are equivalent trivially: " + _findings.join(
                             [f"{r.baseline} at {r.compression:g}x" for r in collapsed.itertuples()]) + ".")
    random = runs[runs["strategy"].str.startswith("random")]
    if len(random) and len(robust):
        best = robust.groupby("compression")["mean_baseline"].max()
        rand = random.groupby("compression")["y"].mean()
        gap = ", ".join(f"{c:g}x: best method {fmt(best[c])} vs random {fmt(rand[c])}" for c in best.index
                        if c in rand.index)
        parts.append(f"Random layerwise pruning at init, for scale: {gap}.")
    if len(inv):
        worst = inv.loc[inv["difference"].idxmin()]
        parts.append(f"Inverting the scores costs up to {fmt(-worst['difference'])} points ({worst['baseline']} at "
                     f"{worst['compression']:g}x).")
    return "**Reading (generated).** " + " ".join(parts)


def make_figure(data: _runs.FigureData, out: Path, formats=_common.FORMATS) -> _runs.FigureResult:
    return _runs.per_setting(data, out, formats, OPTIONS, "Pruning at initialisation: sanity checks", draw,
                             findings)


def main(argv=None) -> int:
    return _runs.main(FIGURE, __doc__.splitlines()[0], make_figure, argv)


if __name__ == "__main__":
    sys.exit(main())
