"""Background jobs as named, detached actors: preprocessing and training runs.

Each job runs in its own actor (never in the Serve replica), named after its
session and step so the Ray dashboard shows what it is. Detached, so a restart
of the Serve app does not cut it off; the session actor checks by name whether
a job is still alive after a restart.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

import ray

from cluster.settings import NAMESPACE, SESSION_ACTOR_NAME

FINISH_RETRY_S = 120


def _session():
    return ray.get_actor(SESSION_ACTOR_NAME, namespace=NAMESPACE)


def _deliver(method: str, *args) -> None:
    """Report a job's end to the session, waiting out a restart of the session actor."""
    deadline = time.monotonic() + FINISH_RETRY_S
    while True:
        try:
            ray.get(getattr(_session(), method).remote(*args), timeout=30)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _short_error(exc: BaseException) -> str:
    """The root cause's message, not a page of Ray traceback."""
    while getattr(exc, "__cause__", None) is not None:
        exc = exc.__cause__
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:500]


def _run_and_report(job_id: str, progress_method: str, finish_method: str, work, expected=()) -> None:
    """Run `work(on_progress)` in a job actor, report progress and the end to the session, then exit.

    Errors of the `expected` types carry a message for the user as is; others are shortened.
    """
    session = _session()

    def on_progress(fraction: float, message: str) -> None:
        getattr(session, progress_method).remote(job_id, fraction, message)

    try:
        _deliver(finish_method, job_id, work(on_progress), None)
    except expected as e:
        _deliver(finish_method, job_id, None, str(e))
    except Exception as e:  # reported to the user through the session
        traceback.print_exc()
        _deliver(finish_method, job_id, None, _short_error(e))
    ray.actor.exit_actor()


@ray.remote(num_cpus=0, max_restarts=0)
class PreprocessJob:
    def run(self, spec: dict) -> None:
        from train_jobs.models import resolve_model
        from train_jobs.preprocess import build_cache

        def work(on_progress):
            model_dir = str(resolve_model(spec["model"], Path(spec["models_dir"])))
            return build_cache({**spec, "model_dir": model_dir}, on_progress)

        _run_and_report(spec["job_id"], "preprocess_progress", "finish_preprocess", work)


@ray.remote(num_cpus=0, max_restarts=0)
class ImportJob:
    def run(self, spec: dict) -> None:
        from train_jobs.model_import import ImportFailed, import_model

        _run_and_report(spec["job_id"], "import_progress", "finish_import",
                        lambda on_progress: import_model(spec, on_progress), expected=(ImportFailed,))


@ray.remote(num_cpus=0, max_restarts=0)
class TrainingJob:
    def run(self, spec: dict) -> None:
        from train_jobs.run_training import run_training

        try:
            outcome = run_training(spec)
        except Exception as e:
            traceback.print_exc()
            outcome = {"error": _short_error(e)}
        _deliver("finish_training", spec["run_id"], outcome)
        ray.actor.exit_actor()


def launch(job_cls, name: str, spec: dict) -> None:
    """Start a job actor and return at once."""
    actor = job_cls.options(name=name, namespace=NAMESPACE, lifetime="detached").remote()
    actor.run.remote(spec)


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@ray.remote(num_cpus=0)
def inspect_upload(train: tuple[str, str], test: tuple[str, str], task: str) -> dict:
    """Check a staged upload ((path, client filename) per split) for `task` and summarise it, off the replica."""
    from train_jobs.dataset_files import summarise_dataset

    summary = summarise_dataset(Path(train[0]), Path(test[0]), train[1], test[1], task)
    for split, (path, _) in (("train", train), ("test", test)):
        summary[split].update(path=path, sha256=_sha256(Path(path)))
    return summary


@ray.remote(num_cpus=0)
def build_model_archive_task(model_dir: str, dest: str) -> str:
    from train_jobs.artifacts import build_model_archive

    return str(build_model_archive(Path(model_dir), Path(dest)))


@ray.remote(num_cpus=0)
def build_catalogue_archive_task(model_dir: str, dest: str, tokenizer: bool) -> str:
    from train_jobs.artifacts import build_catalogue_archive

    return str(build_catalogue_archive(Path(model_dir), Path(dest), tokenizer))
