"""Sub-commands of the CLI; each module has `register(subparsers)`. The analysis commands
(report, compare, plan-seeds, results) come from the torch-free `analysis` package."""
from shrinkbench.analysis import cli as analysis_cli
from shrinkbench.commands import listing, llm, running

COMMANDS = [listing.register, running.register, llm.register, analysis_cli.register]
