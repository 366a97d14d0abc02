"""The results store: one immutable JSON record per run, written atomically.

Layout of a store folder::

    runs/<run_id>.json      one record per finished or failed run (see analysis.schema)
    bases/<base_id>.pt      cached base-model weights (+ .json with how they were made)
    claims/<id>.claim       "this process is working on it" markers (pid, host, time)

Writing a record: the JSON goes to a temporary file in `runs/`, is flushed to disk, and is
then hard-linked to its final name, which fails if the name exists. So a reader never sees
a half-written record, and two processes that finish the same run leave exactly one. A
kill at any moment loses at most the run in flight; its leftovers (temporary files, a claim
of a dead process) are cleaned up or taken over by the next sweep.
"""
from __future__ import annotations

import json
import os
import socket
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from analysis.schema import RECORD_SCHEMA

CLAIM_TTL_S = 24 * 3600.0
"""A claim whose owner cannot be checked (another host) expires after this long."""


class CorruptRecordWarning(UserWarning):
    pass


def write_json_atomic(path: Path, obj: Any, *, exclusive: bool = False) -> bool:
    """Write `obj` as JSON to `path` atomically; with `exclusive`, never replace an existing
    file and return False if one is there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True, allow_nan=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        if not exclusive:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class RecordState:
    status: str  # "missing" | "ok" | "failed" | "corrupt"
    reason: str = ""


class Store:
    def __init__(self, root: str | os.PathLike = "results"):
        self.root = Path(root)
        self.runs = self.root / "runs"
        self.bases = self.root / "bases"
        self.claims = self.root / "claims"

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def record_path(self, run_id: str) -> Path:
        return self.runs / f"{run_id}.json"

    # ------------------------------------------------------------------ records
    def read(self, run_id: str) -> dict[str, Any] | None:
        path = self.record_path(run_id)
        try:
            return _parse(path)
        except FileNotFoundError:
            return None

    def state(self, run_id: str) -> RecordState:
        try:
            record = _parse(self.record_path(run_id))
        except FileNotFoundError:
            return RecordState("missing")
        except ValueError as exc:
            return RecordState("corrupt", str(exc))
        return RecordState(record.get("status", "ok"), record.get("error") or "")

    def write(self, record: dict[str, Any], *, replace: bool = False) -> bool:
        """Store a record; returns False (and changes nothing) if the run is already stored.

        `replace` overwrites a failed or corrupt record (used when retrying)."""
        path = self.record_path(record["run_id"])
        if replace and self.state(record["run_id"]).status in ("failed", "corrupt"):
            return write_json_atomic(path, record)
        return write_json_atomic(path, record, exclusive=True)

    def records(self, *, include_failed: bool = True) -> Iterator[dict[str, Any]]:
        """Every readable record; corrupt ones are reported with a warning and skipped."""
        if not self.runs.is_dir():
            return
        for path in sorted(self.runs.glob("*.json")):
            try:
                record = _parse(path)
            except ValueError as exc:
                warnings.warn(f"skipping {path}: {exc}", CorruptRecordWarning, stacklevel=2)
                continue
            if include_failed or record.get("status", "ok") == "ok":
                yield record

    def run_ids(self) -> set[str]:
        return {p.stem for p in self.runs.glob("*.json")} if self.runs.is_dir() else set()

    # ------------------------------------------------------------------ claims
    def claim(self, key: str) -> bool:
        """Try to become the one process working on `key`; False if a live process has it."""
        self.claims.mkdir(parents=True, exist_ok=True)
        path = self.claims / f"{key}.claim"
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._claim_is_stale(path):
                    return False
                path.unlink(missing_ok=True)  # owner died: take over
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}, fh)
            return True
        return False

    def release(self, key: str) -> None:
        (self.claims / f"{key}.claim").unlink(missing_ok=True)

    def _claim_is_stale(self, path: Path) -> bool:
        try:
            info = json.loads(path.read_text())
        except FileNotFoundError:
            return True
        except ValueError:  # being written right now, or garbage: judge by age
            return time.time() - path.stat().st_mtime > 60
        if info.get("host") == socket.gethostname():
            return not _pid_alive(int(info.get("pid", -1)))
        return time.time() - float(info.get("time", 0)) > CLAIM_TTL_S

    def clean_leftovers(self, older_than_s: float = 3600.0) -> int:
        """Remove temporary files that a killed writer left behind."""
        removed = 0
        now = time.time()
        for folder in (self.runs, self.bases):
            for tmp in folder.glob(".tmp-*") if folder.is_dir() else ():
                try:
                    if now - tmp.stat().st_mtime > older_than_s:
                        tmp.unlink()
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _parse(path: Path) -> dict[str, Any]:
    """Read and check one record; ValueError with the reason if it is unusable."""
    text = path.read_text()
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if record.get("schema") != RECORD_SCHEMA:
        raise ValueError(f"record schema {record.get('schema')!r}, expected {RECORD_SCHEMA}")
    for key in ("run_id", "config", "status"):
        if key not in record:
            raise ValueError(f"missing field {key!r}")
    if record["run_id"] != path.stem:
        raise ValueError(f"run_id {record['run_id']!r} does not match the file name")
    return record
