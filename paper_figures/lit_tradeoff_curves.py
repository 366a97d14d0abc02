"""Reported tradeoff curves: change in top-1 and top-5 accuracy (pruned minus the paper's own
dense model, in points) against compression ratio and theoretical speedup, for the
(dataset, architecture) pairs the literature reports most. One figure per pair: a row of
panels per accuracy the pair's papers report (CIFAR-10 papers give no top-5), a column per
ratio; one marker and colour per method (paper, and variant where the paper names one);
error bars (+-1 std of the pruned model's top-1) where a paper reports one.

The numbers are the papers' own (`source = "reported"`), normalised by
`analysis.literature`; no result reproduced by this toolkit is drawn here.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from shrinkbench.analysis.literature import load_results  # noqa: E402

PAIRS = (("ImageNet", "VGG-16"), ("ImageNet", "ResNet-50"), ("ImageNet", "AlexNet/CaffeNet"),
         ("CIFAR-10", "ResNet-56"))
"""(dataset, model group); AlexNet and CaffeNet share a group and keep their own labels."""
ACCURACIES = ("delta_top1", "delta_top5")
RATIOS = ("compression_ratio", "theoretical_speedup")
DENSE = "dense model (each paper's own)"
AXIS_LABELS = {"delta_top1": "change in top-1 accuracy (points)",
               "delta_top5": "change in top-5 accuracy (points)",
               "compression_ratio": "compression ratio (dense params / pruned params)",
               "theoretical_speedup": "theoretical speedup (dense FLOPs / pruned FLOPs)"}


def pair_rows(rows: pd.DataFrame, dataset: str, group: str) -> pd.DataFrame:
    """The results of one pair, labelled by method; the model is named in the label where
    a group holds several models, and non-pruning papers (low-rank methods) are marked."""
    sub = rows[(rows["dataset"] == dataset) & (rows["model_group"] == group)].copy()
    label = sub["label"]
    if sub["model"].nunique() > 1:
        label = label + " [" + sub["model"] + "]"
    sub["legend"] = label.where(~sub["non_pruning"], label + " (not pruning)")
    return sub


def draw_pair(sub: pd.DataFrame, title: str):
    """One row of panels per accuracy the pair reports (top-1, top-5), one column per
    ratio; returns (figure, number of points drawn)."""
    style = _common.styles(sub["legend"])
    accuracies = [y for y in ACCURACIES if sub[y].notna().any()] or list(ACCURACIES[:1])
    fig, axes = plt.subplots(len(accuracies), 2, figsize=(12, 1.0 + 3.75 * len(accuracies)),
                             sharey="row", squeeze=False)
    drawn = 0
    for ax, (y, x) in zip(axes.flat, [(y, x) for y in accuracies for x in RATIOS]):
        points = sub.dropna(subset=[x, y])
        for legend, curve in points.sort_values(x).groupby("legend", sort=True):
            if len(curve) > 1:  # a thin line joins one method's points in x order
                ax.plot(curve[x], curve[y], linewidth=0.8, alpha=0.45, color=style[legend]["color"])
            ax.plot(curve[x], curve[y], linestyle="none", markersize=6, alpha=0.9, label=legend,
                    **style[legend])
            spread = curve[curve["std_top1"].notna()] if y == "delta_top1" else curve.iloc[:0]
            ax.errorbar(spread[x], spread[y], yerr=spread["std_top1"], fmt="none", capsize=2,
                        linewidth=0.8, ecolor=style[legend]["color"])
        drawn += len(points)
        ax.axhline(0.0, color="0.4", linewidth=0.8, linestyle="--")
        ax.plot([1.0], [0.0], marker="*", color="black", markersize=11, linestyle="none",
                label=DENSE)
        _common.ratio_axis(ax, AXIS_LABELS[x])
        ax.set_ylabel(AXIS_LABELS[y])
        ax.grid(True, which="major", alpha=0.3)
        if points.empty:
            ax.text(0.5, 0.5, "no reported results", transform=ax.transAxes, ha="center",
                    va="center", color="0.4")
            ax.set_ylim(-1.0, 1.0)
        ax.set_title(f"{len(points)} results, {points['paper'].nunique()} papers", fontsize=9)
    handles = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    order = [DENSE] + sorted((k for k in handles if k != DENSE), key=str.lower)
    fig.legend([handles[k] for k in order], order, loc="center left", bbox_to_anchor=(1.0, 0.5),
               fontsize=8, frameon=False, title="method (paper)", title_fontsize=9)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig, drawn


def make_figures(literature=None, out: Path = _common.DEFAULT_OUT,
                 formats=_common.FORMATS) -> list[Path]:
    results = load_results(literature)
    written = []
    for dataset, group in PAIRS:
        sub = pair_rows(results.rows, dataset, group)
        title = (f"{dataset} {group}: accuracy change vs. compression and speedup, "
                 f"{_common.REPORTED}")
        fig, drawn = draw_pair(sub, title)
        print(f"{dataset} {group}: {len(sub)} results from {sub['paper'].nunique()} papers "
              f"({drawn} points over all panels)")
        written += _common.save_figure(fig, out, f"lit_tradeoff_{_common.slug(dataset)}_"
                                                 f"{_common.slug(group)}", formats)
    print(f"input rows: {results.n_input}, used: {len(results.rows)}, skipped: "
          + ", ".join(f"{n} {reason}" for reason, n in results.skipped_counts().items()))
    return written


def main(argv=None) -> int:
    args = _common.parser(__doc__.splitlines()[0])
    return _common.run(lambda o: make_figures(o.literature, o.out, o.formats), args, argv)


if __name__ == "__main__":
    sys.exit(main())
