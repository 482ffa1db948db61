"""The session state machine with its jobs: plain Python, no Ray, so every transition is unit-tested in process.

idle -> setup -> preprocessing -> preprocessed -> training -> trained | stopped | failed;
a new upload or config change returns to setup (session_core.py). Jobs report
progress and their end here; a report from a job that was replaced or wiped is
ignored. Concurrent calls such as two `training/start` requests cannot both
succeed: the actor that wraps the machine runs one method at a time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from cluster.session_core import SessionCore
from cluster.session_record import TRAINABLE, State
from train_jobs.data.cache import reusable_cache
from train_jobs.errors import InvalidParameters, WrongState
from train_jobs.models.lookup import resolve_model
from train_jobs.results.archives import kept_checkpoint
from train_jobs.specs import ImportSpec, PreprocessSpec, TrainingSpec
from train_jobs.training.hyperparams import plan

PROGRESS_SAVE_INTERVAL_S = 2.0


class SessionMachine(SessionCore):
    _last_progress_save = 0.0

    # ---- preprocessing ----------------------------------------------------------------
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

    # ---- training -----------------------------------------------------------------------
    def begin_training(self, key: str) -> TrainingSpec:
        r = self._session(key)
        self._require(r, TRAINABLE, "start training",
                      "call /preprocess first" if r.state == State.setup else "wait for the running job to finish")
        if not r.preprocess.cache:
            raise WrongState("no preprocessed data", state=r.state.value, hint="call /preprocess first")
        model_dir = resolve_model(r.config.model, self.layout.models_dir)
        hyper = plan(r.config, r.dataset, model_dir)
        if r.config.search and not ("validation" in r.dataset or hyper.validation_rows):
            raise InvalidParameters("a search picks its best trial on validation data: upload a validation_file "
                                    "or set validation_split above 0", field="search")
        run_id = self._next_job_id(r, "train")
        sid, layout = r.session_id, self.layout
        spec = TrainingSpec(run_id=run_id, config=r.config, dataset=r.dataset, cache=r.preprocess.cache,
                            hyper=hyper, model_dir=str(model_dir), storage_path=str(layout.run_storage(sid, run_id)),
                            results_dir=str(layout.results_dir(sid, run_id)),
                            search_dir=str(layout.search_dir(sid, run_id)),
                            model_archive=str(layout.model_archive(sid, run_id)),
                            results_archive=str(layout.results_archive(sid, run_id)),
                            default_workers=self.settings.num_workers,
                            progress_every_steps=self.settings.progress_every_steps,
                            yield_cpu_to_api=self.settings.yield_cpu_to_api)
        r.state = State.training
        r.training = type(r.training)(id=run_id, actor=run_id, status="running", started_at=time.time(),
                                      message="starting workers", run_storage=spec.storage_path,
                                      hyperparameters=hyper.model_dump())
        r.artifacts = type(r.artifacts)(results_dir=spec.results_dir)
        r.error = None
        r.message = "training started; follow it with /monitor/{key}"
        self._save()
        return spec

    def training_progress(self, run_id: str, info: dict, evaluation: Optional[dict] = None) -> bool:
        """Rank 0's live report; returns True when training should stop."""
        r = self.record
        if not r or r.training.id != run_id or r.state != State.training:
            return True  # this run was wiped, replaced or has ended: stop it
        t = r.training
        t.live = info
        t.progress = info.get("progress", t.progress)
        t.message = f"{info.get('phase', 'training')}: step {info.get('step')} of {info.get('total_steps')}"
        now = time.monotonic()
        if evaluation is not None:  # a run resumed from a checkpoint redoes evaluations past it: replace them
            t.history = [e for e in t.history if e.get("trial") != evaluation.get("trial")
                         or e.get("step", -1) < evaluation.get("step", 0)] + [evaluation]
        if evaluation is not None or now - self._last_progress_save > PROGRESS_SAVE_INTERVAL_S:
            self._last_progress_save = now
            self._save(wait=False)
        return t.stop_requested

    def search_progress(self, run_id: str, trials: list[dict]) -> None:
        """A search's trials (config, state, best validation score) as they change."""
        r = self.record
        if r and r.training.id == run_id and r.state == State.training:
            r.training.trials = trials
            self._save(wait=False)

    def finish_training(self, run_id: str, outcome: dict) -> None:
        r = self.record
        if not r or r.training.id != run_id or r.state != State.training:
            return
        t = r.training
        t.finished_at = time.time()
        r.artifacts = r.artifacts.model_copy(update={k: outcome.get(k) for k in
                                                     ("model_dir", "model_archive", "results_archive")})
        if outcome.get("final_metrics"):
            t.final_metrics = outcome["final_metrics"]
        if outcome.get("error"):
            r.state, t.status, t.error = State.failed, "failed", outcome["error"]
            r.error = {"during": "training", "message": outcome["error"]}
            r.message = f"training failed: {outcome['error']}"
        elif t.stop_requested:
            r.state, t.status = State.stopped, "stopped"
            r.message = "training stopped; " + ("the last checkpoint can be downloaded" if r.artifacts.model_dir
                                                else "no checkpoint was saved")
        else:
            r.state, t.status, t.progress = State.trained, "done", 1.0
            r.message = "training finished; download the model with /download_model/{key}"
        self._save()

    def request_stop(self, key: str) -> dict:
        r = self._session(key)
        self._require(r, [State.training], "stop training", "there is no training run to stop")
        t = r.training
        t.stop_requested = True
        if not t.live:
            # Workers still starting: nothing trained yet, so end the run's actor (and its workers) now.
            self._stop_job(t.actor)
            self.finish_training(t.id, {})
            r.message = "training stopped before its first step; no model was saved"
        else:
            r.message = "stop requested; training ends at its next progress report"
        self._save()
        return self.status()

    # ---- model import ---------------------------------------------------------------------
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
                          models_dir=str(self.layout.models_dir), archive_path=archive_path)

    def import_progress(self, job_id: str, progress: float, message: str) -> None:
        r = self.record
        if r and r.imports.id == job_id and r.imports.status == "running":
            r.imports.progress, r.imports.message = round(progress, 4), message
            self._save(wait=False)

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
    def abort_job(self, job_id: str, error: str) -> None:
        """A job that could not be launched fails at once rather than staying busy forever."""
        r = self.record
        if r and r.preprocess.id == job_id:
            self.finish_preprocess(job_id, None, error)
        elif r and r.training.id == job_id:
            self.finish_training(job_id, {"error": error})
        elif r and r.imports.id == job_id:
            self.finish_import(job_id, None, error)

    def recover_interrupted_jobs(self) -> None:
        """Work whose actor died with Ray (or was killed) is reported as cut off, never left running."""
        r = self.record
        if r is None:
            return
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
            ckpt = kept_checkpoint(Path(r.training.run_storage)) if r.training.run_storage else None
            r.state = State.stopped
            r.training.status = "stopped"
            r.training.finished_at = time.time()
            r.artifacts.model_dir = str(ckpt) if ckpt else None
            r.message = "training was cut off by a restart; " + (
                "the last checkpoint is available for download" if ckpt
                else "no checkpoint had been saved; call /training/start to train again")
            self._save()


def _reusable_cache(spec: PreprocessSpec) -> Optional[dict]:
    try:
        return reusable_cache(spec)
    except OSError:  # an unreadable tokenizer file, say: the job reports it properly
        return None
