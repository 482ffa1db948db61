"""The FastAPI application: routers by resource, the error handler, an upload size guard and the request log."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from cluster.uploads import body_limit
from serve_app.dependencies import get_settings
from serve_app.errors import HANDLED, session_error_handler, validation_error_handler
from serve_app.request_log import log_requests
from serve_app.routes import artifacts, dataset, models, serving, session, training


async def refuse_oversized_uploads(request: Request, call_next):
    """Refuse an upload by its Content-Length before a byte of it is read (the stream is counted too, so a
    chunked body without one is stopped at the limit all the same)."""
    if request.url.path.startswith("/upload_dataset/"):
        settings = get_settings()
        limit = body_limit(settings.max_upload_bytes, 3)  # train, test, validation, plus form overhead
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            message = (f"upload of {int(length) // (1 << 20)} MiB exceeds the limit "
                       f"({settings.max_upload_mb:g} MiB per file)")
            return JSONResponse(status_code=413, content={"detail": message, "message": message})
    return await call_next(request)


def create_app() -> FastAPI:
    api = FastAPI(
        title="Training module",
        description="Fine-tune transformer text models on your labelled data over REST, on Ray.",
        version="0.1.0",
    )
    api.include_router(session.health)
    for module in (session, dataset, training, artifacts, models, serving):
        api.include_router(module.router)
    for kind in HANDLED:
        api.add_exception_handler(kind, session_error_handler)
    api.add_exception_handler(RequestValidationError, validation_error_handler)
    api.middleware("http")(refuse_oversized_uploads)
    api.middleware("http")(log_requests)  # added last, so it runs first and times (and logs) a refusal too
    return api
