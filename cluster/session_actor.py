"""The session-state actor: one named, detached actor holding the single session.

Each method is one atomic step of the state machine (an actor runs one method
at a time), so concurrent calls such as two `training/start` requests cannot
both succeed. Every change is written to disk before the method returns, and
the constructor restores from that file, so a killed or restarted actor comes
back with the same session.
"""

from __future__ import annotations

import hmac
import json
import secrets
import shutil
import time
import uuid
from pathlib import Path
from typing import Optional

import ray
from pydantic import ValidationError

from cluster.errors import InvalidParameters, NotFound, WrongKey, WrongState
from cluster.session_record import BUSY, TRAINABLE, SessionRecord, State
from cluster.settings import NAMESPACE, SESSION_ACTOR_NAME, Settings
from cluster.storage import LatestWriter, is_inside, read_json, remove_tree
from train_jobs.artifacts import latest_checkpoint
from train_jobs.cache import reusable_cache
from train_jobs.config import TrainingConfigParams
from train_jobs.models import resolve_model

PROGRESS_SAVE_INTERVAL_S = 2.0


def _actor_alive(name: str) -> bool:
    if not name:
        return False
    try:
        ray.get_actor(name, namespace=NAMESPACE)
        return True
    except ValueError:
        return False


def _kill_actor(name: str) -> None:
    try:
        ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
    except ValueError:
        pass


class SessionActor:
    def __init__(self, settings: dict):
        self.settings = Settings(**settings)
        self.settings.root.mkdir(parents=True, exist_ok=True)
        self._writer = LatestWriter(self.settings.state_file)
        raw = read_json(self.settings.state_file)
        self.record: Optional[SessionRecord] = SessionRecord(**raw) if raw else None
        self._last_progress_save = 0.0
        if self.record:
            # Fields added to the config since this record was written take their defaults.
            self.record.config = TrainingConfigParams(**self.record.config).model_dump()
            self._recover_interrupted_jobs()

    # ---- persistence -------------------------------------------------------------
    def _save(self, wait: bool = True) -> None:
        """Persist the record atomically. State changes wait until it is on disk; live progress
        does not, so /status never queues behind the disk while training loads the machine."""
        data = None
        if self.record is not None:
            data = self.record.model_dump_json(indent=1).encode()
        version = self._writer.submit(data)
        if wait:
            self._writer.flush(version)

    def _recover_interrupted_jobs(self) -> None:
        """Work whose actor died with Ray (or was killed) is reported as cut off, never left running."""
        r = self.record
        if r.state == State.preprocessing and not _actor_alive(r.preprocess.actor):
            r.state = State.setup
            r.preprocess.status = "failed"
            r.preprocess.error = "preprocessing was interrupted by a restart; call /preprocess again"
            r.error = {"during": "preprocessing", "message": r.preprocess.error}
            r.message = r.preprocess.error
            self._save()
        if r.imports.status == "running" and not _actor_alive(r.imports.actor):
            r.imports.status, r.imports.error = "failed", "the import was interrupted by a restart; import again"
            r.imports.message = r.imports.error
            self._save()
        if r.state == State.training and not _actor_alive(r.training.actor):
            ckpt = latest_checkpoint(Path(r.training.run_storage)) if r.training.run_storage else None
            r.state = State.stopped
            r.training.status = "stopped"
            r.training.finished_at = time.time()
            r.artifacts.model_dir = str(ckpt) if ckpt else None
            r.message = "training was cut off by a restart; " + (
                "the last checkpoint is available for download" if ckpt
                else "no checkpoint had been saved; call /training/start to train again")
            self._save()

    # ---- helpers -----------------------------------------------------------------
    def _session(self, key: str) -> SessionRecord:
        if self.record is None:
            raise WrongState("there is no active session", state=State.idle.value, hint="call /start_session first")
        if not isinstance(key, str) or not hmac.compare_digest(key.encode(), self.record.key.encode()):
            raise WrongKey("wrong session key")
        return self.record

    def _require(self, r: SessionRecord, allowed, action: str, hint: str) -> None:
        if r.state not in allowed:
            raise WrongState(f"cannot {action} while the session is {r.state.value}; {hint}",
                             state=r.state.value, hint=hint)

    def _to_setup(self, r: SessionRecord) -> None:
        """A new dataset or config invalidates the cache and any previous run's outputs."""
        if r.state != State.setup:
            r.state = State.setup
            r.preprocess.status = "not_started"
            r.preprocess.progress = 0.0
            r.artifacts = type(r.artifacts)()
        r.error = None

    def status(self, message: Optional[str] = None) -> dict:
        """The server status dictionary every route returns."""
        r = self.record
        if r is None:
            return {"state": State.idle.value, "session_active": False, "model_ready": False,
                    "message": message or "no active session; call /start_session", "error": None,
                    "import": {"status": "not_started"}}
        training = r.training.model_dump(exclude={"history"})
        training["last_eval"] = r.training.history[-1] if r.training.history else None
        return {
            "state": r.state.value,
            "session_active": True,
            "session_id": r.session_id,
            "model_ready": r.model_ready,
            "message": message or r.message,
            "preprocess": r.preprocess.model_dump(),
            "training": training,
            "import": r.imports.model_dump(),
            "error": r.error,
        }

    # ---- session -----------------------------------------------------------------
    def start(self, force: bool) -> dict:
        if self.record is not None and not force:
            raise WrongState("a session is already active", state=self.record.state.value,
                             hint="use its key, or call /start_session?force_restart=1 to wipe it")
        if self.record is not None:
            self._wipe()
        session_id = uuid.uuid4().hex
        self.record = SessionRecord(session_id=session_id, key=secrets.token_urlsafe(32),
                                    config=TrainingConfigParams().model_dump(),
                                    message="session started; upload a dataset with /upload_dataset/{key}")
        self.settings.session_dir(session_id).mkdir(parents=True, exist_ok=True)
        self._save()
        return {**self.status(), "key": self.record.key}

    def _wipe(self) -> None:
        """Stop running work first, then remove the session's files."""
        r = self.record
        for name in (r.preprocess.actor, r.training.actor, r.imports.actor):
            if name:
                _kill_actor(name)
        remove_tree(self.settings.session_dir(r.session_id))
        self.record = None
        self._save()

    def authorize(self, key: str) -> None:
        self._session(key)

    def restart(self, key: str) -> dict:
        """`force_restart` from a keyed route: only the key holder may wipe the session."""
        self._session(key)
        return self.start(force=True)

    def session_dir(self, key: str) -> str:
        return str(self.settings.session_dir(self._session(key).session_id))

    # ---- config ------------------------------------------------------------------
    def get_config(self) -> dict:
        if self.record is None:
            raise WrongState("there is no active session", state=State.idle.value, hint="call /start_session first")
        return {**self.status(), "config": self.record.config, "dataset": self.record.dataset}

    def update_config(self, key: str, patch: dict) -> dict:
        r = self._session(key)
        self._require(r, [s for s in State if s not in BUSY], "change the config",
                      "wait for it to finish or call /training/stop first")
        merged = {**r.config, **patch}
        if "task_type" in patch and "eval_metrics" not in patch and patch["task_type"] != r.config["task_type"]:
            merged["eval_metrics"] = None  # the new task's default metrics, not the old task's
        try:
            config = TrainingConfigParams(**merged)
        except ValidationError as e:
            detail = [{**err, "loc": ["body", *err["loc"]]} for err in json.loads(e.json(include_url=False))]
            raise InvalidParameters(f"invalid parameters: {detail[0]['msg']}", detail=detail) from None
        resolve_model(config.model, self.settings.models_dir)
        if config.cache_dir is not None:
            cache = Path(config.cache_dir)
            cache = cache if cache.is_absolute() else self.settings.root / cache
            if not is_inside(cache, self.settings.root):
                raise InvalidParameters(
                    f"cache_dir {config.cache_dir!r} resolves outside the storage root {self.settings.storage_root}; "
                    "give a path inside it (relative paths are taken from the root)", field="cache_dir")
        new = config.model_dump()
        if new != r.config:
            r.config = new
            self._to_setup(r)
        r.message = "config updated; " + ("upload a dataset next" if r.dataset is None else "call /preprocess next")
        self._save()
        return {**self.status(), "config": r.config}

    # ---- dataset -----------------------------------------------------------------
    def set_dataset(self, key: str, staged_dir: str, summary: dict) -> dict:
        """Swap in a complete, validated upload (a whole folder, renamed atomically)."""
        r = self._session(key)
        self._require(r, [s for s in State if s not in BUSY], "upload a dataset",
                      "wait for it to finish or call /training/stop first")
        session_dir = self.settings.session_dir(r.session_id)
        target = session_dir / f"dataset-{uuid.uuid4().hex[:8]}"
        Path(staged_dir).rename(target)
        for split in ("train", "test"):
            summary[split]["path"] = str(target / Path(summary[split]["path"]).name)
        old = r.dataset
        r.dataset = {**summary, "dir": str(target)}
        self._to_setup(r)
        target = (f"{len(summary['labels'])} labels" + (" (multi-label)" if summary.get("multi_label") else "")
                  if summary["labels"] else "numeric scores")
        r.message = (f"dataset uploaded: {summary['train']['rows']} train rows, {summary['test']['rows']} test rows, "
                     f"{target}; call /preprocess next")
        self._save()
        if old and old.get("dir"):
            shutil.rmtree(old["dir"], ignore_errors=True)
        return {**self.status(), "dataset": r.dataset}

    # ---- preprocessing -----------------------------------------------------------
    def begin_preprocess(self, key: str) -> dict:
        r = self._session(key)
        self._require(r, [State.setup, *TRAINABLE], "preprocess",
                      "wait for the running job, or call /training/stop first")
        if r.dataset is None:
            raise WrongState("no dataset uploaded", state=r.state.value, hint="call /upload_dataset/{key} first")
        if r.dataset.get("task_type", "sequence_classification") != r.config["task_type"]:
            raise WrongState(f"the dataset was checked for {r.dataset.get('task_type')}, but task_type is now "
                             f"{r.config['task_type']}", state=r.state.value,
                             hint="upload the dataset again with /upload_dataset/{key}")
        r.runs += 1
        job_id = f"{r.session_id[:8]}-preprocess-{r.runs}"
        cache_dir = r.config.get("cache_dir")
        cache_dir = str(self.settings.root / cache_dir) if cache_dir else str(self.settings.default_cache_dir)
        r.state = State.preprocessing
        r.preprocess = type(r.preprocess)(id=job_id, actor=job_id, status="running", started_at=time.time(),
                                          message="queued")
        r.artifacts = type(r.artifacts)()
        r.error = None
        r.message = "preprocessing started; poll /preprocess_status"
        spec = {"job_id": job_id, "dataset": r.dataset, "model": r.config["model"],
                "models_dir": str(self.settings.models_dir), "max_seq_length": r.config["max_seq_length"],
                "cache_dir": cache_dir, "overwrite_cache": r.config["overwrite_cache"]}
        cached = self._reusable_cache(spec)
        if cached:  # answered here: no job actor to start for a cache hit
            self.finish_preprocess(job_id, cached, None)
            return {**spec, "reused": True}
        self._save()
        return spec

    def _reusable_cache(self, spec: dict) -> Optional[dict]:
        try:
            model_dir = resolve_model(spec["model"], Path(spec["models_dir"]))
            return reusable_cache({**spec, "model_dir": str(model_dir)})
        except Exception:  # an unknown model, say: the job reports it properly
            return None

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

    # ---- training ----------------------------------------------------------------
    def begin_training(self, key: str) -> dict:
        r = self._session(key)
        self._require(r, TRAINABLE, "start training",
                      "call /preprocess first" if r.state == State.setup else "wait for the running job to finish")
        if not r.preprocess.cache:
            raise WrongState("no preprocessed data", state=r.state.value, hint="call /preprocess first")
        r.runs += 1
        run_id = f"{r.session_id[:8]}-train-{r.runs}"
        session_dir = self.settings.session_dir(r.session_id)
        run_dir = session_dir / "runs" / run_id
        r.state = State.training
        r.training = type(r.training)(id=run_id, actor=run_id, status="running", started_at=time.time(),
                                      message="starting workers", run_storage=str(run_dir / run_id))
        r.artifacts = type(r.artifacts)(results_dir=str(run_dir / "results"))
        r.error = None
        r.message = "training started; follow it with /monitor/{key}"
        self._save()
        return {"run_id": run_id, "session_id": r.session_id, "config": r.config, "dataset": r.dataset,
                "cache": r.preprocess.cache, "models_dir": str(self.settings.models_dir),
                "run_dir": str(run_dir), "settings": self.settings.model_dump()}

    def training_progress(self, run_id: str, info: dict, evaluation: Optional[dict] = None) -> bool:
        """Rank 0's live report; returns True when training should stop."""
        r = self.record
        if not r or r.training.id != run_id:
            return True  # this run was wiped or replaced: stop it
        t = r.training
        t.live = info
        t.progress = info.get("progress", t.progress)
        t.message = f"{info.get('phase', 'training')}: step {info.get('step')} of {info.get('total_steps')}"
        now = time.monotonic()
        if evaluation is not None:
            t.history.append(evaluation)
        if evaluation is not None or now - self._last_progress_save > PROGRESS_SAVE_INTERVAL_S:
            self._last_progress_save = now
            self._save(wait=False)
        return t.stop_requested

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

    # ---- model import -----------------------------------------------------------
    def begin_import(self, key: str, name: str, model_type: str, model_name: str) -> dict:
        r = self._session(key)
        if r.imports.status == "running":
            raise WrongState(f"an import ({r.imports.name}) is already running", state=r.state.value,
                             hint="follow it with /import_status and import again when it ends")
        r.runs += 1
        job_id = f"{r.session_id[:8]}-import-{r.runs}"
        r.imports = type(r.imports)(id=job_id, actor=job_id, status="running", started_at=time.time(),
                                    message="queued", name=name, model_type=model_type, model_name=model_name)
        r.message = f"importing {name}; follow it with /import_status"
        self._save()
        return {"job_id": job_id, "name": name, "model_type": model_type, "model_name": model_name,
                "models_dir": str(self.settings.models_dir)}

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

    def abort_job(self, job_id: str, error: str) -> None:
        """A job that could not be launched fails at once rather than staying busy forever."""
        r = self.record
        if r and r.preprocess.id == job_id:
            self.finish_preprocess(job_id, None, error)
        elif r and r.training.id == job_id:
            self.finish_training(job_id, {"error": error})
        elif r and r.imports.id == job_id:
            self.finish_import(job_id, None, error)

    def request_stop(self, key: str) -> dict:
        r = self._session(key)
        self._require(r, [State.training], "stop training", "there is no training run to stop")
        t = r.training
        t.stop_requested = True
        if not t.live:
            # Workers still starting: nothing trained yet, so end the run's actor (and its workers) now.
            _kill_actor(t.actor)
            self.finish_training(t.id, {})
            r.message = "training stopped before its first step; no model was saved"
            self._save()
            return self.status()
        r.message = "stop requested; training ends at its next progress report"
        self._save()
        return self.status()

    def monitor(self, key: str) -> dict:
        r = self._session(key)
        return {**self.status(), "history": r.training.history, "metrics": r.training.final_metrics}

    def artifacts(self, key: str) -> dict:
        """Paths for a download; the caller builds the archive if it is missing."""
        r = self._session(key)
        if r.state in BUSY:
            raise WrongState(f"cannot download while the session is {r.state.value}", state=r.state.value,
                             hint="wait for it to finish or call /training/stop")
        if r.artifacts.model_dir is None:
            raise NotFound("no trained model yet", state=r.state.value,
                           hint="train with /training/start and wait for state 'trained' or 'stopped'")
        return {"session_id": r.session_id, "config": r.config, "dataset": r.dataset,
                **r.artifacts.model_dump()}

    def set_artifact(self, key: str, field: str, path: str) -> None:
        r = self._session(key)
        setattr(r.artifacts, field, path)
        self._save()


def session_actor_handle(settings: Settings):
    """Get the session actor, creating it (detached, 0 CPU, restartable) if needed."""
    return (
        ray.remote(SessionActor)
        .options(name=SESSION_ACTOR_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                 num_cpus=0, max_restarts=-1, max_task_retries=3)
        .remote(settings.model_dump())
    )
