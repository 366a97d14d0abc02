"""One colour per method across every figure the project draws.

A method's colour comes from its CRITERION (the part of a strategy name after its scope:
`global_magnitude` and `layerwise_magnitude` share magnitude's blue, told apart by line style
and marker: global solid with circles, layerwise dashed with squares), from a fixed table for
named methods (SNIP, GraSP, ..., Wanda, SparseGPT), and for any other name (a user's method)
from a stable hash of the name into the remaining colours, so a method never changes colour
between figures whatever else is drawn beside it. Tags (`name [when=init]`) and versions
(`name@1a2b3c`) keep the method's colour.

Contexts that are not methods (two sets of starting weights, a control such as reinit, the
dense model) take colours from `CONTEXT_COLORS`, which no method uses. Colour-blind-safe
Okabe-Ito hues come first.
"""
from __future__ import annotations

import hashlib

DENSE_COLOR = "#111111"
CRITERION_COLORS = {
    "magnitude": "#0072B2", "gradient": "#D55E00", "activation": "#009E73", "random": "#7F7F7F",
    "grasp": "#E69F00", "synflow": "#56B4E9", "lamp": "#8C564B",
    "l1": "#A6761D", "l2": "#3F9FD9", "fpgm": "#CC79A7", "bn_scale": "#BCBD22", "taylor": "#E7298A",
}
NAMED_COLORS = {"snip": "#F0C300", "random_channels": "#7F7F7F", "wanda": "#17BECF", "sparsegpt": "#9467BD", "ria": "#E41A1C",
                "magnitude": "#0072B2", "none": DENSE_COLOR}
"""Methods whose name is not scope_criterion."""
SPARE_COLORS = ("#1F77B4", "#2CA02C", "#FF7F0E", "#E377C2", "#8C8C00", "#00A087", "#A65628", "#4DAF4A",
                "#F781BF", "#984EA3", "#377EB8", "#FF9DA7")
"""Colours hashed to names the tables do not know (distinct from every colour above)."""
CONTEXT_COLORS = ("#332288", "#882255", "#117733", "#999933", "#44AA99", "#661100")
"""For what is not a method: sets of starting weights, controls, reported numbers."""
SCOPES = ("global", "layerwise", "erk", "first_dense")


def base_name(name: str) -> str:
    """`global_magnitude [when=init]@1a2b` -> `global_magnitude`."""
    return name.split(" [", 1)[0].split("@", 1)[0]


def method_color(name: str) -> str:
    """The colour of a method, the same in every figure (see the module docstring)."""
    name = base_name(name)
    if name in NAMED_COLORS:
        return NAMED_COLORS[name]
    for scope in SCOPES:
        if name.startswith(scope + "_") and name[len(scope) + 1:] in CRITERION_COLORS:
            return CRITERION_COLORS[name[len(scope) + 1:]]
    if name in CRITERION_COLORS:
        return CRITERION_COLORS[name]
    digest = int(hashlib.sha256(name.encode()).hexdigest(), 16)
    return SPARE_COLORS[digest % len(SPARE_COLORS)]


TAG_STYLES = {
    "shuffled": (":", "x"), "inverted": ("-.", "v"), "reinit": ((0, (3, 1, 1, 1, 1, 1)), "D"),
    "from scratch": ((0, (6, 2)), "P"), "at init": ((0, (1, 1)), "<"), "gradual": ((0, (4, 1, 1, 1)), "h"),
    "rewinding": ((0, (2, 2)), ">"),
}
"""Line style and marker of a tagged variant (a control, pruning at initialisation, a schedule):
it keeps its method's colour and is told apart from it by these."""
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">", "h", "*", "p")


def method_style(name: str) -> dict:
    """Colour, line style and marker: layerwise (and other per-layer allocations) dashed
    with squares, global and everything else solid with circles; a user's method triangles;
    a tagged variant (`mine.py:Mine [shuffled]`, `snip [at init]`) its method's colour with
    the tag's line style and marker (`TAG_STYLES`)."""
    base = base_name(name)
    known = base in NAMED_COLORS or any(base.startswith(s + "_") for s in SCOPES) or base in CRITERION_COLORS
    per_layer = base.startswith(("layerwise_", "erk_", "first_dense_")) or base == "random"
    marker = "s" if per_layer else ("o" if known else "^")
    style = {"color": method_color(name), "linestyle": "--" if per_layer else "-", "marker": marker}
    tags = name.split(" [", 1)[1].rstrip("]") if " [" in name else ""
    for tag, (linestyle, tag_marker) in TAG_STYLES.items():
        if tag in tags:
            style.update(linestyle=linestyle, marker=tag_marker)
            break
    return style


def method_styles(names) -> dict[str, dict]:
    """`method_style` for each name, made distinct: where two names would be drawn alike
    (colour, line style and marker), the later one (sorted) takes the next free marker."""
    out, seen = {}, set()
    for name in sorted(names):
        style = method_style(name)
        key = (style["color"], str(style["linestyle"]), style["marker"])
        for marker in MARKERS:
            if key not in seen:
                break
            style["marker"] = marker
            key = (style["color"], str(style["linestyle"]), marker)
        seen.add(key)
        out[name] = style
    return out


def context_colors(names) -> dict[str, str]:
    """Colours for non-method contexts in their given order (weights A, weights B, ...)."""
    return {name: CONTEXT_COLORS[i % len(CONTEXT_COLORS)] for i, name in enumerate(names)}
