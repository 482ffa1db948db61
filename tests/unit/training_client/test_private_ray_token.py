"""Unit tests of training_client/ray_token.py and the `serve_app:app` builder: the token file a new local Ray
instance needs is written readable by its owner only, before Ray would write it world-readable (no Ray starts)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from training_client.ray_token import create_private_token

REPO_ROOT = Path(__file__).resolve().parents[3]


def fresh_machine(tmp_path: Path, **extra: str) -> dict:
    """An environment whose HOME holds no Ray token and whose Ray temp directory names no running cluster."""
    (tmp_path / "home").mkdir(exist_ok=True)
    (tmp_path / "ray").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k != "TM_API_TOKEN"}
    return {**env, "HOME": str(tmp_path / "home"), "RAY_TMPDIR": str(tmp_path / "ray"), **extra}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_serve_run_serve_app_writes_rays_token_owner_only_before_ray_starts(tmp_path):
    """`serve run serve_app:app` calls the builder, then starts Ray, which keeps a token file it finds."""
    env = fresh_machine(tmp_path)
    build = "import serve_app, sys; serve_app.app({'storage_root': sys.argv[1]})"
    subprocess.run([sys.executable, "-c", build, str(tmp_path / "storage")], cwd=REPO_ROOT, env=env, check=True,
                   timeout=120)
    token = tmp_path / "home" / ".ray" / "auth_token"
    assert mode(token) == 0o600
    assert len(token.read_text()) == 64 and int(token.read_text(), 16) >= 0  # Ray's form: 64 hex characters


def test_a_token_file_already_there_is_left_as_it_is(tmp_path):
    env = fresh_machine(tmp_path)
    token = tmp_path / "home" / ".ray" / "auth_token"
    token.parent.mkdir()
    token.write_text("a" * 64)
    assert create_private_token(env) is None
    assert token.read_text() == "a" * 64


@pytest.mark.parametrize("extra", [{"RAY_AUTH_MODE": "disabled"}, {"RAY_AUTH_TOKEN": "b" * 64},
                                   {"RAY_ADDRESS": "10.0.0.2:6379"}])
def test_nothing_is_written_where_ray_would_not_write_a_token(tmp_path, extra):
    """Token auth off, a token given another way, or a cluster to join: Ray writes none, so neither does this."""
    env = fresh_machine(tmp_path, **extra)
    assert create_private_token(env) is None
    assert not (tmp_path / "home" / ".ray" / "auth_token").exists()


def test_a_new_local_instance_gets_one(tmp_path):
    env = fresh_machine(tmp_path, RAY_ADDRESS="local")
    assert create_private_token(env) == tmp_path / "home" / ".ray" / "auth_token"
    assert mode(tmp_path / "home" / ".ray" / "auth_token") == 0o600
