"""The README stays what it is for (what this is, the two commands, one curl session, links into docs/), its
commands are the ones that exist, and CI runs the README's test command and builds the docs strictly."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _two_commands(text: str) -> str:
    return text.split("## The two commands", 1)[1].split("```", 2)[1]


def test_the_readme_is_short():
    lines = len(README.splitlines())
    assert lines < 200, f"README.md has {lines} lines: the reference, guides and notes belong in docs/"


def test_the_two_commands_are_the_getting_started_ones_and_exist():
    block = _two_commands(README)
    assert block == _two_commands((ROOT / "docs" / "getting-started.md").read_text())
    scripts = re.findall(r"^(scripts/\S+)", block, re.M)
    assert scripts == ["scripts/demo.sh", "scripts/test.sh"]
    assert all(os.access(ROOT / s, os.X_OK) for s in scripts), scripts


def test_the_readme_links_lead_to_files():
    """mkdocs build --strict checks the links inside docs/; the README's own are checked here."""
    targets = [t.split("#", 1)[0] for t in re.findall(r"\]\(([^)]+)\)", README) if "://" not in t]
    assert targets and all((ROOT / t).exists() for t in targets), [t for t in targets if not (ROOT / t).exists()]


def test_ci_runs_the_readme_test_command_and_the_strict_docs_build():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^scripts/test\.sh", ci, re.M)
    assert re.search(r"mkdocs build --strict", ci)
