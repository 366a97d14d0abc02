"""Calibration of the across-settings verdicts, by simulation (rows of
`python -m shrinkbench.analysis.calibration --across`).

k methods, N settings, U units (base models) per setting; a unit's score of method m in
setting s is `y = setting_s + unit_{s,u} + effect_m + e`, `setting ~ N(80, 5)`, `unit ~ N(0, 1)`,
`e ~ N(0, noise_sd)`; the data of a setting is each method's mean over its U units, exactly as
`shrinkbench.analysis.across` builds it, and every verdict comes from its `rank_pairs`.

- **Null** (all methods equal in every setting, `effect = 0`): the family-wise error of each
  procedure: the share of studies with at least one better/worse verdict (the mean-difference
  verdicts of the toolkit), one pair Nemenyi tells apart, one Holm-adjusted Wilcoxon p < alpha.
- **Power** (method 0 better by `delta` in every setting, the others equal): per pair of method 0
  with another, the share called better (verdict), told apart with method 0 ranked ahead
  (Nemenyi), significant with method 0 ahead (Wilcoxon-Holm). `verdict_power` gives the
  exact power of the verdict (non-central t), which the simulation must reproduce.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from shrinkbench.analysis.across import rank_pairs
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.render import Table

SETTINGS = (5, 10, 20)
METHODS = 4
UNITS = 3
NOISE_SD = 1.0
DELTA = 1.0


@dataclass(frozen=True)
class AcrossRates:
    settings: int
    verdict: float
    nemenyi: float
    wilcoxon: float


def simulate_values(n: int, k: int, units: int, effects: np.ndarray, rng: np.random.Generator,
                    noise_sd: float = NOISE_SD) -> pd.DataFrame:
    """One study's settings x methods means (see the module docstring)."""
    setting = rng.normal(80.0, 5.0, (n, 1, 1))
    unit = rng.normal(0.0, 1.0, (n, units, 1))
    y = setting + unit + effects[None, None, :] + rng.normal(0.0, noise_sd, (n, units, k))
    return pd.DataFrame(y.mean(axis=1), columns=[f"m{j}" for j in range(k)])


def null_rates(n: int, reps: int, rng: np.random.Generator, k: int = METHODS, units: int = UNITS,
               options: AnalysisOptions = AnalysisOptions()) -> AcrossRates:
    """Family-wise error of each procedure when no method differs in any setting."""
    hits = np.zeros(3)
    for _ in range(reps):
        _, _, pairs = rank_pairs(simulate_values(n, k, units, np.zeros(k), rng), options)
        hits += [pairs["decision"].isin(("better", "worse")).any(), (pairs["p_nemenyi"] < options.alpha).any(),
                 (pairs["p_wilcoxon_holm"] < options.alpha).any()]
    return AcrossRates(n, *(hits / reps))


def power_rates(n: int, reps: int, rng: np.random.Generator, delta: float = DELTA, k: int = METHODS,
                units: int = UNITS, options: AnalysisOptions = AnalysisOptions()) -> AcrossRates:
    """Per-pair power for method m0, better by `delta` in every setting than each of the others."""
    effects = np.zeros(k)
    effects[0] = delta
    hits = np.zeros(3)
    for _ in range(reps):
        _, _, pairs = rank_pairs(simulate_values(n, k, units, effects, rng), options)
        ahead = pairs[pairs["method"] == "m0"]  # m0 ranked ahead of the baseline
        hits += [(ahead["decision"] == "better").sum(), (ahead["p_nemenyi"] < options.alpha).sum(),
                 ((ahead["p_wilcoxon_holm"] < options.alpha) & (ahead["difference"] > 0)).sum()]
    return AcrossRates(n, *(hits / (reps * (k - 1))))


def verdict_power(n: int, delta: float = DELTA, k: int = METHODS, units: int = UNITS, noise_sd: float = NOISE_SD,
                  alpha: float = 0.05) -> float:
    """Exact power of one "better" verdict: the lower end of the Bonferroni interval (m = k(k-1)/2)
    above 0, P(T > t_{1-alpha/(2m), N-1}) with T non-central t, ncp = delta / (sd_d / sqrt N),
    sd_d = noise_sd sqrt(2 / U) (the unit and setting effects cancel in a difference)."""
    m = k * (k - 1) // 2
    critical = sps.t.ppf(1.0 - alpha / (2 * m), n - 1)
    ncp = delta / (noise_sd * math.sqrt(2.0 / units) / math.sqrt(n))
    return float(sps.nct.sf(critical, n - 1, ncp))


def across_tables(reps: int, seed: int) -> list[Table]:
    rng = np.random.default_rng(seed)
    null = [null_rates(n, reps, rng) for n in SETTINGS]
    power = [power_rates(n, reps, rng) for n in SETTINGS]
    design = (f"{METHODS} methods, {UNITS} units per setting, unit noise sd {NOISE_SD:g}; {reps} simulated studies "
              f"per row, generator seed {seed}")
    first = Table("Across settings: family-wise error when all methods are equal in every setting",
                  ["Settings", "Verdicts (mean diff.)", "Nemenyi", "Wilcoxon-Holm"],
                  [[str(r.settings), f"{r.verdict:.1%}", f"{r.nemenyi:.1%}", f"{r.wilcoxon:.1%}"] for r in null],
                  ["r", "r", "r", "r"],
                  f"Nominal at most 5% per family of {METHODS * (METHODS - 1) // 2} pairs (α = 0.05). {design}. With 5 "
                  "settings no signed-rank p can go below 0.0625, hence 0%.")
    second = Table(f"Across settings: power per pair, one method better by {DELTA:g} point in every setting",
                   ["Settings", "Verdict 'better'", "Exact (non-central t)", "Nemenyi", "Wilcoxon-Holm"],
                   [[str(r.settings), f"{r.verdict:.1%}", f"{verdict_power(r.settings):.1%}", f"{r.nemenyi:.1%}",
                     f"{r.wilcoxon:.1%}"] for r in power], ["r", "r", "r", "r", "r"],
                   f"{design}. The verdict's simulated power matches its exact value within Monte-Carlo error.")
    return [first, second]
