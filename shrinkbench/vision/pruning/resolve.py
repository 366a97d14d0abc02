"""The vision track's strategies by name, `module:Class` or `file.py:Class` (`shrinkbench.core.usercode`
does the importing, hashing and checking; this module supplies the registry and the base class)."""
from __future__ import annotations

from typing import Mapping

from shrinkbench.core.usercode import strategy_source  # noqa: F401  (part of this module's interface)
from shrinkbench.vision.pruning.base import STRATEGIES, Strategy


def resolve_strategy(spec: str, params: Mapping | None = None):
    """A `Strategy` for a registered name/alias, `module:Class` or `file.py:Class`, constructed
    with `params` as keyword arguments."""
    from shrinkbench.core.usercode import resolve_strategy as resolve

    return resolve(spec, params, registry=STRATEGIES, base=Strategy)
