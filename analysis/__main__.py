"""`python -m shrinkbench.analysis ...`: the analysis subcommands without the main shrinkbench CLI."""
import sys

from shrinkbench.analysis.cli import main

sys.exit(main())
