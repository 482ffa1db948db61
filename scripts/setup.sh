#!/usr/bin/env bash
# Create .venv and install the project (server, test and bench extras) at the versions in constraints.txt
# (when .venv's Python is the one they were recorded on; on another, pip resolves from pyproject's bounds).
# Safe to re-run: when .venv/.installed records the same pyproject.toml, constraints.txt, TORCH_SPEC and
# Python, it does nothing (no network). SETUP_FORCE=1 installs again anyway.
# TORCH_SPEC picks the torch build: the default is the CPU build; for a GPU, e.g.
#   TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128" scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
STAMP=.venv/.installed
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
want=$({ cat pyproject.toml constraints.txt; echo "TORCH_SPEC=$TORCH_SPEC"; .venv/bin/python -VV; } | sha256sum | cut -d' ' -f1)
if [ "${SETUP_FORCE:-0}" != 1 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    exit 0
fi
rm -f "$STAMP"
recorded=$(sed -n 's/^# python: //p' constraints.txt)
current=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
constraints="-c constraints.txt"
if [ "$current" != "$recorded" ]; then
    echo "setup.sh: constraints.txt was recorded on Python $recorded, .venv has $current: installing without it"
    constraints=""
fi
# $constraints and $TORCH_SPEC stay unquoted: each may be several pip arguments.
.venv/bin/python -m pip install -q $constraints --upgrade pip
# torch first, so the project's "torch>=2.4" is already met and pip pulls no CUDA build on a CPU machine.
.venv/bin/python -m pip install -q $TORCH_SPEC
.venv/bin/python -m pip install -q $constraints -e '.[server,test,bench,tracking]'
echo "$want" >"$STAMP"
