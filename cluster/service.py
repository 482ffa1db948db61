"""The use cases the HTTP routes call: one method each, orchestrating the session actor, jobs and tasks.

Routes validate and authorise; everything they do beyond that happens here, so
a script or a test can drive the server's work without HTTP (bench/gpu_check.py does).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import ray
from cachetools import TTLCache

from cluster.catalogue_cases import CatalogueCases
from cluster.dataset_upload import receive_dataset
from cluster.health import ServerHealth
from cluster.jobs import ImportJob, PreprocessJob, TrainingJob, launch
from cluster.resources import check_deployment, check_resources
from cluster.run_cases import RunHistoryCases
from cluster.serving import app_handle, app_state, remove_apps, replica_answer, start_app
from cluster.session_client import SessionClient
from cluster.session_deploy import NO_DEPLOYMENT_HINT
from cluster.session_record import DeployOptions
from cluster.settings import Settings
from cluster.tasks import build_model_archive_task, model_export_task
from cluster.uploads import MiB, UploadStream, save_parts
from train_jobs.errors import NotFound, WrongState
from train_jobs.files import remove_tree
from train_jobs.inference.inputs import check_inputs
from train_jobs.models.importer import catalogue, catalogue_name, check_directory_source

RECENT_S = 1.0  # how long a key's authorisation and deployment record are reused (see TrainingService)
log = logging.getLogger(__name__)


class TrainingService:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.layout = settings.layout
        self.session = SessionClient(settings)
        self._models: dict[tuple, tuple] = {}  # (app, deployed_at) -> (handle, what the model takes)
        # What the session actor said about a key in the last second, so /predict's hot path skips two actor round
        # trips per call. Every change made through this ingress clears them; the TTL bounds what a change made
        # elsewhere (another ingress replica) can leave stale. Wrong keys are never kept: they always reach the
        # actor and count towards the client's limit. `clock` times them (a test's clock ages them without waiting).
        self._authorized: TTLCache = TTLCache(maxsize=64, ttl=RECENT_S, timer=clock)  # key -> True
        self._deployments: TTLCache = TTLCache(maxsize=64, ttl=RECENT_S, timer=clock)  # key -> (record, options)
        self._changes = 0  # counts _changing steps: an answer that raced one is used once, not kept
        # The ingress sets this: its first request restores the recorded deployment. Not from a thread at
        # construction: the session actor's handle is then used from two threads, and calls were seen to stall.
        self.restore_pending = False
        self._health = ServerHealth(self.session, settings.root)
        self.runs = RunHistoryCases(self.session)
        self.catalogue = CatalogueCases(self.session, self.layout)

    async def _launch(self, job_cls, spec, job_id: str, key: str) -> dict:
        """Launch a job actor; if that fails, the session records the failure instead of waiting forever."""
        try:
            launch(job_cls, self.session.handle, spec, self.settings.log_level)
        except Exception as e:
            error = f"could not start {job_id}: {e}"
            await self.session.call(lambda s: s.abort_job.remote(job_id, error))
            raise
        return await self.status(key)

    # ---- session -----------------------------------------------------------------------
    def _restore_once(self) -> None:
        if self.restore_pending:  # the first request (the healthcheck, at start-up) brings the model back
            self.restore_pending = False
            self._restoring = asyncio.create_task(self.restore_deployment())

    async def status(self, key: Optional[str] = None) -> dict:
        """The session's status (`key`: the X-Session-Key header's), or with several and no key a summary."""
        self._restore_once()
        return await self.session.call(lambda s: s.status.remote(key))

    async def health(self) -> tuple[bool, dict]:
        """Whether the server can work, and what was checked (health.py)."""
        self._restore_once()
        return await self._health.check()

    async def authorize(self, key: str) -> None:
        await self._recalled(self._authorized, key, lambda: self._authorize_now(key))

    async def _authorize_now(self, key: str) -> bool:
        await self.session.call(lambda s: s.authorize.remote(key))  # raises for a wrong key: nothing is kept
        return True

    async def _recalled(self, kept: TTLCache, key: str, ask):
        """kept[key], or what `ask()` answers now, kept unless a change (`_changing`) happened meanwhile: that
        answer is used once, not kept."""
        answer = kept.get(key)  # answers are never None
        if answer is not None:
            return answer
        changes = self._changes
        answer = await ask()
        if changes == self._changes:
            kept[key] = answer
        return answer

    async def _changing(self, step):
        """Await a session step that changes keys or the deployment, then forget what was kept about keys: after
        the step, so an answer the actor gave before the change (still on its way) is not kept either."""
        try:
            return await step
        finally:
            self._changes += 1
            self._authorized.clear()
            self._deployments.clear()

    async def start_session(self, force: bool, key: Optional[str] = None) -> dict:
        return await self._dropping_model(self.session.call(lambda s: s.start.remote(force, key)))

    async def list_sessions(self) -> dict:
        return {"sessions": await self.session.call(lambda s: s.list_sessions.remote()),
                "max_sessions": self.settings.max_sessions}

    async def restart_session(self, key: str) -> dict:
        return await self._dropping_model(self.session.call(lambda s: s.restart.remote(key)))

    async def _dropping_model(self, step):
        """Run a session step that ends a model deployment (a wipe, a new run), then take its app down."""
        result = await self._changing(step)
        await self._remove_unrecorded_apps()
        return result

    async def _remove_unrecorded_apps(self) -> None:
        """Remove the model apps no session records (several sessions may each serve one)."""
        recorded = await self.session.call(lambda s: s.recorded_deployments.remote())
        await asyncio.to_thread(remove_apps, {info["app"] for info in recorded})

    async def get_parameters(self, key: Optional[str] = None) -> dict:
        return await self.session.call(lambda s: s.get_config.remote(key))

    def _check_resources(self, config: dict) -> None:
        check_resources(config.get("use_gpu"), config.get("num_workers"), self.settings.num_workers,
                        ray.cluster_resources())

    async def update_parameters(self, key: str, patch: dict) -> dict:
        if {"use_gpu", "num_workers"} & set(patch):  # refused before the session changes
            self._check_resources({**(await self.get_parameters(key))["config"], **patch})
        # A new config ends the deployment (the session clears its record): its app goes too.
        return await self._dropping_model(self.session.call(lambda s: s.update_config.remote(key, patch)))

    # ---- dataset ------------------------------------------------------------------------
    async def upload_dataset(self, key: str, body: UploadStream) -> dict:
        """Stream the files to staging, or check the URIs, then swap them in as the dataset: all or nothing."""
        target = await self.session.call(lambda s: s.begin_upload.remote(key))
        staging = Path(target["staging"])
        await asyncio.to_thread(staging.mkdir, parents=True)  # file work off the event loop (see uploads.py)
        try:
            summary = await receive_dataset(self.settings, body, staging, target["task_type"])
            return await self._dropping_model(
                self.session.call(lambda s: s.set_dataset.remote(key, str(staging), summary)))
        finally:
            await asyncio.to_thread(remove_tree, staging)  # gone already when the upload was accepted

    async def preprocess(self, key: str) -> dict:
        spec = await self._dropping_model(self.session.call(lambda s: s.begin_preprocess.remote(key)))
        if spec is None:  # a cache hit (or a refusal), already answered by the session
            return await self.status(key)
        return await self._launch(PreprocessJob, spec, spec.job_id, key)

    # ---- training -----------------------------------------------------------------------
    async def start_training(self, key: str, resume: bool = False, run_id: Optional[str] = None) -> dict:
        self._check_resources((await self.get_parameters(key))["config"])  # the cluster may have shrunk since
        spec = await self._dropping_model(self.session.call(lambda s: s.begin_training.remote(key, resume, run_id)))
        if spec is None:  # queued: the session actor launches it when its turn comes
            return await self.status(key)
        return await self._launch(TrainingJob, spec, spec.run_id, key)

    async def stop_training(self, key: str) -> dict:
        return await self.session.call(lambda s: s.request_stop.remote(key))

    async def monitor(self, key: str) -> dict:
        return await self.session.call(lambda s: s.monitor.remote(key))

    # ---- artifacts ----------------------------------------------------------------------
    async def model_archive(self, key: str, fmt: str = "torch", run_id: Optional[str] = None) -> tuple[str, str]:
        """(path, download name) of the model archive (the session's model, or run `run_id`'s), built first if
        missing (a checkpoint recovered after a restart has none); an ONNX format's archive holds the export, built
        and checked first."""
        art = await self.session.call(lambda s: s.artifacts.remote(key, run_id))
        name = f"model-{run_id}" if run_id else f"model-{art['session_id'][:8]}"
        if fmt != "torch":
            paths = art["exports"][fmt]
            path = await model_export_task.remote(art["model_dir"], paths["dir"], fmt, art["dataset"], paths["archive"])
            return path, f"{name}-{fmt}.tar.gz"
        path = art["model_archive"]
        if not path or not Path(path).is_file():
            path = await build_model_archive_task.remote(art["model_dir"], art["model_archive_dest"])
            await self.session.call(lambda s: s.set_artifact.remote(key, "model_archive", path, run_id))
        return path, f"{name}.tar.gz"

    async def results_archive(self, key: str, run_id: Optional[str] = None) -> tuple[str, str]:
        art = await self.session.call(lambda s: s.artifacts.remote(key, run_id))
        path = art["results_archive"]
        if not path or not Path(path).is_file():
            raise NotFound("no results for this run: it ended before the results were written")
        return path, f"results-{run_id}.tar.gz" if run_id else f"results-{art['session_id'][:8]}.tar.gz"

    # ---- model deployment -----------------------------------------------------------------
    async def deploy(self, key: str, options: DeployOptions, run_id: Optional[str] = None) -> dict:
        # What the cluster can never run is refused before the export and before the record changes: the deployment
        # in place stays (Serve would accept it and leave it deploying for good).
        check_deployment(options.use_gpu, options.num_cpus, options.min_replicas, ray.cluster_resources())
        source = None
        if options.runtime != "torch":  # the export first: a check that fails refuses the deployment
            src = await self.session.call(lambda s: s.deploy_source.remote(key, options.runtime, run_id))
            await model_export_task.remote(src["model_dir"], src["export_dir"], options.runtime, src["dataset"])
            source = src["model_dir"]
        info = await self._changing(
            self.session.call(lambda s: s.begin_deploy.remote(key, options.model_dump(), source, run_id)))
        await asyncio.to_thread(start_app, info)
        return await self.deployment(key)

    async def deployment(self, key: str) -> dict:
        info = await self.session.call(lambda s: s.deployment.remote(key))
        live = await asyncio.to_thread(app_state, info["app"]) if info else {"state": "none"}
        if live["state"] == "ready":  # what the model takes and answers: task, input field, labels, device
            live["model"] = (await self._model_of(info))[1]
        return {**await self.status(key), "deployment": {**(info or {}), **live}}

    async def undeploy(self, key: str) -> dict:
        await self._changing(self.session.call(lambda s: s.end_deploy.remote(key)))
        await self._remove_unrecorded_apps()
        return await self.deployment(key)

    async def predict(self, key: str, kind: str, items: list) -> dict:
        info, options = await self._recalled(self._deployments, key, lambda: self._deployment_now(key))
        handle, about = await self._model_of(info)
        check_inputs(kind, items, about["input"], options.max_inputs_per_call, options.max_text_chars)
        return {"task": about["task"], "predictions": await replica_answer(handle.predict.remote(kind, items))}

    async def _deployment_now(self, key: str) -> tuple[dict, DeployOptions]:
        info = await self.session.call(lambda s: s.deployment.remote(key, True))  # 409 when there is none
        return info, DeployOptions(**info["options"])

    async def _model_of(self, info: dict) -> tuple:
        """The handle of a ready deployment and what its model takes (asked once per deployment)."""
        cached = (info["app"], info["deployed_at"])
        if cached not in self._models:
            live = await asyncio.to_thread(app_state, info["app"])
            handle = await asyncio.to_thread(app_handle, info["app"]) if live["state"] == "ready" else None
            if handle is None:
                raise WrongState(f"the model deployment is {live['state']}: {live['message']}", state=live["state"],
                                 hint="follow it with GET /deploy/{key}" if live["state"] == "deploying"
                                 else NO_DEPLOYMENT_HINT)
            self._models[cached] = (handle, await replica_answer(handle.describe.remote()))
        return self._models[cached]

    async def restore_deployment(self) -> None:
        """Bring back the recorded deployments, and remove model apps no session records."""
        try:
            recorded = await self.session.call(lambda s: s.recorded_deployments.remote())
            await asyncio.to_thread(remove_apps, {info["app"] for info in recorded})
            for info in recorded:
                if (await asyncio.to_thread(app_state, info["app"]))["state"] == "absent":
                    await asyncio.to_thread(start_app, info)
        except Exception:  # the server runs without them; POST /deploy/{key} starts one again
            log.exception("could not bring back the model deployments")

    # ---- models -------------------------------------------------------------------------
    async def import_model(self, key: str, model_type: str, model_name: str, body: UploadStream) -> dict:
        """Check the source here (fast refusals), stage an archive, then import in a job actor."""
        await self.authorize(key)
        name = catalogue_name(model_type, model_name)
        archive: Optional[Path] = None
        if model_type == "directory":
            model_name = str(check_directory_source(model_name, self.settings.allowed_import_roots))
        if model_type == "archive":
            archive = self.layout.model_upload()
            await asyncio.to_thread(archive.parent.mkdir, parents=True, exist_ok=True)
            await save_parts(body, {"file": lambda _: archive}, int(self.settings.max_model_upload_mb * MiB),
                             "max_model_upload_mb", required=("file",))
        try:
            spec = await self.session.call(lambda s: s.begin_import.remote(
                key, name, model_type, model_name, str(archive) if archive else None))
        except Exception:
            if archive:
                await asyncio.to_thread(archive.unlink, missing_ok=True)
            raise
        return await self._launch(ImportJob, spec, spec.job_id, key)

    async def import_status(self, key: Optional[str] = None) -> dict:
        return {**await self.status(key), "models": catalogue(self.layout.models_dir)}
