"""Starting, inspecting and removing the model deployment's Serve application (blocking Serve API calls:
the service runs them in a thread)."""

from __future__ import annotations

import logging
from typing import Any, Optional

import ray
from ray import serve
from ray.serve.exceptions import RayServeException

from cluster.model_server import model_app
from cluster.session_record import DeploymentInfo

log = logging.getLogger(__name__)
MODEL_APP_PREFIX = "model-"
# Serve's application status to the deployment's state in GET /deploy/{key}.
STATES = {"DEPLOYING": "deploying", "RUNNING": "ready", "DEPLOY_FAILED": "failed", "UNHEALTHY": "failed",
          "DELETING": "deleting", "NOT_STARTED": "deploying"}


def start_app(info: dict) -> None:
    """Deploy (or update in place) the application; returns once Serve has it, before its replicas load."""
    d = DeploymentInfo(**info)
    use_gpu = d.options.use_gpu if d.options.use_gpu is not None else ray.cluster_resources().get("GPU", 0) >= 1
    use_gpu = use_gpu and d.options.runtime == "torch"  # an ONNX export runs on onnxruntime's CPU provider
    target = serve.RunTarget(target=model_app(d.model_dir, d.options, use_gpu), name=d.app, route_prefix=None)
    serve.run_many([target], wait_for_applications_running=False)


def remove_apps(keep: Optional[str] = None) -> list[str]:
    """Remove every model application but `keep` (at most one session, so at most one is wanted)."""
    gone = [name for name in serve.status().applications if name.startswith(MODEL_APP_PREFIX) and name != keep]
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
