"""Session errors to HTTP responses: status code, a sentence, the state and what to call."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse
from ray.exceptions import RayTaskError

from train_jobs.errors import InvalidParameters, SessionError


def domain_error(exc: Exception) -> Exception:
    """The SessionError behind `exc` (errors raised in an actor or task arrive wrapped in RayTaskError)."""
    cause = exc.cause if isinstance(exc, RayTaskError) else exc
    return cause if isinstance(cause, SessionError) else exc


async def session_error_handler(request: Request, exc: Exception) -> JSONResponse:
    err = domain_error(exc)
    if isinstance(err, InvalidParameters):
        body = {"detail": err.detail, "message": err.message}
    else:
        body = {"detail": err.message, "message": err.message, "state": err.state, "hint": err.hint}
    return JSONResponse(status_code=err.status_code, content=body, headers=getattr(err, "headers", None))
