"""Starting, inspecting and removing the model deployment's Serve application (blocking Serve API calls:
the service runs them in a thread), and what a call to its replica answers when the replica was lost."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

import ray
from ray import serve
from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import RayServeException, ReplicaUnavailableError

from cluster.model_server import model_app
from cluster.session_record import DeploymentInfo
from train_jobs.errors import SessionError

log = logging.getLogger(__name__)
MODEL_APP_PREFIX = "model-"
# Serve's application status to the deployment's state in GET /deploy/{key}.
STATES = {"DEPLOYING": "deploying", "RUNNING": "ready", "DEPLOY_FAILED": "failed", "UNHEALTHY": "failed",
          "DELETING": "deleting", "NOT_STARTED": "deploying"}
# A replica that died (killed, out of memory, its node lost) or cannot be reached for now. Serve retries a call it
# had not yet handed to the replica and queues new calls until a new replica is up; a call the replica had
# already taken fails with one of these.
REPLICA_LOST = (RayActorError, ReplicaUnavailableError)
RETRY_AFTER_S = 5  # about a replacement replica's start on a small CPU machine (process, imports, model load)


class ModelUnavailable(SessionError):
    """503: the model replica answering the call was lost; Serve is bringing a new one, so the call may be repeated
    (inference changes nothing)."""

    status_code = 503
    headers = {"Retry-After": str(RETRY_AFTER_S)}


def start_app(info: dict) -> None:
    """Deploy (or update in place) the application; returns once Serve has it, before its replicas load."""
    d = DeploymentInfo(**info)
    use_gpu = d.options.use_gpu if d.options.use_gpu is not None else ray.cluster_resources().get("GPU", 0) >= 1
    use_gpu = use_gpu and d.options.runtime == "torch"  # an ONNX export runs on onnxruntime's CPU provider
    target = serve.RunTarget(target=model_app(d.model_dir, d.options, use_gpu), name=d.app, route_prefix=None)
    serve.run_many([target], wait_for_applications_running=False)


def remove_apps(keep: set[str]) -> list[str]:
    """Remove every model application but those in `keep` (the sessions' recorded deployments)."""
    gone = [name for name in serve.status().applications if name.startswith(MODEL_APP_PREFIX) and name not in keep]
    for name in gone:
        serve.delete(name)
    return gone


def app_state(name: str) -> dict[str, Any]:
    """The application's state, message and replicas by state, as Serve reports them now."""
    app = serve.status().applications.get(name)
    if app is None:
        return {"state": "absent", "message": "not running: POST /deploy/{key} starts it again", "replicas": {}}
    replicas: dict[str, int] = {}
    for dep in app.deployments.values():
        for state, count in dep.replica_states.items():
            name_ = str(getattr(state, "value", state)).lower()
            replicas[name_] = replicas.get(name_, 0) + count
    messages = [app.message, *(d.message for d in app.deployments.values())]
    status = str(getattr(app.status, "value", app.status))
    return {"state": STATES.get(status, status.lower()), "message": "; ".join(m for m in messages if m),
            "replicas": replicas}


def app_handle(name: str):
    try:
        return serve.get_app_handle(name)
    except RayServeException:
        return None


def replica_lost(exc: BaseException) -> bool:
    """Whether `exc` says the replica was lost (raised here, or wrapped in the error of a task that waited on it)."""
    return isinstance(exc.cause if isinstance(exc, RayTaskError) else exc, REPLICA_LOST)


async def replica_answer(response: Awaitable):
    """The replica's answer to a call (a DeploymentResponse); a replica lost meanwhile is a 503 to retry, not a 500."""
    try:
        return await response
    except Exception as e:
        if not replica_lost(e):
            raise
        raise ModelUnavailable("the model replica answering this call stopped before it answered; Serve is starting "
                               "a new one", hint=f"retry in {RETRY_AFTER_S} s; GET /deploy/{{key}} shows the "
                               "replicas (running again when the new one has loaded the model)") from e
