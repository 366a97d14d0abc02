"""Sub-commands of the CLI; each module has `register(subparsers)`."""
from shrinkbench.commands import listing

COMMANDS = [listing.register]
