"""Requests to the Hugging Face Hub under a time limit, and what went wrong with them in a sentence.

huggingface_hub's shared HTTP client has no timeout, and some of its calls (the repository's metadata, its file
list) pass none, so a Hub that accepts the connection and never answers held an import for as long as the
connection lived. A request hook gives every request the same connect, read, write and pool timeout instead.
"""

from __future__ import annotations

from typing import Optional


def limit_hub_requests(timeout_s: float) -> None:
    """From now on, in this process, every request huggingface_hub makes times out after `timeout_s`."""
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils._http import default_client_factory

    limits = {"connect": timeout_s, "read": timeout_s, "write": timeout_s, "pool": timeout_s}

    def cap(request) -> None:  # runs before each request (redirects too) is sent; the transport reads this
        request.extensions = {**request.extensions, "timeout": limits}

    def factory():
        client = default_client_factory()
        client.event_hooks = {**client.event_hooks, "request": [*client.event_hooks["request"], cap]}
        return client

    set_client_factory(factory)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: Optional[BaseException] = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def transport_failure(exc: BaseException, timeout_s: float) -> Optional[str]:
    """What happened on the wire, when `exc` comes from a request that got no usable answer; None otherwise."""
    import httpx2

    chain = _chain(exc)
    if any(isinstance(e, httpx2.TimeoutException) for e in chain):
        return f"no answer within {timeout_s:g} s"
    wire = next((e for e in chain if isinstance(e, httpx2.TransportError)), None)
    if wire is None:
        return None
    detail = str(wire).splitlines()[0] if str(wire) else ""
    if isinstance(wire, httpx2.RemoteProtocolError):
        return f"the Hub closed the connection without an answer ({detail})"
    return f"{type(wire).__name__}: {detail}"
