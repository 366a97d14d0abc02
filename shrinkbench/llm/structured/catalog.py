"""The structured criteria as a table that needs no torch: their unit kind, allocations, whether
they read calibration tokens and their definition, for listing and for the checks made before a
run. `scoring.DEPTH` and `scoring.WIDTH` implement them (a test holds the two equal)."""
from __future__ import annotations

DEPTH_CRITERIA = {
    "block_influence": (True, "Removes the n blocks of lowest 1 - mean cos(input, output) (ShortGPT, Men et al. 2024)."),
    "angular": (True, "Removes the n consecutive blocks of smallest angular distance (Gromov et al. 2024)."),
    "last": (False, "Removes the last n blocks (the naive baseline)."),
}
WIDTH_CRITERIA = {
    "magnitude": (False, "score = sum of |W| over the unit's weights."),
    "wanda_sp": (True, "score = sum of |W_ab| * ||X_b||_2 over the unit's weights (Wanda-sp, An et al. 2024)."),
    "taylor": (True, "score = sum of |W * dL/dW| over the unit's weights (LLM-Pruner element-wise, Ma et al. 2023)."),
    "flap": (True, "score = Var(X_b) * ||W_:,b||^2 of o/down inputs, with bias compensation (FLAP, An et al. 2024)."),
    "random": (False, "score = uniform random from the run seed (the control)."),
}
"""name -> (reads calibration tokens or gradients, definition)."""


def calibrates(unit: str, name: str) -> bool:
    """Whether the structured criterion `name` of `unit` reads calibration tokens (depth: every
    criterion but last-n; width: those that need inputs or gradients)."""
    table = DEPTH_CRITERIA if unit == "blocks" else WIDTH_CRITERIA
    return bool(table.get(name, (False, ""))[0])


def criteria_rows() -> list[dict]:
    """What `shrinkbench strategies --track llm` lists for structured pruning: every criterion
    with its unit kind, allocations and whether it calibrates."""
    rows = []
    for table, units, scopes in ((DEPTH_CRITERIA, "blocks", []), (WIDTH_CRITERIA, "heads, channels, width",
                                                                  ["uniform", "global"])):
        for name, (needs, definition) in table.items():
            rows.append({"name": name, "granularity": units, "scope": scopes[0] if scopes else None, "scopes": scopes,
                         "criterion": "calibrated" if needs else "data-free", "aliases": [], "description": definition})
    return rows
