#!/usr/bin/env bash
# Create .venv and install the project with its test and bench extras. Safe to re-run.
# TORCH_SPEC picks the torch build: the default is the CPU build; for a GPU, e.g.
#   TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128" scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, so the project's "torch>=2.4" is already met and pip pulls no CUDA build on a CPU machine.
.venv/bin/python -m pip install -q ${TORCH_SPEC:-torch==2.13.0}
.venv/bin/python -m pip install -q -e '.[test,bench]'
