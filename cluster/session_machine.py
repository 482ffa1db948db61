"""The session state machine with its jobs: plain Python, no Ray, so every transition is unit-tested in process.

idle -> setup -> preprocessing -> preprocessed -> training -> trained | stopped | failed;
a new upload or config change returns to setup (session_core.py); training runs are
in session_runs.py; preprocessing, imports and crash recovery here. Jobs report
progress and their end here; a report from a job that was replaced or wiped is
ignored. Concurrent calls such as two `training/start` requests cannot both
succeed: the actor that wraps the machine runs one method at a time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from cluster.run_history import add_event, sync_run
from cluster.session_core import write_first
from cluster.session_deploy import SessionDeploy
from cluster.session_record import TRAINABLE, State
from train_jobs.data.cache import reusable_cache
from train_jobs.errors import InvalidParameters, WrongState
from train_jobs.files import read_json
from train_jobs.models.lookup import resolve_model
from train_jobs.results.archives import kept_checkpoint
from train_jobs.specs import ImportSpec, PreprocessSpec, TrainingSpec


class SessionMachine(SessionDeploy):
    # ---- preprocessing ----------------------------------------------------------------
    @write_first
    def begin_preprocess(self, key: str) -> Optional[PreprocessSpec]:
        """The job to launch, or None when a finished cache answers at once (no job needed)."""
        r = self._session(key)
        self._require(r, [State.setup, *TRAINABLE], "preprocess",
                      "wait for the running job, or call /training/stop first")
        if r.dataset is None:
            raise WrongState("no dataset uploaded", state=r.state.value, hint="call /upload_dataset/{key} first")
        if r.dataset.get("task_type", "sequence_classification") != r.config.task_type:
            raise WrongState(f"the dataset was checked for {r.dataset.get('task_type')}, but task_type is now "
                             f"{r.config.task_type}", state=r.state.value,
                             hint="upload the dataset again with /upload_dataset/{key}")
        job_id = self._next_job_id(r, "preprocess")
        r.state = State.preprocessing
        r.preprocess = type(r.preprocess)(id=job_id, actor=job_id, status="running", started_at=time.time(),
                                          message="queued")
        r.artifacts = type(r.artifacts)()
        r.deployment = None  # its model is gone with the artifacts (the service removes the Serve app)
        r.error = None
        r.message = "preprocessing started; poll /preprocess_status"
        try:
            spec = PreprocessSpec(job_id=job_id, dataset=r.dataset, max_seq_length=r.config.max_seq_length,
                                  model_dir=str(resolve_model(r.config.model, self.layout.models_dir)),
                                  cache_dir=str(self.layout.cache_dir(r.config.cache_dir)),
                                  overwrite_cache=r.config.overwrite_cache)
        except InvalidParameters as e:  # the model was removed since the config was set
            self.finish_preprocess(job_id, None, e.message)
            return None
        cached = _reusable_cache(spec)
        if cached:  # answered here: no job actor to start for a cache hit
            self.finish_preprocess(job_id, cached, None)
            return None
        self._save()
        return spec

    def preprocess_progress(self, job_id: str, progress: float, message: str) -> None:
        r = self.record
        if r and r.preprocess.id == job_id and r.state == State.preprocessing:
            r.preprocess.progress, r.preprocess.message = round(progress, 4), message
            self._save(wait=False)

    @write_first
    def finish_preprocess(self, job_id: str, cache: Optional[dict], error: Optional[str]) -> None:
        r = self.record
        if not r or r.preprocess.id != job_id or r.state != State.preprocessing:
            return  # a stale report from a job that was replaced or wiped
        p = r.preprocess
        p.finished_at = time.time()
        if error:
            r.state, p.status, p.error = State.setup, "failed", error
            r.error = {"during": "preprocessing", "message": error}
            r.message = f"preprocessing failed: {error}"
        else:
            r.state, p.status, p.progress, p.cache = State.preprocessed, "done", 1.0, cache
            p.message = "reused cache" if cache.get("reused") else "cache written"
            r.message = "preprocessing finished; call /training/start next"
        self._save()

    # ---- model import ---------------------------------------------------------------------
    @write_first
    def begin_import(self, key: str, name: str, model_type: str, model_name: str,
                     archive_path: Optional[str] = None) -> ImportSpec:
        r = self._session(key)
        if r.imports.status == "running":
            raise WrongState(f"an import ({r.imports.name}) is already running", state=r.state.value,
                             hint="follow it with /import_status and import again when it ends")
        job_id = self._next_job_id(r, "import")
        r.imports = type(r.imports)(id=job_id, actor=job_id, status="running", started_at=time.time(),
                                    message="queued", name=name, model_type=model_type, model_name=model_name)
        r.message = f"importing {name}; follow it with /import_status"
        self._save()
        return ImportSpec(job_id=job_id, name=name, model_type=model_type, model_name=model_name,
                          models_dir=str(self.layout.models_dir), archive_path=archive_path,
                          limits=self.settings.archive_limits, hub_endpoint=self.settings.hub_endpoint,
                          hub_timeout_s=self.settings.hub_timeout_s)

    def import_progress(self, job_id: str, progress: float, message: str) -> None:
        r = self.record
        if r and r.imports.id == job_id and r.imports.status == "running":
            r.imports.progress, r.imports.message = round(progress, 4), message
            self._save(wait=False)

    @write_first
    def finish_import(self, job_id: str, entry: Optional[dict], error: Optional[str]) -> None:
        r = self.record
        if not r or r.imports.id != job_id or r.imports.status != "running":
            return
        i = r.imports
        i.finished_at = time.time()
        if error:
            i.status, i.error, i.message = "failed", error, f"import failed: {error}"
        else:
            i.status, i.progress, i.entry = "done", 1.0, entry
            i.message = f"imported {i.name}; use it with POST /parameters {{\"model\": \"{i.name}\"}}"
        r.message = i.message
        self._save()

    def last_import(self, key: str) -> Optional[str]:
        r = self._session(key)
        return r.imports.name if r.imports.status == "done" else None

    # ---- jobs that could not run ------------------------------------------------------------
    @write_first
    def abort_job(self, job_id: str, error: str) -> None:
        """A job that could not be launched fails at once rather than staying busy forever."""
        r = self.record
        if r and r.preprocess.id == job_id:
            self.finish_preprocess(job_id, None, error)
        elif r and r.training.id == job_id:
            self.finish_training(job_id, {"error": error})
        elif r and r.imports.id == job_id:
            self.finish_import(job_id, None, error)

    @write_first
    def recover_interrupted_jobs(self) -> list[TrainingSpec]:
        """Work whose actor died with Ray (or was killed) is never left running: a run that ended meanwhile is
        recorded from its outcome file, one cut off resumes from its checkpoint (returned: the caller launches
        it) or is reported stopped; preprocessing and imports are reported cut off."""
        r = self.record
        if r is None:
            return []
        if r.state == State.preprocessing and not self._job_alive(r.preprocess.actor):
            r.state = State.setup
            r.preprocess.status = "failed"
            r.preprocess.error = "preprocessing was interrupted by a restart; call /preprocess again"
            r.error = {"during": "preprocessing", "message": r.preprocess.error}
            r.message = r.preprocess.error
            self._save()
        if r.imports.status == "running" and not self._job_alive(r.imports.actor):
            r.imports.status, r.imports.error = "failed", "the import was interrupted by a restart; import again"
            r.imports.message = r.imports.error
            self._save()
        if r.state == State.training and not self._job_alive(r.training.actor):
            return self._recover_run(r)
        return []

    def _recover_run(self, r) -> list[TrainingSpec]:
        t = r.training
        outcome = read_json(Path(t.spec["outcome_file"])) if t.spec and t.spec.get("outcome_file") else None
        if outcome is not None:  # the run ended while no session actor was there to hear it
            self.finish_training(t.id, outcome)
            return []
        ckpt = kept_checkpoint(Path(t.run_storage)) if t.run_storage else None
        t.resumable = ckpt is not None and t.spec is not None and not r.config.search
        if t.resumable and r.config.resume_on_restart and not t.stop_requested:
            return [self._resume(r, why="cut off by a restart resumed")]
        r.state, t.status, t.finished_at = State.stopped, "stopped", time.time()
        r.artifacts.model_dir = str(ckpt) if ckpt else None
        r.message = "training was cut off by a restart; " + (
            "the last checkpoint is available for download; POST /training/start/{key}?resume=true goes on"
            if ckpt else "no checkpoint had been saved; call /training/start to train again")
        add_event(r, "state", r.message, {"status": t.status})
        sync_run(r)
        self._save()
        return []


def _reusable_cache(spec: PreprocessSpec) -> Optional[dict]:
    try:
        return reusable_cache(spec)
    except OSError:  # an unreadable tokenizer file, say: the job reports it properly
        return None
