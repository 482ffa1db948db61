"""No serving beyond this machine without an API token.

Serve's HTTP proxies listen where its http_options say: the Serve config's `host` (Ray's default for a config
file without one is 0.0.0.0, every interface), or 127.0.0.1 for `serve run serve_app:app`. Without a token,
anyone who reaches the port could drive the server and wipe its session (`start_session?force_restart=1`
takes no key), so a host beyond loopback needs `api_token`, or `allow_unauthenticated_remote` said explicitly.
"""

from __future__ import annotations

import ipaddress
from typing import Optional

from cluster.settings import Settings


class UnsafeBind(RuntimeError):
    """The server would listen beyond loopback with no API token; the message says what to set."""


def is_loopback(host: Optional[str]) -> bool:
    """127.0.0.0/8, ::1 and localhost; None is Serve without HTTP proxies, which listens nowhere."""
    if host is None:
        return True
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # a host name other than localhost, or "" (every interface)
        return False


def check_bind(host: Optional[str], settings: Settings) -> None:
    if is_loopback(host) or settings.api_token or settings.allow_unauthenticated_remote:
        return
    raise UnsafeBind(
        f"refusing to serve on {host or 'every interface'} without an API token: anyone who can reach the port "
        "could drive this server and wipe its session. Set the api_token setting (or the environment variable "
        "TM_API_TOKEN, 16 characters at least) on the machines that run the server, or listen on 127.0.0.1 "
        "(http_options.host in the Serve config), or set allow_unauthenticated_remote=true "
        "(TM_ALLOW_UNAUTHENTICATED=1) to serve without a token anyway")


def serve_host() -> Optional[str]:
    """Where Serve's HTTP proxies listen: the running Serve instance's http_options, or, where no Serve runs yet
    (`serve run serve_app:app` builds the app before it starts Serve), what Serve will start with."""
    import ray
    from ray.serve.config import HTTPOptions

    if ray.is_initialized():
        # Private, but the only way to the controller's http_options; a replica and the config file's build
        # task both reach it. tests/e2e/test_bind.py holds this to the Ray version in use.
        from ray.serve.context import _get_global_client

        client = _get_global_client(raise_if_no_controller_running=False)
        if client is not None:
            return client.http_config.host
    return HTTPOptions().host
