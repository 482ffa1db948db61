"""Unit tests of serve_app/routes/docs.py over the real FastAPI app (no Ray): with an API token, the API's own
description needs it too, unless the `open_api_docs` setting opens it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from test_request_log import KeyOnly

from cluster.settings import Settings
from serve_app import dependencies, security
from serve_app.api import create_app

TOKEN = "a-token-of-16-chars-or-more"
PAGES = ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect")


def app_with(monkeypatch, tmp_path, **settings) -> TestClient:
    # The e2e servers' token is in this process's environment when the whole suite runs: these apps get only theirs.
    monkeypatch.delenv("TM_API_TOKEN", raising=False)
    service = KeyOnly(tmp_path)
    service.settings = Settings(storage_root=str(tmp_path), **settings)
    monkeypatch.setattr(dependencies, "_service", service)
    monkeypatch.setattr(security, "limiter", security.FailureLimiter())  # this test's own count of wrong tokens
    return TestClient(create_app(), raise_server_exceptions=False)


@pytest.mark.parametrize("page", PAGES)
def test_with_a_token_the_description_needs_it(monkeypatch, tmp_path, page):
    client = app_with(monkeypatch, tmp_path, api_token=TOKEN)
    assert client.get(page).status_code == 401
    assert client.get(page, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


@pytest.mark.parametrize("page", PAGES)
def test_open_api_docs_opens_it(monkeypatch, tmp_path, page):
    client = app_with(monkeypatch, tmp_path, api_token=TOKEN, open_api_docs=True)
    assert client.get(page).status_code == 200
    assert client.get("/status").status_code == 401  # the routes themselves stay behind the token


@pytest.mark.parametrize("page", PAGES)
def test_without_a_token_it_is_open_as_every_route(monkeypatch, tmp_path, page):
    monkeypatch.delenv("TM_API_TOKEN", raising=False)
    assert app_with(monkeypatch, tmp_path).get(page).status_code == 200


def test_the_pages_load_the_description_they_are_served_with(monkeypatch, tmp_path):
    client = app_with(monkeypatch, tmp_path, open_api_docs=True, api_token=TOKEN)
    assert "/openapi.json" in client.get("/docs").text and "/openapi.json" in client.get("/redoc").text
    assert "/predict/{key}" in client.get("/openapi.json").json()["paths"]
    assert "/openapi.json" not in client.get("/openapi.json").json()["paths"]  # not a route of the API itself
