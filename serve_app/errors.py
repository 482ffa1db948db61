"""Session errors to HTTP responses: status code, a sentence, the state and what to call."""

from __future__ import annotations

from typing import Optional

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray.exceptions import RayTaskError
from starlette.exceptions import HTTPException
from starlette.routing import Match

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


# FastAPI's answer to a body it could not read as JSON for reasons other than a JSONDecodeError (bytes that are
# not UTF-8, nesting past the recursion limit): a 400 the routes do not declare.
_UNREADABLE_BODY = "There was an error parsing the body"


async def http_error_handler(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's and FastAPI's own refusals (no such route, a method the path does not take, a body that is not
    JSON) with the `message` every error body has. A body that cannot be read as JSON is 422, as a JSON syntax
    error is; a 405's `Allow` names every method of the path, not only those of the first route that matched."""
    if exc.status_code == 400 and exc.detail == _UNREADABLE_BODY:
        cause = exc.__cause__
        why = f"{type(cause).__name__}: {cause}" if cause else "unreadable"
        errors = [{"type": "json_invalid", "loc": ["body"], "msg": "the body is not UTF-8 JSON",
                   "input": {}, "ctx": {"error": why}}]
        return JSONResponse(status_code=422, content={"detail": errors, "message": readable(errors)})
    headers = dict(exc.headers or {})
    message = exc.detail
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        headers["Allow"] = ", ".join(allowed)
        route = getattr(request.scope.get("route"), "path", "this path")  # the template: a key stays out of it
        message = f"{request.method} is not a method of {route}; it takes {', '.join(allowed)}"
    return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail, "message": message},
                        headers=headers or None)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """The methods some route answers on the request's path (Starlette's 405 names those of the first route whose
    path matched): each is tried against the app's routes as the router would."""
    routes = request.app.router.routes
    return [method for method in _METHODS
            if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)]
