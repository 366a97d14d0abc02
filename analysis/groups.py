"""Baseline groups: which family of methods a baseline belongs to, so that a report that puts
one method against many baselines can list them the way a reviewer asks about them (all the
magnitude variants, then the layer allocations, the saliency criteria, pruning at
initialisation, schedules, the sanity-check controls, random). Read from the method's name
and tags (`shrinkbench.analysis.schema.strategy_name`), so it needs neither torch nor the
registry, and a user's strategy is in the group `user` unless its tags say otherwise.
"""
from __future__ import annotations

import re

_FILE_PREFIX = re.compile(r"^[^\s\[]*\.py:")

GROUPS = ("dense", "magnitude", "layer allocation", "saliency", "pruning at initialisation", "schedules",
          "structured (channels)", "N:M", "controls", "random", "user")
"""The groups in the order reports list them."""

BY_NAME = {
    "global_magnitude": "magnitude", "layerwise_magnitude": "magnitude",
    "lamp": "layer allocation", "erk_magnitude": "layer allocation", "first_dense_magnitude": "layer allocation",
    "global_gradient": "saliency", "layerwise_gradient": "saliency", "global_activation": "saliency",
    "layerwise_activation": "saliency", "snip": "saliency", "grasp": "saliency", "synflow": "saliency",
    "random": "random", "random_channels": "random",
}
CONTROL_WORDS = ("shuffled", "reinit", "inverted", "from scratch")
SCHEDULE_WORDS = ("gradual", "rewinding", " steps")


def baseline_group(label: str) -> str:
    """The group of a method named `label` (`global_magnitude [at init, shuffled]` -> controls)."""
    name, _, rest = label.partition(" [")
    if name == "none":
        return "dense"
    tags = [t.strip() for t in rest.rstrip("]").split(",")] if rest else []
    if any(word in tags for word in CONTROL_WORDS):
        return "controls"
    if name.startswith("random"):
        return "random"
    if "at init" in tags:
        return "pruning at initialisation"
    if any(word in tag for tag in tags for word in SCHEDULE_WORDS):
        return "schedules"
    if "channel" in tags:
        return "structured (channels)" if name in BY_NAME or name.endswith(("_l1", "_l2", "_fpgm", "_bn_scale",
                                                                               "_taylor")) else "user"
    if any(":" in t and t.replace(":", "").isdigit() for t in tags):
        return "N:M"
    return BY_NAME.get(name, "structured (channels)" if name.endswith(("_l1", "_l2", "_fpgm", "_bn_scale", "_taylor"))
                       else "user")


def group_order(label: str) -> int:
    return GROUPS.index(baseline_group(label))


def display_name(label: str) -> str:
    """A method's name for a reader: a user's `mymethod.py:MagMove [shuffled]` becomes
    `MagMove [shuffled]` (the file is in the run's config, not in a paper's table or legend)."""
    return _FILE_PREFIX.sub("", str(label))


def is_control(label: str) -> bool:
    """Whether `label` names a sanity-check control (shuffled, reinit, inverted, from scratch)."""
    return baseline_group(label) == "controls"
