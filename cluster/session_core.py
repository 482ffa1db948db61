"""The session core: the record, the key guard, the atomic step (`write_first`), the config, the dataset and the
results a download needs (no jobs; no Ray).

The other parts of a session (session_runs.py, session_deploy.py, session_jobs.py, session_recovery.py) each hold
this core and change its record through it. Each public method is one atomic step: the actor runs one at a time.
Every state change is handed to `persist` before the step returns, and counts only once written (`write_first`).
"""

from __future__ import annotations

import functools
import hmac
import json
import secrets
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from pydantic import ValidationError

from cluster.layout import Layout
from cluster.quota import check_quota
from cluster.run_history import current_run, find_run
from cluster.session_record import BUSY, Artifacts, SessionRecord, State
from cluster.settings import Settings
from cluster.status import status_of
from train_jobs.config import TrainingConfigParams
from train_jobs.data.dataset import splits_of
from train_jobs.errors import InvalidParameters, NotFound, WrongKey, WrongState
from train_jobs.files import remove_tree
from train_jobs.inference.formats import EXPORT_FORMATS
from train_jobs.models.lookup import max_positions, resolve_model
from train_jobs.specs import DatasetSpec
from train_jobs.training.hyperparams import plan

NOT_BUSY = [s for s in State if s not in BUSY]
# persist(record or None, wait): write the record (None: there is no session); with wait, raise what the disk raised.
Persist = Callable[[Optional[SessionRecord], bool], None]
_NO_STEP = object()


def _copy(record: Optional[SessionRecord]) -> Optional[SessionRecord]:
    return record.model_copy(deep=True) if record else None


def write_first(method):
    """A state change counts only once it is on disk: if the step fails (its write raised on a full disk, say),
    the record goes back to what it was before the step, or to what the step last wrote, and the error goes on.
    Steps called from a step (of any part: each reaches the one record through `.core`) leave that to the outer one."""
    @functools.wraps(method)
    def step(self, *args, **kwargs):
        core = self.core
        if core._undo is not _NO_STEP:
            return method(self, *args, **kwargs)
        core._undo = _copy(core.record)
        try:
            return method(self, *args, **kwargs)
        except Exception:
            core.record = core._undo
            raise
        finally:
            core._undo = _NO_STEP
    return step


class SessionCore:
    """One session's record and the steps on it that start no job; the parts' shared guards and `save`."""

    def __init__(self, settings: Settings, record: Optional[SessionRecord], persist: Persist,
                 job_alive: Callable[[str], bool], stop_job: Callable[[str], None]):
        self.settings: Settings = settings
        self.layout: Layout = settings.layout
        self.record = record
        self._persist = persist
        self.job_alive, self.stop_job = job_alive, stop_job  # Ray's, in the actor
        self._undo = _NO_STEP  # inside a write_first step: the record to go back to if it fails

    @property
    def core(self) -> SessionCore:
        """The core is its own: `write_first` finds the record through `.core` in every part."""
        return self

    def save(self, wait: bool = True) -> None:
        self._persist(self.record, wait)
        if wait and self._undo is not _NO_STEP:
            self._undo = _copy(self.record)  # on disk now: a later failure in this step goes back to here

    # ---- guards -----------------------------------------------------------------------
    def session(self, key: str) -> SessionRecord:
        if self.record is None:
            raise WrongState("there is no active session", state=State.idle.value, hint="call /start_session first")
        if not isinstance(key, str) or not hmac.compare_digest(key.encode(), self.record.key.encode()):
            raise WrongKey("wrong session key")
        return self.record

    @staticmethod
    def require(r: SessionRecord, allowed, action: str, hint: str) -> None:
        if r.state not in allowed:
            raise WrongState(f"cannot {action} while the session is {r.state.value}; {hint}",
                             state=r.state.value, hint=hint)

    @staticmethod
    def to_setup(r: SessionRecord) -> None:
        """A new dataset or config invalidates the cache and any previous run's outputs."""
        if r.state != State.setup:
            r.state = State.setup
            r.preprocess.status = "not_started"
            r.preprocess.progress = 0.0
            r.artifacts = type(r.artifacts)()
            r.deployment = None
        r.error = None

    def next_job_id(self, r: SessionRecord, kind: str) -> str:
        r.runs += 1
        return f"{r.session_id[:8]}-{kind}-{r.runs}"

    # ---- session ----------------------------------------------------------------------
    def status(self) -> dict:
        return status_of(self.record)

    @write_first
    def start(self, force: bool) -> dict:
        if self.record is not None and not force:
            raise WrongState("a session is already active", state=self.record.state.value,
                             hint="use its key, or call /start_session?force_restart=1 to wipe it")
        if self.record is not None:
            self._wipe()
        session_id = uuid.uuid4().hex
        self.record = SessionRecord(session_id=session_id, key=secrets.token_urlsafe(32),
                                    message="session started; upload a dataset with /upload_dataset/{key}")
        self.layout.session_dir(session_id).mkdir(parents=True, exist_ok=True)
        try:
            self.save()
        except Exception:
            remove_tree(self.layout.session_dir(session_id))
            raise
        return {**self.status(), "key": self.record.key}

    def _wipe(self) -> None:
        """Stop running work first, then remove the session's files."""
        r = self.record
        for name in (r.preprocess.actor, r.training.actor, r.imports.actor):
            if name:
                self.stop_job(name)
        remove_tree(self.layout.session_dir(r.session_id))
        self.record = None
        self.save()

    @write_first
    def wipe(self) -> None:
        """Remove the session and its files (an idle session past session_ttl_hours)."""
        if self.record is not None:
            self._wipe()

    def authorize(self, key: str) -> None:
        self.session(key)

    @write_first
    def restart(self, key: str) -> dict:
        """`force_restart` from a keyed route: only the key holder may wipe the session."""
        self.session(key)
        return self.start(force=True)

    # ---- config -----------------------------------------------------------------------
    def get_config(self) -> dict:
        if self.record is None:
            raise WrongState("there is no active session", state=State.idle.value, hint="call /start_session first")
        r = self.record
        reply = {**self.status(), "config": r.config.model_dump(), "dataset": r.dataset and r.dataset.model_dump()}
        if r.dataset is not None:  # what "auto" resolves to for this data and model
            try:
                model_dir = resolve_model(r.config.model, self.layout.models_dir)
            except InvalidParameters:
                return reply
            reply["resolved"] = plan(r.config, r.dataset, model_dir).model_dump()
        return reply

    @write_first
    def update_config(self, key: str, patch: dict) -> dict:
        r = self.session(key)
        self.require(r, NOT_BUSY, "change the config", "wait for it to finish or call /training/stop first")
        current = r.config.model_dump()
        merged = {**current, **patch}
        if "task_type" in patch and "eval_metrics" not in patch and patch["task_type"] != current["task_type"]:
            merged["eval_metrics"] = None  # the new task's default metrics, not the old task's
        config = _validated_config(merged)
        positions = max_positions(resolve_model(config.model, self.layout.models_dir))
        if positions and config.max_seq_length > positions:
            raise InvalidParameters(f"max_seq_length {config.max_seq_length} is longer than {config.model} takes "
                                    f"({positions} tokens); give at most {positions}", field="max_seq_length")
        self.layout.cache_dir(config.cache_dir)  # refused here if outside the storage root
        if config != r.config:
            r.config = config
            self.to_setup(r)
        r.message = "config updated; " + ("upload a dataset next" if r.dataset is None else "call /preprocess next")
        self.save()
        return {**self.status(), "config": r.config.model_dump()}

    # ---- dataset ----------------------------------------------------------------------
    def begin_upload(self, key: str) -> dict:
        """Where to stage an upload and which task to check it for: one call before the files are read."""
        r = self.session(key)
        self.require(r, NOT_BUSY, "upload a dataset", "wait for it to finish or call /training/stop first")
        check_quota(r, self.layout, self.settings.max_session_storage_mb, "upload a dataset")
        return {"staging": str(self.layout.staging_dir(r.session_id)), "task_type": r.config.task_type}

    @write_first
    def set_dataset(self, key: str, staged_dir: str, summary: dict) -> dict:
        """Swap in a complete, validated upload (a whole folder, renamed atomically)."""
        r = self.session(key)
        self.require(r, NOT_BUSY, "upload a dataset", "wait for it to finish or call /training/stop first")
        target = self.layout.new_dataset_dir(r.session_id)
        Path(staged_dir).rename(target)
        for split in splits_of(summary):
            summary[split]["path"] = str(target / Path(summary[split]["path"]).name)
        old = r.dataset
        r.dataset = new = DatasetSpec(**{**summary, "dir": str(target)})
        self.to_setup(r)
        labels = (f"{len(new.labels)} labels" + (" (multi-label)" if new.multi_label else "")
                  if new.labels else "numeric scores")
        held = f", {new.validation.rows} validation rows" if new.validation else ""
        what = "dataset checked on a sample of its URIs" if new.train.source else "dataset uploaded"
        r.message = (f"{what}: {new.train.rows} train rows, {new.test.rows} test rows"
                     f"{held}, {labels}; call /preprocess next")
        try:
            self.save()
        except Exception:
            remove_tree(target)  # the session keeps the dataset it had
            raise
        if old and old.dir:
            remove_tree(Path(old.dir))
        return {**self.status(), "dataset": new.model_dump()}

    # ---- results -----------------------------------------------------------------------
    def monitor(self, key: str) -> dict:
        r = self.session(key)
        return {**self.status(), "history": r.training.history, "metrics": r.training.final_metrics}

    def artifacts(self, key: str, run_id: Optional[str] = None) -> dict:
        """What a download needs: the model and results paths, where a missing model archive goes, and each export's
        folder and archive with the dataset its check reads. Of the session's model, or of run `run_id`."""
        r = self.session(key)
        if run_id is None:
            if r.state in BUSY:
                raise WrongState(f"cannot download while the session is {r.state.value}", state=r.state.value,
                                 hint="wait for it to finish or call /training/stop")
            if r.artifacts.model_dir is None:
                raise NotFound("no trained model yet", state=r.state.value,
                               hint="train with /training/start and wait for state 'trained' or 'stopped'")
            run, art = r.training.id, r.artifacts
        else:
            run, art = run_id, self.run_artifacts(r, run_id)
        sid = r.session_id
        exports = {fmt: {"dir": str(self.layout.model_export(sid, run, fmt)),
                         "archive": str(self.layout.model_archive(sid, run, fmt))} for fmt in EXPORT_FORMATS}
        return {"session_id": sid, "run_id": run, **art.model_dump(),
                "model_archive_dest": str(self.layout.model_archive(sid, run)),
                "exports": exports, "dataset": r.dataset}  # an export is checked on the dataset's rows

    def run_artifacts(self, r: SessionRecord, run_id: str) -> Artifacts:
        """A finished run's model and results, kept when later runs came."""
        run = find_run(r, run_id)
        if run.run_id == r.training.id and r.training.status == "running":
            raise WrongState(f"run {run_id} is still running", state=r.state.value,
                             hint="wait for it to finish or call /training/stop")
        if run.artifacts.model_dir is None:
            raise NotFound(f"run {run_id} left no model (it {run.status} before its first checkpoint)",
                           state=r.state.value, hint="GET /runs/{key} lists the runs with their state")
        return run.artifacts

    @write_first
    def set_artifact(self, key: str, field: str, path: str, run_id: Optional[str] = None) -> None:
        """Record a file built after the run (a model archive) on the run, and on the session's model if that is
        the run's."""
        r = self.session(key)
        run = find_run(r, run_id) if run_id else current_run(r)
        if run is not None:
            setattr(run.artifacts, field, path)
        if run is None or (run.run_id == r.training.id and r.artifacts.model_dir == run.artifacts.model_dir):
            setattr(r.artifacts, field, path)
        self.save()


def _validated_config(values: dict) -> TrainingConfigParams:
    """The config, or a 422 in FastAPI's `detail` shape naming each bad field."""
    try:
        return TrainingConfigParams(**values)
    except ValidationError as e:
        # Through JSON: an error's context may hold exception objects that would not cross to the replica.
        detail = [{**err, "loc": ["body", *_field_path(err["loc"])]} for err in json.loads(e.json(include_url=False))]
        raise InvalidParameters(f"invalid parameters: {detail[0]['msg']}", detail=detail) from None


def _field_path(loc: list) -> list:
    """The field's path without pydantic's union member tags ("constrained-int", "literal['auto']")."""
    return [part for part in loc if not (isinstance(part, str) and ("constrained-" in part or part.startswith("literal[")))]
