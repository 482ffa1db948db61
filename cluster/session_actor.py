"""The session actor: one named, detached Ray actor holding the server's sessions and persisting them.

Ray runs one method at a time, which makes each step atomic, across sessions too. Each
session's record is written to disk on every change and read back by the constructor, so
a killed or restarted actor comes back with the same sessions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Optional

import ray
from cachetools.func import ttl_cache

from cluster.jobs import TrainingJob, launch
from cluster.layout import Layout
from cluster.metrics import SessionMetrics
from cluster.session_machine import SessionMachine
from cluster.session_record import SessionRecord
from cluster.session_registry import FREEING_STEPS, JOB_STEPS, KEYED_STEPS, SessionRegistry
from cluster.settings import NAMESPACE, ON_HEAD_NODE, SESSION_ACTOR_NAME, Settings
from cluster.state_writer import LatestWriter
from train_jobs.files import atomic_write_bytes, read_json
from train_jobs.logs import configure_logging
from train_jobs.specs import TrainingSpec
from train_jobs.training.scaling import cluster_size

log = logging.getLogger(__name__)
# The queue fits runs into the cluster's size, and an unkeyed /status shows it: asked of Ray's GCS at most once
# in this many seconds, not on every poll of a queued session (nodes come and go far less often).
CLUSTER_SIZE_TTL_S = 5
cached_cluster_size = ttl_cache(maxsize=1, ttl=CLUSTER_SIZE_TTL_S)(cluster_size)


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


class SessionFile:
    """A session's record on disk (`sessions/<id>.json`), as its machine persists it: state changes written before
    the step returns, raising what the disk raised (the machine then keeps its old state); live progress not waited
    for, so /status never queues behind the disk while training loads the machine. A wipe removes the file."""

    def __init__(self, layout: Layout, on_write: Callable[[], None], session_id: Optional[str] = None):
        self._layout, self._on_write = layout, on_write
        self._session_id = session_id
        self._writer = LatestWriter(layout.state_file(session_id)) if session_id else None

    def __call__(self, record: Optional[SessionRecord], wait: bool) -> None:
        if record is not None and record.session_id != self._session_id:  # a new session in this machine
            self._session_id, self._writer = record.session_id, LatestWriter(self._layout.state_file(record.session_id))
        if self._writer is None:
            return
        data = record.model_dump_json(indent=1).encode() if record else None
        if wait:
            self._writer.write(data)
        else:
            self._writer.submit(data)
        self._on_write()
        if record is None and wait:  # wiped: its file is gone, and its writer's thread goes too
            self._writer.close()
            self._session_id, self._writer = None, None


def read_records(layout: Layout) -> list[SessionRecord]:
    """Every session on disk; the one session of a server from before several were held moves to its own file
    (on a full disk it stays where it is, read from there until a start can move it). Fields added to the record
    since it was written take their defaults."""
    records = {r.session_id: r for r in (SessionRecord(**raw) for raw in map(read_json, layout.state_files()) if raw)}
    legacy = read_json(layout.legacy_state_file)
    if legacy and (record := SessionRecord(**legacy)).session_id not in records:
        records[record.session_id] = record
        try:
            atomic_write_bytes(layout.state_file(record.session_id), record.model_dump_json(indent=1).encode())
        except OSError:
            log.exception("could not move %s to %s; trying again at the next start", layout.legacy_state_file,
                          layout.state_file(record.session_id))
            return list(records.values())
    layout.legacy_state_file.unlink(missing_ok=True)
    return list(records.values())


class SessionActor:
    """The registry's steps, each forwarded to the session it names (the key, or the job's id); see KEYED_STEPS."""

    def __init__(self, settings: dict):
        config = Settings(**settings)
        configure_logging(config.log_level)
        self.settings = config
        self._metrics = SessionMetrics()
        config.root.mkdir(parents=True, exist_ok=True)
        self.sessions = SessionRegistry(config, read_records(config.layout), self._machine, cached_cluster_size)
        self._recovered = False
        self._recover()

    def _machine(self, record: Optional[SessionRecord]) -> SessionMachine:
        persist = SessionFile(self.settings.layout, self._record_metrics, record.session_id if record else None)
        return SessionMachine(self.settings, record, persist, job_alive, stop_job)

    def _record_metrics(self) -> None:
        self._metrics.record([m.record for m in self.sessions.machines if m.record is not None])

    def _recover(self) -> None:
        """Record what a restart cut off; a run goes on from its checkpoint. When that cannot be written (a full
        disk), the actor starts all the same, serving the records as they are on disk, and tries again at /status."""
        try:
            specs = self.sessions.recover_interrupted_jobs()
        except OSError:
            log.exception("could not record the jobs a restart interrupted; trying again at the next /status")
            return
        self._recovered = True
        self._launch(specs)
        self._admit()

    def _launch(self, specs: list[TrainingSpec]) -> None:
        for spec in specs:
            try:
                launch(TrainingJob, ray.get_runtime_context().current_actor, spec, self.settings.log_level)
            except Exception as e:  # the run fails at once rather than staying busy forever
                log.exception("could not start %s", spec.run_id)
                self.abort_job(spec.run_id, f"could not start {spec.run_id}: {e}")

    def _admit(self) -> None:
        """Start the queued runs that now fit (after a run ended or left the queue, or a session went). A start that
        cannot be written (a full disk) leaves its run queued, tried again at the next /status; the step that
        called this keeps its own answer."""
        try:
            specs = self.sessions.admit()
        except OSError:
            log.exception("could not start a queued run; trying again at the next /status")
            return
        self._launch(specs)

    def status(self, key: Optional[str] = None) -> dict:
        if not self._recovered:
            self._recover()
        elif self.sessions.queue():
            self._admit()
        return self.sessions.status(key)

    def health(self) -> dict:
        """/status, and whether the restart's recovery is done (tried again here, as at /status)."""
        return {"status": self.status(), "recovered": self._recovered}

    def start(self, force: bool, key: Optional[str] = None) -> dict:
        self.sessions.expire()
        try:
            return self.sessions.start(force, key)
        finally:
            self._admit()  # a wiped session's queued run left the queue

    def begin_training(self, key: str, resume: bool = False, run_id: Optional[str] = None) -> Optional[TrainingSpec]:
        """The spec the caller launches, or None: the run is queued (the actor launches it when its turn comes)."""
        return self.sessions.begin_training(key, resume, run_id)

    def get_config(self, key: Optional[str] = None) -> dict:
        return self.sessions.get_config(key)

    def list_sessions(self) -> list[dict]:
        self.sessions.expire()
        return self.sessions.list_sessions()

    def recorded_deployments(self) -> list[dict]:
        return self.sessions.recorded_deployments()


def _keyed(name: str):
    def step(self, key, *args, **kwargs):
        try:
            return getattr(self.sessions.keyed(key), name)(key, *args, **kwargs)
        finally:
            if name in FREEING_STEPS:
                self._admit()
    step.__name__ = name
    return step


def _job(name: str):
    def step(self, job_id, *args, **kwargs):
        machine = self.sessions.by_job(job_id)
        try:
            return None if machine is None else getattr(machine, name)(job_id, *args, **kwargs)  # a wiped session's
        finally:
            if name in FREEING_STEPS:
                self._admit()
    step.__name__ = name
    return step


for _name in KEYED_STEPS:
    setattr(SessionActor, _name, _keyed(_name))
for _name in JOB_STEPS:
    setattr(SessionActor, _name, _job(_name))


def session_actor_handle(settings: Settings):
    """Get the session actor, creating it (detached, 0 CPU, restartable) if needed."""
    return (
        ray.remote(SessionActor)
        .options(name=SESSION_ACTOR_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                 num_cpus=0, resources=ON_HEAD_NODE, max_restarts=-1, max_task_retries=3)
        .remote(settings.model_dump())
    )

