"""A session's run history: every training run kept under its own id, with its events (plain functions on the
record; no Ray, no disk).

The session's current run lives in `record.training` and `record.artifacts` as the reference's routes expect;
its `RunRecord` in `record.run_history` is opened when it starts, gets its events as they happen, and takes the
run's final fields when it ends. A later run leaves it, and its files, as they are.
"""

from __future__ import annotations

import math
import time
from typing import Any, Optional

from cluster.session_record import RunEvent, RunRecord, SessionRecord
from train_jobs.errors import NotFound
from train_jobs.metric_names import LOWER_IS_BETTER

# The current run's fields its history entry takes as they change (the rest is fixed when the run starts).
FINAL_FIELDS = ("status", "finished_at", "history", "final_metrics", "trials", "tracking", "timings", "restarts",
                "error", "hyperparameters")


def open_run(r: SessionRecord) -> RunRecord:
    """Record the run `r.training` describes as it starts."""
    t = r.training
    run = RunRecord(run_id=t.id, started_at=t.started_at or time.time(), config=r.config,
                    hyperparameters=t.hyperparameters, artifacts=r.artifacts.model_copy())
    run.events.append(RunEvent(kind="state", message="training started", data={"status": "running"}))
    r.run_history.append(run)
    return run


def current_run(r: SessionRecord) -> Optional[RunRecord]:
    return next((run for run in reversed(r.run_history) if run.run_id == r.training.id), None) if r.training.id \
        else None


def add_event(r: SessionRecord, kind: str, message: str, data: Optional[dict[str, Any]] = None) -> None:
    """An event of the current run (a record written before run history existed has no entry: nothing to add)."""
    run = current_run(r)
    if run is not None:
        run.events.append(RunEvent(kind=kind, message=message, data=data))


def sync_run(r: SessionRecord) -> None:
    """Copy the current run's fields (state, metrics, artifacts) into its history entry."""
    run = current_run(r)
    if run is None:
        return
    t = r.training
    for field in FINAL_FIELDS:
        setattr(run, field, getattr(t, field))
    run.artifacts = r.artifacts.model_copy()


def find_run(r: SessionRecord, run_id: str) -> RunRecord:
    """The session's run `run_id`; 404 for any other id, another session's included (never confirm those)."""
    run = next((run for run in r.run_history if run.run_id == run_id), None)
    if run is None:
        raise NotFound(f"no run {run_id!r} in this session",
                       hint="GET /runs/{key} lists the session's runs" + (
                           f"; the latest is {r.run_history[-1].run_id!r}" if r.run_history else ""))
    return run


def run_detail(r: SessionRecord, run: RunRecord) -> dict:
    """The whole run; while it is the current one, with the live history and metrics."""
    detail = run.model_dump()
    if run.run_id == r.training.id:
        t = r.training
        detail.update(status=t.status, history=t.history, final_metrics=t.final_metrics, trials=t.trials,
                      restarts=t.restarts, error=t.error, finished_at=t.finished_at, live=t.live)
    detail["selected"] = selected_metric(detail)
    return detail


def run_summary(r: SessionRecord, run: RunRecord) -> dict:
    """One line of GET /runs/{key}."""
    detail = run_detail(r, run)
    return {"run_id": run.run_id, "state": detail["status"], "started_at": run.started_at,
            "finished_at": detail["finished_at"], "selected": detail["selected"],
            "deployed": bool(r.deployment and r.deployment.run_id == run.run_id)}


def selected_metric(detail: dict) -> Optional[dict]:
    """The metric that selects the model and its best value among the run's validation evaluations (the test
    file's when the run had no validation data)."""
    hyper = detail.get("hyperparameters") or {}
    config = detail["config"]
    name = hyper.get("metric_for_best_model") or config.get("metric_for_best_model") or \
        (config.get("eval_metrics") or [None])[0]
    if not name:
        return None
    minimise = name in LOWER_IS_BETTER
    values = [e[name] for e in detail["history"] if e.get("split", "validation") == "validation"
              and isinstance(e.get(name), (int, float)) and not math.isnan(e[name])]
    if values:
        return {"metric": name, "value": min(values) if minimise else max(values), "split": "validation"}
    final = (detail.get("final_metrics") or {}).get(name)
    return {"metric": name, "value": final, "split": "test"} if isinstance(final, (int, float)) else None
