"""Statistics of the literature corpus: papers per year and venue, how many other corpus
papers each paper compares to, how many results report a trial count or a spread, and the
most used (dataset, architecture) pairs. Writes the figure and the numbers as text
(`lit_corpus_statistics.txt`), and prints the numbers.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from shrinkbench.analysis.files import write_text  # noqa: E402
from shrinkbench.analysis.literature import CorpusStatistics, corpus_statistics, format_statistics, load_papers  # noqa: E402

TOP_VENUES = 5
"""Venues drawn on their own in the per-year bars; the rest are stacked as 'other'."""


def papers_by_year_and_venue(papers: pd.DataFrame) -> pd.DataFrame:
    """Years x venues (the `TOP_VENUES` most frequent, then 'other') of paper counts."""
    top = papers["venue"].value_counts().index[:TOP_VENUES]
    venue = papers["venue"].where(papers["venue"].isin(top), "other")
    table = pd.crosstab(papers["year"], venue)
    return table[[v for v in top if v in table.columns] + (["other"] if "other" in table else [])]


def draw(stats: CorpusStatistics, by_year: pd.DataFrame):
    fig, ((a, b), (c, d)) = plt.subplots(2, 2, figsize=(13, 9))
    bottom = pd.Series(0, index=by_year.index)
    positions = range(len(by_year.index))
    for venue in by_year.columns:
        a.bar(positions, by_year[venue], bottom=bottom, label=venue)
        bottom = bottom + by_year[venue]
    a.set_xticks(list(positions), [str(y) for y in by_year.index])
    a.set_xlabel("year (categories; years without papers omitted)")
    a.set_ylabel("papers")
    a.set_title(f"{stats.n_papers} papers by year and venue")
    a.legend(fontsize=8, frameon=False)

    b.bar(stats.compares_to.index, stats.compares_to.values, color="tab:gray")
    b.set_xticks(range(int(stats.compares_to.index.max()) + 1))
    b.set_xlabel("number of other corpus papers compared to")
    b.set_ylabel("papers")
    b.set_title(f"comparisons: {stats.compares_at_most(0)} papers compare to none, "
                f"{stats.compares_at_most(1)} to at most one", fontsize=10)

    rep = stats.reporting
    kinds = [("trial_count", "a trial count"), ("spread", "a spread (std)"), ("either", "either")]
    width = 0.8 / len(kinds)
    for i, (column, text) in enumerate(kinds):
        shares = 100 * rep[column] / rep["n"]
        bars = c.bar([j + i * width for j in range(len(rep))], shares, width, label=text)
        c.bar_label(bars, [f"{k}/{n}" for k, n in zip(rep[column], rep["n"])], fontsize=7)
    c.set_xticks([j + width for j in range(len(rep))], list(rep.index))
    c.set_ylabel("percent reporting")
    c.set_title("results and papers reporting a trial count or a spread")
    c.legend(fontsize=8, frameon=False)

    pairs = stats.top_pairs.iloc[::-1]
    d.barh([f"{p.dataset} {p.model}" for p in pairs.itertuples()], pairs["papers"],
           color="tab:blue")
    for y, p in enumerate(pairs.itertuples()):
        d.text(p.papers, y, f" {p.papers} papers, {p.results} rows", va="center", fontsize=7)
    d.set_xlim(0, pairs["papers"].max() * 1.35)
    d.set_xlabel("papers using the pair")
    d.set_title(f"most used of {stats.n_pairs} (dataset, architecture) pairs "
                f"({stats.n_datasets} datasets, {stats.n_models} architectures)", fontsize=10)
    fig.suptitle(f"The pruning literature corpus of Blalock et al. (2020): {stats.n_papers} "
                 f"papers and the results {_common.REPORTED}", fontsize=12)
    fig.tight_layout()
    return fig


def make_figures(literature=None, out: Path = _common.DEFAULT_OUT,
                 formats=_common.FORMATS) -> list[Path]:
    stats = corpus_statistics(literature)
    text = format_statistics(stats)
    print(text)
    fig = draw(stats, papers_by_year_and_venue(load_papers(literature)))
    written = _common.save_figure(fig, out, "lit_corpus_statistics", formats)
    return written + [write_text(Path(out) / "lit_corpus_statistics.txt", text + "\n")]


def main(argv=None) -> int:
    args = _common.parser(__doc__.splitlines()[0])
    return _common.run(lambda o: make_figures(o.literature, o.out, o.formats), args, argv)


if __name__ == "__main__":
    sys.exit(main())
