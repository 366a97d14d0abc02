"""A ranking across settings in words, tables, JSON and files: what `shrinkbench rank` prints and
writes, and the report's section "Across settings"."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from shrinkbench.analysis.across import AcrossResult, across
from shrinkbench.analysis.across_plots import cd_figure, distribution_figure
from shrinkbench.analysis.curves import save_figure
from shrinkbench.analysis.errors import AnalysisError
from shrinkbench.analysis.files import frame_records, to_json, write_text
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.render import Table, fmt, fmt_p

DEFAULT_KEYS = ("model", "dataset", "compression")


def _p(p: float) -> str:
    text = fmt_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def friedman_line(result: AcrossResult) -> str:
    f = result.friedman
    f_text = f"{f.f:.2f}" if np.isfinite(f.f) else "∞ (every setting ranks them alike)"
    return (f"Friedman χ²_F = {f.chi2:.2f} ({_p(f.p_chi2)}); Iman-Davenport F_F({f.df1}, {f.df2}) = "
            f"{f_text} ({_p(f.p_f)}); Nemenyi CD = {result.critical_difference:.2f} mean ranks "
            f"(q_α = {result.q_alpha:.3f}, k = {f.n_methods}, N = {f.n_settings})")


def family_lines(result: AcrossResult) -> list[str]:
    return [f"family: {name} (m = {size})" for name, size in result.families().items()]


def ranks_table(result: AcrossResult, keys: dict[str, str] | None = None) -> Table:
    """Mean rank, mean response and IQM per method; with `keys`, a key column first."""
    metric = result.options.metric
    headers = ["Method", "Mean rank", f"Mean {metric}"]
    iqm = result.iqm.set_index("method") if result.iqm is not None else None
    if iqm is not None:
        headers.append(f"IQM Δ dense [{result.options.confidence:.0%}]" if iqm["what"].iloc[0] != metric
                       else f"IQM [{result.options.confidence:.0%}]")
    rows = []
    for name, rank in zip(result.methods, result.ranks):
        row = ([keys[name]] if keys else []) + [name, f"{rank:.2f}", fmt(float(result.values[name].mean()))]
        if iqm is not None:
            row.append(f"{iqm.loc[name, 'iqm']:+.2f} [{iqm.loc[name, 'low']:+.2f}, {iqm.loc[name, 'high']:+.2f}]")
        rows.append(row)
    note = (f"Settings ({' x '.join(result.keys)}): {', '.join(result.values.index)}; {result.cells} cell(s) "
            "(model, dataset, target compression), each a mean over its units. Rank 1 = best. "
            + friedman_line(result) + ".")
    if iqm is not None:
        note += (f" IQM: interquartile mean of {int(result.iqm['units'].iloc[0])} setting x unit values, "
                 f"stratified bootstrap over units within settings ({result.options.n_boot} resamples, seed "
                 f"{result.options.seed}).")
    align = ["l"] + ["r"] * (len(headers) - 1)
    if keys:
        headers, align = ["Key"] + headers, ["l"] + align
    return Table(f"Mean ranks across {result.n_settings} settings", headers, rows, align, note)


def pairs_table(result: AcrossResult, keys: dict[str, str] | None = None) -> Table:
    """The pairs; with `keys`, methods named by their keys (m1, m2, ...: rank order)."""
    level = 1 - result.options.alpha
    name = (lambda m: keys[m]) if keys else (lambda m: m)
    rows = [[name(r.method), name(r.baseline), f"{r.difference:+.2f} [{r.sim_low:+.2f}, {r.sim_high:+.2f}]", r.decision,
             f"{r.rank_difference:.2f}", fmt_p(r.p_nemenyi), fmt_p(r.p_wilcoxon_holm)]
            for r in result.pairs.itertuples()]
    note = (f"Verdict: from the mean over settings of the per-setting difference and its {level:.0%} "
            f"Bonferroni-simultaneous interval over the {len(result.pairs)} pairs (inside ±{result.options.rope:g}: "
            "equivalent; excluding 0: better/worse; else inconclusive). Beside it, in their own families: the "
            f"mean-rank difference (Nemenyi: differ where it exceeds CD = {result.critical_difference:.2f}) and "
            "Holm-adjusted Wilcoxon signed-rank p. " + " ".join(f"{line[0].upper()}{line[1:]}." for line in
                                                               family_lines(result)))
    return Table(f"Pairs across settings ({result.options.response})",
                 ["Method", "vs", "Mean diff. [sim. CI]", "Verdict", "Rank diff.", "Nemenyi p", "Wilcoxon p (Holm)"],
                 rows, ["l", "l", "r", "l", "r", "r", "r"], note)


def across_tables(result: AcrossResult) -> list[Table]:
    return [ranks_table(result), pairs_table(result)]


def across_text(result: AcrossResult, width: int) -> str:
    """The tables within `width` columns (methods become keys m1, m2, ... where names do not fit)."""
    import textwrap

    tables = across_tables(result)
    if max(len(line) for line in pairs_table(result).text().splitlines()[1:3]) > width:
        keys = {m: f"m{i + 1}" for i, m in enumerate(result.methods)}
        tables = [ranks_table(result, keys), pairs_table(result, keys)]
    parts = [t.text(width) for t in tables]
    if result.dropped:
        parts.append(textwrap.fill(f"Left out (not measured in every setting of the block): "
                                   f"{', '.join(result.dropped)}; name methods with --method to choose the block.",
                                   width, break_on_hyphens=False) + "\n")
    parts += [textwrap.fill(f"note: {note}", width, break_on_hyphens=False) + "\n" for note in result.notes]
    return "\n".join(parts)


def across_dict(result: AcrossResult) -> dict:
    f = result.friedman
    return {"keys": list(result.keys), "response": result.options.response, "settings": list(result.values.index),
            "cells": result.cells, "methods": result.methods, "mean_ranks": dict(zip(result.methods, result.ranks)),
            "values": {s: dict(zip(result.methods, row)) for s, row in zip(result.values.index, result.values.to_numpy())},
            "friedman": {"chi2": f.chi2, "p": f.p_chi2, "iman_davenport_f": f.f, "df1": f.df1, "df2": f.df2,
                         "p_f": f.p_f},
            "nemenyi": {"q_alpha": result.q_alpha, "critical_difference": result.critical_difference},
            "families": result.families(), "pairs": frame_records(result.pairs),
            "iqm": frame_records(result.iqm) if result.iqm is not None else None,
            "performance_profile": result.profile,
            "dropped": result.dropped, "notes": result.notes, "generator_seed": result.options.seed}


def write_across(folder: Path, result: AcrossResult, formats=("png", "pdf")) -> list[Path]:
    """across.md, across.json, across_pairs.csv and the figures (cd diagram, IQM and profiles)."""
    paths = [write_text(folder / "across.md", "\n".join(t.markdown() for t in across_tables(result))
                        + "".join(f"\nNote: {n}\n" for n in result.notes)),
             write_text(folder / "across.json", to_json(across_dict(result))),
             write_text(folder / "across_pairs.csv", result.pairs.to_csv(index=False))]
    paths += save_figure(cd_figure(result), folder / "across_cd", formats)
    if result.iqm is not None:
        paths += save_figure(distribution_figure(result), folder / "across_iqm_profiles", formats)
    return paths


def add_across_section(doc, runs: pd.DataFrame, options: AnalysisOptions, rng: np.random.Generator, out: Path,
                       formats) -> list[Path]:
    """The report's "Across settings" section, where the store holds more than one setting
    (model x dataset x target compression) with two or more methods in common; else nothing."""
    try:
        result = across(runs, DEFAULT_KEYS, options, rng=rng)
    except AnalysisError:
        return []
    doc.heading("Across settings")
    doc.para(f"Settings as the units (Demsar 2006): {len(result.methods)} methods measured in all of "
             f"{result.n_settings} settings ({' x '.join(result.keys)}), chosen as the largest complete block; "
             "`shrinkbench rank --across KEYS --method ...` ranks other blocks.")
    for table in across_tables(result):
        doc.table(table)
    doc.items(result.notes + ([f"left out (not measured in every setting): {', '.join(result.dropped)}"]
                              if result.dropped else []))
    paths = write_across(out / "across", result, formats)
    if "png" in formats:
        doc.figure(out / "across" / "across_cd.png", "across/across_cd.png",
                   f"Critical-difference diagram: mean ranks over {result.n_settings} settings; methods joined by a "
                   "bar are not told apart by Nemenyi's test")
        if result.iqm is not None:
            doc.figure(out / "across" / "across_iqm_profiles.png", "across/across_iqm_profiles.png",
                       f"IQM and performance profiles of the {result.iqm['what'].iloc[0]} over setting x unit "
                       "values, stratified bootstrap intervals")
    return paths
