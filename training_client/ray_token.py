"""Ray's cluster token file (~/.ray/auth_token), created readable by its owner only.

A new local Ray instance (`serve run` without a cluster to join) turns on token authentication and, when no
token exists, writes a new one to ~/.ray/auth_token with the process's umask: usually 0644, so every user of the
machine could read the token and run code on the cluster. The server's start-up (the `serve_app:app` builder,
ServerProcess) writes it first, 0600 from its creation, where Ray is about to write it; Ray then uses that one.
A token file already there is left as it is.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Optional


def ray_token_path(env: Mapping[str, str]) -> Path:
    """Where Ray writes a new token: ~/.ray/auth_token of the environment's HOME."""
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".ray" / "auth_token"


def would_write_token(env: Mapping[str, str]) -> bool:
    """Whether a new local Ray instance started with this environment writes a token file of its own: token auth
    on (RAY_AUTH_MODE unset or token) and no token given another way."""
    mode = env.get("RAY_AUTH_MODE", "token").lower()
    return mode == "token" and not env.get("RAY_AUTH_TOKEN") and not env.get("RAY_AUTH_TOKEN_PATH")


def starts_local_ray(env: Mapping[str, str]) -> bool:
    """Whether `ray.init()` with no address, in a process with this environment, starts a new local Ray instance
    (Ray's own rule: RAY_ADDRESS, else the cluster `ray start` last started on this machine, else a new one)."""
    address = env.get("RAY_ADDRESS")
    if address:
        return address == "local"
    from ray._private.services import find_bootstrap_address  # the server is installed where this is called

    return find_bootstrap_address(None) is None


def create_private_token(env: Optional[Mapping[str, str]] = None) -> Optional[Path]:
    """Write a new token (Ray's form: 64 hex characters) to Ray's token file, mode 0600 from its creation, when a
    new local Ray instance started with this environment (default: this process's) would write one there; the
    path written, or None (a file already there is not touched)."""
    env = os.environ if env is None else env
    if not would_write_token(env) or not starts_local_ray(env):
        return None
    path = ray_token_path(env)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # O_EXCL: never another's file
    except FileExistsError:
        return None
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path
