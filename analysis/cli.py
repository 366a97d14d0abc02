"""Command line of the analysis: `report`, `compare`, `rank`, `plan-seeds` and `results`.

`register(subparsers)` adds the subcommands to an argparse subparsers object (the main
`shrinkbench` CLI calls it, then `args.func(args)`); `main(argv)` runs them standalone as
`python -m shrinkbench.analysis`. Bad input raises `AnalysisError`, which `main` prints as one line
before exiting with status 2.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from shrinkbench.analysis.errors import AnalysisError, StoreWarning
from shrinkbench.analysis.options import DIRECTIONS, INTERVALS, AnalysisOptions
from shrinkbench.analysis.schema import SPLITS, STAGES

if TYPE_CHECKING:  # pragma: no cover
    from shrinkbench.analysis.load import StoreScan

# numpy, pandas and scipy are imported by the commands that need them, not to build --help


def _source_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--store", default="results", metavar="DIR",
                        help="result store to read (<DIR>/runs/*.json; default: results)")
    source.add_argument("--csv", metavar="FILE", help="read an exported tidy CSV instead of a store")


def _option_arguments(parser: argparse.ArgumentParser) -> None:
    d = AnalysisOptions()
    group = parser.add_argument_group("statistics")
    group.add_argument("--metric", default="auto",
                       help="response metric (default auto: top1 where the runs have it, else perplexity, the "
                            "language-model track's)")
    group.add_argument("--stage", default=d.stage, choices=STAGES, help=f"default: {d.stage}")
    group.add_argument("--split", default=d.split, choices=SPLITS, help=f"default: {d.split}")
    group.add_argument("--alpha", type=float, default=d.alpha, help=f"significance level (default: {d.alpha})")
    group.add_argument("--confidence", type=float, default=d.confidence,
                       help=f"interval level (default: {d.confidence})")
    group.add_argument("--rope", type=float, default=d.rope,
                       help=f"region of practical equivalence, ± accuracy points (default: {d.rope})")
    group.add_argument("--power", type=float, default=d.power, help=f"target power (default: {d.power})")
    group.add_argument("--direction", default=d.direction, choices=DIRECTIONS,
                       help="which way the response is better: auto (the metrics registry's), higher or lower")
    group.add_argument("--interval", default=d.interval, choices=INTERVALS,
                       help="curve bands: Student-t or bootstrap over whole seeds (default: t)")
    group.add_argument("--n-boot", type=int, default=d.n_boot, help=f"bootstrap resamples (default: {d.n_boot})")
    group.add_argument("--across-protocols", action="store_true",
                       help="analyse language-model runs of different protocol presets together, with a warning "
                            "(without it such a store is refused, naming the settings that differ)")
    group.add_argument("--resample-seed", "--seed", dest="seed", type=int, default=d.seed,
                       help="seed of the numpy Generator every resampler (bootstrap) uses; not a run seed (default: 0)")


def _output_arguments(parser: argparse.ArgumentParser, formats: tuple[str, ...], out: str, out_help: str,
                      what: str = "") -> None:
    parser.add_argument("--format", choices=formats, default=formats[0],
                        help=f"what to print{': ' + what if what else ''} (default: {formats[0]})")
    parser.add_argument("--out", metavar=out, help=out_help)


def response_metric(requested: str, table) -> str:
    """`auto`: `top1` where the table has it (vision runs), else `perplexity` (LLM runs)."""
    if requested != "auto":
        return requested
    metrics = set(table["metric"].unique()) if table is not None and len(table) else set()
    return "top1" if "top1" in metrics or "perplexity" not in metrics else "perplexity"


def options_from(args: argparse.Namespace, table=None) -> AnalysisOptions:
    return AnalysisOptions(metric=response_metric(args.metric, table), stage=args.stage, split=args.split, alpha=args.alpha,
                           confidence=args.confidence, rope=args.rope, power=args.power, direction=args.direction,
                           interval=args.interval, n_boot=args.n_boot, seed=args.seed,
                           across_protocols=getattr(args, "across_protocols", False))


def load(args: argparse.Namespace) -> "StoreScan":
    """Read the source (skipped record files are warned about, see `reporting_warnings`)."""
    from shrinkbench.analysis.load import load_table

    return load_table(args.store, args.csv)


def reporting_warnings(command):
    """Run `command(args)` with every StoreWarning it raises (a skipped or stray record file,
    a NaN metric, a method stored in several versions) printed on stderr, one line each."""
    import functools

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", StoreWarning)
            status = command(args)  # an error is its own one line: the warnings behind it stay unsaid
            said = set()
            for warning in caught:
                text = str(warning.message)
                if issubclass(warning.category, StoreWarning) and text not in said:
                    said.add(text)
                    print(f"warning: {text}", file=sys.stderr)
        return status
    return run


def _emit(text: str, out: str | None) -> None:
    from shrinkbench.analysis.files import write_text

    if out:
        write_text(out, text)
    else:
        sys.stdout.write(text)


@reporting_warnings
def cmd_results(args: argparse.Namespace) -> int:
    from shrinkbench.analysis.files import check_output, frame_records, to_json, write_atomic

    if args.out:
        check_output(args.out, "file")
    if args.csv is not None:  # a CSV is already in memory-sized pieces; re-export it whole
        table = load(args).table
        _emit(table.to_csv(index=False) if args.format == "csv" else to_json(frame_records(table)), args.out)
        return 0
    from shrinkbench.analysis.load import stream_export

    if args.out:  # streamed into a temporary file, moved into place when complete
        def write(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8", newline="") as handle:
                stream_export(args.store, handle, args.format)

        write_atomic(args.out, write)
    else:
        stream_export(args.store, sys.stdout, args.format)
    return 0


@reporting_warnings
def cmd_compare(args: argparse.Namespace) -> int:
    from shrinkbench.analysis.files import to_json
    from shrinkbench.analysis.compare import compare_method
    from shrinkbench.analysis.pareto import pareto_labels
    from shrinkbench.analysis.ties import tie_warnings
    from shrinkbench.analysis.report import write_significance
    from shrinkbench.analysis.runs import failed_runs, run_table
    from shrinkbench.analysis.significance import comparison_tables, curve_level_table, pareto_table, report_dict
    from shrinkbench.analysis.files import check_output

    if args.out:
        check_output(args.out, "folder")
    scan = load(args)
    options = options_from(args, scan.table)
    runs = run_table(scan.table, options)
    report = compare_method(runs, args.method, args.baseline, options)
    report.warnings += tie_warnings(scan.table, report.comparisons)
    labels = pareto_labels(runs[runs["strategy"].isin({args.method, *report.comparisons["baseline"], "none"})],
                           report.comparisons, options.higher_is_better)
    if args.out:
        for path in write_significance(Path(args.out), report, labels):
            print(f"wrote {path}", file=sys.stderr)
    if args.format == "json":
        sys.stdout.write(to_json(report_dict(report, labels, {"failed_runs": len(failed_runs(scan.table))})))
    elif args.format == "csv":
        sys.stdout.write(report.comparisons.to_csv(index=False))
    elif args.format == "wide":
        tables = comparison_tables(report) + [curve_level_table(report), pareto_table(labels)]
        sys.stdout.write("\n".join(t.text() for t in tables))
    else:
        from shrinkbench.analysis.headline import terminal_verdicts
        from shrinkbench.analysis.tables import operating_point_table

        parts = terminal_verdicts(report, operating_point_table(runs, options, report.comparisons), args.method)
        parts += ["Every column (tests, unadjusted CIs, effect sizes, MDE, Pareto labels): --format wide,\n"
                  "csv or json, or --out DIR.\n"]
        sys.stdout.write("\n".join(parts))
    if args.format in ("text", "wide"):
        for warning in report.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return 0


@reporting_warnings
def cmd_rank(args: argparse.Namespace) -> int:
    from shrinkbench.analysis.across import across
    from shrinkbench.analysis.across_report import across_dict, across_text, write_across
    from shrinkbench.analysis.files import to_json
    from shrinkbench.analysis.render import TERMINAL_WIDTH
    from shrinkbench.analysis.runs import run_table

    formats = _figure_formats(args.formats)
    defaults = AnalysisOptions()
    for flag, value, default in (("--interval", args.interval, defaults.interval), ("--power", args.power, defaults.power)):
        if value != default:
            raise AnalysisError(f"rank does not use {flag}: its verdicts rest on Bonferroni-simultaneous t intervals "
                                "over the settings, its IQM on the stratified bootstrap (--n-boot, --confidence)")
    scan = load(args)
    options = options_from(args, scan.table)
    result = across(run_table(scan.table, options), args.across, options, args.method)
    if args.out:
        for path in write_across(Path(args.out), result, formats):
            print(f"wrote {path}", file=sys.stderr)
    if args.format == "json":
        sys.stdout.write(to_json(across_dict(result)))
    elif args.format == "csv":
        sys.stdout.write(result.pairs.to_csv(index=False))
    else:
        sys.stdout.write(across_text(result, TERMINAL_WIDTH))
    return 0


def _figure_formats(text: str) -> tuple[str, ...]:
    formats = tuple(f.strip() for f in text.split(",") if f.strip())
    if set(formats) - {"png", "pdf", "svg"} or not formats:
        raise AnalysisError(f"--figure-formats takes png, pdf and/or svg, got {text!r}")
    return formats


@reporting_warnings
def cmd_plan_seeds(args: argparse.Namespace) -> int:
    from shrinkbench.analysis.files import frame_records, to_json
    from shrinkbench.analysis.planner import plan_seeds
    from shrinkbench.analysis.runs import run_table
    from shrinkbench.analysis.significance import seed_plan_table
    from shrinkbench.analysis.files import check_output

    if args.out:
        check_output(args.out, "file")
    table = load(args).table
    options = options_from(args, table)
    runs = run_table(table, options)
    plan = plan_seeds(runs, args.target, options, args.method, args.baseline, args.family_size, args.sd_confidence)
    if args.format == "json":
        text = to_json(frame_records(plan))
    elif args.format == "csv":
        text = plan.to_csv(index=False)
    else:
        text = seed_plan_table(plan).text()
    _emit(text, args.out)
    return 0


@reporting_warnings
def cmd_report(args: argparse.Namespace) -> int:
    from shrinkbench.analysis.files import to_json
    from shrinkbench.analysis.report import build_report
    from shrinkbench.analysis.files import check_output

    out = args.out or (str(Path(args.store) / "report") if args.csv is None else "report")
    check_output(out, "folder")
    scan = load(args)
    options = options_from(args, scan.table)
    formats = _figure_formats(args.formats)
    summary = build_report(scan, out, options, args.method, args.baseline, args.per_seed_points, formats)
    if args.format == "json":
        sys.stdout.write(to_json(summary))
    else:
        print(f"report: {Path(out) / 'report.html'} and {Path(out) / 'report.md'} "
              f"({summary['runs']} runs, {summary['failed_runs']} failed, {len(summary['files'])} files)")
    return 0


@reporting_warnings
def cmd_literature(args: argparse.Namespace) -> int:
    from shrinkbench.analysis.files import frame_records, to_json
    from shrinkbench.analysis.literature import load_results
    from shrinkbench.analysis.overlay import overlay_figure, reported_results, reported_table

    if args.plot:
        from shrinkbench.analysis.files import check_output

        if Path(args.plot).suffix not in (".png", ".pdf", ".svg", ""):
            raise AnalysisError(f"--plot {args.plot}: a figure is written as .png, .pdf or .svg, not "
                                f"{Path(args.plot).suffix}")
        check_output(args.plot, "file", "--plot")
    reported = reported_results(load_results(args.literature).rows, args.dataset, args.model, args.method)
    if args.format == "json":
        sys.stdout.write(to_json(frame_records(reported)))
    elif args.format == "csv":
        sys.stdout.write(reported.to_csv(index=False))
    else:
        from shrinkbench.analysis.render import TERMINAL_WIDTH

        sys.stdout.write(reported_table(reported).text(TERMINAL_WIDTH) if len(reported) else
                         f"the corpus reports no result for {args.model} on {args.dataset}"
                         + (f" matching {args.method!r}" if args.method else "") + "\n")
    if args.plot:
        points = None
        if args.store:
            import numpy as np

            from shrinkbench.analysis.bands import curve_points
            from shrinkbench.analysis.runs import run_table

            scan = load(args)
            options = options_from(args, scan.table)
            runs = run_table(scan.table, options)
            runs = runs[(runs["model"] == args.model) & (runs["dataset"] == args.dataset)]
            if not len(runs):
                raise AnalysisError(f"the store {args.store} holds no runs of {args.model} on {args.dataset} to draw "
                                    "over the reported points")
            points = curve_points(runs, options, np.random.default_rng(options.seed))
        from shrinkbench.analysis.curves import save_figure

        fig = overlay_figure(reported, points, args.axis, f"{args.model} on {args.dataset}: reported vs reproduced")
        plot = Path(args.plot)
        named = plot.suffix in (".png", ".pdf", ".svg")
        for path in save_figure(fig, plot.with_suffix("") if named else plot, (plot.suffix[1:] if named else "png",)):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    """Add `report`, `compare`, `rank`, `plan-seeds` and `results` to an argparse subparsers object."""
    p = subparsers.add_parser("report", help="figures, tables and significance report (Markdown + HTML)")
    _source_arguments(p)
    p.add_argument("--out", metavar="DIR", help="output folder (default: <store>/report)")
    p.add_argument("--method", help="compare this method against the others (default: all pairs); a method is a "
                                    "strategy as the analysis names it, with its tags, e.g. 'snip [at_init]'")
    p.add_argument("--baseline", action="extend", nargs="+", metavar="B", help="baselines for --method")
    p.add_argument("--per-seed-points", action="store_true", help="draw every seed's run as a point")
    p.add_argument("--figure-formats", "--formats", dest="formats", default="png,pdf",
                   help="file formats of the figures, comma-separated: png, pdf, svg (default: png,pdf)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="what to print on stdout")
    _option_arguments(p)
    p.set_defaults(func=cmd_report)

    p = subparsers.add_parser("compare", help="significance of a method against baselines")
    _source_arguments(p)
    p.add_argument("--method", required=True,
                   help="the method to test: a strategy as the analysis names it, with its tags and @version "
                        "where a store holds several")
    p.add_argument("--baseline", action="extend", nargs="+", metavar="B",
                   help="baselines (default: every other pruning strategy)")
    _output_arguments(p, ("text", "wide", "json", "csv"), "DIR", "also write CSV, JSON and Markdown files here",
                      "text: the summary and compact tables within 100 columns; wide: every column as text; "
                      "json/csv: machine-readable")
    _option_arguments(p)
    p.set_defaults(func=cmd_compare)

    p = subparsers.add_parser("rank", help="which method is best across settings: the settings are the units "
                                           "(Friedman, Nemenyi, Wilcoxon-Holm, verdicts over settings)")
    _source_arguments(p)
    p.add_argument("--across", default="model,dataset,compression", metavar="KEYS",
                   help="what a setting is, comma-separated among model, dataset, compression (ratio); cells of a "
                        "setting are averaged (default: model,dataset,compression)")
    p.add_argument("--method", action="extend", nargs="+", metavar="M",
                   help="the methods to rank (default: the largest block of methods measured in the same settings)")
    _output_arguments(p, ("text", "json", "csv"), "DIR",
                      "also write across.md, across.json, across_pairs.csv and the figures here",
                      "text: ranks, tests and verdicts; json: everything; csv: the pairs")
    p.add_argument("--figure-formats", "--formats", dest="formats", default="png,pdf",
                   help="file formats of the figures with --out, comma-separated: png, pdf, svg (default: png,pdf)")
    _option_arguments(p)
    p.set_defaults(func=cmd_rank)

    p = subparsers.add_parser("plan-seeds", help="how many seeds a target difference needs")
    _source_arguments(p)
    p.add_argument("--target", type=float, required=True,
                   help="difference to detect, in the response's unit (accuracy points for top1)")
    p.add_argument("--method", help="plan for this method (default: every strategy)")
    p.add_argument("--baseline", help="plan a paired comparison of --method against this baseline")
    p.add_argument("--family-size", type=int, default=None,
                   help="tests in the family, planned at level α/m (default: the family `compare --method` "
                        "adjusts over)")
    p.add_argument("--sd-confidence", type=float, default=0.8,
                   help="plan with this one-sided upper confidence limit of the pilot's SD (default: 0.8)")
    _output_arguments(p, ("text", "json", "csv"), "FILE", "write to FILE instead of stdout")
    _option_arguments(p)
    p.set_defaults(func=cmd_plan_seeds)

    p = subparsers.add_parser("literature", help="what the literature corpus reports for a dataset and model, "
                                                 "and our runs drawn over it (reported vs reproduced)")
    p.add_argument("--dataset", required=True, help="zoo dataset (cifar10, imagenet, mnist, ...) or corpus name")
    p.add_argument("--model", required=True, help="zoo model (cifar_resnet56, imagenet_vgg16, ...) or corpus name; "
                                                  "the mapping is written down in analysis/overlay.py")
    p.add_argument("--method", default=None, help="only the reported results whose 'paper (method)' contains this")
    p.add_argument("--literature", metavar="PATH", default=None,
                   help="the corpus folder (default: $SHRINKBENCH_LITERATURE, then the copy shipped with the package)")
    p.add_argument("--store", default=None, metavar="DIR", help="draw this store's runs of the model as 'reproduced'")
    p.add_argument("--plot", metavar="FILE", default=None, help="write the overlay figure here (.png, .pdf or .svg)")
    p.add_argument("--axis", choices=("compression", "speedup"), default="compression",
                   help="x of the figure: compression ratio or theoretical speedup (default: compression)")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text",
                   help="what to print: the reported results as text, JSON or CSV (default: text)")
    p.add_argument("--csv", default=None, help=argparse.SUPPRESS)
    _option_arguments(p)
    p.set_defaults(func=cmd_literature)

    p = subparsers.add_parser("results", help="export the tidy results table")
    _source_arguments(p)
    _output_arguments(p, ("csv", "json"), "FILE", "write to FILE instead of stdout")
    p.set_defaults(func=cmd_results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shrinkbench.analysis",
                                     description="Analyse a shrinkbench result store (no torch needed).")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except AnalysisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
