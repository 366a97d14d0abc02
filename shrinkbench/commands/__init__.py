"""Sub-commands of the CLI: the generic ones (listing, `run`, `benchmark`), each track's own
(`Track.register_commands`: `prune`, `prune-llm`), and the analysis commands (report, compare,
plan-seeds, results) of the torch-free `analysis` package. Each has `register(subparsers)`."""
from shrinkbench.analysis import cli as analysis_cli
from shrinkbench.commands import listing, running


def _track_commands(sub) -> None:
    from shrinkbench.core.tracks import tracks

    for track in tracks():
        if track.register_commands is not None:
            track.register_commands(sub)


COMMANDS = [listing.register, running.register, _track_commands, analysis_cli.register]
