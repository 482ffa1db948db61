"""docs/openapi.json, which the docs' API reference is rendered from, is what the app serves at /openapi.json now:
a route or schema changed without running `scripts/export_openapi.py` fails here, so the reference cannot go
stale."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from test_docs import app_with

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "docs" / "openapi.json"


def _export_script():
    spec = importlib.util.spec_from_file_location("export_openapi", ROOT / "scripts" / "export_openapi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_document_is_what_the_export_script_writes_now():
    assert COMMITTED.read_text(encoding="utf-8") == _export_script().render(), (
        "docs/openapi.json is stale: run scripts/export_openapi.py")


def test_the_committed_document_is_what_the_server_answers(monkeypatch, tmp_path):
    served = app_with(monkeypatch, tmp_path).get("/openapi.json")
    assert served.status_code == 200
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert served.json() == committed
    assert {"/start_session", "/training/start/{key}", "/predict/{key}"} <= set(committed["paths"])
