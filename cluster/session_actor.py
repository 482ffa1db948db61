"""The session actor: one named, detached Ray actor wrapping the state machine and persisting it.

Ray runs one method at a time, which makes each machine method atomic. The
record is written to disk on every change and read back by the constructor, so
a killed or restarted actor comes back with the same session.
"""

from __future__ import annotations

import logging
from typing import Optional

import ray

from cluster.jobs import TrainingJob, launch
from cluster.metrics import SessionMetrics
from cluster.session_machine import SessionMachine
from cluster.session_record import SessionRecord
from cluster.settings import NAMESPACE, ON_HEAD_NODE, SESSION_ACTOR_NAME, Settings
from cluster.state_writer import LatestWriter
from train_jobs.files import read_json
from train_jobs.logs import configure_logging

log = logging.getLogger(__name__)


def job_alive(name: str) -> bool:
    if not name:
        return False
    try:
        ray.get_actor(name, namespace=NAMESPACE)
        return True
    except ValueError:
        return False


def stop_job(name: str) -> None:
    try:
        ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
    except ValueError:
        pass


class SessionActor(SessionMachine):
    def __init__(self, settings: dict):
        config = Settings(**settings)
        configure_logging(config.log_level)
        self._metrics = SessionMetrics()
        config.root.mkdir(parents=True, exist_ok=True)
        self._writer = LatestWriter(config.layout.state_file)
        raw = read_json(config.layout.state_file)
        # Fields added to the config since this record was written take their defaults.
        super().__init__(config, SessionRecord(**raw) if raw else None, self._write, job_alive, stop_job)
        self._recovered = False
        self._recover()

    def _recover(self) -> None:
        """Record what a restart cut off; a run goes on from its checkpoint. When that cannot be written (a full
        disk), the actor starts all the same, serving the record as it is on disk, and tries again at /status."""
        try:
            specs = self.recover_interrupted_jobs()
        except OSError:
            log.exception("could not record the jobs a restart interrupted; trying again at the next /status")
            return
        self._recovered = True
        for spec in specs:
            launch(TrainingJob, ray.get_runtime_context().current_actor, spec, self.settings.log_level)

    def status(self) -> dict:
        if not self._recovered:
            self._recover()
        return super().status()

    def health(self) -> dict:
        """/status, and whether the restart's recovery is done (tried again here, as at /status)."""
        return {"status": self.status(), "recovered": self._recovered}

    def _write(self, record: Optional[SessionRecord], wait: bool) -> None:
        """State changes are written before the call returns, raising what the disk raised (the machine then
        keeps its old state); live progress is not waited for, so /status never queues behind the disk while
        training loads the machine."""
        data = record.model_dump_json(indent=1).encode() if record else None
        if wait:
            self._writer.write(data)
        else:
            self._writer.submit(data)
        self._metrics.record(record)  # what /status says, for Prometheus too


def session_actor_handle(settings: Settings):
    """Get the session actor, creating it (detached, 0 CPU, restartable) if needed."""
    return (
        ray.remote(SessionActor)
        .options(name=SESSION_ACTOR_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                 num_cpus=0, resources=ON_HEAD_NODE, max_restarts=-1, max_task_retries=3)
        .remote(settings.model_dump())
    )

