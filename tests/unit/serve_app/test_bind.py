"""Unit tests of serve_app/bind.py: listening beyond loopback needs an API token, or an explicit allowance."""

from __future__ import annotations

import pytest

from cluster.settings import Settings
from serve_app.bind import UnsafeBind, check_bind, is_loopback, serve_host

TOKEN = "a-token-of-16-chars-or-more"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "::1", "[::1]", "localhost", "LocalHost", None])
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.0.2.2", "10.0.0.5", "example.com", "localhost.example.com"])
def test_hosts_beyond_loopback(host):
    assert not is_loopback(host)


def test_beyond_loopback_without_a_token_is_refused_saying_what_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("TM_API_TOKEN", raising=False)
    monkeypatch.delenv("TM_ALLOW_UNAUTHENTICATED", raising=False)
    with pytest.raises(UnsafeBind) as err:
        check_bind("0.0.0.0", Settings(storage_root=str(tmp_path)))
    message = str(err.value)
    for says in ("0.0.0.0", "api_token", "TM_API_TOKEN", "127.0.0.1", "allow_unauthenticated_remote",
                 "TM_ALLOW_UNAUTHENTICATED=1"):
        assert says in message, says


def refused(host, settings: Settings) -> bool:
    try:
        check_bind(host, settings)
    except UnsafeBind:
        return True
    return False


@pytest.mark.parametrize("settings", [{"api_token": TOKEN}, {"allow_unauthenticated_remote": True},
                                      {"allow_unauthenticated_remote": "true"}])
def test_a_token_or_the_explicit_allowance_lets_it_listen_anywhere(tmp_path, monkeypatch, settings):
    monkeypatch.delenv("TM_API_TOKEN", raising=False)
    monkeypatch.delenv("TM_ALLOW_UNAUTHENTICATED", raising=False)
    root = {"storage_root": str(tmp_path)}
    for host in ("0.0.0.0", "::", "", "192.0.2.2", "example.com"):
        assert refused(host, Settings.from_args(root)), host  # without it: refused
        assert not refused(host, Settings.from_args({**root, **settings})), host


@pytest.mark.parametrize("env", [{"TM_API_TOKEN": TOKEN}, {"TM_ALLOW_UNAUTHENTICATED": "1"}])
def test_the_environment_says_the_same(tmp_path, monkeypatch, env):
    monkeypatch.delenv("TM_API_TOKEN", raising=False)
    monkeypatch.delenv("TM_ALLOW_UNAUTHENTICATED", raising=False)
    assert refused("::", Settings(storage_root=str(tmp_path)))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(storage_root=str(tmp_path))
    assert settings.api_token == env.get("TM_API_TOKEN") and settings.allow_unauthenticated_remote == (
        "TM_ALLOW_UNAUTHENTICATED" in env)
    assert not refused("::", settings)


def test_loopback_needs_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("TM_API_TOKEN", raising=False)
    monkeypatch.delenv("TM_ALLOW_UNAUTHENTICATED", raising=False)
    settings = Settings(storage_root=str(tmp_path))
    assert settings.api_token is None and not settings.allow_unauthenticated_remote
    for host in ("127.0.0.1", "127.0.1.1", "::1", "localhost", None):
        assert not refused(host, settings), host
    assert refused("0.0.0.0", settings)  # the same settings, beyond loopback


def test_without_serve_running_the_host_is_what_serve_run_starts_with():
    from ray.serve.config import HTTPOptions

    assert serve_host() == HTTPOptions().host
