"""Artifact routes: is the model ready, download it, download the results."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from serve_app.dependencies import Service
from serve_app.routes.runs import RunOf
from serve_app.schemas import GUARDED, ModelFormat, ServerStatus, errors
from serve_app.security import ApiToken, SessionKey

router = APIRouter(tags=["artifacts"], dependencies=[ApiToken], responses=GUARDED)
GZIP = {200: {"content": {"application/gzip": {}}, "description": "a tar.gz archive"}}
Format = Annotated[ModelFormat, Query(alias="format", description="torch (the trained model), onnx (fp32) or onnx-int8")]


@router.get("/model_ready/{key}", response_model=ServerStatus, response_model_exclude_unset=True,
            responses=errors(403, 409))
async def model_ready(key: SessionKey, service: Service) -> dict:
    return await service.status(key)


@router.get("/download_model/{key}", response_class=FileResponse,
            responses={**GZIP, **errors(403, 404, 409, 422, 507)})
async def download_model(key: SessionKey, service: Service, fmt: Format = ModelFormat.torch,
                         run_id: RunOf = None) -> FileResponse:
    """A tar.gz of a Hugging Face model directory that `from_pretrained` loads as is; with `format=onnx` or
    `onnx-int8`, of its ONNX export for onnxruntime (model.onnx, tokenizer, configs, export_check.json), built
    on the first request and checked against the trained model (409 naming the figure when it misses its bar)."""
    path, filename = await service.model_archive(key, fmt.value, run_id)
    return FileResponse(path, media_type="application/gzip", filename=filename)


@router.get("/download_results/{key}", response_class=FileResponse, responses={**GZIP, **errors(403, 404, 409)})
async def download_results(key: SessionKey, service: Service, run_id: RunOf = None) -> FileResponse:
    """A tar.gz with the evaluation history, final metrics, per-class report and test predictions."""
    path, filename = await service.results_archive(key, run_id)
    return FileResponse(path, media_type="application/gzip", filename=filename)
