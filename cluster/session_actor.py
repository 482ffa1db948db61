"""The session actor: one named, detached Ray actor wrapping the state machine and persisting it.

Ray runs one method at a time, which makes each machine method atomic. The
record is written to disk on every change and read back by the constructor, so
a killed or restarted actor comes back with the same session.
"""

from __future__ import annotations

from typing import Optional

import ray

from cluster.jobs import TrainingJob, launch
from cluster.session_machine import SessionMachine
from cluster.session_record import SessionRecord
from cluster.settings import NAMESPACE, SESSION_ACTOR_NAME, Settings
from cluster.state_writer import LatestWriter
from train_jobs.files import read_json


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
        config.root.mkdir(parents=True, exist_ok=True)
        self._writer = LatestWriter(config.layout.state_file)
        raw = read_json(config.layout.state_file)
        # Fields added to the config since this record was written take their defaults.
        super().__init__(config, SessionRecord(**raw) if raw else None, self._write, job_alive, stop_job)
        for spec in self.recover_interrupted_jobs():  # a run cut off by a restart goes on from its checkpoint
            launch(TrainingJob, ray.get_runtime_context().current_actor, spec)

    def _write(self, record: Optional[SessionRecord], wait: bool) -> None:
        """State changes wait until they are on disk; live progress does not, so /status never queues
        behind the disk while training loads the machine."""
        version = self._writer.submit(record.model_dump_json(indent=1).encode() if record else None)
        if wait:
            self._writer.flush(version)


def session_actor_handle(settings: Settings):
    """Get the session actor, creating it (detached, 0 CPU, restartable) if needed."""
    return (
        ray.remote(SessionActor)
        .options(name=SESSION_ACTOR_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                 num_cpus=0, max_restarts=-1, max_task_retries=3)
        .remote(settings.model_dump())
    )

