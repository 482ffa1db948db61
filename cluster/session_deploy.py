"""The state machine's model deployment: which trained model Ray Serve serves for the session (no Ray here;
the service starts and removes the Serve application this record describes)."""

from __future__ import annotations

from typing import Optional

from cluster.session_core import write_first
from cluster.session_record import DeploymentInfo, DeployOptions, State
from cluster.session_runs import SessionRuns
from train_jobs.errors import WrongState

DEPLOYABLE = (State.trained, State.stopped)
NO_DEPLOYMENT_HINT = "deploy the trained model with POST /deploy/{key} first"


def app_name(session_id: str) -> str:
    return f"model-{session_id[:8]}"


class SessionDeploy(SessionRuns):
    @write_first
    def begin_deploy(self, key: str, options: dict) -> dict:
        """Record the deployment of the session's model (trained, or stopped with a checkpoint)."""
        r = self._session(key)
        if r.state not in DEPLOYABLE or not r.artifacts.model_dir:
            hint = ("train with /training/start and wait for state 'trained'" if r.state != State.training
                    else "wait for training to finish, or stop it with /training/stop")
            raise WrongState(f"no trained model to deploy while the session is {r.state.value}", state=r.state.value,
                             hint=hint)
        r.deployment = DeploymentInfo(app=app_name(r.session_id), model_dir=r.artifacts.model_dir,
                                      run_id=r.training.id, options=DeployOptions(**options))
        r.message = "model deployment starting; follow it with GET /deploy/{key}, then call /predict/{key}"
        self._save()
        return r.deployment.model_dump()

    def deployment(self, key: str, required: bool = False) -> Optional[dict]:
        r = self._session(key)
        if r.deployment is None and required:
            raise WrongState("the model is not deployed", state=r.state.value, hint=NO_DEPLOYMENT_HINT)
        return r.deployment.model_dump() if r.deployment else None

    def recorded_deployment(self) -> Optional[dict]:
        """For the server's start-up (no key): the deployment to bring back."""
        r = self.record
        return r.deployment.model_dump() if r and r.deployment else None

    @write_first
    def end_deploy(self, key: str) -> dict:
        r = self._session(key)
        if r.deployment is None:
            raise WrongState("the model is not deployed", state=r.state.value, hint=NO_DEPLOYMENT_HINT)
        old = r.deployment.model_dump()
        r.deployment = None
        r.message = "model deployment removed"
        self._save()
        return old
