"""The request log: method, route, status and time of every request, with the session key left out.

Serve's own access log is off (deployment.py) because keys sit in URL paths. This one logs the route's
template (`/upload_dataset/{key}`), never the path a client sent.
"""

from __future__ import annotations

import logging
import time

from fastapi import Request

log = logging.getLogger(__name__)


def route_of(request: Request) -> str:
    """The matched route's template; a path that matched none is not logged, as it may hold a mistyped key."""
    route = request.scope.get("route")
    return getattr(route, "path", None) or "(no route matched)"


async def log_requests(request: Request, call_next):
    started = time.perf_counter()
    response = await call_next(request)
    log.info("%s %s %d %.1f ms", request.method, route_of(request), response.status_code,
             (time.perf_counter() - started) * 1000)
    return response
