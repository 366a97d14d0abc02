#!/usr/bin/env bash
# Runs the whole test suite, after doing its own set-up. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${SHRINKBENCH_VENV:-.venv}"

# The report's own checks: a real headless browser (the summary comes first) and pdflatex (the
# LaTeX tables compile cleanly). Installed from Debian where missing; those tests skip, saying
# why, where they cannot be (SHRINKBENCH_SKIP_REPORT_TOOLS=1 skips the installation).
if [ -z "${SHRINKBENCH_SKIP_REPORT_TOOLS:-}" ] && command -v apt-get >/dev/null 2>&1 \
   && { ! command -v chromium >/dev/null 2>&1 || ! command -v pdflatex >/dev/null 2>&1; }; then
    echo "[test] installing chromium and pdflatex for the report checks (Debian; first time: a few minutes)"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
    tools="chromium texlive-latex-base texlive-latex-recommended"
    if ! { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $tools >/dev/null 2>&1 \
           || { $SUDO apt-get update -q >/dev/null 2>&1 \
                && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $tools >/dev/null 2>&1; }; }; then
        echo "[test] could not install chromium/pdflatex: the browser and LaTeX checks will be skipped" >&2
    fi
fi
exec "$VENV/bin/python" -m pytest "$@"
