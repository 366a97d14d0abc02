"""What the run figures share: which records of a store belong to a suite, the figure's run
table, re-running the sweep, and the command line.

A suite file is read here with `tomllib`, without `shrinkbench` (whose suite loader needs
torch to check model names), so a figure is drawn from a store on a machine without torch.
A record belongs to a suite when its config agrees with every setting the suite states:
model, dataset, strategy (or the dense run, where the compressions include 1), target
compression, the (base seed, run seed) pair, budget and pruning steps where listed, and each
value of the [run], [base], [finetune], [data] and [measure] tables (with a variant's
override laid over them; the first variant that agrees names the record). Settings the
suite leaves out are not checked, and names must be written as registered (no aliases).
Paths (`data.root`, `base.checkpoint`) are not part of a run's identity and are not checked.

Only `rerun` imports the runner (and with it torch).
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import _common
import _plots
import pandas as pd

from shrinkbench.analysis.errors import AnalysisError
from shrinkbench.analysis.load import load_table
from shrinkbench.analysis.options import AnalysisOptions
from shrinkbench.analysis.runs import run_table
from shrinkbench.analysis.schema import DENSE_STRATEGY

SUITES = Path(__file__).resolve().parent / "suites"
REFERENCE_STORE = _common.ROOT / "results" / "reference"
DATASETS = ("fashion-mnist", "cifar10", "imagenet")
"""`--dataset` picks `suites/<figure>.toml` (fashion-mnist) or `suites/<figure>_<dataset>.toml`."""
UNCHECKED = {("data", "root"), ("data", "download"), ("base", "checkpoint")}
DENSE_UNCHECKED = {("score_batches",), ("score_batch_size",)}
"""Settings a dense run's identity leaves out (it is shared by suites that differ in them)."""


@dataclass(frozen=True)
class SuiteSpec:
    """A suite file as plain data: the sweep lists and each variant's settings."""

    name: str
    path: Path
    description: str
    sweep: dict[str, Any]
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    """variant name ("" when the suite has none) -> the settings its records must carry."""

    def seed_pairs(self) -> list[tuple[int, int]]:
        """As `shrinkbench.vision.suite.seed_pairs`: base_seeds default to seeds, seeding to "zip"."""
        bases = self.sweep.get("base_seeds", self.sweep["seeds"])
        if self.sweep.get("seeding", "zip") == "zip":
            return list(zip(bases, self.sweep["seeds"]))
        return list(itertools.product(bases, self.sweep["seeds"]))

    def expected_runs(self) -> int:
        """Runs the suite expands to (dense runs counted once per seed pair and variant)."""
        s = self.sweep
        values = s.get("compressions", []) + s.get("speedups", [])
        pruned = [c for c in values if float(c) != 1.0] + [c for c in s.get("sparsities", []) if float(c) != 0.0]
        has_dense = len(pruned) < len(values) + len(s.get("sparsities", []))
        pairs = sum(len(granularities_of(entry, s.get("granularities", ["weight"]))) * modifiers_of(entry, s)
                    for entry in s["strategies"])
        per_setting = pairs * len(pruned) * len(s.get("budgets", [0]))
        per_setting += len(s.get("budgets", [0])) if has_dense else 0
        dense_only = len(s.get("dense_models", [])) * len(s.get("budgets", [0]))
        return ((per_setting * len(s["models"]) + dense_only) * len(s["datasets"]) * len(self.seed_pairs())
                * len(self.variants))


def modifiers_of(entry, sweep: dict) -> int:
    """How many (when, control, pruning steps) combinations a [sweep] strategy entry runs at:
    the sweep's lists, except where the entry sets its own value."""
    own = entry if isinstance(entry, dict) else {}
    return math.prod(1 if key in own else len(sweep.get(listed, [None]))
                     for key, listed in (("when", "whens"), ("control", "controls"), ("prune_steps", "prune_steps")))


def granularities_of(entry, listed: list[str]) -> list[str]:
    """The listed granularities a [sweep] strategy entry runs at: a registered strategy's own
    (read from the torch-free registry), all of them for a user's strategy."""
    from shrinkbench.vision.pruning.strategies import STRATEGIES

    name = entry if isinstance(entry, str) else entry.get("name", "")
    if name not in STRATEGIES:
        return list(listed)
    supported = STRATEGIES.get(name)().granularities
    return [g for g in listed if ("nm" if ":" in g else g) in supported]


def _merged(template: dict, override: dict) -> dict:
    out = dict(template)
    for key, value in override.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_suite(path: str | Path) -> SuiteSpec:
    """Parse a suite file; a missing or malformed file is an AnalysisError in one line."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnalysisError(f"suite file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AnalysisError(f"suite file {str(path)!r} cannot be read: {str(exc).splitlines()[0]}") from None
    sweep = data.get("sweep")
    required = ("models", "datasets", "strategies", "seeds")
    if not isinstance(sweep, dict) or any(not isinstance(sweep.get(k), list) for k in required) or not any(
            isinstance(sweep.get(k), list) for k in ("compressions", "speedups", "sparsities")):
        raise AnalysisError(f"suite file {str(path)!r} needs a [sweep] table listing {', '.join(required)}")
    template = dict(data.get("run", {}))
    for section in ("base", "finetune", "data", "measure", "schedule"):
        if section in data:
            template[section] = data[section]
    variants = data.get("variants") or {"": {}}
    return SuiteSpec(str(data.get("name", path.stem)), path, " ".join(str(data.get("description", "")).split()),
                     sweep, {name: _merged(template, override) for name, override in variants.items()})


def _agrees(config: Any, wanted: Any, where: tuple = (), skip=frozenset()) -> bool:
    """Whether `config` carries every value of `wanted` (nested tables compared key by key)."""
    if isinstance(wanted, dict):
        if not isinstance(config, dict):
            return False
        return all(where + (k,) in skip or (k in config and _agrees(config[k], v, where + (k,), skip))
                   for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(config, list) and (config == wanted or sorted(map(str, config)) == sorted(map(str, wanted)))
    if isinstance(wanted, (int, float)) and not isinstance(wanted, bool):
        return isinstance(config, (int, float)) and not isinstance(config, bool) and math.isclose(config, wanted)
    return config == wanted


RUN_DEFAULTS = {"when": "after_training", "control": None, "prune_steps": 1}
SCHEDULE_DEFAULTS = {"kind": "one_shot", "split_budget": False, "start": 0.0, "end": 0.75, "every": 10,
                     "rewind_epoch": None}
"""The values of `shrinkbench.vision.config` a record from before these fields existed has."""


def _modifier(config: dict, key: str):
    value = config.get(key, RUN_DEFAULTS[key])
    return "none" if value is None else value


def _strategy_listed(config: dict, entries: list, sweep: dict | None = None, template: dict | None = None) -> bool:
    """Whether the record's strategy (with its parameters) is one of the [sweep] entries:
    a name (no parameters) or a table {name, params, label, when, control, prune_steps,
    schedule}; the run modifiers an entry leaves out must be among the sweep's lists
    (`whens`, `controls`, `prune_steps`) and its schedule the suite's [schedule]."""
    sweep, template = sweep or {}, template or {}
    params = config.get("strategy_params") or {}
    schedule = {**SCHEDULE_DEFAULTS, **(config.get("schedule") or {})}
    for entry in entries:
        entry = {"name": entry} if isinstance(entry, str) else entry
        wanted = entry.get("params") or {}
        if config.get("strategy") != entry.get("name") or not _agrees(params, wanted) or set(params) != set(wanted):
            continue
        ok = True
        for key, listed in (("when", "whens"), ("control", "controls"), ("prune_steps", "prune_steps")):
            value = _modifier(config, key)
            if key in entry:
                ok &= value == entry[key] or (key == "control" and value == "none" and entry[key] in (None, "none"))
            elif listed in sweep:
                ok &= value in sweep[listed] or (key == "control" and value == "none" and None in sweep[listed])
            elif key != "prune_steps":
                ok &= value == ("none" if key == "control" else RUN_DEFAULTS[key])
        ok &= _agrees(schedule, {**SCHEDULE_DEFAULTS, **template.get("schedule", {}), **entry.get("schedule", {})})
        if ok:
            return True
    return False


def variant_of(spec: SuiteSpec, config: dict) -> str | None:
    """The variant of `spec` a record's config belongs to, or None if it is not the suite's."""
    s = spec.sweep
    try:
        compression = float(config["compression"])
        strategy = config["strategy"]
        pair = (int(config["base"]["seed"]), int(config["seed"]))
    except (KeyError, TypeError, ValueError):
        return None
    dense = strategy == DENSE_STRATEGY
    target = config.get("target", "compression")
    listed = s.get({"compression": "compressions", "speedup": "speedups", "sparsity": "sparsities"}[target], [])
    if dense:
        listed = [1.0] if any(float(c) == 1.0 for c in s.get("compressions", []) + s.get("speedups", [])) or \
            any(float(c) == 0.0 for c in s.get("sparsities", [])) else []
    if dense and config.get("model") in s.get("dense_models", []):
        listed = [1.0]
    if (config.get("model") not in s["models"] + (s.get("dense_models", []) if dense else [])
            or config.get("dataset") not in s["datasets"]
            or config.get("granularity", "weight") not in s.get("granularities", ["weight"]) and not dense
            or not any(math.isclose(compression, float(c)) for c in listed)
            or pair not in spec.seed_pairs()):
        return None
    if "budgets" in s and config.get("finetune", {}).get("epochs") not in s["budgets"]:
        return None
    skip = UNCHECKED | (DENSE_UNCHECKED if dense else set()) | {("schedule",)}
    for name, settings in spec.variants.items():
        if (dense or _strategy_listed(config, s["strategies"], s, settings)) and \
                _agrees(config, settings, (), frozenset(skip)):
            return name
    return None


def suite_records(spec: SuiteSpec, store: str | Path) -> dict[str, str]:
    """run id -> variant for the records of `store` that belong to the suite."""
    runs = Path(store) / "runs"
    if not runs.is_dir():
        raise AnalysisError(f"store {str(store)!r} has no runs/ folder; run the sweep with --rerun")
    found = {}
    for path in sorted(runs.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            config = record["config"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
            continue  # analysis.load reports unreadable records
        name = variant_of(spec, config) if isinstance(config, dict) else None
        if name is not None and record.get("run_id"):
            found[record["run_id"]] = name
    return found


@dataclass
class FigureData:
    """The runs behind one figure: the run table (with a `variant` column) and provenance."""

    spec: SuiteSpec
    store: Path
    runs: pd.DataFrame
    found: int
    expected: int
    compute_seconds: float
    threads: list

    def summary(self) -> str:
        threads = ", ".join(map(str, self.threads)) or "unknown"
        store = self.store.resolve()
        shown = store.relative_to(_common.ROOT) if store.is_relative_to(_common.ROOT) else store
        return (f"{self.found} of the {self.expected} runs of suite `{self.spec.name}` found in `{shown}`; "
                f"their records add up to {self.compute_seconds / 60:.1f} min of compute "
                f"(threads: {threads}, base-model training included)")


def _provenance(store: Path, run_ids) -> tuple[float, list]:
    seconds, threads = 0.0, set()
    for run_id in run_ids:
        try:
            prov = json.loads((store / "runs" / f"{run_id}.json").read_text(encoding="utf-8")).get("provenance", {})
        except (OSError, json.JSONDecodeError):
            continue
        seconds += float(prov.get("seconds") or 0.0)
        if prov.get("threads") is not None:
            threads.add(prov["threads"])
    return seconds, sorted(threads)


def figure_data(suite: str | Path, store: str | Path, options: AnalysisOptions = AnalysisOptions()) -> FigureData:
    """The run table of the suite's records in `store`; the dense deltas are computed within
    each variant (each variant has its own base weights)."""
    spec, store = read_suite(suite), Path(store)
    members = suite_records(spec, store)
    if not members:
        raise AnalysisError(f"store {str(store)!r} holds no run of suite {spec.name!r} ({spec.path}); "
                            "re-run the sweep with --rerun")
    table = load_table(store).table
    table = table[table["run_id"].isin(list(members))]
    frames = []
    for name in spec.variants:
        ids = [run_id for run_id, variant in members.items() if variant == name]
        if ids:
            frames.append(run_table(table[table["run_id"].isin(ids)], options).assign(variant=name))
    runs = pd.concat(frames, ignore_index=True)
    if (runs["strategy"] == DENSE_STRATEGY).all():
        raise AnalysisError(f"store {str(store)!r} holds only dense runs of suite {spec.name!r} ({spec.path}), which "
                            "it shares with other suites; re-run the sweep with --rerun")
    seconds, threads = _provenance(store, members)
    return FigureData(spec, store, runs, len(members), spec.expected_runs(), seconds, threads)


def rerun(suite: str | Path, store: str | Path, threads: int | None, device: str, data_root: str | None) -> float:
    """Run every missing run of the suite into `store` with the shrinkbench runner (this
    imports torch); returns the wall time in seconds."""
    from shrinkbench.cli import main as shrinkbench_main

    argv = ["run", str(suite), "--store", str(store), "--device", device, "--quiet"]
    if threads:
        argv += ["--threads", str(threads)]
    if data_root:
        argv += ["--data-root", data_root]
    start = time.perf_counter()
    status = shrinkbench_main(argv)
    if status:
        raise AnalysisError(f"the sweep of {suite} failed (shrinkbench run exited with status {status})")
    return time.perf_counter() - start


# ---------------------------------------------------------------- command line

def parser(figure: str, description: str) -> argparse.ArgumentParser:
    """The arguments of every run-figure script."""
    args = argparse.ArgumentParser(description=description)
    args.add_argument("--store", type=Path, default=REFERENCE_STORE,
                      help=f"result store the figure is drawn from (default: the committed reference "
                           f"store {REFERENCE_STORE.relative_to(_common.ROOT)})")
    args.add_argument("--out", type=Path, default=_common.DEFAULT_OUT,
                      help=f"folder the figure and its findings go to (default: {_common.DEFAULT_OUT})")
    args.add_argument("--suite", type=Path, default=None,
                      help=f"suite file (default: suites/{figure}.toml, or the one --dataset names)")
    args.add_argument("--dataset", choices=DATASETS, default="fashion-mnist",
                      help=f"use the shipped suite for this dataset: suites/{figure}_<dataset>.toml "
                           "(cifar10 and imagenet need the data and, in practice, a GPU)")
    args.add_argument("--rerun", action="store_true",
                      help="run the missing runs of the suite into --store first (needs torch; "
                           "delete the store's runs to re-run everything)")
    args.add_argument("--threads", type=int, default=1,
                      help="torch threads for --rerun (default: 1, the faster on the 2-core reference machine)")
    args.add_argument("--device", default="auto", help="device for --rerun: cpu, cuda or auto (default)")
    args.add_argument("--data-root", default=None, help="folder holding the datasets (for --rerun)")
    args.add_argument("--formats", nargs="+", default=list(_common.FORMATS), choices=("png", "pdf", "svg"),
                      help="file formats to write (default: png pdf)")
    return args


def suite_path(figure: str, options: argparse.Namespace) -> Path:
    """`--suite` if given, else the shipped suite of the figure for `--dataset`."""
    if getattr(options, "suite", None) is not None:
        return options.suite
    suffix = "" if options.dataset == "fashion-mnist" else f"_{options.dataset}"
    return Path(getattr(options, "suites", None) or SUITES) / f"{figure}{suffix}.toml"


@dataclass
class FigureResult:
    """What a run-figure script produced: the files, the verdicts (Markdown, for the README)
    and the full findings with their tables (written next to the figure)."""

    name: str
    files: list[Path]
    summary: str
    findings: str


def finish(name: str, out: Path, files: list[Path], parts: list[tuple[str, str]]) -> FigureResult:
    """Write `<out>/<name>_findings.md` from (summary, details) parts, one per setting."""
    from shrinkbench.analysis.files import write_text

    summary = "\n\n".join(s for s, _ in parts)
    findings = "\n\n".join(f"{s}\n\n{d}" for s, d in parts) + "\n"
    files = files + [write_text(Path(out) / f"{name}_findings.md", findings)]
    return FigureResult(name, files, summary, findings)


def per_setting(data: FigureData, out: Path, formats, options: AnalysisOptions, title: str, draw,
                findings) -> FigureResult:
    """One figure and one findings part per (model, dataset) of the suite's first variant:
    `draw(points, runs, title)` makes the figure, `findings(runs, model, dataset, data)` the text."""
    import numpy as np

    from shrinkbench.analysis.bands import curve_points
    from shrinkbench.analysis.runs import settings

    runs = data.runs[data.runs["variant"] == next(iter(data.spec.variants))]
    keys = settings(runs)
    files, texts = [], []
    for model, dataset in keys:
        sub = runs[(runs["model"] == model) & (runs["dataset"] == dataset)]
        points = curve_points(sub, options, np.random.default_rng(options.seed))
        heading = f"{title}, {model} on {dataset} (our runs, suite {data.spec.name})"
        stem = _plots.setting_stem(data.spec.name, model, dataset, len(keys) > 1)
        files += _common.save_figure(draw(points, sub, heading), out, stem, formats)
        texts.append(findings(sub, model, dataset, data))
    return finish(data.spec.name, out, files, texts)


def main(figure: str, description: str, make: Callable[[FigureData, Path, Sequence[str]], FigureResult],
         argv: Sequence[str] | None) -> int:
    """Parse `argv`, re-run the sweep if asked, draw the figure and write its findings."""
    options = parser(figure, description).parse_args(argv)
    suite = suite_path(figure, options)
    try:
        if options.rerun:
            seconds = rerun(suite, options.store, options.threads, options.device, options.data_root)
            print(f"sweep {suite}: {seconds / 60:.1f} min wall time")
        result = make(figure_data(suite, options.store), options.out, options.formats)
    except AnalysisError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in result.files:
        print(f"wrote {path}")
    return 0
