"""The state machine's training runs: start (or resume), live progress, a search's trials, stop, the end.

No Ray here either: the actor that wraps the machine launches the jobs these transitions describe.
"""

from __future__ import annotations

import time
from typing import Optional

from cluster.session_core import SessionCore, write_first
from cluster.session_record import TRAINABLE, SessionRecord, State
from train_jobs.errors import InvalidParameters, WrongState
from train_jobs.models.lookup import resolve_model
from train_jobs.specs import TrainingSpec
from train_jobs.training.hyperparams import plan

PROGRESS_SAVE_INTERVAL_S = 2.0
STARTED = "training started; follow it with /monitor/{key}"
WAITING = "waiting for resources"


class SessionRuns(SessionCore):
    _last_progress_save = 0.0

    # ---- training -----------------------------------------------------------------------
    @write_first
    def begin_training(self, key: str, resume: bool = False) -> TrainingSpec:
        """A new run on the preprocessed data; with `resume`, the stopped run going on from its checkpoint."""
        r = self._session(key)
        self._require(r, TRAINABLE, "start training",
                      "call /preprocess first" if r.state == State.setup else "wait for the running job to finish")
        if not r.preprocess.cache:
            raise WrongState("no preprocessed data", state=r.state.value, hint="call /preprocess first")
        if resume:
            return self._resume(r)
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
                            outcome_file=str(layout.outcome_file(sid, run_id)),
                            model_archive=str(layout.model_archive(sid, run_id)),
                            results_archive=str(layout.results_archive(sid, run_id)),
                            default_workers=self.settings.num_workers,
                            progress_every_steps=self.settings.progress_every_steps,
                            yield_cpu_to_api=self.settings.yield_cpu_to_api,
                            resource_wait_timeout_s=r.config.resource_wait_timeout_s
                            or self.settings.resource_wait_timeout_s)
        r.state = State.training
        r.training = type(r.training)(id=run_id, actor=run_id, status="running", started_at=time.time(),
                                      message="starting workers", run_storage=spec.storage_path,
                                      hyperparameters=hyper.model_dump(), spec=spec.model_dump())
        r.artifacts = type(r.artifacts)(results_dir=spec.results_dir)
        r.deployment = None  # a new run replaces the model: the service takes the old deployment down
        r.error = None
        r.message = STARTED
        self._save()
        return spec

    def _resume(self, r: SessionRecord, why: str = "resumed") -> TrainingSpec:
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
        self._save()
        return TrainingSpec(**t.spec)

    def training_progress(self, run_id: str, info: dict, evaluation: Optional[dict] = None) -> bool:
        """Rank 0's live report; returns True when training should stop."""
        r = self.record
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
        if evaluation is not None or now - self._last_progress_save > PROGRESS_SAVE_INTERVAL_S:
            self._last_progress_save = now
            self._save(wait=False)
        return t.stop_requested

    def training_waiting(self, run_id: str, message: str) -> None:
        """The run waits for its workers' resources (before its first step): the status says what is missing."""
        r = self.record
        if r and r.training.id == run_id and r.state == State.training and not r.training.live:
            r.training.message = r.message = message
            self._save(wait=False)

    def search_progress(self, run_id: str, trials: list[dict]) -> None:
        """A search's trials (config, state, best validation score) as they change."""
        r = self.record
        if r and r.training.id == run_id and r.state == State.training:
            r.training.trials = trials
            self._save(wait=False)

    @write_first
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
        t.tracking = outcome.get("tracking")
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
        self._save()

    @write_first
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

