"""The web console: GET /ui serves a one-page application (serve_app/ui/) that calls the public REST API from the
browser, with the session key in the browser's session storage and the API token in the request headers.

The page and its scripts are open, as /healthcheck is: they hold no data, and a browser has to load the page
before a person can paste the token into it. Every call the page makes is the API's own, behind the token."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
# The page loads nothing from anywhere else and is framed by no other site: its own scripts, styles and calls only
# (Chart.js sets canvas sizes as inline styles, hence 'unsafe-inline' for styles alone).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)
assets = StaticFiles(directory=UI_DIR)  # mounted at /ui by create_app, after these routes


@lru_cache(maxsize=8)
def page(root: str) -> str:
    """index.html with its <base> under the server's root path (behind a proxy prefix), so its relative asset and
    API URLs resolve there."""
    return (UI_DIR / "index.html").read_text().replace('<base href="/ui/">', f'<base href="{root}/ui/">', 1)


@router.get("/ui")
@router.get("/ui/")
async def console(request: Request) -> HTMLResponse:
    """The console page."""
    return HTMLResponse(page(request.scope.get("root_path", "").rstrip("/")), headers=HEADERS)
