"""A server that would listen beyond loopback without an API token refuses to start, saying what to set.

Neither test needs the shared server: the first stops before Ray starts, the second starts its own.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from training_client.local_server import SERVE, ServerProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
SAYS = "refusing to serve on 0.0.0.0 without an API token"


def test_serve_run_on_every_interface_without_a_token_stops_before_ray_starts(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("TM_API_TOKEN", "TM_ALLOW_UNAUTHENTICATED", "RAY_ADDRESS")}
    env["RAY_SERVE_DEFAULT_HTTP_HOST"] = "0.0.0.0"  # what `serve run serve_app:app` then listens on
    done = subprocess.run([str(SERVE), "run", "serve_app:app", f"storage_root={tmp_path}"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert SAYS in done.stderr + done.stdout and "TM_API_TOKEN" in done.stderr + done.stdout


def test_a_serve_config_on_every_interface_without_a_token_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("TM_API_TOKEN", raising=False)  # the shared server's fixture may have set it
    monkeypatch.delenv("TM_ALLOW_UNAUTHENTICATED", raising=False)
    server = ServerProcess(tmp_path / "storage", tmp_path, host="0.0.0.0")
    with pytest.raises(RuntimeError) as err:
        server.start()
    assert SAYS in str(err.value) and "allow_unauthenticated_remote" in str(err.value)
    assert server.proc.poll() is not None, "the refused server was stopped"
