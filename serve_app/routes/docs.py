"""The API's own description: /openapi.json, /docs (Swagger UI) and /redoc, behind the API token like every other
route unless the `open_api_docs` setting opens them (a browser cannot send the token for /docs).

FastAPI's built-in pages take no dependencies, so the app turns them off and these stand in for them."""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials

from serve_app.dependencies import get_settings
from serve_app.security import bearer, require_token

OPENAPI = "/openapi.json"
SWAGGER_REDIRECT = "/docs/oauth2-redirect"


async def docs_token(request: Request,
                     credentials: Annotated[Optional[HTTPAuthorizationCredentials], Depends(bearer)]) -> None:
    if not get_settings().open_api_docs:
        await require_token(request, credentials)


router = APIRouter(include_in_schema=False, dependencies=[Depends(docs_token)])


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


@router.get(OPENAPI)
async def openapi(request: Request) -> JSONResponse:
    schema = request.app.openapi()
    if _root(request):
        schema = {**schema, "servers": [{"url": _root(request)}, *schema.get("servers", [])]}
    return JSONResponse(schema)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=_root(request) + OPENAPI, title=f"{request.app.title} - Swagger UI",
                               oauth2_redirect_url=_root(request) + SWAGGER_REDIRECT)


@router.get(SWAGGER_REDIRECT)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(openapi_url=_root(request) + OPENAPI, title=f"{request.app.title} - ReDoc")
