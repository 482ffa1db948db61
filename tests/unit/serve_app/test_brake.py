"""Unit tests of serve_app/security.py over the real FastAPI app (no Ray): past five wrong keys or tokens in a
second, a client's wrong guesses get 429; the right key or token from the same address still passes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from test_request_log import KEY, KeyOnly

from cluster.settings import Settings
from serve_app import dependencies, security
from serve_app.api import create_app

TOKEN = "a-token-of-16-chars-or-more"
RIGHT = {"Authorization": f"Bearer {TOKEN}"}


class Monitored(KeyOnly):
    async def monitor(self, key: str) -> dict:
        return {"state": "setup", "session_active": True, "message": "no run yet", "model_ready": False,
                "history": []}


@pytest.fixture
def client(tmp_path, monkeypatch):
    service = Monitored(tmp_path)
    service.settings = Settings(storage_root=str(tmp_path), api_token=TOKEN)
    monkeypatch.setattr(dependencies, "_service", service)
    monkeypatch.setattr(security, "limiter", security.FailureLimiter())
    return TestClient(create_app(), raise_server_exceptions=False)


def test_wrong_keys_past_the_limit_are_429_and_the_right_key_still_passes(client):
    codes = [client.get("/monitor/not-the-key", headers=RIGHT).status_code for _ in range(8)]
    assert codes == [403] * 5 + [429] * 3
    assert client.post(f"/training/stop/{KEY}x", headers=RIGHT).status_code == 429
    assert client.get(f"/monitor/{KEY}", headers=RIGHT).status_code == 200


def test_a_wrong_x_session_key_is_a_wrong_key_too(client):
    """The header naming the session of an unkeyed route is checked like a path key: 403, braked past the limit."""
    codes = [client.get("/status", headers={**RIGHT, "X-Session-Key": "not-the-key"}).status_code for _ in range(6)]
    assert codes == [403] * 5 + [429]
    assert client.get("/status", headers={**RIGHT, "X-Session-Key": KEY}).status_code == 200


def test_wrong_tokens_past_the_limit_are_429_and_the_right_token_still_passes(client):
    codes = [client.get("/status", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code
             for _ in range(8)]
    assert codes == [401] * 5 + [429] * 3
    assert client.get("/status", headers=RIGHT).status_code == 200


def test_a_new_x_forwarded_for_with_each_guess_is_braked_all_the_same(tmp_path, monkeypatch):
    """The app behind uvicorn's proxy-header middleware, as Serve's proxy runs it (trusting the test client's
    address, as it trusts loopback): the header names a new client with each guess, the count stays one."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    service = Monitored(tmp_path)
    service.settings = Settings(storage_root=str(tmp_path), api_token=TOKEN)
    monkeypatch.setattr(dependencies, "_service", service)
    monkeypatch.setattr(security, "limiter", security.FailureLimiter())
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "testclient")  # TestClient's address
    client = TestClient(ProxyHeadersMiddleware(create_app(), trusted_hosts="testclient"))
    codes = [client.get("/monitor/not-the-key", headers={**RIGHT, "X-Forwarded-For": f"198.51.100.{i}"}).status_code
             for i in range(8)]
    assert codes == [403] * 5 + [429] * 3
