"""Results reported by the pruning literature, read from the corpus of Blalock et al. (2020).

The corpus folder (see its README) is found by `literature_path`; nothing is copied into
the repository. Every row this module returns carries `source = "reported"`: these are the
papers' own numbers, to be drawn next to (never mixed with) results the toolkit reproduced.

Conventions (one per quantity, whatever the paper wrote):

- accuracies (`top1`, `top5`, `orig_top1`, ...) are percent correct: "93.55%" -> 93.55 and
  an error rate e becomes 100 - e. `orig_*` is the paper's own dense (unpruned) baseline.
- `delta_top1 = top1 - orig_top1` in accuracy points (negative = the pruned model is worse).
  Preferred from the two reported accuracies; the corpus column `dTop1` has the same sign
  (row 50: Top1 76.52, OrigTop1 76.69, dTop1 -0.17) and is used when one of them is missing,
  in which case `top1` may be derived as `orig_top1 + dTop1` (`top1_from` says so).
- `compression_ratio = params_dense / params_pruned`, first of: `old/new Nparam`,
  `OrigMParams / MParams`, `1 / keptParams`, `1 / (1 - savedParams)`.
- `theoretical_speedup = flops_dense / flops_pruned`, first of: `old/new FLOPS`,
  `OrigGFLOPS / GFLOPS`, `1 / keptFLOPS`, `1 / (1 - savedFLOPS)`. A ratio within one paper
  does not depend on its FLOPs convention; absolute "GFLOPS" do: the corpus mixes
  multiply-accumulates (VGG-16 15.5) and 2 x MACs (VGG-16 30.9), so they are kept only as
  `gflops_reported` and never compared across papers.
- each value records where it came from in `<column>_from` (e.g. "100-Err1").
  When two sources disagree (more than 0.1 points or 3 %), the first is kept and the pair
  is listed in `LiteratureResults.conflicts`.

An input row is either used (it has an accuracy of the pruned model AND a compression
ratio or speedup) or listed in `LiteratureResults.skipped` with its reason; rows whose notes
say the ratios cover only some layers ("accelerating just 2nd conv layer") are skipped.
`as_metric_rows` gives the used rows in the long shape of `analysis.schema`'s tidy table.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from shrinkbench.analysis.errors import AnalysisError
from shrinkbench.analysis.schema import unit_of

ENV_VAR = "SHRINKBENCH_LITERATURE"
SOURCE = "reported"
RESULTS_FILE = "Results-Grid view.csv"
PAPERS_FILE = "Papers-Grid view.csv"
ACCURACY_TOLERANCE = 0.1
"""Accuracy points by which two sources of one value may differ (rounding) without a conflict."""
RATIO_TOLERANCE = 0.03
"""Relative difference by which two sources of one ratio may differ without a conflict."""

_TEXT_COLUMNS = ("Name", "Paper", "Dataset", "Model", "Method", "Notes")
_PERCENT_COLUMNS = (
    "Err1", "Err5", "Top1", "stdTop1", "dTop1", "Top5", "dTop5", "savedParams", "keptParams",
    "savedFLOPS", "keptFLOPS", "OrigTop1", "stdOrigTop1", "OrigTop5", "OrigErr1", "OrigErr5",
)
_NUMBER_COLUMNS = (
    "NumTrials", "MParams", "GFLOPS", "OrigMParams", "OrigGFLOPS", "old/new Nparam",
    "old/new FLOPS",
)
RESULT_COLUMNS = _TEXT_COLUMNS + _PERCENT_COLUMNS + _NUMBER_COLUMNS
"""The columns `Results-Grid view.csv` must have (any order; extra columns are ignored)."""

PARTIAL_SCOPE = re.compile(r"accelerat\w* (just |only )?(the )?\d+(st|nd|rd|th)\b", re.I)
"""Notes saying the ratios cover only some layers ("accelerating just 2nd conv layer")."""


PACKAGED = Path(__file__).resolve().parent / "literature_corpus"
"""The corpus shipped with the package (its README and licences beside the data)."""


def literature_path(path: str | os.PathLike | None = None) -> Path:
    """The corpus folder: `path`, else $SHRINKBENCH_LITERATURE (a user's own copy), else the
    copy shipped with the package (`PACKAGED`). An explicit setting that does not exist is an
    error (no silent fallback)."""
    if path is not None:
        candidate, origin = Path(path), "the given path"
    elif os.environ.get(ENV_VAR):
        candidate, origin = Path(os.environ[ENV_VAR]), f"${ENV_VAR}"
    else:
        candidate, origin = PACKAGED, "the package (reinstall shrinkbench)"
    if candidate.is_dir():
        return candidate.resolve()
    raise AnalysisError(f"literature corpus not found at {candidate} ({origin}); "
                        f"pass --literature PATH or set {ENV_VAR}")


def _read_csv(folder: Path, name: str, required: tuple[str, ...] = ()) -> pd.DataFrame:
    file = folder / name
    if not file.is_file():
        raise AnalysisError(f"literature corpus {folder} has no file {name!r}")
    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                            skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise AnalysisError(f"cannot read {file}: {str(err).splitlines()[0]}") from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise AnalysisError(f"{file} lacks column(s) {', '.join(missing)}")
    return frame


# ---------------------------------------------------------------------------- cells

def parse_number(cell: str) -> float:
    """'2.6400' -> 2.64; '' -> nan. Raises ValueError on anything else."""
    text = str(cell).strip().replace(",", "")
    return math.nan if text == "" else float(text)


def parse_percent(cell: str) -> float:
    """'93.55%' -> 93.55 (percent points); a bare number is read as percent points too."""
    return parse_number(str(cell).strip().removesuffix("%"))


# ---------------------------------------------------------------------------- names

_DATASETS = ("ImageNet", "CIFAR-10", "CIFAR-100", "MNIST", "SVHN", "Tiny ImageNet")
_MODELS = (
    "AlexNet", "CaffeNet", "GoogLeNet", "SqueezeNet", "MobileNet", "MobileNet-v2", "LeNet-5",
    "LeNet-300-100", "VGG-11", "VGG-13", "VGG-16", "VGG-19", "ResNet-18", "ResNet-20",
    "ResNet-32", "ResNet-34", "ResNet-44", "ResNet-50", "ResNet-56", "ResNet-101",
    "ResNet-110", "ResNet-152",
)
_ALIASES = {"ilsvrc2012": "ImageNet", "imagenet1k": "ImageNet", "mobilenetv1": "MobileNet",
            "mobilenetv2": "MobileNet-v2"}
_GROUPS = {"AlexNet": "AlexNet/CaffeNet", "CaffeNet": "AlexNet/CaffeNet"}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


_CANONICAL = {**{_key(n): n for n in _DATASETS + _MODELS}, **_ALIASES}


def canonical_name(name: str) -> str:
    """Light canonicalisation of a dataset or model name: 'resnet50' -> 'ResNet-50',
    'cifar10' -> 'CIFAR-10'; names it does not know are returned stripped."""
    return _CANONICAL.get(_key(name), str(name).strip())


def model_group(model: str) -> str:
    """AlexNet and CaffeNet (a near-identical variant) share the group 'AlexNet/CaffeNet'."""
    return _GROUPS.get(model, model)


# ---------------------------------------------------------------------------- one row

def _pick(candidates: list[tuple[str, float]], close: Callable[[float, float], bool]):
    """(value, source, disagreeing candidates) of the first finite candidate."""
    finite = [(s, v) for s, v in candidates if math.isfinite(v)]
    if not finite:
        return math.nan, "", []
    (source, value), rest = finite[0], finite[1:]
    return value, source, [(s, v) for s, v in rest if not close(value, v)]


def _close_points(a: float, b: float) -> bool:
    return abs(a - b) <= ACCURACY_TOLERANCE + 1e-9


def _close_ratio(a: float, b: float) -> bool:
    return abs(a - b) <= RATIO_TOLERANCE * max(abs(a), abs(b))


def _inverse(x: float) -> float:
    return 1.0 / x if math.isfinite(x) and x > 0 else math.nan


def normalise_result(v: Mapping[str, float]) -> tuple[dict, list[tuple]]:
    """Normalised quantities of one result from its parsed cells `v` (percent columns in
    points, numbers as written); returns (values, conflicts as (quantity, kept source,
    kept value, other source, other value))."""
    out: dict = {}
    conflicts: list[tuple] = []

    def pick(name, candidates, close):
        value, source, others = _pick(candidates, close)
        out[name], out[f"{name}_from"] = value, source
        conflicts.extend((name, source, value, s, x) for s, x in others)
        return value

    for k in ("1", "5"):
        top = pick(f"top{k}", [(f"Top{k}", v[f"Top{k}"]), (f"100-Err{k}", 100 - v[f"Err{k}"])],
                   _close_points)
        orig = pick(f"orig_top{k}", [(f"OrigTop{k}", v[f"OrigTop{k}"]),
                                     (f"100-OrigErr{k}", 100 - v[f"OrigErr{k}"])], _close_points)
        difference = f"{out[f'top{k}_from']} - {out[f'orig_top{k}_from']}"
        delta = pick(f"delta_top{k}", [(difference, top - orig), (f"dTop{k}", v[f"dTop{k}"])],
                     _close_points)
        if not math.isfinite(top) and math.isfinite(orig + delta):
            out[f"top{k}"], out[f"top{k}_from"] = orig + delta, f"{out[f'orig_top{k}_from']} + dTop{k}"
    for name, ratio, orig, new, kept, saved in (
        ("compression_ratio", "old/new Nparam", "OrigMParams", "MParams", "keptParams", "savedParams"),
        ("theoretical_speedup", "old/new FLOPS", "OrigGFLOPS", "GFLOPS", "keptFLOPS", "savedFLOPS"),
    ):
        pick(name, [(ratio, v[ratio]),
                    (f"{orig}/{new}", v[orig] * _inverse(v[new])),
                    (f"1/{kept}", _inverse(v[kept] / 100)),
                    (f"1/(1-{saved})", _inverse(1 - v[saved] / 100))], _close_ratio)
    out.update(std_top1=v["stdTop1"], std_orig_top1=v["stdOrigTop1"], num_trials=v["NumTrials"],
               mparams=v["MParams"], orig_mparams=v["OrigMParams"],
               gflops_reported=v["GFLOPS"], orig_gflops_reported=v["OrigGFLOPS"])
    return out, conflicts


def _skip_reason(values: dict, parsed: Mapping[str, float], notes: str) -> str | None:
    has_accuracy = any(math.isfinite(values[c]) for c in ("top1", "top5", "delta_top1", "delta_top5"))
    has_ratio = any(math.isfinite(values[c]) for c in ("compression_ratio", "theoretical_speedup"))
    if not any(math.isfinite(x) for c, x in parsed.items() if c != "NumTrials"):
        return "no numbers reported"
    if has_ratio and PARTIAL_SCOPE.search(notes):
        return "ratio covers only some layers (per the notes)"
    if has_accuracy and not has_ratio:
        if math.isfinite(parsed["MParams"]) or math.isfinite(parsed["GFLOPS"]):
            return "pruned size given without the dense size"
        return "no compression ratio or speedup"
    if has_ratio and not has_accuracy:
        return "no accuracy of the pruned model"
    if not has_accuracy:
        return "only dense-baseline values"
    for c in ("compression_ratio", "theoretical_speedup"):
        if values[c] <= 0:
            return f"non-positive {c}"
    return None


# ---------------------------------------------------------------------------- loaders

ROW_COLUMNS = (
    "result_id", "paper", "dataset", "model", "model_group", "method", "label", "year", "venue",
    "non_pruning", *normalise_result(dict.fromkeys(_PERCENT_COLUMNS + _NUMBER_COLUMNS, math.nan))[0],
    "notes", "source",
)
"""Columns of `LiteratureResults.rows`; `label` is "paper (method)", or the paper alone."""
METRICS = ("compression_ratio", "theoretical_speedup", "top1", "top5", "delta_top1", "delta_top5")

@dataclass(frozen=True)
class LiteratureResults:
    """`rows`: one used result per row (source "reported"); `skipped`: one unused input row
    per row with `reason`; `conflicts`: values whose sources disagree; `n_input` rows read."""

    rows: pd.DataFrame
    skipped: pd.DataFrame
    conflicts: pd.DataFrame
    n_input: int
    path: Path

    def skipped_counts(self) -> pd.Series:
        """Number of skipped input rows per reason, most frequent first."""
        return self.skipped["reason"].value_counts()


def load_results(path: str | os.PathLike | None = None) -> LiteratureResults:
    """Read `Results-Grid view.csv` into normalised rows (see the module docstring)."""
    folder = literature_path(path)
    raw = _read_csv(folder, RESULTS_FILE, RESULT_COLUMNS)
    papers = load_papers(folder).set_index("paper")
    used, skipped, conflicts = [], [], []
    for _, cells in raw.iterrows():
        ident = {"result_id": cells["Name"].strip(), "paper": cells["Paper"].strip(),
                 "dataset": canonical_name(cells["Dataset"]), "model": canonical_name(cells["Model"])}
        try:
            parsed = {c: parse_percent(cells[c]) for c in _PERCENT_COLUMNS}
            parsed.update({c: parse_number(cells[c]) for c in _NUMBER_COLUMNS})
        except ValueError as err:
            skipped.append({**ident, "reason": f"unparseable value ({err})"})
            continue
        values, clashes = normalise_result(parsed)
        reason = _skip_reason(values, parsed, cells["Notes"])
        if reason:
            skipped.append({**ident, "reason": reason})
            continue
        conflicts.extend({**ident, "quantity": q, "kept_from": a, "kept": x, "other_from": b,
                          "other": y} for q, a, x, b, y in clashes)
        paper = papers.loc[ident["paper"]] if ident["paper"] in papers.index else None
        method = cells["Method"].strip()
        used.append({**ident, "model_group": model_group(ident["model"]), "method": method,
                     "label": f"{ident['paper']} ({method})" if method else ident["paper"],
                     "year": paper["year"] if paper is not None else pd.NA,
                     "venue": paper["venue"] if paper is not None else "",
                     "non_pruning": bool(paper["non_pruning"]) if paper is not None else False,
                     **values, "notes": cells["Notes"].strip(), "source": SOURCE})
    rows = pd.DataFrame(used, columns=ROW_COLUMNS)
    rows["num_trials"] = rows["num_trials"].astype("Int64")
    skip_columns = ["result_id", "paper", "dataset", "model", "reason"]
    conflict_columns = ["result_id", "paper", "dataset", "model", "quantity", "kept_from",
                        "kept", "other_from", "other"]
    return LiteratureResults(rows=rows, skipped=pd.DataFrame(skipped, columns=skip_columns),
                             conflicts=pd.DataFrame(conflicts, columns=conflict_columns),
                             n_input=len(raw), path=folder)


def as_metric_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """`LiteratureResults.rows` in the long shape of `analysis.schema`'s tidy table: one row
    per result x metric of `METRICS` that is reported, with model, dataset, strategy (the
    label), compression (the compression ratio, NaN where only a speedup is reported),
    stage "post" (after fine-tuning, as papers report), split "test", unit and source."""
    wide = rows.assign(strategy=rows["label"], compression=rows["compression_ratio"])
    long = wide.melt(id_vars=["result_id", "paper", "model", "dataset", "strategy",
                              "compression", "source"],
                     value_vars=list(METRICS), var_name="metric", value_name="value")
    long = long.dropna(subset=["value"])
    long["stage"], long["split"] = "post", "test"
    long["unit"] = long["metric"].map(lambda m: "points" if m.startswith("delta_") else unit_of(m))
    return long.reset_index(drop=True)


def _split_list(cell: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in str(cell).split(",") if s.strip())


def load_papers(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per paper: paper, year, month, venue, author, compares_to (tuple of corpus
    papers), n_compares_to, models, datasets, non_pruning (bool), result_ids."""
    folder = literature_path(path)
    raw = _read_csv(folder, PAPERS_FILE, ("Name", "Date", "Venue", "Compares To", "Results"))
    dates = raw["Date"].str.extract(r"^\s*(\d{4})(?:-(\d{1,2}))?")
    frame = pd.DataFrame({
        "paper": raw["Name"].str.strip(),
        "year": pd.to_numeric(dates[0], errors="coerce").astype("Int64"),
        "month": pd.to_numeric(dates[1], errors="coerce").astype("Int64"),
        "venue": raw["Venue"].str.strip(),
        "author": raw.get("AuthorName", pd.Series("", index=raw.index)).str.strip(),
        "compares_to": raw["Compares To"].map(_split_list),
        "models": raw.get("Models", pd.Series("", index=raw.index)).map(_split_list),
        "datasets": raw.get("Datasets", pd.Series("", index=raw.index)).map(_split_list),
        "non_pruning": raw.get("Non-pruning", pd.Series("", index=raw.index)).str.strip() != "",
        "result_ids": raw["Results"].map(_split_list),
    })
    frame.insert(frame.columns.get_loc("compares_to") + 1, "n_compares_to",
                 frame["compares_to"].map(len))
    return frame


# ---------------------------------------------------------------------------- architectures

ARCHITECTURE_FILES = {
    "efficientnet/efficientnet-models-summary.csv": ("Model", "Top1", "Top5", "MParams", "GFLOPS"),
    "keras/keras-models-summary.csv": ("Model", "Top-1 Accuracy", "Top-5 Accuracy", "Parameters", None),
    "pytorch-pretrained/ModelsComparison.csv": ("Model", "Top-1 (%)", "Top-5 (%)", "# Parameters", "FLOPs"),
}
"""Columns (name, top-1, top-5, params, FLOPs) of each summary of unpruned ImageNet models:

- efficientnet (Tan & Le 2019, Table 2): accuracies in percent, params in millions,
  "GFLOPS" in billions of multiply-adds (ResNet-50: 4.1), so macs = GFLOPS x 1e9.
- keras: accuracies as fractions (0.790 -> 79.0), params as a count, no FLOPs.
- pytorch-pretrained: accuracies in percent, params as a count, "FLOPs" in billions of
  multiply-accumulates of the convolutions only (VGG-16: 15.35 = our 15.47 G MACs minus its
  0.12 G of Linear layers; AlexNet 0.66 = 0.714 - 0.059; ResNet-50 4.09), so macs = FLOPs x 1e9.
`accuracies-summary.csv` (accuracy of several ports of each model, no size) is not read.
"""
_SCALES = {"MParams": 1e6, "GFLOPS": 1e9, "FLOPs": 1e9}

_FAMILIES = (
    ("EfficientNet", r"EfficientNet-B\d+"), ("MobileNetV2", r"MobileNet-?v2"),
    ("MobileNet", r"MobileNet(-v1)?"), ("ResNet", r"ResNet-\d+"), ("ResNetV2", r"ResNet-\d+-v2"),
    ("VGG", r"VGG-\d+"),
    ("VGG-BN", r"VGG-\d+_BN"),
)


def architecture_family(name: str) -> str:
    """'VGG-16' -> 'VGG', 'EfficientNet-B3' -> 'EfficientNet', 'MobileNet-v2' ->
    'MobileNetV2'; other names -> their leading letters ('DenseNet-121 (k=32)' -> 'DenseNet')."""
    for family, pattern in _FAMILIES:
        if re.fullmatch(pattern, name.strip(), re.I):
            return family
    match = re.match(r"[A-Za-z]+", name.strip())
    return match.group(0) if match else name.strip()


def load_architectures(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Unpruned ImageNet architectures: name, family, top1, top5 (percent), params (count),
    macs (multiply-accumulates, NaN where the file has none), origin (file), source."""
    folder = literature_path(path)
    frames = []
    for name, (model, top1, top5, params, flops) in ARCHITECTURE_FILES.items():
        raw = _read_csv(folder, name, tuple(c for c in (model, top1, top5, params, flops) if c))
        try:
            acc = {k: raw[c].map(parse_percent) for k, c in (("top1", top1), ("top5", top5))}
            size = raw[params].map(parse_number) * _SCALES.get(params, 1.0)
            macs = raw[flops].map(parse_number) * _SCALES[flops] if flops else math.nan
        except ValueError as err:
            raise AnalysisError(f"{folder / name}: unparseable value ({err})") from None
        if all(acc["top1"].dropna() <= 1.0):  # keras writes fractions
            acc = {k: a * 100 for k, a in acc.items()}
        names = raw[model].map(canonical_name)
        frames.append(pd.DataFrame({"name": names, "family": names.map(architecture_family),
                                    **acc, "params": size, "macs": macs, "origin": name,
                                    "source": SOURCE}))
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------------------- statistics

@dataclass(frozen=True)
class CorpusStatistics:
    """Counts the paper reports about its corpus (see `corpus_statistics`)."""

    n_papers: int
    n_non_pruning: int
    n_results: int
    n_results_used: int
    papers_per_year: pd.Series
    papers_per_venue: pd.Series
    compares_to: pd.Series
    reporting: pd.DataFrame
    top_pairs: pd.DataFrame
    n_datasets: int
    n_models: int
    n_pairs: int

    def compares_at_most(self, k: int) -> int:
        """Papers that compare to at most `k` other papers of the corpus."""
        return int(self.compares_to[self.compares_to.index <= k].sum())


def corpus_statistics(path: str | os.PathLike | None = None, top: int = 10) -> CorpusStatistics:
    """Papers per year and venue; how many other corpus papers each paper compares to
    ('Compares To'); how many results give a trial count (NumTrials) or a spread (stdTop1 or
    stdOrigTop1), over all input rows, used rows and papers; the `top` (dataset, model)
    pairs by number of papers. Unknown names ('???') are not counted as datasets or models."""
    folder = literature_path(path)
    papers = load_papers(folder)
    results = load_results(folder)
    raw = _read_csv(folder, RESULTS_FILE, RESULT_COLUMNS)
    raw = raw.assign(dataset=raw["Dataset"].map(canonical_name), model=raw["Model"].map(canonical_name),
                     paper=raw["Paper"].str.strip(), result_id=raw["Name"].str.strip())
    trials = raw["NumTrials"].str.strip() != ""
    spread = (raw["stdTop1"].str.strip() != "") | (raw["stdOrigTop1"].str.strip() != "")
    used = raw["result_id"].isin(set(results.rows.get("result_id", ())))
    by_paper = pd.DataFrame({"paper": raw["paper"], "t": trials, "s": spread}).groupby("paper").any()

    def counts(t: pd.Series, s: pd.Series) -> dict:
        return {"n": len(t), "trial_count": int(t.sum()), "spread": int(s.sum()),
                "either": int((t | s).sum())}

    reporting = pd.DataFrame({"all results": counts(trials, spread),
                              "usable results": counts(trials[used], spread[used]),
                              "papers": counts(by_paper["t"], by_paper["s"])}).T
    known = raw[(raw["dataset"] != "???") & (raw["model"] != "???")]
    pairs = (known.groupby(["dataset", "model"])
             .agg(papers=("paper", "nunique"), results=("result_id", "size"))
             .reset_index().sort_values(["papers", "results"], ascending=False))
    return CorpusStatistics(
        n_papers=len(papers), n_non_pruning=int(papers["non_pruning"].sum()),
        n_results=results.n_input, n_results_used=len(results.rows),
        papers_per_year=papers["year"].value_counts().sort_index(),
        papers_per_venue=papers["venue"].value_counts(),
        compares_to=papers["n_compares_to"].value_counts().sort_index(),
        reporting=reporting, top_pairs=pairs.head(top).reset_index(drop=True),
        n_datasets=known["dataset"].nunique(), n_models=known["model"].nunique(),
        n_pairs=len(pairs))


PAPER_COUNTS = {"papers": 81, "datasets": 49, "architectures": 132}
"""The corpus sizes the paper states in its text (Blalock et al. 2020, section 3)."""


def format_statistics(stats: CorpusStatistics) -> str:
    """The statistics as plain text lines, for printing and for quoting in a README."""
    n = stats.n_papers
    years = ", ".join(f"{y}: {c}" for y, c in stats.papers_per_year.items())
    venues = ", ".join(f"{v}: {c}" for v, c in stats.papers_per_venue.items())
    compares = ", ".join(f"{k}: {c}" for k, c in stats.compares_to.items())
    lines = [
        f"papers: {n} ({stats.n_non_pruning} marked non-pruning); result rows: "
        f"{stats.n_results} ({stats.n_results_used} usable)",
        f"papers per year: {years}",
        f"papers per venue: {venues}",
        f"other corpus papers compared to -> papers: {compares}",
        f"  compare to none: {stats.compares_at_most(0)}/{n}; at most 1: "
        f"{stats.compares_at_most(1)}/{n}; at most 3: {stats.compares_at_most(3)}/{n}",
        f"datasets: {stats.n_datasets}, architectures: {stats.n_models}, "
        f"(dataset, architecture) pairs: {stats.n_pairs}",
    ]
    for scope, row in stats.reporting.iterrows():
        lines.append(f"{scope} reporting a trial count: {row.trial_count}/{row.n}, a spread: "
                     f"{row.spread}/{row.n}, either: {row.either}/{row.n}")
    lines.append("most used (dataset, architecture) pairs (papers, result rows):")
    lines.extend(f"  {r.dataset} {r.model}: {r.papers} papers, {r.results} rows"
                 for r in stats.top_pairs.itertuples())
    ours = {"papers": n, "datasets": stats.n_datasets, "architectures": stats.n_models}
    agree = all(ours[k] == v for k, v in PAPER_COUNTS.items())
    lines.append("against the paper's text: " + ", ".join(f"{k} {ours[k]} (paper: {v})" for k, v in PAPER_COUNTS.items())
                 + ("; all agree" if agree else "; they DIFFER"))
    return "\n".join(lines)
