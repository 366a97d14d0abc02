#!/usr/bin/env bash
# Runs the default benchmark (Fashion-MNIST, the paper's five baselines, 6 compressions,
# 3 seeds), then writes the report: figures, tables and the significance verdict.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${SHRINKBENCH_VENV:-.venv}"
exec "$VENV/bin/shrinkbench" benchmark "$@"
