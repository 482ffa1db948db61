"""The request log: method, route, status and time of every request, with the session key left out.

Serve's own access log is off (deployment.py) because keys sit in URL paths. This one logs the route's
template (`/upload_dataset/{key}`), never the path a client sent. A plain ASGI middleware, not
`@app.middleware("http")`: Starlette's BaseHTTPMiddleware costs about a millisecond of CPU per call, which
/predict's hot path feels.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


def route_of(scope: Scope) -> str:
    """The matched route's template; a path that matched none is not logged, as it may hold a mistyped key."""
    return getattr(scope.get("route"), "path", None) or "(no route matched)"


class RequestLog:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500  # 500: the app raised before it answered

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            log.info("%s %s %d %.1f ms", scope["method"], route_of(scope), status,
                     (time.perf_counter() - started) * 1000)
