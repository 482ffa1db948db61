"""The HTTP routes of the vendor reference: validate, authorise, dispatch.

Long work never runs here: it goes to the session actor (state) or to job
actors and tasks (preprocessing, training, archives), all awaited without
blocking the event loop.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Annotated, Optional

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import FileResponse

from cluster.errors import InvalidParameters, NotFound
from serve_app.dependencies import ServerSettings, Session
from serve_app.session_client import SessionClient
from serve_app.schemas import ServerStatus, TrainingConfigUpdate
from serve_app.uploads import save_upload
from train_jobs.jobs import (ImportJob, PreprocessJob, TrainingJob, build_catalogue_archive_task,
                            build_model_archive_task, inspect_upload, launch)
from train_jobs.model_import import catalogue, catalogue_name, check_directory_source

router = APIRouter()
ForceRestart = Annotated[int, Query(description="If != 0, wipe the current session and start a new one.")]


async def _start_job(session: SessionClient, job_cls, job_id: str, spec: dict) -> dict:
    """Launch a job actor; if that fails, the session records the failure instead of waiting forever."""
    try:
        launch(job_cls, job_id, spec)
    except Exception as e:
        await session.call("abort_job", job_id, f"could not start {job_id}: {e}")
        raise
    return await session.call("status")


@router.get("/start_session", response_model=ServerStatus, tags=["session"])
async def start_session(session: Session, force_restart: ForceRestart = 0) -> dict:
    """Start a new session and return its key; 409 while one is active unless `force_restart`."""
    return await session.call("start", force_restart != 0)


@router.post("/parameters/{key}", response_model=ServerStatus, tags=["config"])
async def update_parameters(key: str, config: TrainingConfigUpdate, session: Session) -> dict:
    """Merge the given fields into the training config; returns the full config."""
    return await session.call("update_config", key, config.model_dump(exclude_unset=True))


@router.get("/parameters", response_model=ServerStatus, tags=["config"])
async def get_parameters(session: Session) -> dict:
    """The training config. The key is never returned here: this route takes none."""
    return await session.call("get_config")


@router.post("/upload_dataset/{key}", response_model=ServerStatus, tags=["dataset"])
async def upload_dataset(
    key: str,
    session: Session,
    settings: ServerSettings,
    train_file: Annotated[UploadFile, File(description="Training data: CSV, TSV or JSONL.")],
    test_file: Annotated[UploadFile, File(description="Test data, same columns as train_file.")],
) -> dict:
    """Upload train and test files, checked for the configured task_type (set it first); they replace the
    dataset only once both are complete and valid."""
    await session.call("authorize", key)
    task = (await session.call("get_config"))["config"]["task_type"]
    staging = Path(await session.call("session_dir", key)) / f".staging-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        files = {}
        for field, upload in (("train_file", train_file), ("test_file", test_file)):
            suffix = Path(upload.filename or "").suffix.lower() or ".csv"
            path = await save_upload(upload, staging / f"{field.split('_')[0]}{suffix}", field,
                                     settings.max_upload_bytes)
            files[field] = (str(path), upload.filename)
        summary = await inspect_upload.remote(files["train_file"], files["test_file"], task)
        return await session.call("set_dataset", key, str(staging), summary)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when the upload was accepted


@router.post("/preprocess/{key}", response_model=ServerStatus, tags=["preprocessing"])
async def preprocess(key: str, session: Session) -> dict:
    """Tokenise the dataset on Ray Data in the background; follow it with /preprocess_status."""
    spec = await session.call("begin_preprocess", key)
    if spec.get("reused"):  # a cache hit, already answered by the session
        return await session.call("status")
    return await _start_job(session, PreprocessJob, spec["job_id"], spec)


@router.get("/preprocess_status", response_model=ServerStatus, tags=["preprocessing"])
async def preprocess_status(session: Session) -> dict:
    return await session.call("status")


@router.post("/training/start/{key}", response_model=ServerStatus, tags=["training"])
async def training_start(key: str, session: Session) -> dict:
    """Start a Ray Train run in the background; follow it with /monitor/{key}."""
    spec = await session.call("begin_training", key)
    return await _start_job(session, TrainingJob, spec["run_id"], spec)


@router.post("/training/stop/{key}", response_model=ServerStatus, tags=["training"])
async def training_stop(key: str, session: Session, force_restart: ForceRestart = 0) -> dict:
    """Stop the run, keeping its last checkpoint; with `force_restart`, wipe the session too."""
    if force_restart:
        return await session.call("restart", key)
    return await session.call("request_stop", key)


@router.get("/status", response_model=ServerStatus, tags=["session"])
async def status(session: Session) -> dict:
    return await session.call("status")


@router.get("/monitor/{key}", response_model=ServerStatus, tags=["training"])
async def monitor(key: str, session: Session) -> dict:
    """Live training info (step, loss, lr, samples/s, ETA) and the evaluation history."""
    return await session.call("monitor", key)


@router.get("/model_ready/{key}", response_model=ServerStatus, tags=["artifacts"])
async def model_ready(key: str, session: Session) -> dict:
    await session.call("authorize", key)
    return await session.call("status")


@router.get("/download_model/{key}", response_class=FileResponse, tags=["artifacts"])
async def download_model(key: str, session: Session) -> FileResponse:
    """A tar.gz of a Hugging Face model directory that `from_pretrained` loads as is."""
    art = await session.call("artifacts", key)
    path = art["model_archive"]
    if not path or not Path(path).is_file():  # e.g. a checkpoint recovered after a restart
        dest = str(Path(art["model_dir"]).parent.parent / "model.tar.gz")
        path = await build_model_archive_task.remote(art["model_dir"], dest)
        await session.call("set_artifact", key, "model_archive", path)
    return FileResponse(path, media_type="application/gzip", filename=f"model-{art['session_id'][:8]}.tar.gz")


@router.get("/download_results/{key}", response_class=FileResponse, tags=["artifacts"])
async def download_results(key: str, session: Session) -> FileResponse:
    """A tar.gz with the evaluation history, final metrics, per-class report and test predictions."""
    art = await session.call("artifacts", key)
    path = art["results_archive"]
    if not path or not Path(path).is_file():
        raise NotFound("no results for this run: it ended before the results were written")
    return FileResponse(path, media_type="application/gzip", filename=f"results-{art['session_id'][:8]}.tar.gz")


@router.get("/healthcheck", tags=["session"])
async def healthcheck(session: Session) -> dict:
    status = await session.call("status")
    return {**status, "healthy": True, "message": "the server and its session actor answer"}


ModelType = Annotated[str, Query(description="Source: hub (a Hugging Face Hub id), directory (on the server, "
                                             "under an allowed root), archive (tar.gz or zip sent as `file`), bundled.")]
ModelName = Annotated[str, Query(description="Hub id, directory path, or the name for an archive; any value for "
                                             "bundled.")]


@router.post("/import_model/{key}", response_model=ServerStatus, tags=["models"])
async def import_model(
    key: str,
    model_type: ModelType,
    model_name: ModelName,
    session: Session,
    settings: ServerSettings,
    file: Annotated[Optional[UploadFile], File(description="The archive, for model_type=archive.")] = None,
) -> dict:
    """Import a base model into the catalogue in the background; follow it with /import_status."""
    await session.call("authorize", key)
    name = catalogue_name(model_type, model_name)
    extra = {}
    if model_type == "directory":
        extra["model_name"] = str(check_directory_source(model_name, settings.allowed_import_roots))
    if model_type == "archive":
        if file is None:
            raise InvalidParameters("model_type=archive needs the archive as multipart field 'file'", field="file")
        uploads = settings.models_dir / ".uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        extra["archive_path"] = str(await save_upload(file, uploads / f"{uuid.uuid4().hex}.archive", "file",
                                                      int(settings.max_model_upload_mb * (1 << 20))))
    try:
        spec = await session.call("begin_import", key, name, model_type, extra.get("model_name", model_name))
    except Exception:
        if "archive_path" in extra:
            Path(extra["archive_path"]).unlink(missing_ok=True)
        raise
    return await _start_job(session, ImportJob, spec["job_id"], {**spec, **extra})


@router.get("/import_status", response_model=ServerStatus, tags=["models"])
async def import_status(session: Session, settings: ServerSettings) -> dict:
    """The latest import (queued, running, done or failed, with progress and error) and the catalogue."""
    return {**await session.call("status"), "models": catalogue(settings.models_dir)}


@router.get("/get_imported_model/{key}", tags=["models"],
            responses={200: {"content": {"application/gzip": {}, "application/json": {}}}})
async def get_imported_model(
    key: str,
    session: Session,
    settings: ServerSettings,
    on_disk: bool = False,
    tokenizer: bool = False,
    model_name: Annotated[Optional[str], Query(description="Catalogue name; default: the last import.")] = None,
):
    """An imported model as tar.gz (weights and config; `tokenizer=true` adds the tokenizer files),
    or with `on_disk=true` its location and catalogue entry."""
    last = await session.call("last_import", key)
    name = model_name or last
    entries = {e["name"]: e for e in catalogue(settings.models_dir)}
    if name not in entries:
        raise NotFound(f"no imported model {name!r}" if name else "no model imported in this session yet",
                       hint=f"import one with /import_model/{{key}}; the catalogue has {sorted(entries)}")
    entry = entries[name]
    if on_disk:
        return {**await session.call("status"), "model": entry, "message": f"{name} is at {entry['path']}"}
    suffix = "with-tokenizer" if tokenizer else "weights"
    dest = settings.models_dir / ".archives" / f"{name}-{entry.get('sha256', 'unhashed')[:16]}-{suffix}.tar.gz"
    if not dest.is_file():
        await build_catalogue_archive_task.remote(entry["path"], str(dest), tokenizer)
    return FileResponse(dest, media_type="application/gzip", filename=f"{name}.tar.gz")
