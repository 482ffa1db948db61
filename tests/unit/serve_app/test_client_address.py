"""Unit tests of serve_app/client_address.py: who the brake counts, after uvicorn's own proxy-header middleware (the
one Serve's HTTP proxy runs, with its default trust of loopback) has done what it does to the request."""

from __future__ import annotations

import asyncio
from typing import Optional

import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from serve_app.client_address import ClientAddress

SERVE_PROXY_TRUSTS = "127.0.0.1,::1"  # uvicorn's default FORWARDED_ALLOW_IPS


def through_serve_proxy(peer: str, forwarded_for: Optional[str] = None) -> dict:
    """The scope the ingress receives for a connection from `peer`: uvicorn's middleware applied to it."""
    headers = [(b"x-forwarded-for", forwarded_for.encode())] if forwarded_for is not None else []
    scope = {"type": "http", "client": (peer, 51234), "headers": headers}
    seen = {}

    async def app(scope, receive, send):
        seen.update(scope)

    asyncio.run(ProxyHeadersMiddleware(app, trusted_hosts=SERVE_PROXY_TRUSTS)(scope, None, None))
    return seen


def reader(*trusted_proxies: str) -> ClientAddress:
    return ClientAddress(trusted_proxies, SERVE_PROXY_TRUSTS)


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1", "203.0.113.7"])
def test_without_trusted_proxies_a_forwarded_for_header_changes_nothing(peer):
    """Whoever sends it, and whatever uvicorn did with it: a new header per guess is the same client."""
    clients = {reader()(through_serve_proxy(peer, f"198.51.100.{i}")) for i in range(5)}
    assert len(clients) == 1 and not any(c.startswith("198.51.100.") for c in clients), clients


def test_from_loopback_the_header_or_its_absence_is_one_client():
    """Serve's proxy rewrites what comes from loopback with the header; the count is the same without it."""
    clients = {reader()(through_serve_proxy(peer, header)) for peer in ("127.0.0.1", "::1")
               for header in (None, "198.51.100.4", "198.51.100.5")}
    assert len(clients) == 1, clients


def test_a_connection_without_the_header_is_its_own_address():
    assert reader()(through_serve_proxy("203.0.113.7")) == "203.0.113.7"
    assert reader("10.0.0.2")(through_serve_proxy("203.0.113.7")) == "203.0.113.7"


def test_behind_a_trusted_proxy_the_client_it_names_counts():
    assert reader("10.0.0.2")(through_serve_proxy("10.0.0.2", "198.51.100.4")) == "198.51.100.4"
    assert reader("10.0.0.0/24")(through_serve_proxy("10.0.0.2", "198.51.100.4, 10.0.0.9")) == "198.51.100.4"


def test_a_trusted_local_proxy_is_believed_after_serve_proxy_rewrote_the_request():
    assert reader("127.0.0.1")(through_serve_proxy("127.0.0.1", "198.51.100.4")) == "198.51.100.4"


def test_what_a_client_puts_before_the_trusted_proxy_cannot_vary_the_count():
    """The trusted proxy appends the address it saw; what the client wrote before it is ignored."""
    trusting = reader("10.0.0.2")
    clients = {trusting(through_serve_proxy("10.0.0.2", f"192.0.2.{i}, 198.51.100.4")) for i in range(5)}
    assert clients == {"198.51.100.4"}


def test_an_untrusted_connection_that_names_a_client_counts_as_itself():
    assert reader("10.0.0.2")(through_serve_proxy("203.0.113.7", "198.51.100.4")) == "203.0.113.7"


def test_naming_its_own_address_and_port_does_not_escape_the_count():
    """A connection that writes its own address and port in the header looks like one uvicorn rewrote; it still
    counts as one client, never as the one it names."""
    scope = through_serve_proxy("203.0.113.7", "198.51.100.4, 203.0.113.7:51234")
    assert reader()(scope) == reader()(through_serve_proxy("203.0.113.7", "203.0.113.7:51234"))
    assert reader("127.0.0.1")(scope) == "203.0.113.7"
