"""Who may call the server: an optional API token on every route but /healthcheck, and a brake on guessing.

With `api_token` set (server setting, or TM_API_TOKEN), every route needs
`Authorization: Bearer <token>`, compared in constant time. Wrong tokens and wrong
session keys are counted per client address: past a few a second, that client
gets 429 until the second has passed.
"""

from __future__ import annotations

import hmac
import time
from collections import defaultdict, deque
from typing import Annotated, Optional

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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

    def check(self, client: str) -> None:
        recent = self._failures[client]
        while recent and recent[0] < time.monotonic() - 1.0:
            recent.popleft()
        if len(recent) >= self.per_second:
            raise TooManyAttempts(f"too many wrong tokens or keys from {client}; wait a second and check them")

    def record(self, client: str) -> None:
        self._failures[client].append(time.monotonic())


limiter = FailureLimiter()
_bearer = HTTPBearer(auto_error=False, description="The server's API token, when it has one (api_token).")


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def require_token(request: Request,
                        credentials: Annotated[Optional[HTTPAuthorizationCredentials], Depends(_bearer)]) -> None:
    token = get_settings().api_token
    if not token:
        return
    client = client_of(request)
    limiter.check(client)
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        limiter.record(client)
        raise Unauthorized("missing or wrong API token; send it as 'Authorization: Bearer <token>'",
                           hint="the token is the server's api_token setting (or TM_API_TOKEN)")


ApiToken = Depends(require_token)


async def authorized_key(key: Annotated[str, Path(description="The session key from /start_session.")],
                         service: Service, request: Request) -> str:
    """The path's session key, refused with 403 (or 409 with no session) before the route runs; wrong keys
    count towards the client's limit of failures."""
    limiter.check(client_of(request))
    try:
        await service.authorize(key)
    except Exception as e:
        if isinstance(domain_error(e), WrongKey):
            limiter.record(client_of(request))
        raise
    return key


SessionKey = Annotated[str, Depends(authorized_key)]
