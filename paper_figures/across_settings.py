"""Which method is best across settings, on the reference store: the settings (model x dataset x
target compression) are the units; the methods those settings all measured are ranked
(`shrinkbench.analysis.across`): a critical-difference diagram, and the IQM and performance
profiles of the difference to the dense model with stratified bootstrap intervals.

    python paper_figures/across_settings.py [--store DIR] [--out DIR]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
import _runs  # noqa: E402

import numpy as np  # noqa: E402

from shrinkbench.analysis.across import across  # noqa: E402
from shrinkbench.analysis.across_plots import cd_figure, distribution_figure  # noqa: E402
from shrinkbench.analysis.across_report import DEFAULT_KEYS, friedman_line  # noqa: E402
from shrinkbench.analysis.curves import save_figure  # noqa: E402
from shrinkbench.analysis.load import load_table  # noqa: E402
from shrinkbench.analysis.options import AnalysisOptions  # noqa: E402
from shrinkbench.analysis.runs import run_table  # noqa: E402

FIGURE = "across_settings"
OPTIONS = AnalysisOptions()


def findings(result) -> str:
    """The generated block: the block of methods and settings, the tests, the verdicts, and a reading."""
    counts = result.pairs["decision"].value_counts()
    told = result.pairs[result.pairs["nemenyi"] == "differ"]
    lines = [f"Block: {len(result.methods)} methods measured in all of {result.n_settings} settings "
             f"({' x '.join(result.keys)}: {', '.join(result.values.index)}); {len(result.dropped)} other methods "
             "were not measured in all of them.", "",
             "- mean ranks (1 = best): " + ", ".join(f"{m} {r:.2f}" for m, r in zip(result.methods, result.ranks)),
             f"- {friedman_line(result)}",
             f"- verdicts (family: {result.verdict_family}, m = {len(result.pairs)}): "
             + ", ".join(f"{counts.get(d, 0)} {d}" for d in ("better", "equivalent", "worse", "inconclusive")),
             f"- Nemenyi tells apart: " + ("; ".join(f"{r.method} ahead of {r.baseline} (rank difference "
                                                     f"{r.rank_difference:.2f})" for r in told.itertuples()) or "none")]
    if result.iqm is not None:
        lines.append("- IQM of the difference to dense (points, 95% stratified bootstrap): " + ", ".join(
            f"{r.method} {r.iqm:+.2f} [{r.low:+.2f}, {r.high:+.2f}]" for r in result.iqm.itertuples()))
    lines += [f"- note: {n}" for n in result.notes]
    wide = result.pairs[(result.pairs["decision"] == "inconclusive") & (result.pairs["nemenyi"] == "differ")]
    first = "first in every setting" if result.ranks[0] == 1.0 else f"first on average (mean rank {result.ranks[0]:.2f})"
    reading = f"**Reading (generated).** {result.methods[0]} ranks {first}. "
    if len(wide):
        gaps = np.concatenate([(result.values[r.method] - result.values[r.baseline]).to_numpy() for r in wide.itertuples()])
        reading += (f"Ranks separate {len(told)} pair(s), yet the mean-difference verdict of {len(wide)} of them is "
                    f"inconclusive: their per-setting gaps range from {gaps.min():+.2f} to {gaps.max():+.2f} points, "
                    "so the mean gap over these few settings is uncertain even where its sign never changes. ")
    reading += ("These settings are ratios of one model on one dataset, so the ranking speaks for that model; "
                "a claim across networks needs the settings to be models.")
    return "\n".join(lines + ["", reading])


def make_figure(store: Path, out: Path, formats=_common.FORMATS) -> tuple[list[Path], str]:
    scan = load_table(str(store), None)
    result = across(run_table(scan.table, OPTIONS), DEFAULT_KEYS, OPTIONS, rng=np.random.default_rng(OPTIONS.seed))
    files = save_figure(cd_figure(result), Path(out) / FIGURE, formats)
    if result.iqm is not None:
        files += save_figure(distribution_figure(result), Path(out) / f"{FIGURE}_iqm", formats)
    return files, findings(result)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=_runs.REFERENCE_STORE)
    parser.add_argument("--out", type=Path, default=_common.DEFAULT_OUT)
    args = parser.parse_args(argv)
    files, block = make_figure(args.store, args.out)
    print(block)
    for path in files:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
