"""A session's training runs: start (or resume), the queue, live progress, a search's trials, stop, the end, and
the run history (list, detail, delete).

A plain class over the session core (session_core.py); no Ray: the actor launches the jobs these steps describe.
"""

from __future__ import annotations

import time
from typing import Optional

from cluster.quota import check_quota
from cluster.run_history import add_event, current_run, find_run, open_run, run_detail, run_summary, sync_run
from cluster.session_core import SessionCore, write_first
from cluster.session_record import TRAINABLE, Artifacts, SessionRecord, State
from train_jobs.errors import InvalidParameters, WrongState
from train_jobs.files import remove_tree
from train_jobs.models.lookup import resolve_model
from train_jobs.specs import TrainingSpec
from train_jobs.training.hyperparams import plan

PROGRESS_SAVE_INTERVAL_S = 2.0
STARTED = "training started; follow it with /monitor/{key}"
WAITING = "waiting for resources"
QUEUED = "queued for the cluster's resources"


class SessionRuns:
    def __init__(self, core: SessionCore):
        self.core = core
        self._last_progress_save = 0.0  # live progress is written at most every PROGRESS_SAVE_INTERVAL_S

    # ---- training -----------------------------------------------------------------------
    @write_first
    def begin_training(self, key: str, resume: bool = False, run_id: Optional[str] = None,
                       queued: bool = False) -> TrainingSpec:
        """A new run on the preprocessed data; with `resume`, the stopped run (`run_id`: the latest) going on from
        its checkpoint. `queued`: the run waits in the queue (state queued) until `start_queued`."""
        core = self.core
        r = core.session(key)
        if run_id is not None:
            find_run(r, run_id)  # 404 for an id this session never had
            if not resume:
                raise InvalidParameters("run_id names the run to resume: give it with resume=true", field="run_id")
            if run_id != r.training.id:
                raise WrongState(f"only the session's latest run ({r.training.id}) can be resumed, not {run_id}",
                                 state=r.state.value, hint="train anew with /training/start")
        core.require(r, TRAINABLE, "start training",
                     "call /preprocess first" if r.state == State.setup else "wait for the running job to finish")
        if not r.preprocess.cache:
            raise WrongState("no preprocessed data", state=r.state.value, hint="call /preprocess first")
        if resume:
            return self.resume_run(r, queued=queued)
        settings, layout = core.settings, core.layout
        check_quota(r, layout, settings.max_session_storage_mb, "start a new run")
        model_dir = resolve_model(r.config.model, layout.models_dir)
        hyper = plan(r.config, r.dataset, model_dir)
        if r.config.search and not (r.dataset.validation or hyper.validation_rows):
            raise InvalidParameters("a search picks its best trial on validation data: upload a validation_file "
                                    "or set validation_split above 0", field="search")
        run_id = core.next_job_id(r, "train")
        sid = r.session_id
        spec = TrainingSpec(run_id=run_id, config=r.config, dataset=r.dataset, cache=r.preprocess.cache,
                            hyper=hyper, model_dir=str(model_dir), storage_path=str(layout.run_storage(sid, run_id)),
                            storage_root=str(layout.root),
                            results_dir=str(layout.results_dir(sid, run_id)),
                            search_dir=str(layout.search_dir(sid, run_id)),
                            outcome_file=str(layout.outcome_file(sid, run_id)),
                            model_archive=str(layout.model_archive(sid, run_id)),
                            results_archive=str(layout.results_archive(sid, run_id)),
                            default_workers=settings.num_workers,
                            progress_every_steps=settings.progress_every_steps,
                            yield_cpu_to_api=settings.yield_cpu_to_api,
                            stream_cache_above_mb=settings.stream_cache_above_mb,
                            resource_wait_timeout_s=r.config.resource_wait_timeout_s
                            or settings.resource_wait_timeout_s)
        r.state = State.training
        r.training = type(r.training)(id=run_id, actor=run_id, status="running", started_at=time.time(),
                                      message="starting workers", run_storage=spec.storage_path,
                                      hyperparameters=hyper.model_dump(), spec=spec.model_dump())
        r.artifacts = type(r.artifacts)(results_dir=spec.results_dir)
        r.deployment = None  # a new run replaces the model: the service takes the old deployment down
        r.error = None
        r.message = STARTED
        open_run(r)
        if queued:
            self._enqueue(r)
        self.core.save()
        return spec

    def _enqueue(self, r: SessionRecord) -> None:
        t = r.training
        r.state, t.status, t.queued_at, t.message = State.queued, "queued", time.time(), QUEUED
        r.message = QUEUED + "; it starts when the runs ahead of it free the cluster's resources"
        add_event(r, "state", "queued", {"status": "queued"})
        sync_run(r)

    @write_first
    def start_queued(self, run_id: str) -> Optional[TrainingSpec]:
        """The queued run's turn: it starts (the caller launches the returned spec)."""
        r = self.core.record
        if not r or r.training.id != run_id or r.state != State.queued:
            return None
        t = r.training
        r.state, t.status, t.queue_position, t.message = State.training, "running", None, "starting workers"
        if not t.restarts:  # a new run starts now; its history entry was opened when it queued
            t.started_at = time.time()
            current_run(r).started_at = t.started_at
        r.message = STARTED
        add_event(r, "state", "started from the queue", {"status": "running"})
        sync_run(r)
        self.core.save()
        return TrainingSpec(**t.spec)

    def resume_run(self, r: SessionRecord, why: str = "resumed", queued: bool = False) -> TrainingSpec:
        """The last run goes on, under its own id and storage, from its latest checkpoint (Ray Train finds it)."""
        t = r.training
        if not t.resumable or t.spec is None:
            raise WrongState("there is no stopped run with a checkpoint to resume", state=r.state.value,
                             hint="call /training/start without resume=true to train anew")
        r.state = State.training
        t.status, t.stop_requested, t.resumable, t.finished_at, t.error = "running", False, False, None, None
        t.restarts += 1
        r.deployment = None
        t.message = "resuming from the latest checkpoint"
        r.error = None
        r.message = f"training {why} from its latest checkpoint; follow it with /monitor/{{key}}"
        add_event(r, "restart", f"training {why} from its latest checkpoint", {"restarts": t.restarts})
        if queued:
            self._enqueue(r)
        sync_run(r)
        self.core.save()
        return TrainingSpec(**t.spec)

    def training_progress(self, run_id: str, info: dict, evaluation: Optional[dict] = None) -> bool:
        """Rank 0's live report; returns True when training should stop."""
        r = self.core.record
        if not r or r.training.id != run_id or r.state != State.training:
            return True  # this run was wiped, replaced or has ended: stop it
        t = r.training
        if not t.live and r.message.startswith(WAITING):  # the first step: the wait is over
            r.message = STARTED
        t.live = info
        t.progress = info.get("progress", t.progress)
        t.message = f"{info.get('phase', 'training')}: step {info.get('step')} of {info.get('total_steps')}"
        now = time.monotonic()
        if evaluation is not None:  # a run resumed from a checkpoint redoes evaluations past it: replace them
            t.history = [e for e in t.history if e.get("trial") != evaluation.get("trial")
                         or e.get("step", -1) < evaluation.get("step", 0)] + [evaluation]
            add_event(r, "evaluation", f"evaluation at step {evaluation.get('step')}", evaluation)
        if evaluation is not None or now - self._last_progress_save > PROGRESS_SAVE_INTERVAL_S:
            self._last_progress_save = now
            self.core.save(wait=False)
        return t.stop_requested

    def training_waiting(self, run_id: str, message: str) -> None:
        """The run waits for its workers' resources (before its first step): the status says what is missing."""
        r = self.core.record
        if r and r.training.id == run_id and r.state == State.training and not r.training.live:
            r.training.message = r.message = message
            self.core.save(wait=False)

    def search_progress(self, run_id: str, trials: list[dict]) -> None:
        """A search's trials (config, state, best validation score) as they change."""
        r = self.core.record
        if r and r.training.id == run_id and r.state == State.training:
            r.training.trials = trials
            self.core.save(wait=False)

    @write_first
    def finish_training(self, run_id: str, outcome: dict) -> None:
        r = self.core.record
        if not r or r.training.id != run_id or r.state != State.training:
            return
        t = r.training
        t.finished_at = time.time()
        r.artifacts = r.artifacts.model_copy(update={k: outcome.get(k) for k in
                                                     ("model_dir", "model_archive", "results_archive")})
        if outcome.get("final_metrics"):
            t.final_metrics = outcome["final_metrics"]
        t.tracking = outcome.get("tracking")
        if outcome.get("history") is not None:  # the run's own record: complete, even if reports were lost
            t.history = outcome["history"]
        t.timings = outcome.get("timings")
        if outcome.get("error"):
            r.state, t.status, t.error = State.failed, "failed", outcome["error"]
            r.error = {"during": "training", "message": outcome["error"]}
            r.message = f"training failed: {outcome['error']}"
        elif t.stop_requested:
            r.state, t.status = State.stopped, "stopped"
            t.resumable = bool(outcome.get("resumable"))
            r.message = "training stopped; " + ("the last checkpoint can be downloaded" if r.artifacts.model_dir
                                                else "no checkpoint was saved")
        else:
            r.state, t.status, t.progress = State.trained, "done", 1.0
            r.message = "training finished; download the model with /download_model/{key}"
        if t.error:
            add_event(r, "error", t.error)
        add_event(r, "state", r.message, {"status": t.status})
        sync_run(r)
        self.core.save()

    @write_first
    def request_stop(self, key: str) -> dict:
        r = self.core.session(key)
        self.core.require(r, [State.training, State.queued], "stop training", "there is no training run to stop")
        t = r.training
        t.stop_requested = True
        add_event(r, "state", "stop requested")
        if r.state == State.queued:  # it leaves the queue; it never ran
            r.state = State.training  # (finish_training ends a running run)
            # A queued resume keeps its checkpoint, and stays resumable; a new run leaves nothing.
            self.finish_training(t.id, {**r.artifacts.model_dump(), "resumable": True} if t.restarts else {})
            t.queue_position = None
            r.message = "the queued run was stopped before it started"
        elif not t.live:
            # Workers still starting: nothing trained yet, so end the run's actor (and its workers) now.
            self.core.stop_job(t.actor)
            self.finish_training(t.id, {})
            r.message = "training stopped before its first step; no model was saved"
        else:
            r.message = "stop requested; training ends at its next progress report"
        self.core.save()
        return self.core.status()


    # ---- run history ----------------------------------------------------------------------
    def list_runs(self, key: str) -> dict:
        r = self.core.session(key)
        return {"runs": [run_summary(r, run) for run in reversed(r.run_history)]}

    def get_run(self, key: str, run_id: str) -> dict:
        r = self.core.session(key)
        return run_detail(r, find_run(r, run_id))

    @write_first
    def delete_run(self, key: str, run_id: str) -> dict:
        """Forget a run and free its files (checkpoints, model, exports, results); not while it runs or serves."""
        r = self.core.session(key)
        run = find_run(r, run_id)
        if run_id == r.training.id and r.state in (State.training, State.queued):
            raise WrongState(f"run {run_id} is running", state=r.state.value, hint="stop it with /training/stop first")
        if r.deployment and r.deployment.run_id == run_id:
            raise WrongState(f"run {run_id}'s model is deployed", state=r.state.value,
                             hint="take it down with DELETE /deploy/{key} first")
        r.run_history.remove(run)
        if run_id == r.training.id:  # the session's model goes with it
            r.artifacts, r.training.resumable = Artifacts(), False
            if r.state in (State.trained, State.stopped, State.failed):
                r.state = State.preprocessed if r.preprocess.cache else State.setup
        r.message = f"run {run_id} deleted with its files"
        self.core.save()
        remove_tree(self.core.layout.run_dir(r.session_id, run_id))
        return {**self.core.status(), "deleted": run_id}
