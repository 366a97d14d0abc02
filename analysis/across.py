"""Which method is best across settings: the settings are the units (Demsar 2006).

A *cell* is one (model, dataset, target compression); a *setting* is what the user names
with `across` (any of model, dataset, compression): the cells that share those keys. The
data: each method's mean over units (base models) in each cell, averaged over the cells of
a setting, on a complete block (every method measured in every cell used). Without
`methods`, the block is the largest (methods x settings) found by dropping the method
measured in the fewest settings, one at a time (`complete_block`).

Verdicts (one error budget, as per setting): for each pair, the mean over settings of the
per-setting difference, with a Bonferroni-simultaneous Student-t interval over the family of
all pairs; that interval decides (inside the ROPE: equivalent; excluding 0: better/worse;
else inconclusive), so all the family's verdicts together are wrong at most alpha of the
time. Reported beside them, each in its own declared family: Friedman's test with the
Iman-Davenport F (one test), Nemenyi's critical difference of mean ranks (single-step, all
pairs) and Wilcoxon signed-rank tests Holm-adjusted over all pairs. With units of several
base models per setting: the interquartile mean of the per-unit difference to the dense model
and its performance profile, with stratified bootstrap intervals (`across_stats`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shrinkbench.analysis.across_stats import (Friedman, friedman, interval_decision, iqm_of_columns,
                                               mean_difference_interval, mean_ranks, nemenyi_cd, nemenyi_p,
                                               nemenyi_q, pairs_of, performance_profile, smallest_wilcoxon_p,
                                               stratified_bootstrap, wilcoxon_holm)
from shrinkbench.analysis.decision import reversed_decision
from shrinkbench.analysis.errors import AnalysisError
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.schema import DENSE_STRATEGY
from shrinkbench.analysis.units import with_units

CELL = ["model", "dataset", "compression"]
KEY_ALIASES = {"ratio": "compression", "sparsity": "compression", "models": "model", "datasets": "dataset"}
MIN_SETTINGS = 5
"""Fewer settings than this are said to be few, with what they can show."""
PROFILE_POINTS = 400
"""At most this many thresholds of a performance profile (quantiles of the pooled values beyond)."""


def parse_keys(text: str | list[str]) -> tuple[str, ...]:
    """`model,dataset,compression` -> the keys in CELL order; unknown keys are an error."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    keys = [KEY_ALIASES.get(n, n) for n in names]
    unknown = [n for n, k in zip(names, keys) if k not in CELL]
    if unknown or not keys:
        raise AnalysisError(f"--across takes setting keys among {', '.join(CELL)} (ratio = compression), "
                            f"comma-separated; got {text!r}")
    return tuple(k for k in CELL if k in keys)


def cell_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell x method x unit: `y` and `delta` averaged over the unit's runs."""
    runs = with_units(runs)
    pruned = runs[runs["strategy"] != DENSE_STRATEGY]
    return pruned.groupby(CELL + ["strategy", "unit"], sort=True)[["y", "delta"]].mean().reset_index()


def _setting_of(cells: pd.DataFrame, keys: tuple[str, ...]) -> pd.Series:
    parts = [cells[k].map(lambda v: f"{v:g}x") if k == "compression" else cells[k].astype(str) for k in keys]
    label = parts[0]
    for part in parts[1:]:
        label = label + " " + part
    return label


def _complete(means: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Cell means (cells x methods) restricted to `methods` and the cells where all of them ran."""
    return means[methods].dropna()


def _n_settings(means: pd.DataFrame, methods: list[str], keys: tuple[str, ...]) -> int:
    block = _complete(means, methods)
    return block.reset_index()[list(keys)].drop_duplicates().shape[0] if len(block) else 0


def complete_block(means: pd.DataFrame, keys: tuple[str, ...]) -> list[str]:
    """The methods of the largest complete block (methods x settings) on the path that drops,
    one at a time, the method whose removal leaves the most settings complete (ties: the
    method measured in the fewest settings, then the later name)."""
    methods = sorted(means.columns)
    coverage = {m: _n_settings(means, [m], keys) for m in methods}
    best, best_size = methods[:2], -1
    while len(methods) >= 2:
        n_settings = _n_settings(means, methods, keys)
        if n_settings >= 2 and len(methods) * n_settings > best_size:
            best, best_size = list(methods), len(methods) * n_settings
        if len(methods) == 2:
            break
        gain = {m: _n_settings(means, [o for o in methods if o != m], keys) for m in methods}
        methods.remove(max(sorted(methods, reverse=True), key=lambda m: (gain[m], -coverage[m])))
    if best_size < 0:
        raise AnalysisError(f"no two methods were measured in two or more common settings (across "
                            f"{', '.join(keys)}); nothing to rank")
    return best


@dataclass
class AcrossResult:
    """Everything `across` computed (see the module docstring); `values` is settings x methods
    in the response's unit, methods ordered by mean rank (best first)."""

    keys: tuple[str, ...]
    options: AnalysisOptions
    values: pd.DataFrame
    ranks: np.ndarray
    friedman: Friedman
    q_alpha: float
    critical_difference: float
    pairs: pd.DataFrame
    cells: int
    models: int
    dropped: list[str]
    iqm: pd.DataFrame | None = None
    profile: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        return list(self.values.columns)

    @property
    def n_settings(self) -> int:
        return len(self.values)

    def family(self, kind: str) -> str:
        """The name of one of the result's families (`FAMILIES`: verdicts, nemenyi, wilcoxon, friedman)."""
        scope = f"{len(self.methods)} methods across {self.n_settings} settings ({' x '.join(self.keys)})"
        return FAMILIES[kind].format(scope=scope, response=self.options.response)

    def families(self) -> dict[str, int]:
        """Every family of the result with its size."""
        return {self.family(kind): 1 if kind == "friedman" else len(self.pairs) for kind in FAMILIES}

    @property
    def verdict_family(self) -> str:
        return self.family("verdicts")


FAMILIES = {"verdicts": "all pairs of {scope}, {response}: mean difference, Bonferroni-simultaneous",
            "nemenyi": "all pairs of {scope}: mean ranks, Nemenyi single-step",
            "wilcoxon": "all pairs of {scope}: Wilcoxon signed-rank, Holm",
            "friedman": "one omnibus test of {scope}: Friedman (Iman-Davenport F)"}


def few_settings_note(n: int, alpha: float) -> str:
    """What N < MIN_SETTINGS settings can show."""
    smallest = smallest_wilcoxon_p(n)
    can = "cannot reach" if smallest >= alpha else "can just reach"
    return (f"only {n} settings (fewer than {MIN_SETTINGS}): a signed-rank test {can} p < {alpha:g} (its smallest "
            f"two-sided p is {smallest:.3g}), the mean-difference intervals rest on {n - 1} degree(s) of freedom, and "
            "the result describes these settings rather than supporting a claim in general")


def across(runs: pd.DataFrame, keys, options: AnalysisOptions, methods: list[str] | None = None,
           rng: np.random.Generator | None = None) -> AcrossResult:
    """Rank the methods across the settings named by `keys` (see the module docstring)."""
    keys = parse_keys(keys)
    table = cell_table(runs)
    if table.empty:
        raise AnalysisError("no pruned runs to rank across settings")
    means = table.groupby(CELL + ["strategy"])["y"].mean().unstack("strategy")
    known = sorted(means.columns)
    if methods:
        unknown = [m for m in methods if m not in known]
        if unknown:
            raise AnalysisError(f"unknown method {unknown[0]!r}; the table has: {', '.join(known)}")
        if len(set(methods)) < 2:
            raise AnalysisError("ranking across settings needs at least two methods")
        chosen = list(dict.fromkeys(methods))
    else:
        chosen = complete_block(means, keys)
    block = _complete(means, chosen).reset_index()
    if block.empty:
        raise AnalysisError(f"no cell (model, dataset, compression) where all of {', '.join(chosen)} were measured")
    block["setting"] = _setting_of(block, keys)
    values = block.groupby(list(keys), sort=True)[chosen].mean()  # settings in their keys' order
    values.index = _setting_of(values.index.to_frame(index=False), keys).to_numpy()
    if len(values) < 2:
        raise AnalysisError(f"the methods share only one setting ({values.index[0]}) across {', '.join(keys)}; "
                            "ranking across settings needs at least two")
    sign = 1.0 if options.higher_is_better else -1.0
    values, ranks, pairs = rank_pairs(values, options)
    scores = sign * values.to_numpy()
    n, k = scores.shape
    result = AcrossResult(keys, options, values, ranks, friedman(scores), nemenyi_q(k, options.alpha),
                          nemenyi_cd(k, n, options.alpha), pairs,
                          len(block), block["model"].nunique(), [] if methods else sorted(set(known) - set(chosen)))
    if n < MIN_SETTINGS:
        result.notes.append(few_settings_note(n, options.alpha))
    elif smallest_wilcoxon_p(n) >= options.alpha:
        result.notes.append(f"with {n} settings the smallest two-sided signed-rank p is {smallest_wilcoxon_p(n):.3g}: "
                            f"no Wilcoxon test can reach p < {options.alpha:g}")
    if "model" not in keys or result.models < MIN_SETTINGS:
        result.notes.append(f"the settings span {result.models} model(s): settings of one model share its starting "
                            "weights, so a claim reaches as far as these models, not models in general")
    _add_distribution(result, table, block, sign, rng if rng is not None else np.random.default_rng(options.seed))
    return result


def rank_pairs(values: pd.DataFrame, options: AnalysisOptions) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """`values` (settings x methods) with the methods in mean-rank order (best first), the mean
    ranks, and one row per pair with its verdict and rank-based tests (`_pairs`)."""
    sign = 1.0 if options.higher_is_better else -1.0
    ranks = mean_ranks(sign * values.to_numpy())
    order = np.argsort(ranks, kind="stable")
    values, ranks = values.iloc[:, order], ranks[order]
    return values, ranks, _pairs(values, ranks, sign * values.to_numpy(), options)


def _pairs(values: pd.DataFrame, ranks: np.ndarray, scores: np.ndarray, options: AnalysisOptions) -> pd.DataFrame:
    """One row per pair (better-ranked method first): the verdict and the rank-based tests."""
    n, k = scores.shape
    pairs = pairs_of(k)
    raw, adjusted = wilcoxon_holm(scores)
    sign = 1.0 if options.higher_is_better else -1.0
    rows = []
    for (i, j), p_w, p_holm in zip(pairs, raw, adjusted):
        signed = mean_difference_interval(scores[:, i] - scores[:, j], options.alpha, len(pairs))
        decision = interval_decision(signed.low, signed.high, options.rope)
        low, high = sorted((sign * signed.low, sign * signed.high))
        rows.append({"method": values.columns[i], "baseline": values.columns[j], "n_settings": n,
                     "difference": sign * signed.difference, "sd": signed.sd, "sim_low": low, "sim_high": high,
                     "decision": decision, "rank_method": ranks[i], "rank_baseline": ranks[j],
                     "rank_difference": ranks[j] - ranks[i], "p_nemenyi": nemenyi_p(ranks[i], ranks[j], k, n),
                     "p_wilcoxon": p_w, "p_wilcoxon_holm": p_holm, "family_size": len(pairs)})
    frame = pd.DataFrame(rows)
    frame["nemenyi"] = np.where(frame["p_nemenyi"] < options.alpha, "differ", "not distinguished")
    frame["wilcoxon"] = np.where(frame["p_wilcoxon_holm"] < options.alpha, "differ", "not distinguished")
    return frame


def _add_distribution(result: AcrossResult, table: pd.DataFrame, block: pd.DataFrame, sign: float,
                      rng: np.random.Generator) -> None:
    """IQM and performance profiles of the per-unit difference to the dense model (or the response
    where a cell has no dense run), stratified by setting, units shared by every method."""
    methods = result.methods
    cells = block[CELL + ["setting"]]
    data = table[table["strategy"].isin(methods)].merge(cells, on=CELL)
    column = "delta" if np.isfinite(data["delta"].to_numpy(float)).all() else "y"
    wide = data.pivot_table(index=["setting", "unit"] + CELL, columns="strategy", values=column)
    wide = wide.reindex(columns=methods).dropna()  # a unit counts where every method ran on it
    cells_of = block.groupby("setting").size()
    counted = wide.groupby(level=["setting", "unit"]).size()
    full = counted[counted.to_numpy() == cells_of.reindex(counted.index.get_level_values("setting")).to_numpy()]
    per_unit = wide.groupby(level=["setting", "unit"]).mean().loc[full.index]  # ... and in every cell of its setting
    strata = [sign * group.to_numpy(float) for _, group in per_unit.groupby(level="setting")]
    if len(strata) < 2 or min(s.shape[0] for s in strata) < 2:
        result.notes.append("no IQM or performance profile: they need at least two units (base models or run "
                            "seeds) in every setting")
        return
    options = result.options
    point, low, high = stratified_bootstrap(strata, iqm_of_columns, rng, options.n_boot, options.confidence)
    if sign < 0:
        point, low, high = -point, -high, -low
    what = "difference to dense" if column == "delta" else options.metric
    result.iqm = pd.DataFrame({"method": methods, "iqm": point, "low": low, "high": high, "what": what,
                               "units": len(per_unit)})
    pooled = sign * per_unit.to_numpy(float)
    thresholds = np.unique(pooled)  # the profile is a step function that changes only at these values
    if thresholds.size > PROFILE_POINTS:
        thresholds = np.unique(np.quantile(pooled, np.linspace(0.0, 1.0, PROFILE_POINTS)))
    profile, p_low, p_high = stratified_bootstrap(strata, lambda x: performance_profile(x, thresholds), rng,
                                                  options.n_boot, options.confidence)
    result.profile = {"thresholds": sign * thresholds, "fraction": profile, "low": p_low, "high": p_high,
                      "what": what, "higher_is_better": sign > 0, "units": len(per_unit)}


def verdict_for(result: AcrossResult, method: str, baseline: str) -> str:
    """The decision of `method` against `baseline`, read in either order."""
    for row in result.pairs.itertuples():
        if (row.method, row.baseline) == (method, baseline):
            return row.decision
        if (row.method, row.baseline) == (baseline, method):
            return reversed_decision(row.decision)
    raise AnalysisError(f"no pair {method} / {baseline} in the ranking")
