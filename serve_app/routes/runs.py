"""Run history routes: every training run of the session under its own id, with its events; delete one."""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Path, Query

from serve_app.dependencies import Service
from serve_app.schemas import GUARDED, RunDeleted, RunDetail, RunList, errors
from serve_app.security import ApiToken, SessionKey

router = APIRouter(tags=["runs"], dependencies=[ApiToken], responses=GUARDED)
RunId = Annotated[str, Path(description="a run id, as GET /runs/{key} lists them", max_length=128)]
# The optional run of the routes that act on a model (download, deploy, resume): the session's latest by default.
RunOf = Annotated[Optional[str], Query(description="a run id from GET /runs/{key}; default: the session's latest run",
                                       max_length=128)]


@router.get("/runs/{key}", response_model=RunList, responses=errors(403, 409))
async def runs(key: SessionKey, service: Service) -> dict:
    """The session's training runs, newest first: id, state, start and end, the selected metric's best value."""
    return await service.runs.list(key)


@router.get("/runs/{key}/{run_id}", response_model=RunDetail, responses=errors(403, 404, 409))
async def run(key: SessionKey, run_id: RunId, service: Service) -> dict:
    """One run: config, resolved hyper-parameters, evaluations, test metrics, artifacts, and its events (state
    changes, evaluations, restarts, errors, with their times). Another session's run id is 404."""
    return await service.runs.get(key, run_id)


@router.delete("/runs/{key}/{run_id}", response_model=RunDeleted, response_model_exclude_unset=True,
               responses=errors(403, 404, 409, 507))
async def delete_run(key: SessionKey, run_id: RunId, service: Service) -> dict:
    """Forget the run and free its files (checkpoints, model, exports, results); refused while it runs or while
    its model is deployed."""
    return await service.runs.delete(key, run_id)
