"""The shape the architecture keeps: small modules and short functions, so each one reads in one sitting.

A function may run longer than the limit when the line above its `def` says why, with a comment
starting `# long:`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("serve_app", "cluster", "train_jobs", "training_client")
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
SOURCES = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it by job"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_functions_are_short(path):
    source = path.read_text()
    lines = source.splitlines()
    long = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = node.end_lineno - first + 1
            explained = first >= 2 and lines[first - 2].strip().startswith("# long:")
            if length > MAX_FUNCTION_LINES and not explained:
                long.append(f"{node.name} ({length} lines)")
    assert not long, f"{path.relative_to(ROOT)}: {', '.join(long)} over {MAX_FUNCTION_LINES} lines"


def test_route_bodies_are_thin():
    """A route validates, authorises, calls one use case and shapes the response: a few lines."""
    for path in sorted((ROOT / "serve_app" / "routes").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.AsyncFunctionDef):
                body = node.body[1:] if ast.get_docstring(node) else node.body
                lines = body[-1].end_lineno - body[0].lineno + 1
                assert lines <= 10, f"{path.name}:{node.name} has a {lines}-line body"


def test_test_modules_have_unique_names():
    """pytest imports test modules by their base name (no packages under tests/): two alike fail collection."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_tests_kill_only_their_own_processes():
    """Several servers may run on one machine at once (CI jobs, developers): a test kills the processes its own
    server started, by PID (tests/helpers.py, `server_processes`), never every process of a name (`pkill -f`)."""
    command = re.compile(r"""\[\s*["'](pkill|killall)["']""")  # the start of a subprocess command list
    by_name = [f"{p.relative_to(ROOT)}:{n}" for p in sorted((ROOT / "tests").rglob("*.py"))
               for n, line in enumerate(p.read_text().splitlines(), 1) if command.search(line)]
    assert not by_name, f"processes killed by name: {by_name}"


def test_the_docs_layout_names_every_module():
    """The Layout in docs/architecture.md lists each module under its package, so a new module is placed there
    when it is added."""
    import re

    architecture = (ROOT / "docs" / "architecture.md").read_text()
    block = architecture.split("## Layout", 1)[1].split("```", 2)[1]
    sections, current = {}, None
    for line in block.splitlines():
        if line and not line[0].isspace():  # a top-level folder starts its section
            current = line.split("/", 1)[0]
        sections.setdefault(current, []).append(line)
    missing = [str(p.relative_to(ROOT)) for p in SOURCES if p.name not in ("__init__.py", "__main__.py")
               and not re.search(rf"\b{re.escape(p.name)}\b", "\n".join(sections.get(p.relative_to(ROOT).parts[0], [])))]
    assert not missing, f"docs/architecture.md's Layout does not name {missing}"
