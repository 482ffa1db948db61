"""Training routes: start and stop a Ray Train run, follow it live."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from serve_app.dependencies import Service
from serve_app.routes.runs import RunOf
from serve_app.routes.session import ForceRestart
from serve_app.schemas import GUARDED, Monitor, ServerStatus, StartedSession, errors
from serve_app.security import ApiToken, SessionKey

router = APIRouter(tags=["training"], dependencies=[ApiToken], responses=GUARDED)
Resume = Annotated[bool, Query(description="Continue the stopped run from its latest checkpoint instead of a new run.")]


@router.post("/training/start/{key}", response_model=ServerStatus, response_model_exclude_unset=True,
             responses=errors(403, 404, 409, 422, 507))
async def training_start(key: SessionKey, service: Service, resume: Resume = False, run_id: RunOf = None) -> dict:
    """Start a Ray Train run in the background; follow it with /monitor/{key}. With `resume=true`, a stopped
    run goes on from its latest checkpoint (pause and resume)."""
    return await service.start_training(key, resume, run_id)


@router.post("/training/stop/{key}", response_model=ServerStatus | StartedSession,
             response_model_exclude_unset=True, responses=errors(403, 409, 507))
async def training_stop(key: SessionKey, service: Service, force_restart: ForceRestart = 0) -> dict:
    """Stop the run, keeping its last checkpoint; with `force_restart`, wipe the session and start a new one."""
    if force_restart:
        return await service.restart_session(key)
    return await service.stop_training(key)


@router.get("/monitor/{key}", response_model=Monitor, response_model_exclude_unset=True, responses=errors(403, 409))
async def monitor(key: SessionKey, service: Service) -> dict:
    """Live training info (step, loss, lr, samples/s, ETA) and the evaluation history."""
    return await service.monitor(key)
