#!/usr/bin/env bash
# Install everything (first run), lint, check the layer contract, run the test suite.
# Extra arguments go to pytest (e.g. -m "not e2e" for the unit tests alone).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/lint-imports
exec .venv/bin/python -m pytest "$@"
