"""`python -m analysis ...`: the analysis subcommands without the main shrinkbench CLI."""
import sys

from analysis.cli import main

sys.exit(main())
