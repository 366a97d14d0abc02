"""The `shrinkbench` command line.

Every user mistake ends in one line on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from shrinkbench.errors import ShrinkBenchError


def build_parser() -> argparse.ArgumentParser:
    from shrinkbench.commands import COMMANDS

    parser = argparse.ArgumentParser(
        prog="shrinkbench",
        description="Benchmark neural-network pruning: fixed model zoo, one MACs convention, "
                    "multi-seed runs, statistics.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from shrinkbench.analysis.errors import AnalysisError

    parser = build_parser()
    args = parser.parse_args(argv)
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
