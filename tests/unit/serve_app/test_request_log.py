"""Unit tests of serve_app/request_log.py over the real FastAPI app (no Ray): every request is logged with its
route's template, never the session key a client put in the path."""

from __future__ import annotations

import logging
from typing import Optional

import pytest
from fastapi.testclient import TestClient

from cluster.settings import Settings
from serve_app import dependencies
from serve_app.api import create_app
from train_jobs.errors import WrongKey

KEY = "s3cret-session-key-0123456789"


class KeyOnly:
    """Answers the key check and /status; enough for requests to reach, and be refused by, real routes."""

    def __init__(self, root):
        self.settings = Settings(storage_root=str(root), api_token=None)

    async def authorize(self, key: str) -> None:
        if key != KEY:
            raise WrongKey("wrong session key")

    async def status(self, key: Optional[str] = None) -> dict:
        return {"state": "idle", "session_active": False, "message": "no session", "model_ready": False}


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setattr(dependencies, "_service", KeyOnly(tmp_path))
    return TestClient(create_app(), raise_server_exceptions=False)


def logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "serve_app.request_log"]


def test_a_request_is_logged_with_its_route_template_and_status(client, caplog):
    with caplog.at_level(logging.INFO, logger="serve_app.request_log"):
        assert client.get("/status").status_code == 200
        client.post(f"/training/stop/{KEY}x")
    lines = logged(caplog)
    assert lines[0].startswith("GET /status 200 ")
    assert lines[1].startswith("POST /training/stop/{key} 403 ")
    assert all(KEY not in line for line in lines)


def test_a_path_that_matches_no_route_is_not_logged_as_sent(client, caplog):
    with caplog.at_level(logging.INFO, logger="serve_app.request_log"):
        assert client.get(f"/no_such_route/{KEY}").status_code == 404
    [line] = logged(caplog)
    assert line.startswith("GET (no route matched) 404") and KEY not in line
