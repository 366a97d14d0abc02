"""Pruned models against efficient architectures on ImageNet: top-1 accuracy against
parameters and against multiply-accumulates (MACs), as reported by the papers.

Dense architectures (lines): EfficientNet-B0..B7 from the EfficientNet paper's table
(multiply-adds); ResNet, VGG and MobileNetV2 from the pytorch-pretrained table (MACs of the
convolutions). Pruned models (hollow markers, in the colour of their family): the paper's
own top-1 (or its dense top-1 plus its reported change), placed at the dense model's count
from the same pytorch-pretrained table divided by the paper's compression ratio (params) or
theoretical speedup (MACs), so every point on one axis uses one counting convention.

Also writes `lit_efficient_architectures.txt`: on each axis, how many pruned results lie
above the dense curve of their own family and above the EfficientNet curve (each curve
interpolated linearly in log count; a result outside a curve's range is not compared).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from shrinkbench.analysis.files import write_text  # noqa: E402
from shrinkbench.analysis.literature import architecture_family, load_architectures, load_results  # noqa: E402

FAMILIES = {"EfficientNet": "efficientnet/efficientnet-models-summary.csv",
            "MobileNetV2": "pytorch-pretrained/ModelsComparison.csv",
            "ResNet": "pytorch-pretrained/ModelsComparison.csv",
            "VGG": "pytorch-pretrained/ModelsComparison.csv"}
"""Family -> the summary its dense points (and its pruned models' reference counts) come from."""
FAMILY_COLORS = {"EfficientNet": "tab:green", "MobileNetV2": "tab:purple", "ResNet": "tab:blue",
                 "VGG": "tab:red"}
PRUNED_MARKERS = ("o", "s", "^", "v", "D", "P", "<", ">")
AXES = (("params", "compression_ratio", 1e6, "parameters (millions)"),
        ("macs", "theoretical_speedup", 1e9, "multiply-accumulates per image (billions)"))


def dense_architectures(archs: pd.DataFrame) -> pd.DataFrame:
    """The dense members of each plotted family, from that family's summary file."""
    keep = [(archs["family"] == f) & (archs["origin"] == o) for f, o in FAMILIES.items()]
    return archs[pd.concat(keep, axis=1).any(axis=1)]


def pruned_points(rows: pd.DataFrame, dense: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """ImageNet results of models in a plotted family with an absolute top-1, placed at
    reference params / compression ratio and reference MACs / speedup; also the counts
    of results left out and why."""
    imagenet = rows[(rows["dataset"] == "ImageNet")].copy()
    imagenet["family"] = imagenet["model"].map(architecture_family)
    candidates = imagenet[imagenet["family"].isin(list(FAMILIES))]
    reference = dense.drop_duplicates("name").set_index("name")
    has_ref = candidates["model"].isin(reference.index)
    has_top1 = candidates["top1"].notna()
    left_out = {"no dense reference counts for the model": int((~has_ref).sum()),
                "no absolute top-1 (change only)": int((has_ref & ~has_top1).sum())}
    points = candidates[has_ref & has_top1].copy()
    for size, ratio, _, _ in AXES:
        points[size] = points["model"].map(reference[size]) / points[ratio]
    return points, left_out


def above_curve(x, y, curve_x, curve_y) -> tuple[int, int]:
    """(results above the curve, results inside its x range): the curve is linear in log x."""
    order = np.argsort(curve_x)
    cx, cy = np.log(np.asarray(curve_x, float)[order]), np.asarray(curve_y, float)[order]
    lx, y = np.log(np.asarray(x, float)), np.asarray(y, float)
    inside = (lx >= cx[0]) & (lx <= cx[-1]) & np.isfinite(y) if len(cx) > 1 else np.zeros(len(lx), bool)
    return int((y[inside] > np.interp(lx[inside], cx, cy)).sum()), int(inside.sum())


def frontier_counts(dense: pd.DataFrame, points: pd.DataFrame) -> str:
    """Per axis: pruned results above their own family's dense curve, and above EfficientNet's."""
    lines = []
    for size, _, scale, label in AXES:
        shown = points.dropna(subset=[size])
        own_above = own_inside = 0
        for family, group in shown.groupby("family"):
            members = dense[(dense["family"] == family)].dropna(subset=[size])
            above, inside = above_curve(group[size], group["top1"], members[size], members["top1"])
            own_above, own_inside = own_above + above, own_inside + inside
        effnet = dense[dense["family"] == "EfficientNet"].dropna(subset=[size])
        eff_above, eff_inside = above_curve(shown[size], shown["top1"], effnet[size], effnet["top1"])
        lines.append(f"{label}: {len(shown)} pruned results; above the dense curve of their own family: "
                     f"{own_above} of the {own_inside} inside its range; above the EfficientNet curve "
                     f"(B0-B7, {effnet[size].min() / scale:.3g}-{effnet[size].max() / scale:.3g}): "
                     f"{eff_above} of the {eff_inside} inside its range")
    return "\n".join(lines)


def draw(dense: pd.DataFrame, points: pd.DataFrame):
    fig, axes = plt.subplots(1, 2, figsize=(14, 6), sharey=True)
    markers = {m: PRUNED_MARKERS[i % len(PRUNED_MARKERS)]
               for i, m in enumerate(sorted(points["model"].unique()))}
    for ax, (size, ratio, scale, label) in zip(axes, AXES):
        names = []
        for family, members in dense.dropna(subset=[size]).groupby("family"):
            members = members.sort_values(size)
            color = FAMILY_COLORS[family]
            ax.plot(members[size] / scale, members["top1"], "-o", color=color, linewidth=1.8,
                    markersize=6, label=f"{family} (dense architectures)", zorder=3)
            names += [(getattr(m, size) / scale, m.top1, m.name, color) for m in members.itertuples()]
        shown = points.dropna(subset=[size])
        for model, group in shown.groupby("model"):
            ax.plot(group[size] / scale, group["top1"], linestyle="none", marker=markers[model],
                    markerfacecolor="none", markeredgewidth=1.1, markersize=6.5, alpha=0.85,
                    color=FAMILY_COLORS[group["family"].iloc[0]], label=f"pruned {model}")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.autoscale_view()
        _common.spread_labels(ax, names)  # after the axes are scaled: labels never overlap
        ax.set_xlabel(f"{label}\npruned: dense count / reported "
                      f"{ratio.replace('_', ' ')}")
        ax.grid(True, which="both", alpha=0.25)
        ax.set_title(f"{len(shown)} pruned results from {shown['paper'].nunique()} papers",
                     fontsize=9)
    axes[0].set_ylabel("ImageNet top-1 accuracy (%)")
    handles = {}
    for ax in axes:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(text, handle)
    fig.legend(handles.values(), handles.keys(), loc="center left", bbox_to_anchor=(1.0, 0.5),
               fontsize=8, frameon=False)
    fig.suptitle(f"ImageNet: pruned models vs. efficient architectures, {_common.REPORTED}",
                 fontsize=12)
    fig.tight_layout()
    return fig


def make_figures(literature=None, out: Path = _common.DEFAULT_OUT,
                 formats=_common.FORMATS) -> list[Path]:
    dense = dense_architectures(load_architectures(literature))
    points, left_out = pruned_points(load_results(literature).rows, dense)
    fig = draw(dense, points)
    print(f"dense architectures: {len(dense)}; pruned ImageNet results drawn: {len(points)} "
          f"({', '.join(f'{n} {m}' for m, n in points['model'].value_counts().items())}); "
          f"left out: " + ", ".join(f"{n} {why}" for why, n in left_out.items()))
    counts = frontier_counts(dense, points)
    print(counts)
    written = _common.save_figure(fig, out, "lit_efficient_architectures", formats)
    return written + [write_text(Path(out) / "lit_efficient_architectures.txt", counts + "\n")]


def main(argv=None) -> int:
    args = _common.parser(__doc__.splitlines()[0])
    return _common.run(lambda o: make_figures(o.literature, o.out, o.formats), args, argv)


if __name__ == "__main__":
    sys.exit(main())
