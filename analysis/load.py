"""Reading the store (or an exported CSV) into one validated tidy data frame.

The store is `<store>/runs/<run_id>.json`, one record per run (see `analysis.schema`);
other folders of the store are ignored. A corrupt, partial or wrong-schema record is
skipped with a `StoreWarning` that names the file, never fatal. `validate` checks a tidy
frame from any source: a missing required column is an `AnalysisError` naming it.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, TextIO

import numpy as np
import pandas as pd

from shrinkbench.analysis.errors import AnalysisError, StoreWarning
from shrinkbench.analysis.schema import (CONFOUNDER_COLUMNS, IDENTITY_COLUMNS, RECORD_SCHEMA,
                                        REQUIRED_COLUMNS, SPLITS, STAGES, TIDY_COLUMNS, flat_config,
                                        non_finite_metrics, record_to_rows, unit_of)

ROW_STAGES = STAGES + ("none",)
"""Stages a tidy row may carry: `none` is the stage of the single row of a failed run."""

STATUSES = ("ok", "failed")
INT_COLUMNS = ("base_seed", "seed", "prune_steps", "seed_free")
FLOAT_COLUMNS = ("compression", "budget_epochs", "finetune_epochs", "finetune_lr", "value")
DEFAULTS = {
    "status": "ok",
    "strategy_version": "",
    "granularity": "weight",
    "target": "compression",
    "when": "after_training",
    "control": "none",
    "schedule": "one_shot",
    "seed_free": 0,
    "base_id": "",
    "prune_steps": 1,
    "finetune_epochs": 0.0,
    "finetune_optimizer": "",
    "finetune_lr": 0.0,
    "data_split": "",
    "code_version": "",
    "compute": "",
    "protocol": "",
    "protocol_settings": "",
}


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class StoreScan:
    """A store read into a tidy table, with the files that had to be skipped."""

    table: pd.DataFrame
    source: str
    records: int
    skipped: list[SkippedFile] = field(default_factory=list)
    configs: pd.DataFrame | None = None
    """One row per record: `run_id` and its full config as dotted `config.*` columns."""

    def with_config_columns(self) -> pd.DataFrame:
        """The tidy table with every run's full config joined on as `config.*` columns."""
        if self.configs is None or self.configs.empty:
            return self.table
        return self.table.merge(self.configs, on="run_id", how="left")


def _record_rows(record: object) -> list[dict]:
    """Tidy rows of one parsed record; raises ValueError saying why a record is unusable."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if record.get("schema") != RECORD_SCHEMA:
        raise ValueError(f"schema {record.get('schema')!r}, expected {RECORD_SCHEMA}")
    try:
        rows = list(record_to_rows(record))
    except KeyError as exc:
        raise ValueError(f"missing key {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"malformed field ({exc})") from None
    for row in rows:
        if row["stage"] not in ROW_STAGES or row["split"] not in SPLITS:
            raise ValueError(f"unknown stage/split {row['stage']!r}/{row['split']!r}")
    return rows


@dataclass(frozen=True)
class ReadRecord:
    """One usable record file: its tidy rows and its flat config row."""

    path: Path
    rows: list[dict]
    config: dict


def _runs_folder(store: Path) -> Path:
    if not store.is_dir():
        raise AnalysisError(f"store {str(store)!r} does not exist; pass --store DIR or --csv FILE")
    runs = store / "runs"
    if not runs.is_dir():
        raise AnalysisError(f"store {str(store)!r} has no runs/ folder; is it a shrinkbench store?")
    return runs


def iter_records(store: str | Path, skipped: list[SkippedFile], warn: bool = True) -> Iterator[ReadRecord]:
    """Every usable `<store>/runs/*.json` in name order, one at a time (memory: one record);
    an unusable file is appended to `skipped` (and warned about with a StoreWarning when
    `warn`), as is a record whose run_id is not its file name (a stray copy)."""
    runs = _runs_folder(Path(store))

    def skip(path: Path, reason: str) -> None:
        skipped.append(SkippedFile(str(path), reason))
        if warn:
            warnings.warn(f"skipped {path}: {reason}", StoreWarning, stacklevel=3)

    for path in sorted(runs.glob("*.json")):
        if path.name.startswith("."):  # a writer's temporary file, never a record
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
            new_rows = _record_rows(record)
            if str(record["run_id"]) != path.stem:
                original = runs / f"{record['run_id']}.json"
                raise ValueError(f"its run_id {record['run_id']!r} is not its file name"
                                 + (f" (a copy of {original.name}? it would count that run twice)"
                                    if original.is_file() else ""))
        except json.JSONDecodeError as exc:
            skip(path, f"not valid JSON ({exc.msg} at line {exc.lineno})")
            continue
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            skip(path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            continue
        nan = non_finite_metrics(record)
        if nan and warn:
            warnings.warn(f"{path}: non-finite value of {', '.join(nan[:3])}{' ...' if len(nan) > 3 else ''} "
                          "(kept as NaN, left out of every mean)", StoreWarning, stacklevel=3)
        yield ReadRecord(path, new_rows, {"run_id": str(record["run_id"]), **flat_config(record["config"])})


def _no_records(store: str | Path, skipped: list[SkippedFile]) -> AnalysisError:
    why = "; ".join(f"{Path(s.path).name}: {s.reason}" for s in skipped[:3])
    more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
    return AnalysisError(f"store {str(store)!r} holds no readable run records in runs/"
                         + (f"; unreadable: {why}{more}" if skipped else ""))


def scan_store(store: str | Path) -> StoreScan:
    """Read every `<store>/runs/*.json`; unusable files are skipped with a StoreWarning."""
    rows: list[dict] = []
    configs: list[dict] = []
    skipped: list[SkippedFile] = []
    for read in iter_records(store, skipped):
        rows.extend(read.rows)
        configs.append(read.config)
    if not rows:
        raise _no_records(store, skipped)
    table = validate(pd.DataFrame.from_records(rows, columns=list(TIDY_COLUMNS)), str(store))
    return StoreScan(table=table, source=str(store), records=len(configs), skipped=skipped,
                     configs=pd.DataFrame.from_records(configs))


def stream_export(store: str | Path, handle: TextIO, kind: str = "csv", chunk_records: int = 500) -> int:
    """Write the tidy table with its `config.*` columns (what `StoreScan.with_config_columns`
    holds) to `handle` as CSV or as a JSON array of row objects, in bounded memory: two
    passes over the files, the first for the config columns (the union, in order of first
    appearance) and which of them some record lacks, the second writing `chunk_records`
    records at a time. Returns the number of records written."""
    columns: dict[str, None] = {}
    present: dict[str, int] = {}
    skipped: list[SkippedFile] = []
    records = 0
    for read in iter_records(store, skipped):
        records += 1
        for key in read.config:
            columns.setdefault(key, None)
            present[key] = present.get(key, 0) + 1
    if not records:
        raise _no_records(store, skipped)
    config_columns = [c for c in columns if c != "run_id"]
    partial = [c for c in config_columns if present[c] < records]  # NaN somewhere: a float column, as in a merge
    first = True

    def flush(rows: list[dict], configs: list[dict]) -> None:
        nonlocal first
        table = validate(pd.DataFrame.from_records(rows, columns=list(TIDY_COLUMNS)), str(store))
        config = pd.DataFrame.from_records(configs).reindex(columns=["run_id", *config_columns])
        for column in partial:
            if pd.api.types.is_integer_dtype(config[column]) or pd.api.types.is_bool_dtype(config[column]):
                config[column] = config[column].astype(float)
        chunk = table.merge(config, on="run_id", how="left")
        if kind == "csv":
            chunk.to_csv(handle, index=False, header=first)
        else:
            from shrinkbench.analysis.files import frame_records

            for i, row in enumerate(frame_records(chunk)):
                handle.write(("[\n" if first and i == 0 else ",\n") + json.dumps(row, allow_nan=False))
        first = False

    rows, configs = [], []
    for read in iter_records(store, [], warn=False):
        rows.extend(read.rows)
        configs.append(read.config)
        if len(configs) >= chunk_records:
            flush(rows, configs)
            rows, configs = [], []
    if configs:
        flush(rows, configs)
    if kind == "json":
        handle.write("\n]\n")
    return records


def read_store(store: str | Path = "results") -> pd.DataFrame:
    """The tidy table of a store (skipped files are reported as StoreWarning)."""
    return scan_store(store).table


def read_csv(path: str | Path) -> pd.DataFrame:
    """A tidy table exported as CSV (e.g. by `shrinkbench results --format csv`)."""
    path = Path(path)
    if not path.is_file():
        raise AnalysisError(f"CSV file {str(path)!r} does not exist")
    numeric = {c: ["", "nan", "NaN"] for c in INT_COLUMNS + FLOAT_COLUMNS}
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=numeric)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise AnalysisError(f"CSV file {str(path)!r} cannot be parsed: {str(exc).splitlines()[0]}")
    return validate(frame, str(path))


def load_table(store: str | Path | None = "results", csv: str | Path | None = None) -> StoreScan:
    """A CSV if given, else the store."""
    if csv is not None:
        return StoreScan(table=read_csv(csv), source=str(csv), records=0)
    return scan_store(store if store is not None else "results")


def _synthetic_run_ids(frame: pd.DataFrame) -> pd.Series:
    cols = [c for c in IDENTITY_COLUMNS + CONFOUNDER_COLUMNS if c in frame.columns and c != "run_id"]
    hashes = pd.util.hash_pandas_object(frame[cols].astype(str), index=False).to_numpy()
    return pd.Series([f"{h:016x}" for h in hashes], index=frame.index, dtype=object)


def _coerce(frame: pd.DataFrame, column: str, kind: type, source: str) -> None:
    converted = pd.to_numeric(frame[column], errors="coerce")
    bad = converted.isna() & frame[column].notna()
    if column != "value":
        bad |= converted.isna()
    if bad.any():
        example = frame.loc[bad, column].iloc[0]
        raise AnalysisError(f"{source}: column {column!r} must be numeric, found {example!r}")
    if kind is int:
        if not np.allclose(converted, np.round(converted)):
            raise AnalysisError(f"{source}: column {column!r} must hold whole numbers")
        converted = converted.round().astype(np.int64)
    frame[column] = converted.astype(kind if kind is int else np.float64)


def _check_values(frame: pd.DataFrame, column: str, allowed: tuple[str, ...], source: str) -> None:
    unknown = sorted(set(frame[column].unique()) - set(allowed))
    if unknown:
        raise AnalysisError(f"{source}: column {column!r} has value(s) {', '.join(map(repr, unknown[:5]))}; "
                            f"allowed: {', '.join(allowed)}")


def validate(frame: pd.DataFrame, source: str = "table") -> pd.DataFrame:
    """A copy of `frame` in the tidy shape: required columns present, types coerced,
    missing optional columns filled with defaults, stage/split/status values checked."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise AnalysisError(f"{source} lacks required column(s) {', '.join(missing)} "
                            f"(required: {', '.join(REQUIRED_COLUMNS)})")
    if len(frame) == 0:
        raise AnalysisError(f"{source} has no rows")
    frame = frame.copy()
    for column, default in DEFAULTS.items():
        if column not in frame.columns:
            frame[column] = default
    if "budget_epochs" not in frame.columns:  # a table from before budgets were recorded
        epochs = pd.to_numeric(frame["finetune_epochs"], errors="coerce")
        steps = pd.to_numeric(frame["prune_steps"], errors="coerce")
        frame["budget_epochs"] = np.where(frame["strategy"] == "none", epochs, epochs * steps)
    for column in INT_COLUMNS:
        _coerce(frame, column, int, source)
    for column in FLOAT_COLUMNS:
        _coerce(frame, column, float, source)
    text_columns = [c for c in TIDY_COLUMNS if c not in INT_COLUMNS + FLOAT_COLUMNS + ("run_id", "unit")]
    for column in text_columns:
        frame[column] = frame[column].fillna("").astype(str)
    if "run_id" not in frame.columns:
        frame["run_id"] = _synthetic_run_ids(frame)
    frame["run_id"] = frame["run_id"].astype(str)
    if "unit" not in frame.columns:
        frame["unit"] = frame["metric"].map(unit_of)
    frame["unit"] = frame["unit"].fillna("").astype(str)
    _check_values(frame, "stage", ROW_STAGES, source)
    _check_values(frame, "split", SPLITS, source)
    _check_values(frame, "status", STATUSES, source)
    extra = [c for c in frame.columns if c not in TIDY_COLUMNS]
    return frame[list(TIDY_COLUMNS) + extra].reset_index(drop=True)
