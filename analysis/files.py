"""Atomic file output and JSON-safe conversion.

Every file the analysis writes goes to a temporary file in the same folder first and is
moved into place with `os.replace`, so an interrupted run never leaves a half-written file.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np


def write_atomic(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call `write(tmp_path)` and move the result to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    mask = os.umask(0)
    os.umask(mask)
    try:
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp creates 0600; give the usual permissions
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def check_output(path: str | Path, kind: str, option: str = "--out") -> None:
    """Refuse, before any work, an output path that cannot take a `kind` ("file" or "folder"):
    a folder where a file is asked for and the reverse, a path under a file, and a folder that
    refuses a new file (read-only; tried by creating and removing a probe file, since
    permission bits do not bind every user). An AnalysisError of one line."""
    from shrinkbench.analysis.errors import AnalysisError

    target = Path(path)
    if target.is_dir() and kind == "file":
        raise AnalysisError(f"{option} {path} is a folder; name the file to write")
    if target.exists() and not target.is_dir() and kind == "folder":
        raise AnalysisError(f"{option} {path} is a file; name a folder to write into")
    where = target if kind == "folder" else target.parent
    while not where.exists() and where != where.parent:
        where = where.parent
    if not where.is_dir():
        raise AnalysisError(f"{option} {path} lies under {where}, which is a file; name another place")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=where)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise AnalysisError(f"{option} {path}: cannot write into {where} ({exc.strerror or exc})") from None


def write_text(path: str | Path, text: str) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)

    return write_atomic(path, write)


def json_safe(value: Any) -> Any:
    """Plain JSON types: NaN and infinities become null, numpy scalars become Python ones."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (int, str)):
        return value
    return str(value)


def to_json(value: Any) -> str:
    return json.dumps(json_safe(value), indent=2, allow_nan=False) + "\n"


def frame_records(frame) -> list[dict]:
    """A data frame as a list of JSON-safe row dicts."""
    return json_safe(frame.to_dict(orient="records"))
