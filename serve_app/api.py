"""The FastAPI application: routers by resource, the error handler, an upload size guard and the request log."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from cluster.uploads import body_limit
from serve_app.dependencies import get_settings
from serve_app.errors import HANDLED, http_error_handler, session_error_handler, validation_error_handler
from serve_app.request_log import RequestLog
from serve_app.routes import artifacts, dataset, docs, models, runs, serving, session, training, ui


class RefuseOversizedUploads:
    """Refuse an upload by its Content-Length before a byte of it is read (the stream is counted too, so a
    chunked body without one is stopped at the limit all the same). Plain ASGI, like the request log."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/upload_dataset/"):
            settings = get_settings()
            limit = body_limit(settings.max_upload_bytes, 3)  # train, test, validation, plus form overhead
            length = Headers(scope=scope).get("content-length")
            if length and length.isdigit() and int(length) > limit:
                message = (f"upload of {int(length) // (1 << 20)} MiB exceeds the limit "
                           f"({settings.max_upload_mb:g} MiB per file)")
                response = JSONResponse(status_code=413, content={"detail": message, "message": message})
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


def create_app() -> FastAPI:
    api = FastAPI(
        title="Training module",
        description="Fine-tune transformer text models on your labelled data over REST, on Ray.",
        version="0.1.0",
        openapi_url=None, docs_url=None, redoc_url=None,  # routes/docs.py serves them, behind the API token
    )
    api.include_router(session.health)
    api.include_router(ui.router)  # the console page (open, as /healthcheck) and, below, its static files
    for module in (session, dataset, training, artifacts, runs, models, serving, docs):
        api.include_router(module.router)
    api.mount("/ui", ui.assets, name="ui")
    for kind in HANDLED:
        api.add_exception_handler(kind, session_error_handler)
    api.add_exception_handler(RequestValidationError, validation_error_handler)
    api.add_exception_handler(HTTPException, http_error_handler)
    api.add_middleware(RefuseOversizedUploads)
    api.add_middleware(RequestLog)  # added last, so it runs first and times (and logs) a refusal too
    return api
