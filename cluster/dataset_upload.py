"""A dataset arriving: files streamed to staging, or URIs checked where the data lives; swapped in all or nothing.

POST /upload_dataset/{key} takes either the files (train_file, test_file, validation_file) or their URIs
(train_uri, test_uri, validation_uri). A URI is parsed and checked against the server's data_roots here, before
anything is read; a bounded sample of its shards is then checked off the replica, as an upload is. The session
keeps each split's source (its URI and shards, never a credential) in place of a file.
"""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

from cluster.settings import Settings
from cluster.tasks import inspect_source_task, inspect_upload_task
from cluster.uploads import UploadStream, save_parts, staged_path
from train_jobs.data.sources import parse_sources
from train_jobs.errors import BadDataset, InvalidParameters

SPLITS = ("train", "test", "validation")
URI_FIELDS = tuple(f"{split}_uri" for split in SPLITS)


async def receive_dataset(settings: Settings, body: UploadStream, staging: Path, task: str) -> dict:
    """The checked summary of the files or URIs in `body` (staged under `staging`, which the caller removes)."""
    dest = {f"{split}_file": partial(staged_path, staging, split) for split in SPLITS}
    uris: dict[str, str] = dict.fromkeys(URI_FIELDS, "")
    saved = await save_parts(body, dest, settings.max_upload_bytes, "max_upload_mb", values=uris)
    uris = {field: uri for field, uri in uris.items() if uri.strip()}
    if uris and saved:
        raise BadDataset(f"send the dataset either as files or as URIs, not both (got {', '.join([*saved, *uris])})")
    if uris:
        return await _by_uri(settings, uris, staging, task)
    for field in ("train_file", "test_file"):
        if field not in saved:
            raise InvalidParameters(f"{field}: no file given; send it as multipart form field '{field}' (or send "
                                    "train_uri and test_uri instead of the files)", field=field)
    files = {field.removesuffix("_file"): (str(path), name) for field, (path, name) in saved.items()}
    return await inspect_upload_task.remote(files, task)


async def _by_uri(settings: Settings, uris: dict[str, str], staging: Path, task: str) -> dict:
    sources = parse_sources(uris, settings.allowed_data_roots)  # 400 or 403 here: nothing read, nothing changed
    summary = await inspect_source_task.remote(sources, task, settings.store_options, str(staging))
    # The samples served the check; the session keeps the sources, and of the samples only each split's first.
    await asyncio.to_thread(_keep_only, staging, {Path(summary[split]["path"]).name for split in sources})
    return summary


def _keep_only(folder: Path, names: set[str]) -> None:
    for path in folder.iterdir():
        if path.name not in names:
            path.unlink()
