"""What the paper figure scripts share: arguments, log2 ratio axes, styles, atomic saving.

Each script is run as `python paper_figures/<script>.py [--literature PATH] [--out DIR]`
or imported and called as `main(argv)`; a user mistake (a missing corpus, say) prints one
line to stderr and returns exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `analysis` importable
    sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from shrinkbench.analysis.errors import AnalysisError  # noqa: E402
from shrinkbench.analysis.files import write_atomic  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "figures"
FORMATS = ("png", "pdf")
REPORTED = "reported by the papers"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*", "d", "8")
COLORS = plt.get_cmap("tab20").colors + plt.get_cmap("tab20b").colors
"""40 distinct colours: every method of a literature figure (29 at most) has its own."""


def parser(description: str) -> argparse.ArgumentParser:
    """The arguments every figure script takes."""
    args = argparse.ArgumentParser(description=description)
    args.add_argument("--literature", metavar="PATH", default=None,
                      help="the literature corpus folder (default: $SHRINKBENCH_LITERATURE, "
                           "then the copy shipped with the package)")
    args.add_argument("--out", metavar="DIR", type=Path, default=DEFAULT_OUT,
                      help=f"folder the figures are written to (default: {DEFAULT_OUT})")
    args.add_argument("--formats", nargs="+", default=list(FORMATS), choices=("png", "pdf", "svg"),
                      help="file formats to write (default: png pdf)")
    return args


def run(body: Callable[[argparse.Namespace], list[Path]], args: argparse.ArgumentParser,
        argv: Sequence[str] | None) -> int:
    """Parse `argv`, call `body`, print each file written; a user error prints one line
    and gives exit status 2."""
    options = args.parse_args(argv)
    try:
        written = body(options)
    except AnalysisError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


def suite_figure_main(description: str, repo: Path, model: str, suite: str, figure: str, make_figure,
                      argv: Sequence[str] | None, store: str | None = None) -> int:
    """The command line of a figure drawn from one shipped suite's runs: `--store`, `--out`,
    `--model`, and `--rerun` (run the suite's missing runs first); prints the findings' summary
    and each file written. `make_figure(store, out, model=...)` -> (files, summary)."""
    parser = store_parser(description, repo, model)
    if store is not None:
        parser.set_defaults(store=store)
    parser.add_argument("--rerun", action="store_true", help=f"run the missing runs of {suite} first")

    def body(args) -> list[Path]:
        if args.rerun:
            from shrinkbench.cli import main as cli

            if cli(["run", suite, "--store", args.store, "--quiet"]) != 0:
                raise AnalysisError(f"{figure}: the sweep of {suite} did not complete")
        files, summary = make_figure(Path(args.store), Path(args.out), model=args.model)
        print(summary)
        return files

    return run(body, parser, argv)


def save_figure(fig, out_dir: Path, stem: str, formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write `fig` as `<out_dir>/<stem>.<format>` for each format (atomically) and close it."""
    written = []
    for fmt in formats:
        path = Path(out_dir) / f"{stem}.{fmt}"
        written.append(write_atomic(path, lambda tmp, fmt=fmt: fig.savefig(
            tmp, format=fmt, dpi=150, bbox_inches="tight")))
    plt.close(fig)
    return written


def ratio_axis(ax, label: str) -> None:
    """A log2 x axis for compression ratios and speedups, ticks written as 1x, 2x, 4x, ..."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(LogLocator(base=2))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}x"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(label)


def styles(labels: Iterable[str]) -> dict[str, dict]:
    """One (color, marker) per label, stable for a given sorted set of labels."""
    return {label: {"color": COLORS[i % len(COLORS)], "marker": MARKERS[i % len(MARKERS)]}
            for i, label in enumerate(sorted(set(labels)))}


def spread_labels(ax, labels, fontsize: float = 6.5, gap: float = 1.25, dx: float = 4.0) -> list:
    """Annotate points with text that does not overlap: `labels` are (x, y, text, color) in
    data coordinates. Labels are placed right of their points; in each column of labels
    closer in x than a label's width, they are sorted by height and pushed apart to at least
    `gap` line heights (in points, at the figure's dpi), keeping their mean height; a label
    moved more than half a line gets a thin leader line to its point. Returns the texts."""
    import numpy as np

    if not labels:
        return []
    fig = ax.figure
    fig.canvas.draw_idle()
    to_px = ax.transData.transform
    px = np.array([to_px((x, y)) for x, y, _, _ in labels])
    per_pt = fig.dpi / 72.0
    height, char = gap * fontsize * per_pt, 0.55 * fontsize * per_pt
    order = np.argsort(px[:, 0])
    columns: list[list[int]] = []
    for i in order:  # group labels whose text would overlap horizontally
        width = char * len(labels[i][2])
        if columns and px[i, 0] - px[columns[-1][0], 0] < width:
            columns[-1].append(i)
        else:
            columns.append([i])
    placed = px[:, 1].copy()
    for members in columns:
        members = sorted(members, key=lambda i: px[i, 1])
        ys = [px[i, 1] for i in members]
        for k in range(1, len(ys)):  # push up until every neighbour is a line apart
            ys[k] = max(ys[k], ys[k - 1] + height)
        shift = np.mean([px[i, 1] for i in members]) - np.mean(ys)  # keep the column centred
        for i, y in zip(members, ys):
            placed[i] = y + shift
    texts = []
    for i, (x, y, text, color) in enumerate(labels):
        offset = (placed[i] - px[i, 1]) / per_pt
        arrow = {"arrowstyle": "-", "color": color, "linewidth": 0.5, "alpha": 0.6} if abs(offset) > fontsize / 2 else None
        texts.append(ax.annotate(text, (x, y), xytext=(dx, offset - fontsize / 2), textcoords="offset points",
                                 fontsize=fontsize, color=color, va="bottom", arrowprops=arrow))
    return texts


def slug(text: str) -> str:
    """'AlexNet/CaffeNet' -> 'alexnet-caffenet': a file-name-safe lower-case stem."""
    out = "".join(c.lower() if c.isalnum() else "-" for c in text)
    return "-".join(part for part in out.split("-") if part)


def shown_path(path) -> str:
    """`path` relative to the repository where it lies inside it, else its last two parts:
    the project's files never name a machine's absolute paths."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(Path(*path.parts[-2:]))


def figure_with_findings(fig, summary: str, details: str, out: Path, stem: str,
                         formats: Iterable[str] = FORMATS) -> list[Path]:
    """Save `fig` and write `<stem>_findings.md` (the summary, then the details) beside it."""
    files = save_figure(fig, out, stem, formats)
    path = Path(out) / f"{stem}_findings.md"
    path.write_text(summary + "\n\n" + details + "\n", encoding="utf-8")
    return files + [path]


def store_parser(description: str, repo: Path, model: str) -> argparse.ArgumentParser:
    """The arguments of a figure drawn from one store's runs of one model."""
    args = argparse.ArgumentParser(description=description)
    args.add_argument("--store", default=str(repo / "results" / "reference"))
    args.add_argument("--out", default=str(repo / "paper_figures" / "figures"))
    args.add_argument("--model", default=model, help=f"the model whose runs are drawn (default {model})")
    return args
