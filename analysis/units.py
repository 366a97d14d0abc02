"""The unit of replication: what varies independently, and so what a test counts as n.

Two seeds decide a run's numbers: the base seed (which starting weights) and the run seed
(score batches, random masks, data order). A pruning method's effect varies with the
starting weights (the paper's Figure 8), so runs that share a base model are NOT
independent replicates of the method's effect: treating every (base seed, run seed) pair
as a unit is pseudo-replication and makes intervals too narrow and tests too eager.
The rule, applied per setting (model x dataset) by `assign_units`:

* **Several base models** in the setting: the unit is the base model. The run seeds under
  one base model are averaged first (`unit_values`, `unit_curves`), and the tests run on
  the per-base-model means (n = number of base models). For a balanced design this is
  exactly the test of the method effect in the mixed model
  `y = mu + method + base + method x base + run noise` with base models as a random
  effect (the method x base interaction is the error term of the method effect).
* **One base model**: the unit is the run seed, and every verdict holds for these starting
  weights only (`replication = "run seeds of one base model"`); reports say so beside every
  verdict and never present it as a general one.

The base model is identified by `base_id` (the hash of its config, or of its checkpoint);
where a table has no base ids (a CSV without the column), by the base seed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SETTING = ["model", "dataset"]
UNIT = ["unit"]
BASE_MODELS = "base models"
ONE_BASE_MODEL = "run seeds of one base model"
REPLICATIONS = (BASE_MODELS, ONE_BASE_MODEL)
ONLY_THESE_WEIGHTS = "these starting weights only"
"""The caveat every verdict drawn from one base model carries."""


def base_key(runs: pd.DataFrame) -> pd.Series:
    """The base model of each run: its `base_id`, or `base_seed=<n>` where no id is known."""
    ids = runs["base_id"].astype(str) if "base_id" in runs.columns else pd.Series("", index=runs.index)
    seeds = "base_seed=" + runs["base_seed"].astype(str)
    return ids.where(ids != "", seeds)


def assign_units(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` with `unit` (the replicate a run belongs to) and `replication` (what the units
    are) added, per setting, by the rule of the module docstring."""
    runs = runs.copy()
    base = base_key(runs)
    if runs.empty:
        return runs.assign(unit=pd.Series(dtype=object), replication=pd.Series(dtype=object))
    several = base.groupby([runs[c] for c in SETTING]).transform("nunique").to_numpy() > 1
    runs["unit"] = np.where(several, "base " + base, "base " + base + " seed " + runs["seed"].astype(str))
    runs["replication"] = np.where(several, BASE_MODELS, ONE_BASE_MODEL)
    return runs


def with_units(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` as they are if they carry units already, else with `assign_units` applied."""
    return runs if "unit" in runs.columns and "replication" in runs.columns else assign_units(runs)


def unit_values(group: pd.DataFrame, column: str = "y") -> pd.Series:
    """`column` of one operating point, averaged within each unit (run seeds of one base model
    become one value), indexed by unit."""
    return group.groupby("unit")[column].mean()


def seed_free(group: pd.DataFrame) -> bool:
    """Whether the runs of one operating point are ONE value no seed changes (every record says
    `seed_free`, and there is one unit): `decision.compare_values` then treats it as a constant."""
    return "seed_free" in group.columns and len(group) > 0 and bool((group["seed_free"] == 1).all()) \
        and group["unit"].nunique() == 1


def unit_means(runs: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.DataFrame:
    """One row per `keys` x unit with the means of `columns` and `runs` (how many runs)."""
    present = [c for c in columns if c in runs.columns]
    grouped = runs.groupby(keys + UNIT, sort=True)
    out = grouped[present].mean()
    out["runs"] = grouped.size()
    return out.reset_index()


def replication_of(runs: pd.DataFrame) -> str:
    """What the units of `runs` are: base models unless every run shares one base model."""
    if "replication" in runs.columns and len(runs):
        return BASE_MODELS if (runs["replication"] == BASE_MODELS).any() else ONE_BASE_MODEL
    return BASE_MODELS if base_key(runs).nunique() > 1 else ONE_BASE_MODEL


def generalizes(replication: str) -> bool:
    """Whether a verdict from units of this kind speaks for the method in general."""
    return replication == BASE_MODELS
