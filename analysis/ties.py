"""Tie-decided differences: where a compared method's mask was partly set by a tie rule.

A language-model run records `tie_share` (stage `post`): the share of its keep/prune decisions
that its selection's tie rule made (the lower index, or an order drawn from the seed), not its
scores (`shrinkbench.llm.metrics.tie_share`). A difference between two methods at an operating
point where either has a nonzero tie share may be the rule's, not a method's merit. The
verdicts stay those of the family's rule (`analysis/decision.py`); `tie_warnings` adds a line
per such comparison to the warnings of `compare` and `report`, naming the share, so a reader
never sees a tie-decided difference presented bare. Records without the metric (every vision
run, LLM runs from before it) give no line.
"""
from __future__ import annotations

import pandas as pd

TIE_METRIC = "tie_share"


def tie_shares(table: pd.DataFrame) -> dict[tuple, float]:
    """{(model, dataset, strategy, compression): mean tie_share over the runs} from a tidy table."""
    rows = table[(table["metric"] == TIE_METRIC) & (table["stage"] == "post")]
    if rows.empty:
        return {}
    means = rows.groupby(["model", "dataset", "strategy", "compression"])["value"].mean()
    return {key: float(value) for key, value in means.items()}


def tie_warnings(table: pd.DataFrame, comparisons: pd.DataFrame) -> list[str]:
    """One line per compared (setting, compression, method, baseline) where either side's mean
    tie_share is nonzero."""
    shares = tie_shares(table)
    if not shares or comparisons is None or comparisons.empty:
        return []
    out = []
    for row in comparisons.drop_duplicates(["model", "dataset", "compression", "method", "baseline"]).itertuples():
        tied = [(name, shares.get((row.model, row.dataset, name, row.compression), 0.0))
                for name in (row.method, row.baseline)]
        tied = [(name, share) for name, share in tied if share > 0]
        if tied:
            said = ", ".join(f"{name} {100 * share:.2f}%" for name, share in tied)
            out.append(f"{row.dataset}/{row.model} {row.method} vs {row.baseline} at {row.compression:g}x: ties "
                       f"decided part of the mask (tie_share: {said} of the keep/prune decisions); a difference "
                       f"there can be the tie rule's, not the method's: run with ties = seeded to see its spread")
    return out
