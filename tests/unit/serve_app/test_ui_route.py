"""Unit tests of serve_app/routes/ui.py over the real FastAPI app (no Ray): GET /ui serves the console page and its
assets with their content types, open as /healthcheck is (the API behind it keeps the token), loading nothing from
anywhere but the server itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_docs import TOKEN, app_with

from serve_app.routes.ui import UI_DIR

ASSET_ATTRS = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""")
IMPORTS = re.compile(r"""\bfrom\s+["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']""")


def page_assets(html: str) -> list[str]:
    """What the page loads (its <base> is where they resolve from, not one of them)."""
    return ASSET_ATTRS.findall(re.sub(r"<base\b[^>]*>", "", html))


@pytest.mark.parametrize("path", ["/ui", "/ui/"])
def test_the_page_is_served_open_with_a_strict_policy(monkeypatch, tmp_path, path):
    client = app_with(monkeypatch, tmp_path, api_token=TOKEN)
    response = client.get(path)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "<title>Training module console</title>" in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert client.get("/status").status_code == 401  # the API itself stays behind the token


def test_every_asset_the_page_names_is_served_with_its_content_type(monkeypatch, tmp_path):
    client = app_with(monkeypatch, tmp_path, api_token=TOKEN)
    html = client.get("/ui").text
    assets = page_assets(html)
    assert {"style.css", "app.js", "vendor/chart.min.js"} <= set(assets)
    kinds = {".css": "text/css", ".js": "javascript"}
    for asset in [a for a in assets if a != "data:,"]:
        response = client.get(f"/ui/{asset}")
        assert response.status_code == 200, asset
        assert kinds[Path(asset).suffix] in response.headers["content-type"], (asset, response.headers["content-type"])


def test_the_page_and_its_scripts_load_only_local_files(monkeypatch, tmp_path):
    """No CDN, no absolute URL: every src, href and import is a path under /ui/ that the server serves."""
    client = app_with(monkeypatch, tmp_path)
    html = client.get("/ui").text
    assert '<base href="/ui/">' in html
    names = page_assets(html)
    for script in sorted(p.name for p in UI_DIR.glob("*.js")):
        names += [a or b for a, b in IMPORTS.findall((UI_DIR / script).read_text())]
        assert client.get(f"/ui/{script}").status_code == 200
    for name in [n for n in names if n != "data:,"]:  # the empty icon: no /favicon.ico request
        assert not re.match(r"^(?:[a-z]+:)?//", name, re.I), f"{name} is not a local asset"
        assert client.get(f"/ui/{name.removeprefix('./')}").status_code == 200, name


def test_the_page_follows_the_servers_root_path(monkeypatch, tmp_path):
    """Behind a proxy prefix, the page's relative asset and API URLs resolve under it."""
    client = app_with(monkeypatch, tmp_path)
    client.app.root_path = "/tm"
    assert '<base href="/tm/ui/">' in client.get("/ui").text


def test_every_control_has_a_label():
    """Inputs, selects and textareas carry a <label for=...> (or sit inside one); buttons have text."""
    html = (UI_DIR / "index.html").read_text()
    labelled = set(re.findall(r'<label[^>]*\bfor="([^"]+)"', html))
    inside = set(re.findall(r"<label>\s*<input[^>]*\bid=\"([^\"]+)\"", html))
    for tag, control in re.findall(r"<(input|select|textarea)\b([^>]*)>", html):
        id_ = re.search(r'\bid="([^"]+)"', control).group(1)
        assert id_ in labelled | inside, f"<{tag} id={id_}> has no label"
    for text in re.findall(r"<button[^>]*>([^<]*)</button>", html):
        assert text.strip(), "a button without text"
