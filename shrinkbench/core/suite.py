"""Suite files: one TOML file per sweep, read here and expanded by the track it names.

A suite's top-level `track` key names its track (`vision` when absent, as in every suite before
the language-model track; `llm`; any registered track, `shrinkbench.core.tracks`), and the
track's `load_suite(data, where, path, added)` expands the rest into validated configs. A suite
named without a path ("default") is looked up among the suites shipped with the package
(`shrinkbench/suites/*.toml`; `shrinkbench suites` lists them).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shrinkbench.core.errors import ConfigError

SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"


@dataclass(frozen=True)
class Suite:
    """A loaded suite: its name, file, description and every run's config (of its track)."""

    name: str
    path: str
    description: str
    configs: tuple[Any, ...]
    variant_of: dict[str, str] = field(default_factory=dict)
    """run id -> variant name, for suites with [variants]."""
    design: str = ""
    """What the seeds mean for the statistics (the track says it: one base model, or several)."""


def shipped_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def find_suite(name_or_path: str) -> Path:
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    shipped = SUITES_DIR / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    raise ConfigError(f"suite {name_or_path!r} not found: no such file, and the shipped suites are "
                      f"{', '.join(shipped_suites())}")


def load_suite(name_or_path: str, overrides: dict[str, Any] | None = None, added: list[str] | None = None) -> Suite:
    """Parse a suite, then let its track expand and validate it. Every error names the file and
    the place. `overrides` replace [sweep] keys; `added` strategies (`--add-strategy`) join the
    suite's strategies as its track defines."""
    from shrinkbench.core.tracks import get_track

    path = find_suite(name_or_path)
    where = str(path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not a text file") from None
    for key, value in (overrides or {}).items():
        data.setdefault("sweep", {})[key] = value
    name = data.pop("track", "vision")
    track = get_track(name, where=f"{where}: track")
    return track.load_suite(data, where, path, added)
