"""A session's recovery after a restart: work whose job actor died with Ray (or was killed) is never left running.

A plain class over the session core (session_core.py) and its runs (session_runs.py: a run cut off ends or resumes
there); no Ray: the actor asks whether a job is alive through the core and launches the runs returned here.
"""

from __future__ import annotations

import time
from pathlib import Path

from cluster.run_history import add_event, sync_run
from cluster.session_core import SessionCore, write_first
from cluster.session_record import SessionRecord, State
from cluster.session_runs import SessionRuns
from train_jobs.files import read_json
from train_jobs.results.archives import kept_checkpoint
from train_jobs.specs import TrainingSpec


class SessionRecovery:
    def __init__(self, core: SessionCore, runs: SessionRuns):
        self.core, self.runs = core, runs

    @write_first
    def recover_interrupted_jobs(self) -> list[TrainingSpec]:
        """A run that ended meanwhile is recorded from its outcome file, one cut off resumes from its checkpoint
        (returned: the caller launches it) or is reported stopped; preprocessing and imports are reported cut off."""
        core = self.core
        r = core.record
        if r is None:
            return []
        if r.state == State.preprocessing and not core.job_alive(r.preprocess.actor):
            r.state = State.setup
            r.preprocess.status = "failed"
            r.preprocess.error = "preprocessing was interrupted by a restart; call /preprocess again"
            r.error = {"during": "preprocessing", "message": r.preprocess.error}
            r.message = r.preprocess.error
            core.save()
        if r.imports.status == "running" and not core.job_alive(r.imports.actor):
            r.imports.status, r.imports.error = "failed", "the import was interrupted by a restart; import again"
            r.imports.message = r.imports.error
            core.save()
        if r.state == State.training and not core.job_alive(r.training.actor):
            return self._recover_run(r)
        return []

    def _recover_run(self, r: SessionRecord) -> list[TrainingSpec]:
        t = r.training
        outcome = read_json(Path(t.spec["outcome_file"])) if t.spec and t.spec.get("outcome_file") else None
        if outcome is not None:  # the run ended while no session actor was there to hear it
            self.runs.finish_training(t.id, outcome)
            return []
        ckpt = kept_checkpoint(Path(t.run_storage)) if t.run_storage else None
        t.resumable = ckpt is not None and t.spec is not None and not r.config.search
        if t.resumable and r.config.resume_on_restart and not t.stop_requested:
            return [self.runs.resume_run(r, why="cut off by a restart resumed")]
        r.state, t.status, t.finished_at = State.stopped, "stopped", time.time()
        r.artifacts.model_dir = str(ckpt) if ckpt else None
        r.message = "training was cut off by a restart; " + (
            "the last checkpoint is available for download; POST /training/start/{key}?resume=true goes on"
            if ckpt else "no checkpoint had been saved; call /training/start to train again")
        add_event(r, "state", r.message, {"status": t.status})
        sync_run(r)
        self.core.save()
        return []
