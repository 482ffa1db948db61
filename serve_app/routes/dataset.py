"""Dataset routes: upload the train and test files, preprocess them on Ray Data."""

from __future__ import annotations

from fastapi import APIRouter

from serve_app.dependencies import Service, UploadBody
from serve_app.schemas import GUARDED, DatasetUploaded, ServerStatus, errors, multipart_files
from serve_app.security import ApiToken, HeaderKey, SessionKey

URI_FIELDS = {
    "train_uri": "Instead of train_file: s3://bucket/path, gs://bucket/path, hf://datasets/<org>/<name>[/<file>] or "
                 "file:///path under the server's data_roots; a file or a folder of CSV, TSV, JSONL or Parquet shards.",
    "test_uri": "Instead of test_file: a URI as train_uri, same columns.",
    "validation_uri": "Optional, instead of validation_file: a URI as train_uri, same columns."}
router = APIRouter(dependencies=[ApiToken], responses=GUARDED)


@router.post("/upload_dataset/{key}", response_model=DatasetUploaded, response_model_exclude_unset=True,
             tags=["dataset"], responses=errors(400, 403, 409, 413, 422, 507), openapi_extra=multipart_files(
                 texts=URI_FIELDS, train_file="Training data: CSV, TSV or JSONL.",
                 test_file="Test data, same columns as train_file.",
                 validation_file="Optional validation data, same columns: selects the model kept. Without it, "
                                 "validation_split of train is held out."))
async def upload_dataset(key: SessionKey, service: Service, body: UploadBody) -> dict:
    """Upload train and test files (and optionally a validation file), or give their URIs instead, checked for
    the configured task_type (set it first). Files stream to disk under max_upload_mb each; a URI's shards are
    checked on a bounded sample where they are. Either replaces the dataset only once all are complete and
    valid."""
    return await service.upload_dataset(key, body)


@router.post("/preprocess/{key}", response_model=ServerStatus, response_model_exclude_unset=True,
             tags=["preprocessing"], responses=errors(403, 409, 507))
async def preprocess(key: SessionKey, service: Service) -> dict:
    """Tokenise the dataset on Ray Data in the background; follow it with /preprocess_status."""
    return await service.preprocess(key)


@router.get("/preprocess_status", response_model=ServerStatus, response_model_exclude_unset=True,
            tags=["preprocessing"], responses=errors(403))
async def preprocess_status(service: Service, key: HeaderKey) -> dict:
    return await service.status(key)
