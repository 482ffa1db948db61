#!/usr/bin/env python3
"""Write the API's OpenAPI document (what the server answers at /openapi.json) to docs/openapi.json, offline.

The docs' API reference is rendered from that file, so it is built from the app itself: `create_app()` builds the
FastAPI routes without Ray or a server (importing Ray's modules starts nothing). tests/unit/test_openapi_export.py
fails when the committed file differs from what the app produces now: run this script after changing a route or
a schema. `--check` only compares, and exits 1 when the file is stale."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "openapi.json"


def render() -> str:
    """The document as the file holds it: the app's schema in its own key order, indented, one final newline."""
    if str(ROOT) not in sys.path:  # run as a script from anywhere: this checkout's packages first
        sys.path.insert(0, str(ROOT))
    from serve_app.api import create_app

    return json.dumps(create_app().openapi(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run scripts/export_openapi.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
