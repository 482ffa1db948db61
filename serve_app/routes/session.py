"""Session routes: start (or wipe) the session, its status, the training config, the health check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from serve_app.dependencies import Service
from serve_app.schemas import (
    GUARDED,
    Health,
    Parameters,
    ServerStatus,
    SessionList,
    StartedSession,
    TrainingConfigUpdate,
    Unhealthy,
    errors,
)
from serve_app.security import ApiToken, HeaderKey, SessionKey

router = APIRouter(tags=["session"], dependencies=[ApiToken], responses=GUARDED)
health = APIRouter(tags=["session"])  # open: load balancers and probes carry no token
ForceRestart = Annotated[int, Query(description="If != 0, wipe the current session and start a new one.")]


@router.get("/start_session", response_model=StartedSession, response_model_exclude_unset=True,
            responses=errors(403, 409, 507))
async def start_session(service: Service, key: HeaderKey, force_restart: ForceRestart = 0) -> dict:
    """Start a new session and return its key; 409 while one is active unless `force_restart` (with several
    sessions: 409 at max_sessions; `force_restart` wipes only the session the X-Session-Key header names)."""
    return await service.start_session(force_restart != 0, key)


@router.get("/status", response_model=ServerStatus, response_model_exclude_unset=True, responses=errors(403))
async def status(service: Service, key: HeaderKey) -> dict:
    """The session's status: the X-Session-Key header's, or the only one's; with several sessions and no header,
    a summary (sessions by state, no keys)."""
    return await service.status(key)


@router.get("/sessions", response_model=SessionList, response_model_exclude_unset=True)
async def sessions(service: Service) -> dict:
    """Every session's id, state and times, no keys: for the server's operator (the API token guards it)."""
    return await service.list_sessions()


@health.get("/healthcheck", response_model=Health, response_model_exclude_unset=True, responses={503: {
    "model": Unhealthy, "description": "a check failed: `checks` says which, `message` what is wrong"}})
async def healthcheck(service: Service):
    """The session's status, with `healthy` and the `checks` made: the session actor answers, its recovery after a
    restart is done, the storage root takes a write; 503 when one fails."""
    healthy, body = await service.health()
    return body if healthy else JSONResponse(status_code=503, content=jsonable_encoder(body))


@router.post("/parameters/{key}", response_model=Parameters, response_model_exclude_unset=True, tags=["config"],
             responses=errors(403, 409, 422, 507))
async def update_parameters(key: SessionKey, config: TrainingConfigUpdate, service: Service) -> dict:
    """Merge the given fields into the training config; returns the full config."""
    return await service.update_parameters(key, config.model_dump(exclude_unset=True))


@router.get("/parameters", response_model=Parameters, response_model_exclude_unset=True, tags=["config"],
            responses=errors(403, 409))
async def get_parameters(service: Service, key: HeaderKey) -> dict:
    """The training config and dataset summary (of the X-Session-Key header's session, or the only one). The key
    is never returned here."""
    return await service.get_parameters(key)
