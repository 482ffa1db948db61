#!/usr/bin/env bash
# Rewrite constraints.txt from .venv after the suite passed there: every installed distribution at its
# installed version (pip too; the project itself and torch left out).
set -euo pipefail
cd "$(dirname "$0")/.."
{
    cat <<'HEADER'
# The versions the test suite last passed with, on Linux x86_64 (CPU) and the Python named below.
# scripts/setup.sh installs the project with `-c constraints.txt` when its Python is that one; on another
# Python it resolves from the bounds in pyproject.toml instead.
# torch is not listed: scripts/setup.sh installs it first from TORCH_SPEC (default torch==2.13.0, the CPU
# build; a CUDA build on a GPU machine), and nothing here asks for another version.
# Regenerate after `scripts/test.sh` passed on upgraded packages: scripts/freeze_constraints.sh
HEADER
    .venv/bin/python -c 'import sys; print("# python: %d.%d" % sys.version_info[:2])'
    .venv/bin/python -m pip freeze --all --exclude-editable | grep -v -i -E '^(torch|training-module)(==| @)'
} >constraints.txt.tmp
mv constraints.txt.tmp constraints.txt
