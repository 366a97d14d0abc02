"""The `shrinkbench` command line.

Every user mistake ends in one line on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from shrinkbench.core.errors import ShrinkBenchError


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes end in ONE line on stderr (what was wrong, where to look) and exit 2."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}; see {self.prog} --help\n")


def _version() -> str:
    """`0.1.0 (git 31f22f4...)`: without importing torch (the provenance module does)."""
    import subprocess
    from importlib import metadata
    from pathlib import Path

    try:
        version = metadata.version("shrinkbench")
    except metadata.PackageNotFoundError:
        version = "unknown"
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).resolve().parent)
        if out.returncode == 0 and out.stdout.strip():
            return f"{version} (git {out.stdout.strip()})"
    except (OSError, subprocess.SubprocessError):
        pass
    return version


def build_parser() -> argparse.ArgumentParser:
    from shrinkbench.commands import COMMANDS

    parser = OneLineParser(
        prog="shrinkbench",
        description="Benchmark neural-network pruning: fixed model zoo, one MACs convention, "
                    "multi-seed runs, statistics.")
    parser.add_argument("--version", action="version", version=f"shrinkbench {_version()}",
                        help="print the version (package version and the code version of this checkout) and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from shrinkbench.analysis.errors import AnalysisError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error already said in one line
        return int(done.code or 0)
    try:
        return int(args.func(args) or 0)
    except (ShrinkBenchError, AnalysisError) as exc:
        print(f"shrinkbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("shrinkbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
