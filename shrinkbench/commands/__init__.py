"""Sub-commands of the CLI; each module has `register(subparsers)`."""
from shrinkbench.commands import listing, running

COMMANDS = [listing.register, running.register]
