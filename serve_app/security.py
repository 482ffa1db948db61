"""Who may call the server: an optional API token on every route but /healthcheck, and a brake on guessing.

With `api_token` set (server setting, or TM_API_TOKEN), every route needs
`Authorization: Bearer <token>`, compared in constant time. Wrong tokens and wrong
session keys are counted per client (client_address.py: the connection's address,
or behind a trusted proxy the client it names): past a few a second, that client's
wrong guesses get 429 until the second has passed. The right token or key always
passes, so a burst of wrong guesses locks no one out behind a shared address; what
keeps them from being guessed is their length (a key has 256 bits, a token 16
characters at least), the brake tells a client that guesses to stop.
"""

from __future__ import annotations

import hmac
import time
from collections import defaultdict, deque
from typing import Annotated, Optional

from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serve_app.client_address import client_address
from serve_app.dependencies import Service, get_settings
from serve_app.errors import domain_error
from train_jobs.errors import SessionError, WrongKey

FAILURES_PER_SECOND = 5


class Unauthorized(SessionError):
    status_code = 401
    headers = {"WWW-Authenticate": "Bearer"}


class TooManyAttempts(SessionError):
    status_code = 429
    headers = {"Retry-After": "1"}


class FailureLimiter:
    """Wrong tokens or keys per client in the last second; this replica's own count."""

    def __init__(self, per_second: int = FAILURES_PER_SECOND):
        self.per_second = per_second
        self._failures: dict[str, deque] = defaultdict(deque)
        self._swept = time.monotonic()

    def failed(self, client: str) -> None:
        """Count a wrong guess; 429 in place of its refusal past the limit (the guess is not counted then, so the
        limit frees a second after the last counted one)."""
        recent = self._failures[client]
        while recent and recent[0] < time.monotonic() - 1.0:
            recent.popleft()
        if len(recent) >= self.per_second:
            raise TooManyAttempts(f"too many wrong tokens or keys from {client}; wait a second and check them")
        now = time.monotonic()
        recent.append(now)
        if now - self._swept > 60:  # forget the clients whose second has passed, once a minute
            self._swept = now
            for name in [c for c, times in self._failures.items() if times[-1] < now - 1.0]:
                del self._failures[name]


limiter = FailureLimiter()
bearer = HTTPBearer(auto_error=False, description="The server's API token, when it has one (api_token).")


def client_of(request: Request) -> str:
    return client_address(tuple(get_settings().trusted_proxies))(request.scope)


async def require_token(request: Request,
                        credentials: Annotated[Optional[HTTPAuthorizationCredentials], Depends(bearer)]) -> None:
    token = get_settings().api_token
    if not token:
        return
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        limiter.failed(client_of(request))
        raise Unauthorized("missing or wrong API token; send it as 'Authorization: Bearer <token>'",
                           hint="the token is the server's api_token setting (or TM_API_TOKEN)")


ApiToken = Depends(require_token)


async def _authorized(key: str, service: Service, request: Request) -> str:
    """`key`, refused with 403 (or 409 with no session) before the route runs; wrong keys count towards the
    client's limit of failures."""
    try:
        await service.authorize(key)
    except Exception as e:
        if isinstance(domain_error(e), WrongKey):
            limiter.failed(client_of(request))
        raise
    return key


async def authorized_key(key: Annotated[str, Path(description="The session key from /start_session.")],
                         service: Service, request: Request) -> str:
    return await _authorized(key, service, request)


async def header_key(service: Service, request: Request, key: Annotated[Optional[str], Header(
        alias="X-Session-Key", description="Names the session the unkeyed routes answer for (several sessions: "
        "max_sessions above 1); without it they answer for the only session, or GET /status summarises them.")]
        = None) -> Optional[str]:
    return None if key is None else await _authorized(key, service, request)


SessionKey = Annotated[str, Depends(authorized_key)]
HeaderKey = Annotated[Optional[str], Depends(header_key)]
