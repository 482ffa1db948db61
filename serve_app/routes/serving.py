"""Model serving routes: deploy the trained model as its own Serve application, predict with it, remove it."""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Body

from cluster.session_record import DeployOptions
from serve_app.dependencies import Service
from serve_app.routes.runs import RunOf
from serve_app.schemas import GUARDED, Deployment, Predictions, PredictRequest, errors
from serve_app.security import ApiToken, SessionKey

router = APIRouter(tags=["serving"], dependencies=[ApiToken], responses=GUARDED)
Options = Annotated[Optional[DeployOptions], Body(description="batching, autoscaling and input limits")]


@router.post("/deploy/{key}", response_model=Deployment, response_model_exclude_unset=True,
             responses=errors(403, 404, 409, 422, 507))
async def deploy(key: SessionKey, service: Service, options: Options = None, run_id: RunOf = None) -> dict:
    """Serve the session's trained (or stopped-with-checkpoint) model, or run `run_id`'s; it replaces a deployment
    already there."""
    return await service.deploy(key, options or DeployOptions(), run_id)


@router.get("/deploy/{key}", response_model=Deployment, response_model_exclude_unset=True,
            responses=errors(403, 409, 503))
async def deployment(key: SessionKey, service: Service) -> dict:
    """The deployment's state (deploying, ready, failed), replicas and the model it serves."""
    return await service.deployment(key)


@router.delete("/deploy/{key}", response_model=Deployment, response_model_exclude_unset=True,
               responses=errors(403, 409, 507))
async def undeploy(key: SessionKey, service: Service) -> dict:
    return await service.undeploy(key)


@router.post("/predict/{key}", response_model=Predictions, responses=errors(403, 409, 422, 503))
async def predict(key: SessionKey, body: PredictRequest, service: Service) -> dict:
    """One result per input; 409 with a hint when the model is not deployed (or not ready yet); 503 with
    `Retry-After` when the replica answering the call was lost (Serve starts a new one)."""
    return await service.predict(key, body.kind, body.items)
