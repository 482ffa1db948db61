"""A session's preprocessing and model imports: each job's start, progress and end, and a job that could not be
launched failing at once.

A plain class over the session core (session_core.py) and its runs (session_runs.py, for a training job that could
not start); no Ray: the actor launches the jobs these steps describe. A report from a job that was replaced or wiped
is ignored.
"""

from __future__ import annotations

import time
from typing import Optional

from cluster.session_core import SessionCore, write_first
from cluster.session_record import TRAINABLE, State
from cluster.session_runs import SessionRuns
from train_jobs.data.build_progress import totals
from train_jobs.data.cache import reusable_cache
from train_jobs.errors import InvalidParameters, WrongState
from train_jobs.models.lookup import resolve_model
from train_jobs.specs import DatasetSpec, ImportSpec, PreprocessCounts, PreprocessSpec


class SessionJobs:
    def __init__(self, core: SessionCore, runs: SessionRuns):
        self.core, self.runs = core, runs

    # ---- preprocessing ----------------------------------------------------------------
    @write_first
    def begin_preprocess(self, key: str) -> Optional[PreprocessSpec]:
        """The job to launch, or None when a finished cache answers at once (no job needed)."""
        core = self.core
        r = core.session(key)
        core.require(r, [State.setup, *TRAINABLE], "preprocess", "wait for the running job, or call /training/stop first")
        if r.dataset is None:
            raise WrongState("no dataset uploaded", state=r.state.value, hint="call /upload_dataset/{key} first")
        if r.dataset.task_type != r.config.task_type:
            raise WrongState(f"the dataset was checked for {r.dataset.task_type}, but task_type is now "
                             f"{r.config.task_type}", state=r.state.value,
                             hint="upload the dataset again with /upload_dataset/{key}")
        job_id = core.next_job_id(r, "preprocess")
        r.state = State.preprocessing
        r.preprocess = type(r.preprocess)(id=job_id, actor=job_id, status="running", started_at=time.time(),
                                          message="queued", **totals(r.dataset).model_dump())
        r.artifacts = type(r.artifacts)()
        r.deployment = None  # its model is gone with the artifacts (the service removes the Serve app)
        r.error = None
        r.message = "preprocessing started; poll /preprocess_status"
        try:
            spec = PreprocessSpec(job_id=job_id, dataset=r.dataset, max_seq_length=r.config.max_seq_length,
                                  model_dir=str(resolve_model(r.config.model, core.layout.models_dir)),
                                  cache_dir=str(core.layout.cache_dir(r.config.cache_dir)),
                                  overwrite_cache=r.config.overwrite_cache, stores=core.settings.store_options,
                                  in_process_rows=core.settings.preprocess_in_process_rows)
        except InvalidParameters as e:  # the model was removed since the config was set
            self.finish_preprocess(job_id, None, e.message)
            return None
        cached = _reusable_cache(spec)
        if cached:  # answered here: no job actor to start for a cache hit
            self.finish_preprocess(job_id, cached, None)
            return None
        core.save()
        return spec

    def preprocess_progress(self, job_id: str, progress: float, message: str, counts: Optional[dict] = None) -> None:
        """The job's progress: the share done, what it does, and its rows, bytes and ETA (PreprocessCounts)."""
        r = self.core.record
        if r and r.preprocess.id == job_id and r.state == State.preprocessing:
            r.preprocess.progress, r.preprocess.message = round(progress, 4), message
            for field, value in (PreprocessCounts.model_validate(counts) if counts else ()):
                setattr(r.preprocess, field, value)
            self.core.save(wait=False)

    @write_first
    def finish_preprocess(self, job_id: str, cache: Optional[dict], error: Optional[str]) -> None:
        r = self.core.record
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
            if r.dataset.train.source:  # a dataset by URI: its labels and rows, of the whole now
                d = r.dataset.model_dump()
                r.dataset = DatasetSpec(**{**d, "labels": cache["labels"],
                                           **{s: {**d[s], "rows": n, "sampled": False} for s, n in cache["rows"].items()}})
                p.rows_total = sum(cache["rows"].values())
            p.rows_done, p.bytes_done, p.eta_s = p.rows_total or 0, p.bytes_total or 0, 0.0
            p.message = "reused cache" if cache.get("reused") else "cache written"
            r.message = "preprocessing finished; call /training/start next"
        self.core.save()

    # ---- model import ---------------------------------------------------------------------
    @write_first
    def begin_import(self, key: str, name: str, model_type: str, model_name: str,
                     archive_path: Optional[str] = None) -> ImportSpec:
        core = self.core
        r = core.session(key)
        if r.imports.status == "running":
            raise WrongState(f"an import ({r.imports.name}) is already running", state=r.state.value,
                             hint="follow it with /import_status and import again when it ends")
        job_id = core.next_job_id(r, "import")
        r.imports = type(r.imports)(id=job_id, actor=job_id, status="running", started_at=time.time(),
                                    message="queued", name=name, model_type=model_type, model_name=model_name)
        r.message = f"importing {name}; follow it with /import_status"
        core.save()
        settings = core.settings
        return ImportSpec(job_id=job_id, name=name, model_type=model_type, model_name=model_name,
                          models_dir=str(core.layout.models_dir), archive_path=archive_path,
                          limits=settings.archive_limits, hub_endpoint=settings.hub_endpoint,
                          hub_timeout_s=settings.hub_timeout_s)

    def import_progress(self, job_id: str, progress: float, message: str) -> None:
        r = self.core.record
        if r and r.imports.id == job_id and r.imports.status == "running":
            r.imports.progress, r.imports.message = round(progress, 4), message
            self.core.save(wait=False)

    @write_first
    def finish_import(self, job_id: str, entry: Optional[dict], error: Optional[str]) -> None:
        r = self.core.record
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
        self.core.save()

    def last_import(self, key: str) -> Optional[str]:
        r = self.core.session(key)
        return r.imports.name if r.imports.status == "done" else None

    # ---- jobs that could not run ------------------------------------------------------------
    @write_first
    def abort_job(self, job_id: str, error: str) -> None:
        """A job that could not be launched fails at once rather than staying busy forever."""
        r = self.core.record
        if r and r.preprocess.id == job_id:
            self.finish_preprocess(job_id, None, error)
        elif r and r.training.id == job_id:
            self.runs.finish_training(job_id, {"error": error})
        elif r and r.imports.id == job_id:
            self.finish_import(job_id, None, error)


def _reusable_cache(spec: PreprocessSpec) -> Optional[dict]:
    if spec.dataset.by_uri:
        return None  # a dataset by URI may have changed at its source: the job lists it again first
    try:
        return reusable_cache(spec)
    except OSError:  # an unreadable tokenizer file, say: the job reports it properly
        return None
