"""One session's state machine: the parts it is composed of, and the steps the registry and the actor call on it.

idle -> setup -> preprocessing -> preprocessed -> training -> trained | stopped | failed;
a new upload or config change returns to setup. Each part owns one responsibility and holds the session core
(no inheritance between them): session_core.py (record, key, atomic steps, config, dataset, results),
session_runs.py (training runs and their history), session_deploy.py (the served model), session_jobs.py
(preprocessing and imports), session_recovery.py (what a restart cut off). Plain Python, no Ray, so every
transition is unit-tested in process. Jobs report progress and their end here; a report from a job that was
replaced or wiped is ignored. Concurrent calls such as two `training/start` requests cannot both succeed: the
actor that wraps the machine runs one method at a time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Optional

from cluster.session_core import Persist, SessionCore
from cluster.session_deploy import SessionDeploy
from cluster.session_jobs import SessionJobs
from cluster.session_record import SessionRecord
from cluster.session_recovery import SessionRecovery
from cluster.session_runs import SessionRuns
from cluster.settings import Settings

# Each part's public steps, which the machine answers by handing the call to that part.
STEPS = {
    "core": (SessionCore, ("status", "start", "wipe", "authorize", "restart", "get_config", "update_config",
                           "begin_upload", "set_dataset", "monitor", "artifacts", "set_artifact")),
    "runs": (SessionRuns, ("begin_training", "start_queued", "training_progress", "training_waiting",
                           "search_progress", "finish_training", "request_stop", "list_runs", "get_run",
                           "delete_run")),
    "deploy": (SessionDeploy, ("deploy_source", "begin_deploy", "deployment", "end_deploy", "recorded_deployment")),
    "jobs": (SessionJobs, ("begin_preprocess", "preprocess_progress", "finish_preprocess", "begin_import",
                           "import_progress", "finish_import", "last_import", "abort_job")),
    "recovery": (SessionRecovery, ("recover_interrupted_jobs",)),
}


class SessionMachine:
    """A session's parts over one core; the steps of STEPS are this class's methods, each the part's own."""

    def __init__(self, settings: Settings, record: Optional[SessionRecord], persist: Persist,
                 job_alive: Callable[[str], bool], stop_job: Callable[[str], None]):
        self.core = SessionCore(settings, record, persist, job_alive, stop_job)
        self.runs = SessionRuns(self.core)
        self.deploy = SessionDeploy(self.core)
        self.jobs = SessionJobs(self.core, self.runs)
        self.recovery = SessionRecovery(self.core, self.runs)

    @property
    def record(self) -> Optional[SessionRecord]:
        """The session's record (None once wiped): the core's, which every part changes."""
        return self.core.record


def _forward(part: str, method: Callable) -> Callable:
    @functools.wraps(method)  # the part's name, signature and docstring
    def step(self, *args, **kwargs):
        return getattr(getattr(self, part), method.__name__)(*args, **kwargs)
    return step


for _part, (_cls, _names) in STEPS.items():
    for _name in _names:
        setattr(SessionMachine, _name, _forward(_part, getattr(_cls, _name)))
