"""The results store: one immutable JSON record per run, written atomically.

Layout of a store folder::

    runs/<run_id>.json      one record per finished or failed run (see analysis.schema)
    bases/<base_id>.pt      cached base-model weights (+ .json with how they were made)
    claims/<id>.claim       "this process is working on it" markers (pid, host, time)
    slurm-logs/             submitit's job files and logs (Slurm executor only)

Writing a record: the JSON goes to a temporary file in `runs/`, is flushed to disk, and is
then hard-linked to its final name, which fails if the name exists. So a reader never sees
a half-written record, and two processes that finish the same run leave exactly one. A
kill at any moment loses at most the run in flight; its leftovers (temporary files, a claim
of a dead process) are cleaned up or taken over by the next sweep.

Claims: a claim is created with O_EXCL, so one process gets it. While a process holds
claims, a background thread touches their files every CLAIM_HEARTBEAT_S seconds. A claim
is stale, and the next process that wants it takes it over, when its owner is gone: on
the same machine (same host name and pid namespace) when its process no longer exists; on
another machine (a Ray or Slurm worker on a shared filesystem) when its file has not been
touched for CLAIM_STALE_S seconds. That is also the slack allowed for clock skew between
machines sharing the store.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from shrinkbench.analysis.schema import RECORD_SCHEMA

CLAIM_HEARTBEAT_S = 30.0
"""How often a process touches the claim files it holds."""
CLAIM_STALE_S = 300.0
"""A claim of another machine whose file was not touched for this long is taken over."""


class CorruptRecordWarning(UserWarning):
    pass


def _machine() -> str:
    """A short tag of this machine and pid namespace (pids are only comparable within one)."""
    import hashlib

    return hashlib.sha256(f"{socket.gethostname()}|{_pid_namespace()}".encode()).hexdigest()[:8]


def temporary_path(path: Path) -> Path:
    """Where `path` is written before it is moved into place:
    `.tmp-<pid>-<machine>-<random>-<name>.part` in the same folder, so a leftover of a killed
    writer can be told from one being written (and never matches a reader's `*.json`)."""
    return path.parent / f".tmp-{os.getpid()}-{_machine()}-{uuid.uuid4().hex[:8]}-{path.name}.part"


def _writer_gone(tmp: Path) -> bool:
    """Whether the process that made temporary file `tmp` no longer runs on this machine
    (False when it cannot be told: another machine's, or an older name)."""
    parts = tmp.name.split("-", 4)
    if len(parts) < 5 or not parts[1].isdigit() or parts[2] != _machine():
        return False
    return not _pid_alive(int(parts[1]))


def write_json_atomic(path: Path, obj: Any, *, exclusive: bool = False) -> bool:
    """Write `obj` as JSON to `path` atomically; with `exclusive`, never replace an existing
    file and return False if one is there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
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

    def check_writable(self, create: bool = True) -> "Store":
        """Make sure the store can take records (creating its folder unless `create` is
        False), or raise a one-line ConfigError saying what is in the way: a file where the
        folder should be, a folder that cannot be created or written, a `runs`/`bases`/`claims`
        that is not a folder."""
        from shrinkbench.core.errors import ConfigError

        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"store {str(self.root)!r} is a file, not a folder; pass --store DIR")
        if not create and not self.root.exists():
            return self
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the store folder {str(self.root)!r}: {exc.strerror or exc}") from None
        for part in (self.runs, self.bases, self.claims):
            if part.exists() and not part.is_dir():
                raise ConfigError(f"store {str(self.root)!r}: {part.name} is a file, not a folder; is this a "
                                  "shrinkbench store?")
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise ConfigError(f"store {str(self.root)!r} is not writable by this user")
        return self

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
            if path.name.startswith("."):  # a writer's temporary file
                continue
            try:
                record = _parse(path)
            except ValueError as exc:
                warnings.warn(f"skipping {path}: {exc}", CorruptRecordWarning, stacklevel=2)
                continue
            if include_failed or record.get("status", "ok") == "ok":
                yield record


    def has_base(self, base_id: str) -> bool:
        """Whether the base model `base_id` is cached (its weights and description)."""
        return (self.bases / f"{base_id}.pt").is_file() and (self.bases / f"{base_id}.json").is_file()

    # ------------------------------------------------------------------ claims
    def claim(self, key: str) -> bool:
        """Try to become the one process working on `key`; False if a live process has it."""
        self.claims.mkdir(parents=True, exist_ok=True)
        path = self.claims / f"{key}.claim"
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                seen = _claim_if_stale(path)
                if seen is None:
                    return False
                _take_over(path, seen)  # owner died
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump({**_owner(), "time": time.time()}, fh)
            _HEARTBEAT.add(path)
            return True
        return False

    def release(self, key: str) -> None:
        """Give up the claim on `key` (only if this process holds it)."""
        path = self.claims / f"{key}.claim"
        _HEARTBEAT.remove(path)
        try:
            info = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return
        if {k: info.get(k) for k in ("pid", "host", "pidns")} == _owner():
            path.unlink(missing_ok=True)

    def clean_leftovers(self, older_than_s: float = 3600.0) -> int:
        """Remove temporary files that a killed writer left behind: at once where the writer
        was a process of this machine that is gone, else once older than `older_than_s`."""
        removed = 0
        now = time.time()
        for folder in (self.runs, self.bases):
            for tmp in folder.glob(".tmp-*") if folder.is_dir() else ():
                try:
                    if _writer_gone(tmp) or now - tmp.stat().st_mtime > older_than_s:
                        tmp.unlink()
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed

    def tidy(self) -> int:
        """Leave the store clean after a sweep: the leftovers of killed writers, and every
        claim whose owner is gone (a dead process of this machine, or another machine's claim
        untouched for CLAIM_STALE_S). Returns how many files went."""
        removed = self.clean_leftovers()
        for path in self.claims.glob("*.claim") if self.claims.is_dir() else ():
            seen = _claim_if_stale(path)
            if seen:
                _take_over(path, seen)
                removed += not path.exists()
        return removed


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _owner() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "pidns": _pid_namespace()}


def _claim_if_stale(path: Path) -> str | None:
    """The text of the claim at `path` if its owner is gone (see the module docstring), else None."""
    try:
        text, mtime = path.read_text(), path.stat().st_mtime
    except FileNotFoundError:
        return ""
    age = time.time() - mtime
    try:
        info = json.loads(text)
        pid = int(info.get("pid", -1))
    except (ValueError, TypeError, AttributeError):  # being written right now, or garbage
        return text if age > 60 else None
    me = _owner()
    if info.get("host") == me["host"] and info.get("pidns", "") == me["pidns"]:
        return None if _pid_alive(pid) else text
    return text if age > CLAIM_STALE_S else None


def _take_over(path: Path, seen: str) -> None:
    """Remove the stale claim whose text was `seen`; if another process replaced it with a
    fresh claim in the meantime, leave that one in place."""
    tomb = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.stale")
    try:
        os.rename(path, tomb)
    except FileNotFoundError:
        return
    try:
        if tomb.read_text() != seen:
            os.link(tomb, path)  # put the live claim back (fails if yet another one is there)
    except (FileExistsError, FileNotFoundError):
        pass
    finally:
        tomb.unlink(missing_ok=True)


class _Heartbeat:
    """Touches the claim files this process holds, every CLAIM_HEARTBEAT_S seconds, from
    one daemon thread (started on the first claim; again in a forked child)."""

    def __init__(self) -> None:
        self.paths: set[Path] = set()
        self.lock = threading.Lock()
        self.owner_pid = -1

    def add(self, path: Path) -> None:
        with self.lock:
            if self.owner_pid != os.getpid():  # first claim in this process
                self.paths.clear()
                self.owner_pid = os.getpid()
                threading.Thread(target=self._beat, name="shrinkbench-claim-heartbeat", daemon=True).start()
            self.paths.add(path)

    def remove(self, path: Path) -> None:
        with self.lock:
            self.paths.discard(path)

    def _beat(self) -> None:
        while True:
            time.sleep(CLAIM_HEARTBEAT_S)
            with self.lock:
                paths = list(self.paths)
            for path in paths:
                try:
                    os.utime(path)
                except OSError:
                    pass


_HEARTBEAT = _Heartbeat()


def _pid_alive(pid: int) -> bool:
    """Whether process `pid` of this machine runs; a zombie (dead, not yet reaped by its
    parent, e.g. a killed Ray worker) counts as dead."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (not Linux), or it just went away
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
