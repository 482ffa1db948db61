"""The server's sessions: one state machine each, found by key (the routes) or by job id (the jobs' reports).

With `max_sessions` 1 (the default) this is the reference's one session: `start_session` is refused while it
exists and `force_restart` wipes it. Above 1 each `start_session` adds a session until the limit; a
`force_restart` wipes only the session whose key comes with it, and unkeyed it is refused while several exist.
Plain Python, no Ray: the session actor wraps it and runs one method at a time.
"""

from __future__ import annotations

import hmac
import time
from collections import Counter
from collections.abc import Callable
from typing import Optional

from cluster.session_machine import SessionMachine
from cluster.session_record import BUSY, SessionRecord, State
from cluster.settings import Settings
from cluster.status import status_of
from train_jobs.errors import SessionError, WrongKey, WrongState
from train_jobs.specs import TrainingSpec
from train_jobs.training.scaling import worker_plan

# The machine's steps that take the session key first, and those a job calls with its job or run id first: the
# actor forwards each to the session it names.
KEYED_STEPS = ("authorize", "restart", "update_config", "begin_upload", "set_dataset", "monitor", "artifacts",
               "set_artifact", "request_stop", "list_runs", "get_run", "delete_run",
               "deploy_source", "begin_deploy", "deployment", "end_deploy", "begin_preprocess", "begin_import",
               "last_import")
JOB_STEPS = ("training_progress", "training_waiting", "search_progress", "finish_training", "preprocess_progress",
             "finish_preprocess", "import_progress", "finish_import", "abort_job")
# The steps after which a queued run may start: a run ended, or left the queue, or a session was wiped.
FREEING_STEPS = ("finish_training", "abort_job", "request_stop", "restart")
HEADER_HINT = "name your session with the X-Session-Key header"
QUEUE_RETRY_S = 60


class QueueFull(SessionError):
    """429: the run queue holds max_queue runs; try again later."""

    status_code = 429
    headers = {"Retry-After": str(QUEUE_RETRY_S)}


class SessionRegistry:
    def __init__(self, settings: Settings, records: list[SessionRecord],
                 new_machine: Callable[[Optional[SessionRecord]], SessionMachine],
                 resources: Callable[[], dict] = dict, clock: Callable[[], float] = time.time):
        """`resources()`: the cluster's (training/scaling.py's cluster_size()), which the queue fits runs into."""
        self.settings = settings
        self._new_machine, self._resources, self._clock = new_machine, resources, clock
        self.machines: list[SessionMachine] = [new_machine(r) for r in sorted(records, key=lambda r: r.created_at)]
        self._number_queue()

    # ---- finding a session ----------------------------------------------------------------
    def live(self) -> list[SessionMachine]:
        self.machines = [m for m in self.machines if m.record is not None]
        return self.machines

    def keyed(self, key: str) -> SessionMachine:
        """The session `key` opens (403 for any other key; 409 when there is no session at all)."""
        machines = self.live()
        if not machines:
            raise WrongState("there is no active session", state=State.idle.value, hint="call /start_session first")
        given = key.encode() if isinstance(key, str) else b""
        found = None
        for m in machines:  # every key compared, in constant time each
            if hmac.compare_digest(given, m.record.key.encode()):
                found = m
        if found is None:
            raise WrongKey("wrong session key")
        found.record.touched_at = self._clock()  # written with the session's next change
        return found

    def by_job(self, job_id: str) -> Optional[SessionMachine]:
        """The session that started job `job_id` ("<session id[:8]>-<kind>-<n>"); None once it was wiped."""
        prefix = job_id.split("-", 1)[0]
        return next((m for m in self.live() if m.record.session_id[:8] == prefix), None)

    def _only(self, key: Optional[str]) -> Optional[SessionMachine]:
        """The session an unkeyed route answers for: the header's, else the only one; None when there is none."""
        if key is not None:
            return self.keyed(key)
        machines = self.live()
        if len(machines) > 1:
            return None
        return machines[0] if machines else None

    # ---- sessions -----------------------------------------------------------------------------
    def start(self, force: bool, key: Optional[str] = None) -> dict:
        machines = self.live()
        if key is not None and force:
            return self.keyed(key).restart(key)
        if force and len(machines) > 1:
            raise WrongState(f"{len(machines)} sessions exist: force_restart wipes only the session whose key comes "
                             "with it", state="sessions", hint="send its key in the X-Session-Key header, or call "
                             "/training/stop/{key}?force_restart=1")
        if machines and (force or self.settings.max_sessions == 1):
            return machines[0].start(force)  # the reference's one session: refused unless forced, then wiped
        if len(machines) >= self.settings.max_sessions:
            raise WrongState(f"the server holds its limit of {self.settings.max_sessions} sessions (max_sessions)",
                             state="sessions", hint="wipe one with force_restart and its key, or start the server "
                             "with a higher max_sessions")
        machine = self._new_machine(None)
        reply = machine.start(False)  # raises before the session counts when its record cannot be written
        self.machines.append(machine)
        return reply

    def status(self, key: Optional[str] = None) -> dict:
        machine = self._only(key)
        if machine is not None:
            return machine.status()
        return self.summary() if self.live() else status_of(None)

    def get_config(self, key: Optional[str] = None) -> dict:
        machine = self._only(key)
        if machine is None and self.live():
            raise WrongState(f"{len(self.machines)} sessions exist: which one's parameters?", state="sessions",
                             hint=HEADER_HINT)
        if machine is None:
            raise WrongState("there is no active session", state=State.idle.value, hint="call /start_session first")
        return machine.get_config()

    def summary(self) -> dict:
        """The server's sessions by state, with no keys and no configs (an unkeyed /status with several)."""
        records = [m.record for m in self.live()]
        by_state = Counter(r.state.value for r in records)
        states = ", ".join(f"{n} {state}" for state, n in sorted(by_state.items()))
        return {"state": "sessions", "session_active": bool(records), "model_ready": False, "error": None,
                "message": f"{len(records)} sessions ({states}); {HEADER_HINT} for its status",
                "sessions": {"count": len(records), "max_sessions": self.settings.max_sessions,
                             "by_state": dict(by_state), "queued": len(self.queue()),
                             "cluster": {k: v for k, v in self._resources().items() if k in ("CPU", "GPU")}}}

    # ---- the run queue ---------------------------------------------------------------------------
    def begin_training(self, key: str, resume: bool = False, run_id: Optional[str] = None) -> Optional[TrainingSpec]:
        """The run's spec to launch now, or None when it joins the queue (state queued): FIFO across sessions, a
        run starting when the runs in training leave room for its workers (a run alone always starts)."""
        machine = self.keyed(key)
        queue = self.queue()
        wait = bool(queue) or not self._fits(machine.record.config)
        if wait and len(queue) >= self.settings.max_queue:
            raise QueueFull(f"the run queue is full ({self.settings.max_queue} runs wait: max_queue)",
                            state=machine.record.state.value, hint=f"try again in {QUEUE_RETRY_S} s")
        spec = machine.begin_training(key, resume, run_id, queued=wait)
        self._number_queue()
        return None if wait else spec

    def queue(self) -> list[SessionMachine]:
        """The sessions whose run waits, first in line first."""
        return sorted((m for m in self.live() if m.record.state == State.queued),
                      key=lambda m: m.record.training.queued_at or 0)

    def admit(self) -> list[TrainingSpec]:
        """Start the queued runs that now fit, in order (none overtakes the first in line); their specs to launch."""
        started = []
        for machine in self.queue():
            if not self._fits(machine.record.config):
                break
            spec = machine.start_queued(machine.record.training.id)
            if spec is not None:
                started.append(spec)
        self._number_queue()
        return started

    def _number_queue(self) -> None:
        for position, machine in enumerate(self.queue(), 1):
            machine.record.training.queue_position = position

    def _need(self, config, resources: dict) -> tuple[int, int]:
        """(CPUs, GPUs) a run of `config` holds: its workers' (training/scaling.py's one rule)."""
        use_gpu, workers, cpus = worker_plan(config.use_gpu, config.num_workers, self.settings.num_workers, resources)
        return workers * cpus, workers if use_gpu else 0

    def _fits(self, config) -> bool:
        running = [m.record.config for m in self.live() if m.record.state == State.training]
        if not running:
            return True  # alone, it starts; Ray Train waits for what else holds the cluster (resource_wait_timeout_s)
        resources = self._resources()
        held = [self._need(c, resources) for c in [*running, config]]
        return sum(c for c, _ in held) <= resources.get("CPU", 0) and sum(g for _, g in held) <= resources.get("GPU", 0)

    def list_sessions(self) -> list[dict]:
        """Every session's id, state and times, oldest first: for the server's operator (GET /sessions)."""
        return [{"session_id": r.session_id, "state": r.state.value, "created_at": r.created_at,
                 "touched_at": r.touched_at, "runs": len(r.run_history), "message": r.message,
                 "deployed": r.deployment is not None} for r in (m.record for m in self.live())]

    def expire(self) -> list[str]:
        """Remove the sessions idle past `session_ttl_hours` (none busy), with their files; their ids."""
        ttl = self.settings.session_ttl_hours
        if ttl is None:
            return []
        cutoff = self._clock() - ttl * 3600
        gone = []
        for m in self.live():
            r = m.record
            if r.state not in BUSY and r.deployment is None and max(r.touched_at, r.created_at) < cutoff:
                gone.append(r.session_id)
                m.wipe()
        self.live()
        return gone

    # ---- the server's start ---------------------------------------------------------------------
    def recorded_deployments(self) -> list[dict]:
        return [d for d in (m.recorded_deployment() for m in self.live()) if d]

    def recover_interrupted_jobs(self) -> list[TrainingSpec]:
        return [spec for m in self.live() for spec in m.recover_interrupted_jobs()]
