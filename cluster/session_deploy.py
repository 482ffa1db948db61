"""A session's model deployment: which trained model Ray Serve serves for the session.

A plain class over the session core (session_core.py); no Ray here: the service starts and removes the Serve
application this record describes."""

from __future__ import annotations

from typing import Optional

from cluster.session_core import SessionCore, write_first
from cluster.session_record import DeploymentInfo, DeployOptions, SessionRecord, State
from train_jobs.errors import WrongState

DEPLOYABLE = (State.trained, State.stopped)
NO_DEPLOYMENT_HINT = "deploy the trained model with POST /deploy/{key} first"


def app_name(session_id: str) -> str:
    return f"model-{session_id[:8]}"


class SessionDeploy:
    def __init__(self, core: SessionCore):
        self.core = core

    def _deployable(self, key: str, run_id: Optional[str] = None) -> tuple[SessionRecord, str, str]:
        """The session, the model directory to serve and its run: the session's model, or run `run_id`'s."""
        r = self.core.session(key)
        if run_id is not None:
            return r, self.core.run_artifacts(r, run_id).model_dir, run_id
        if r.state not in DEPLOYABLE or not r.artifacts.model_dir:
            hint = ("train with /training/start and wait for state 'trained'" if r.state != State.training
                    else "wait for training to finish, or stop it with /training/stop")
            raise WrongState(f"no trained model to deploy while the session is {r.state.value}", state=r.state.value,
                             hint=hint)
        return r, r.artifacts.model_dir, r.training.id

    def deploy_source(self, key: str, runtime: str, run_id: Optional[str] = None) -> dict:
        """What serving the model with an ONNX `runtime` needs first: its export, built from the model's
        directory, checked on the dataset's rows, at the run's export path."""
        r, model_dir, run = self._deployable(key, run_id)
        return {"model_dir": model_dir, "dataset": r.dataset,
                "export_dir": str(self.core.layout.model_export(r.session_id, run, runtime))}

    @write_first
    def begin_deploy(self, key: str, options: dict, source: Optional[str] = None, run_id: Optional[str] = None) -> dict:
        """Record the deployment of the session's model (trained, or stopped with a checkpoint), or of run
        `run_id`'s. With an ONNX runtime, `source` is the model directory its export was built from (deploy_source)."""
        r, served, run = self._deployable(key, run_id)
        opts = DeployOptions(**options)
        if opts.runtime != "torch":
            if source != served:  # a new run ended while the export was built: it is of the old model
                raise WrongState("the trained model changed while its export was built", state=r.state.value,
                                 hint="deploy again: POST /deploy/{key}")
            served = str(self.core.layout.model_export(r.session_id, run, opts.runtime))
        r.deployment = DeploymentInfo(app=app_name(r.session_id), model_dir=served, run_id=run, options=opts)
        r.message = "model deployment starting; follow it with GET /deploy/{key}, then call /predict/{key}"
        self.core.save()
        return r.deployment.model_dump()

    def deployment(self, key: str, required: bool = False) -> Optional[dict]:
        r = self.core.session(key)
        if r.deployment is None and required:
            raise WrongState("the model is not deployed", state=r.state.value, hint=NO_DEPLOYMENT_HINT)
        return r.deployment.model_dump() if r.deployment else None

    def recorded_deployment(self) -> Optional[dict]:
        """For the server's start-up (no key): the deployment to bring back."""
        r = self.core.record
        return r.deployment.model_dump() if r and r.deployment else None

    @write_first
    def end_deploy(self, key: str) -> dict:
        r = self.core.session(key)
        if r.deployment is None:
            raise WrongState("the model is not deployed", state=r.state.value, hint=NO_DEPLOYMENT_HINT)
        old = r.deployment.model_dump()
        r.deployment = None
        r.message = "model deployment removed"
        self.core.save()
        return old
