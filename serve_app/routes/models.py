"""Model routes: import a base model into the catalogue, follow the import, fetch an imported model."""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from serve_app.dependencies import Service, UploadBody
from serve_app.schemas import GUARDED, Catalogue, ImportedModel, ServerStatus, errors, multipart_files
from serve_app.security import ApiToken, HeaderKey, SessionKey
from train_jobs.specs import ModelSource

router = APIRouter(tags=["models"], dependencies=[ApiToken], responses=GUARDED)
ModelType = Annotated[ModelSource, Query(description="Source: hub (a Hugging Face Hub id), directory (on the server, "
                                             "under an allowed root), archive (tar.gz or zip sent as `file`), bundled.")]
ModelName = Annotated[str, Query(description="Hub id, directory path, or the name for an archive; any value for "
                                             "bundled.")]


@router.post("/import_model/{key}", response_model=ServerStatus, response_model_exclude_unset=True,
             responses=errors(403, 409, 413, 422, 507),
             openapi_extra=multipart_files(file="The archive, for model_type=archive (max_model_upload_mb)."))
async def import_model(key: SessionKey, model_type: ModelType, model_name: ModelName, service: Service,
                       body: UploadBody) -> dict:
    """Import a base model into the catalogue in the background; follow it with /import_status."""
    return await service.import_model(key, model_type, model_name, body)


@router.get("/import_status", response_model=Catalogue, response_model_exclude_unset=True, responses=errors(403))
async def import_status(service: Service, key: HeaderKey) -> dict:
    """The latest import (queued, running, done or failed, with progress and error) and the catalogue."""
    return await service.import_status(key)


@router.get("/get_imported_model/{key}", response_model=ImportedModel, response_model_exclude_unset=True,
            responses={200: {"content": {"application/gzip": {}, "application/json": {}}}, **errors(403, 404)})
async def get_imported_model(
    key: SessionKey,
    service: Service,
    on_disk: bool = False,
    tokenizer: bool = False,
    model_name: Annotated[Optional[str], Query(description="Catalogue name; default: the last import.")] = None,
):
    """An imported model as tar.gz (weights and config; `tokenizer=true` adds the tokenizer files),
    or with `on_disk=true` its location and catalogue entry."""
    entry = await service.catalogue.entry(key, model_name)
    if on_disk:
        return {**await service.status(key), "model": entry, "message": f"{entry['name']} is at {entry['path']}"}
    path = await service.catalogue.archive(entry, tokenizer)
    return FileResponse(path, media_type="application/gzip", filename=f"{entry['name']}.tar.gz")
