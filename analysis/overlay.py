"""Reproduced against reported: what the literature corpus reports for a (dataset, model,
method), and our runs' curve drawn over the reported points (`shrinkbench literature`).

Zoo and corpus name things differently; the mapping is written down here and nowhere else:

    zoo dataset    corpus        zoo model                 corpus model
    mnist          MNIST         lenet_300_100             LeNet-300-100
    cifar10        CIFAR-10      lenet5_caffe              LeNet-5
    cifar100       CIFAR-100     cifar_resnet{20..110}     ResNet-{20..110} (on CIFAR)
    imagenet       ImageNet      cifar_resnet18            ResNet-18 (on CIFAR)
                                 cifar_vgg16_bn,           VGG-16 (on CIFAR), and the corpus'
                                 cifar100_vgg16_bn         VGG-Torch-CIFAR10 (Zagoruyko's VGG)
                                 imagenet_resnet18/50      ResNet-18 / ResNet-50
                                 imagenet_vgg16            VGG-16
                                 imagenet_alexnet          AlexNet and CaffeNet
                                 imagenet_mobilenet_v2     MobileNet-v2

Fashion-MNIST and the `_1x28x28` variants have no counterpart in the corpus (no paper of it
reports them); asking for them says so. The points compared are the change in top-1 against
each paper's own dense model (`delta_top1`, points) at its compression ratio or speedup,
because absolute accuracies differ with every paper's training recipe; ours are the
per-unit differences to the dense run of the same base weights, mean and Student-t interval.
"""
from __future__ import annotations

import re

import pandas as pd

from shrinkbench.analysis.errors import AnalysisError

DATASETS = {"mnist": ("MNIST",), "cifar10": ("CIFAR-10",), "cifar100": ("CIFAR-100",), "imagenet": ("ImageNet",)}
MODELS = {
    "lenet_300_100": ("LeNet-300-100",), "lenet5_caffe": ("LeNet-5",),
    **{f"cifar_resnet{d}": (f"ResNet-{d}",) for d in (20, 32, 44, 56, 110)},
    "cifar_resnet18": ("ResNet-18",), "cifar_vgg16_bn": ("VGG-16", "VGG-Torch-CIFAR10"),
    "cifar100_vgg16_bn": ("VGG-16", "VGG-Torch-CIFAR10"),
    "imagenet_resnet18": ("ResNet-18",), "imagenet_resnet50": ("ResNet-50",), "imagenet_vgg16": ("VGG-16",),
    "imagenet_alexnet": ("AlexNet", "CaffeNet"), "imagenet_mobilenet_v2": ("MobileNet-v2",),
}
AXES = {"compression": "compression_ratio", "speedup": "theoretical_speedup"}
REPORTED_COLUMNS = ["label", "dataset", "model", "compression_ratio", "theoretical_speedup", "top1", "orig_top1",
                    "delta_top1", "num_trials", "std_top1"]


def corpus_names(kind: str, name: str) -> tuple[str, ...]:
    """The corpus' names of a zoo dataset or model; a corpus name is accepted as itself."""
    table = DATASETS if kind == "dataset" else MODELS
    if name in table:
        return table[name]
    known = {n for names in table.values() for n in names}
    if name in known:
        return (name,)
    raise AnalysisError(f"the literature corpus has no {kind} matching {name!r} (none of its papers reports one); "
                        f"the {kind}s it maps are: "
                        f"{', '.join(sorted(table))} (or corpus names: {', '.join(sorted(known))})")


def reported_results(rows: pd.DataFrame, dataset: str, model: str, method: str | None = None) -> pd.DataFrame:
    """The corpus rows (`analysis.literature.load_results(...).rows`) of one zoo (or corpus)
    dataset and model, optionally those whose "paper (method)" label contains `method`
    (case-insensitive), sorted by compression."""
    datasets, models = corpus_names("dataset", dataset), corpus_names("model", model)
    chosen = rows[rows["dataset"].isin(datasets) & rows["model"].isin(models)]
    if method:
        chosen = chosen[chosen["label"].str.contains(re.escape(method), case=False, regex=True)]
    return chosen.sort_values(["compression_ratio", "theoretical_speedup", "label"])[REPORTED_COLUMNS].reset_index(drop=True)


def reported_table(reported: pd.DataFrame):
    """The reported results as a `Table` (terminal, Markdown)."""
    from shrinkbench.analysis.render import Table, fmt

    body = [[r.label, r.model, fmt(r.compression_ratio) + "×" if pd.notna(r.compression_ratio) else "–",
             fmt(r.theoretical_speedup) + "×" if pd.notna(r.theoretical_speedup) else "–", fmt(r.top1),
             fmt(r.orig_top1), (f"{r.delta_top1:+.2f}" if pd.notna(r.delta_top1) else "–"),
             str(r.num_trials) if pd.notna(r.num_trials) else "–"] for r in reported.itertuples()]
    return Table("Reported by the papers (literature corpus)", ["Paper (method)", "Model", "Params ↓", "FLOPs ↓",
                 "top1 (%)", "dense top1", "Δ top1", "trials"], body, ["l", "l", "r", "r", "r", "r", "r", "r"],
                 "As the papers report them: each against its own dense model and training recipe.")


def overlay_figure(reported: pd.DataFrame, points: pd.DataFrame | None, axis: str, title: str):
    """Δ top-1 against the ratio `axis`: reported points (hollow, one marker per paper),
    our operating points (filled, mean with its interval, a line per method) labelled
    'reproduced'. `points`: `analysis.bands.curve_points` of our runs, or None."""
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from shrinkbench.analysis.palette import CONTEXT_COLORS, method_style
    from shrinkbench.analysis.schema import DENSE_STRATEGY

    column = AXES[axis]
    fig = Figure(figsize=(9.5, 5.2))
    ax = fig.subplots()
    shown = reported.dropna(subset=[column, "delta_top1"])
    markers = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*")
    for i, (label, group) in enumerate(shown.groupby("label", sort=True)):
        ax.plot(group[column], group["delta_top1"], linestyle="none", marker=markers[i % len(markers)],
                markerfacecolor="none", markeredgewidth=1.2, markersize=7, color=CONTEXT_COLORS[i % len(CONTEXT_COLORS)],
                label=f"reported: {label}")
    if points is not None:
        ours = points[points["strategy"] != DENSE_STRATEGY].dropna(subset=[column, "delta_mean"])
        for strategy, curve in ours.groupby("strategy", sort=True):
            curve = curve.sort_values(column)
            style = method_style(strategy)
            err = np.vstack([curve["delta_mean"] - curve["delta_low"], curve["delta_high"] - curve["delta_mean"]])
            ax.errorbar(curve[column], curve["delta_mean"], yerr=np.nan_to_num(err), color=style["color"],
                        linestyle=style["linestyle"], marker=style["marker"], markersize=5, capsize=2,
                        label=f"reproduced: {strategy} (ours, mean, 95% CI)")
    ax.axhline(0.0, color="0.4", linewidth=0.8, linestyle=":")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(LogLocator(base=2))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel({"compression": "compression ratio (params / nonzero params)",
                   "speedup": "theoretical speedup (FLOPs / nonzero FLOPs)"}[axis])
    ax.set_ylabel("change in top-1 vs own dense (points)")
    ax.grid(True, alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.subplots_adjust(left=0.09, right=0.6, bottom=0.12, top=0.9)
    return fig
