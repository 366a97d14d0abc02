#!/usr/bin/env bash
# Runs the whole test suite, after doing its own set-up. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${SHRINKBENCH_VENV:-.venv}"
exec "$VENV/bin/python" -m pytest "$@"
