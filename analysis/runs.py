"""From the tidy table to one row per run, dense deltas and per-operating-point summaries.

`run_table` picks the response (metric, stage, split) and the structural x-axis metrics of
every successful run and adds `delta`: the run's response minus that of the dense run
(strategy "none", compression 1) with the same model, dataset, base seed, run seed and
fine-tuning budget (a dense run whose record says `seed_free` serves every run seed), and the run's `unit` of replication (`shrinkbench.analysis.units`: the
base model where a setting has several, else the run seed of its one base model).
Operating points are grouped by the TARGET compression; x positions use the measured
metric (`compression_ratio`, `theoretical_speedup`, latency), averaged over units.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

import warnings

from shrinkbench.analysis.errors import AnalysisError, StoreWarning
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.schema import CONFOUNDER_COLUMNS, DENSE_STRATEGY, IDENTITY_COLUMNS
from shrinkbench.analysis.stats import t_interval_from_summary
from shrinkbench.analysis.units import SETTING, UNIT, assign_units, unit_means, with_units

RUN_PAIR = ["base_seed", "seed"]
"""A run and the dense run it is compared with share both seeds (and the budget)."""
POINT = SETTING + ["strategy", "compression"]
BUDGET = ["finetune_epochs", "finetune_optimizer", "finetune_lr"]
X_METRICS = ("compression_ratio", "theoretical_speedup", "latency_b1", "latency_b64", "measured_speedup")
"""x-axis columns of the run table; `measured_speedup` is that of the largest batch size measured."""
RUN_COLUMNS = list(IDENTITY_COLUMNS) + list(CONFOUNDER_COLUMNS)


def failed_runs(table: pd.DataFrame) -> pd.DataFrame:
    """One row per failed run (identity columns only)."""
    failed = table[table["status"] != "ok"]
    return failed[RUN_COLUMNS].drop_duplicates("run_id").reset_index(drop=True)


def available_responses(table: pd.DataFrame, metric: str) -> list[str]:
    rows = table[(table["metric"] == metric) & (table["status"] == "ok")]
    return sorted(f"{s}/{p}" for s, p in rows[["stage", "split"]].drop_duplicates().itertuples(index=False))


def _structural(ok: pd.DataFrame, stage: str, metrics) -> pd.DataFrame:
    """run_id x metric values of split-free metrics, preferring `stage`."""
    rows = ok[ok["metric"].isin(metrics) & (ok["split"] == "none")]
    rows = rows.assign(_other=(rows["stage"] != stage)).sort_values("_other", kind="stable")
    rows = rows.drop_duplicates(["run_id", "metric"])
    wide = rows.pivot(index="run_id", columns="metric", values="value")
    return wide.reindex(columns=list(metrics))


def _attach_dense(runs: pd.DataFrame) -> pd.DataFrame:
    """Add `dense_y` and `delta = y - dense_y` (matched on setting, unit and budget; if no
    dense run has the same budget, a dense run that is unique for setting and unit)."""
    dense = runs[(runs["strategy"] == DENSE_STRATEGY) & np.isclose(runs["compression"], 1.0)]
    full = SETTING + RUN_PAIR + BUDGET
    exact = dense[full + ["y"]].drop_duplicates(full).rename(columns={"y": "dense_y"})
    runs = runs.merge(exact, on=full, how="left")
    missing = runs["dense_y"].isna()
    if missing.any() and len(dense):
        short = SETTING + RUN_PAIR
        unique = dense[short + ["y"]].drop_duplicates(short, keep=False).rename(columns={"y": "_dense"})
        fill = runs.loc[missing, short].merge(unique, on=short, how="left")["_dense"].to_numpy()
        runs.loc[missing, "dense_y"] = fill
    missing = runs["dense_y"].isna()
    constant = dense[dense["seed_free"] == 1] if "seed_free" in dense.columns else dense.iloc[:0]
    if missing.any() and len(constant):  # one dense run the seed cannot change serves every run seed
        some = SETTING + ["base_seed"]
        unique = constant[some + ["y"]].drop_duplicates(some, keep=False).rename(columns={"y": "_dense"})
        fill = runs.loc[missing, some].merge(unique, on=some, how="left")["_dense"].to_numpy()
        runs.loc[missing, "dense_y"] = fill
    runs["delta"] = runs["y"] - runs["dense_y"]
    return runs


def separate_versions(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """A strategy name stored with several versions of its code (`strategy_version`, the
    sha256 of a user's strategy file) becomes one method per version, `name@<version>`, so
    that results of different code are never pooled; returns the messages that say so."""
    if "strategy_version" not in runs.columns or runs.empty:
        return runs, []
    versions = runs.groupby("strategy")["strategy_version"].nunique()
    several = versions[versions > 1].index
    if not len(several):
        return runs, []
    runs = runs.copy()
    chosen = runs["strategy"].isin(several)
    runs.loc[chosen, "strategy"] = runs.loc[chosen, "strategy"] + "@" + runs.loc[chosen, "strategy_version"]
    messages = [f"{name} is stored with {versions[name]} versions of its code "
                f"({', '.join(sorted(set(runs.loc[runs['strategy'].str.startswith(name + '@'), 'strategy_version'])))}); "
                f"each is analysed as its own method, {name}@<version>" for name in several]
    return runs, messages


def check_protocols(runs: pd.DataFrame, options: AnalysisOptions) -> None:
    """A setting (model and dataset) whose language-model runs come from several protocol presets
    is refused (AnalysisError naming the presets and the settings that differ) unless
    `options.across_protocols`; then a warning says the same and every comparison across them
    carries the confounder warning. Presets in different settings are never compared together."""
    if "protocol" not in runs.columns:
        return
    from shrinkbench.analysis.schema import protocol_differences

    for (model, dataset), sub in runs.groupby(SETTING):
        protocols = sorted(p for p in sub["protocol"].dropna().unique() if p)
        if len(protocols) < 2:
            continue
        fields = protocol_differences(sorted(set(sub["protocol_settings"].dropna())))
        text = (f"{setting_label(model, dataset)}: the runs come from {len(protocols)} protocol presets "
                f"({'; '.join(protocols)}), which differ in {', '.join(fields) or 'their preset'}")
        if not options.across_protocols:
            raise AnalysisError(f"{text}: their numbers are not comparable; analyse one preset's runs, or pass "
                                f"--across-protocols to compare them with a warning")
        warnings.warn(f"{text}; compared as asked (--across-protocols)", StoreWarning, stacklevel=3)


def run_table(table: pd.DataFrame, options: AnalysisOptions = AnalysisOptions()) -> pd.DataFrame:
    """One row per successful run: identity, confounders, `y` (the response), `dense_y`,
    `delta`, the measured x metrics (`compression_ratio` falls back to the target), `unit`
    and `replication`."""
    ok = table[table["status"] == "ok"]
    pick = ok[(ok["metric"] == options.metric) & (ok["stage"] == options.stage)
              & (ok["split"] == options.split)]
    if pick.empty:
        found = available_responses(table, options.metric)
        hint = f"available for {options.metric}: {', '.join(found)}" if found else \
            f"metrics present: {', '.join(sorted(ok['metric'].unique())[:12])}"
        raise AnalysisError(f"no {options.response} values in the table; {hint}")
    runs = pick.drop_duplicates("run_id")[RUN_COLUMNS + ["value"]].rename(columns={"value": "y"})
    check_protocols(runs, options)
    runs, messages = separate_versions(runs)
    for message in messages:
        warnings.warn(message, StoreWarning, stacklevel=2)
    measured = sorted({m for m in ok["metric"].unique() if m.startswith("measured_speedup_b") and m[18:].isdigit()},
                      key=lambda m: int(m[18:]))
    runs = runs.join(_structural(ok, options.stage, [m for m in X_METRICS if m != "measured_speedup"] + measured),
                     on="run_id")
    runs["measured_speedup"] = runs[measured[-1]] if measured else np.nan
    runs["compression_ratio"] = runs["compression_ratio"].fillna(runs["compression"])
    return assign_units(_attach_dense(runs)).reset_index(drop=True)


def summarize(runs: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per operating point (setting, strategy, target compression), over its UNITS (runs of
    one unit averaged first): `n` units, `runs`, `mean`, `std`, Student-t `low`/`high` of the
    response; the same for `delta` (`delta_n`, ...); the unit means of the x metrics (and
    their range over units, `<metric>_min`/`<metric>_max`); and
    `replication` (what the units are)."""
    runs = with_units(runs)
    per_unit = unit_means(runs, POINT, ["y", "delta", *X_METRICS])
    grouped = per_unit.groupby(POINT, sort=True)
    out = grouped.agg(n=("y", "count"), runs=("runs", "sum"), mean=("y", "mean"), std=("y", "std"),
                      delta_n=("delta", "count"), delta_mean=("delta", "mean"),
                      delta_std=("delta", "std"),
                      **{m: (m, "mean") for m in X_METRICS},
                      **{f"{m}_min": (m, "min") for m in X_METRICS},
                      **{f"{m}_max": (m, "max") for m in X_METRICS}).reset_index()
    kinds = runs.groupby(POINT, sort=True)["replication"].first().reset_index(drop=True)
    out["replication"] = kinds.to_numpy()
    out["low"], out["high"] = t_interval_from_summary(out["mean"], out["std"], out["n"], confidence)
    out["delta_low"], out["delta_high"] = t_interval_from_summary(
        out["delta_mean"], out["delta_std"], out["delta_n"], confidence)
    return out


def unit_matrix(runs: pd.DataFrame, column: str = "y") -> pd.DataFrame:
    """Units x target compression of one curve's `column` (NaN if absent)."""
    return runs.pivot_table(index=UNIT, columns="compression", values=column, aggfunc="mean")


def settings(runs: pd.DataFrame) -> list[tuple[str, str]]:
    return [tuple(s) for s in runs[SETTING].drop_duplicates().sort_values(SETTING).itertuples(index=False)]


def setting_label(model: str, dataset: str) -> str:
    return f"{dataset}/{model}"
