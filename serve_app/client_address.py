"""Who is calling, for the brake on wrong keys and tokens: the connection's own address, or, only when that is a
proxy the server trusts (`trusted_proxies`), the client the proxy names in X-Forwarded-For.

Serve's HTTP proxy runs uvicorn, which has already replaced the connection's address with X-Forwarded-For's
when the connection came from an address in its FORWARDED_ALLOW_IPS (loopback by default): any local process
could then name a new client with each guess. So a request uvicorn rewrote is taken back to what it was, a
connection from one of those addresses (which one, uvicorn does not keep), and X-Forwarded-For counts only
where `trusted_proxies` trusts that connection.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache

from starlette.types import Scope

# uvicorn's own rule for trusted hosts and its reading of X-Forwarded-For (private, so this module applies exactly
# the rule Serve's proxy applied; tests/unit/serve_app/test_client_address.py holds it to the uvicorn in use).
from uvicorn.middleware.proxy_headers import _TrustedHosts


def _forwarded_for(scope: Scope) -> str:
    return ", ".join(value.decode("latin1") for name, value in scope.get("headers", ()) if name == b"x-forwarded-for")


class ClientAddress:
    def __init__(self, trusted_proxies: tuple[str, ...], serve_proxy_trusts: str):
        self.ours = _TrustedHosts(list(trusted_proxies)) if trusted_proxies else None
        self.serve_proxy_trusts = serve_proxy_trusts
        self.uvicorns = _TrustedHosts(serve_proxy_trusts)
        # A connection from uvicorn's trusted addresses is trusted here when any of them is.
        self.rewritten_peer_trusted = self.ours is not None and (
            self.uvicorns.always_trust or any(self._ours_trust(entry) for entry in serve_proxy_trusts.split(",")))

    def _ours_trust(self, entry: str) -> bool:
        entry = entry.strip()
        if "/" in entry:  # a network: trusted here when its first address is
            try:
                entry = str(ipaddress.ip_network(entry, strict=False).network_address)
            except ValueError:
                return False
        return entry in self.ours

    def __call__(self, scope: Scope) -> str:
        client = scope.get("client")
        if not client:
            return "unknown"
        host, port = client[0], client[1]
        forwarded = _forwarded_for(scope)
        if host in self.uvicorns or (forwarded and self._rewritten_by_serve_proxy(host, port, forwarded)):
            # From an address Serve's proxy trusts: which one, a rewrite does not keep, so all of them count as
            # one client, with the header or without.
            if forwarded and self.rewritten_peer_trusted:
                return self._named_client(forwarded)
            return f"an address Serve's proxy trusts ({self.serve_proxy_trusts})"
        if forwarded and self.ours is not None and host in self.ours:
            return self._named_client(forwarded)
        return host

    def _rewritten_by_serve_proxy(self, host: str, port: int, forwarded: str) -> bool:
        """True when uvicorn put this address there: it is the one uvicorn reads out of X-Forwarded-For. (A
        connection that names its own address and port there is taken for one uvicorn rewrote; it then counts as
        that proxy, or, behind a trusted one, as itself: either way a count it cannot vary.)"""
        named, named_port = self.uvicorns.get_trusted_client_address(forwarded)
        return bool(named) and (named, named_port) == (host, port)

    def _named_client(self, forwarded: str) -> str:
        """The last address in X-Forwarded-For that is not a trusted proxy (each proxy appends the address it
        saw), or the first one when all of them are."""
        named, _ = self.ours.get_trusted_client_address(forwarded)
        return named or "unknown"


def client_address(trusted_proxies: tuple[str, ...]) -> ClientAddress:
    """The reader for these settings. uvicorn reads FORWARDED_ALLOW_IPS in the proxy's process; the replica's is
    the same Ray worker environment."""
    return _reader(trusted_proxies, os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1"))


@lru_cache(maxsize=8)
def _reader(trusted_proxies: tuple[str, ...], serve_proxy_trusts: str) -> ClientAddress:
    return ClientAddress(trusted_proxies, serve_proxy_trusts)  # made once: uvicorn's rule caches its answers
