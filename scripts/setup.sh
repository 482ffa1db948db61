#!/usr/bin/env bash
# Create .venv and install the project (server, test, bench, tracking and docs extras) at the versions in constraints.txt
# (when .venv's Python is the one they were recorded on; on another, pip resolves from pyproject's bounds).
# Safe to re-run: when .venv/.installed records the same pyproject.toml, constraints.txt, this script, TORCH_SPEC and
# Python, it does nothing (no network). SETUP_FORCE=1 installs again anyway.
# TORCH_SPEC picks the torch build. The default is the CPU build from PyTorch's CPU index (TORCH_CPU_INDEX),
# named explicitly so that pip cannot pick a CUDA build from PyPI; where that index does not answer (a machine
# that reaches only a PyPI mirror), torch==2.13.0 comes from pip's own configured indexes instead, and the
# script says so. For a GPU, e.g.
#   TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128" scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.13.0
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
STAMP=.venv/.installed
# The browser tests/e2e/test_console.py drives: Debian's chromium and chromium-driver, installed the way the rest
# of the machine's packages are when this runs as root where apt-get is (a CI image, a container); elsewhere the
# test skips, naming what to install. Only when missing, so a re-run asks nothing. SETUP_BROWSER=0 leaves it out.
if [ "${SETUP_BROWSER:-1}" = 1 ] && ! { command -v chromium && command -v chromedriver; } >/dev/null \
        && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup.sh: installing chromium and chromium-driver (apt-get) for the console's browser test"
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 \
           && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }; } \
      || echo "setup.sh: apt-get could not install chromium: tests/e2e/test_console.py will skip"
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# The stamp holds what was asked for (TORCH_SPEC, else the CPU index), so a re-run decides without the network.
want=$({ cat pyproject.toml constraints.txt scripts/setup.sh; echo "TORCH_SPEC=${TORCH_SPEC:-cpu from $TORCH_CPU_INDEX}"
         .venv/bin/python -VV; } | sha256sum | cut -d' ' -f1)
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
if [ -z "${TORCH_SPEC:-}" ]; then
    if "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=10).close()' \
            "$TORCH_CPU_INDEX" 2>/dev/null; then
        TORCH_SPEC="torch==$TORCH_VERSION --index-url $TORCH_CPU_INDEX"
    else
        echo "setup.sh: PyTorch's CPU index ($TORCH_CPU_INDEX) does not answer: installing torch==$TORCH_VERSION" \
             "from pip's configured indexes (set TORCH_SPEC or TORCH_CPU_INDEX to choose the build)"
        TORCH_SPEC="torch==$TORCH_VERSION"
    fi
fi
# $constraints and $TORCH_SPEC stay unquoted: each may be several pip arguments.
.venv/bin/python -m pip install -q $constraints --upgrade pip
# torch first, so the project's "torch>=2.4" is already met and pip pulls no CUDA build on a CPU machine.
.venv/bin/python -m pip install -q $TORCH_SPEC
.venv/bin/python -m pip install -q $constraints -e '.[server,test,bench,tracking,docs]'
# The tests' S3-compatible server (tests/s3_store.py), as its own step: resolved with the rest, moto[server] sent
# pip's resolver past an hour, and botocore asks for python-dateutil<3 where the venv has 4 (it works with it).
# So exactly the packages the S3 part of moto's server needs, pinned, without pip's resolution: none installed
# above is upgraded or downgraded (`pip check` reports only that botocore/dateutil bound).
.venv/bin/python -m pip install -q --no-deps moto==5.2.6 boto3==1.44.18 botocore==1.44.18 s3transfer==0.19.3 \
    jmespath==1.1.0 xmltodict==1.0.4 responses==0.26.3 flask==3.1.3 flask-cors==6.0.5 blinker==1.9.0 \
    itsdangerous==2.2.0 py-partiql-parser==0.6.3
echo "$want" >"$STAMP"
