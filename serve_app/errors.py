"""Session errors to HTTP responses: status code, a sentence, the state and what to call."""

from __future__ import annotations

from typing import Optional

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray.exceptions import RayTaskError

from serve_app.dependencies import get_settings
from train_jobs.errors import InvalidParameters, SessionError, storage_full

# What the handler answers: session errors, and a full disk (an OSError here or in an actor) as 507. Any other
# OSError is re-raised: a 500, which is always a bug.
HANDLED = (SessionError, OSError, RayTaskError)


def domain_error(exc: Exception, root: Optional[str] = None) -> Exception:
    """The SessionError behind `exc` (errors raised in an actor or task arrive wrapped in RayTaskError), a
    StorageFull naming the storage root (this replica's, by default) for a full disk, or `exc` itself."""
    cause = exc.cause if isinstance(exc, RayTaskError) else exc
    if isinstance(cause, SessionError):
        return cause
    return storage_full(cause, root if root is not None else get_settings().storage_root) or exc


async def session_error_handler(request: Request, exc: Exception) -> JSONResponse:
    err = domain_error(exc)
    if not isinstance(err, SessionError):
        raise exc
    if isinstance(err, InvalidParameters):
        body = {"detail": err.detail, "message": err.message}
    else:
        body = {"detail": err.message, "message": err.message, "state": err.state, "hint": err.hint}
    return JSONResponse(status_code=err.status_code, content=body, headers=getattr(err, "headers", None))


def readable(errors: list[dict]) -> str:
    """FastAPI's validation errors as one sentence: where each is and what is wrong ("body.epochs: ...")."""
    return "; ".join(f"{'.'.join(str(part) for part in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors)


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 with the `message` every error body has, so one error model fits every status."""
    errors = jsonable_encoder(exc.errors())
    return JSONResponse(status_code=422, content={"detail": errors, "message": readable(errors)})
