"""Background jobs as named, detached actors: preprocessing, training runs and model imports.

Each job runs in its own actor (never in the Serve replica), named after its
session and step so the Ray dashboard shows what it is. Detached, so a restart
of the Serve app does not cut it off; the session checks by name whether a job
is still alive after a restart. A job gets the session actor's handle and
reports through it: progress as it goes, then its end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from cluster.settings import NAMESPACE, ON_HEAD_NODE, SESSION_ACTOR_NAME
from train_jobs.errors import DISK_FULL, BadDataset, CheckpointDidNotFit, RunEnded
from train_jobs.files import atomic_write_json, read_json, remove_tree
from train_jobs.logs import configure_logging, quiet_ray_data
from train_jobs.specs import ImportSpec, PreprocessCounts, PreprocessSpec, TrainingSpec

log = logging.getLogger(__name__)

FINISH_RETRY_S = 120
AWAY_WAIT_S = 3600
PROGRESS_TIMEOUT_S = 10
# Progress reports the session refused in a row (an error other than its actor being away) before the run stops
# itself: one refusal is a hiccup, but a run that goes on past a few trains unseen and cannot be stopped. At
# progress_every_steps=5 that is about 25 steps.
MAX_REPORT_FAILURES = 5
# What a call to a session actor that is not there raises: restarting (unavailable, or a call that waited past
# its timeout), or killed for good and not yet created again (died; the ingress's next call recreates it).
SESSION_AWAY = (RayActorError, GetTimeoutError)


class ProgressRefused(RunEnded):
    """The session refused a run's progress reports MAX_REPORT_FAILURES times in a row: the run stops."""


def find_session_actor():
    """The session actor by its well-known name, for a job whose handle died with a replaced actor."""
    return ray.get_actor(SESSION_ACTOR_NAME, namespace=NAMESPACE)


class SessionLink:
    """A job's line to the session actor: the handle it was given, found again by name when that actor was
    replaced (a restart keeps the handle; an actor killed for good and created again needs the new one)."""

    def __init__(self, handle, find: Callable[[], Any] = find_session_actor):
        self.handle, self._find = handle, find

    def deliver(self, call: Callable[[Any], Any]) -> None:
        """Report a job's end (`call(handle)` returns the ObjectRef). A session actor that is away is waited for
        (up to AWAY_WAIT_S: the ingress's next call brings it back); another error is tried again for
        FINISH_RETRY_S, then logged. Either way the job ends after: its outcome file tells a session that
        comes back later."""
        self.until_delivered(lambda: ray.get(call(self.handle), timeout=30))

    def until_delivered(self, ask: Callable[[], Any]) -> None:
        """`deliver`'s loop over `ask()`, the call that returns once the session has the job's end."""
        start = time.monotonic()
        while True:
            try:
                ask()
                return
            except SESSION_AWAY:
                if time.monotonic() - start > AWAY_WAIT_S:
                    log.error("the session actor was away for %d s; the job's end is left to its outcome file",
                              AWAY_WAIT_S)
                    return
            except Exception:
                if time.monotonic() - start > FINISH_RETRY_S:
                    log.exception("the session refused the job's end for %d s; giving up", FINISH_RETRY_S)
                    return
            time.sleep(1)
            self.refind()

    def refind(self) -> None:
        try:
            self.handle = self._find()
        except ValueError:  # killed for good and not created again yet: the next call tries again
            pass


class TrainingProgressSink:
    """Rank 0's live progress to the session; the answer says whether to stop. A session actor that is away
    (restarting, or killed and not yet back) never stops training: that push is skipped and the actor looked up
    again. Other errors are logged, and MAX_REPORT_FAILURES of them in a row stop the run (ProgressRefused)."""

    def __init__(self, link: SessionLink, run_id: str):
        self.link, self.run_id = link, run_id
        self.failures = 0

    def __call__(self, info: dict, evaluation: Optional[dict]) -> bool:
        return self.answer(lambda: ray.get(self.link.handle.training_progress.remote(self.run_id, info, evaluation),
                                           timeout=PROGRESS_TIMEOUT_S))

    def answer(self, ask: Callable[[], Any]) -> bool:
        """Whether to stop, as `ask()` (the call to the session) says."""
        try:
            stop = bool(ask())
        except SESSION_AWAY:
            self.link.refind()
            return False
        except Exception as e:
            self.failures += 1
            log.warning("run %s: the session refused its progress (%d in a row)", self.run_id, self.failures,
                        exc_info=True)
            if self.failures >= MAX_REPORT_FAILURES:
                raise ProgressRefused(f"the session refused this run's progress {self.failures} times in a row "
                                      f"(last: {short_error(e)}); stopped, as it could no longer be followed or "
                                      "stopped") from e
            return False
        self.failures = 0
        return stop


def short_error(exc: BaseException) -> str:
    """The root cause's message, not a page of Ray traceback."""
    while getattr(exc, "__cause__", None) is not None:
        exc = exc.__cause__
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:500]


def _run_and_report(job_id: str, link: SessionLink, work: Callable[[], Any],
                    finish: Callable[[Any, Any, Optional[str]], Any], expected: tuple = ()) -> None:
    """Run `work()`, report its result or error with `finish(handle, result, error)`, then end this actor.

    Errors of the `expected` types carry a message for the user as is; others are shortened.
    """
    result, error = None, None
    try:
        result = work()
    except expected as e:
        error = str(e)
    except Exception as e:  # reported to the user through the session, in short; logged whole
        log.exception("job %s failed", job_id)
        error = short_error(e)
    link.deliver(lambda session: finish(session, result, error))
    ray.actor.exit_actor()


@ray.remote(num_cpus=0, max_restarts=0)
class PreprocessJob:
    def run(self, session, spec: PreprocessSpec, log_level: str = "INFO") -> None:
        from train_jobs.data.preprocess import build_cache

        configure_logging(log_level)
        quiet_ray_data()
        link = SessionLink(session)

        def on_progress(fraction: float, message: str, counts: Optional[PreprocessCounts]) -> None:
            link.handle.preprocess_progress.remote(spec.job_id, fraction, message, counts and counts.model_dump())

        _run_and_report(spec.job_id, link, lambda: build_cache(spec, on_progress),
                        lambda s, cache, error: s.finish_preprocess.remote(spec.job_id, cache, error),
                        expected=(BadDataset,))  # the whole of a dataset by URI failed a check: said as is


@ray.remote(num_cpus=0, max_restarts=0)
class ImportJob:
    def run(self, session, spec: ImportSpec, log_level: str = "INFO") -> None:
        from train_jobs.models.importer import ImportFailed, import_model

        configure_logging(log_level)
        link = SessionLink(session)

        def on_progress(fraction: float, message: str) -> None:
            link.handle.import_progress.remote(spec.job_id, fraction, message)

        _run_and_report(spec.job_id, link, lambda: import_model(spec, on_progress),
                        lambda s, entry, error: s.finish_import.remote(spec.job_id, entry, error),
                        expected=(ImportFailed,))


@ray.remote(num_cpus=0, max_restarts=0)
class TrainingJob:
    def run(self, session, spec: TrainingSpec, log_level: str = "INFO") -> None:
        from train_jobs.training.resource_wait import ResourceWaitTimeout
        from train_jobs.training.run import run_training

        configure_logging(log_level)
        quiet_ray_data()
        link = SessionLink(session)
        try:
            outcome = run_training(spec, TrainingProgressSink(link, spec.run_id),
                                   on_trials=lambda trials: link.handle.search_progress.remote(spec.run_id, trials),
                                   on_waiting=lambda message: link.handle.training_waiting.remote(spec.run_id, message))
            if not spec.config.search:  # all its evaluations, with those pushed while no session actor was there
                outcome["history"] = read_json(Path(spec.results_dir) / "history.json")
        except ResourceWaitTimeout as e:  # its message is for the user as is
            outcome = {"error": str(e)}
        except Exception as e:
            outcome = {"error": failure(spec, e)}
        try:  # on disk first: a session actor that is gone now reads it when it comes back
            atomic_write_json(Path(spec.outcome_file), outcome)
        except OSError:  # a full disk: the session is still told, and records it if it can
            log.exception("training run %s: could not write its outcome file", spec.run_id)
        link.deliver(lambda s: s.finish_training.remote(spec.run_id, outcome))
        ray.actor.exit_actor()


def failure(spec: TrainingSpec, exc: Exception) -> str:
    """What the status says of a run that raised `exc`: a run that ended itself (RunEnded) in its own words, a
    full disk naming the storage root, any other error in short (the log has the traceback). A run that filled
    the disk loses its checkpoints."""
    errors = list(causes(exc))
    ended = next((e for e in errors if isinstance(e, RunEnded)), None)
    disk = next((e for e in errors if isinstance(e, OSError) and e.errno in DISK_FULL), None)
    if ended is None:
        log.exception("training run %s failed", spec.run_id)
    else:
        log.error("training run %s ended: %s", spec.run_id, ended)
    if isinstance(ended, CheckpointDidNotFit) or disk is not None:
        discard_checkpoints(spec)  # other failures keep theirs, to look into or resume from
    if ended is not None:
        return str(ended)
    if disk is not None:
        return f"no space left under the storage root {spec.storage_root or spec.storage_path}: {short_error(disk)}"
    return short_error(exc)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and the errors behind it, also those a training worker raised behind Ray Train's wrapping: a
    WorkerGroupError keeps each rank's error in `worker_failures`, wrapped with its traceback text (the wrapper
    keeps the error itself as `_base_exc`)."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__, getattr(e, "_base_exc", None),
                 *getattr(e, "worker_failures", {}).values()]


def discard_checkpoints(spec: TrainingSpec) -> None:
    """A run that failed on a full disk loses its checkpoints (a partial one too, when the disk filled up while
    writing it), which frees the space to record the failure."""
    remove_tree(Path(spec.storage_path))
    remove_tree(Path(spec.search_dir))


def launch(job_cls, session, spec, log_level: str = "INFO") -> None:
    """Start a job actor named after its job id, hand it the session actor and the spec, and return at once."""
    name = spec.run_id if isinstance(spec, TrainingSpec) else spec.job_id
    actor = job_cls.options(name=name, namespace=NAMESPACE, lifetime="detached", resources=ON_HEAD_NODE).remote()
    actor.run.remote(session, spec, log_level)
