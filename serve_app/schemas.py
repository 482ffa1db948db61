"""Typed request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, create_model
from pydantic.fields import FieldInfo

from train_jobs.config import TrainingConfigParams


def _all_optional(model: type[BaseModel], name: str) -> type[BaseModel]:
    """The same fields, constraints and docs, each optional: a POST merges into the current config."""
    fields = {}
    for field_name, info in model.model_fields.items():
        optional = FieldInfo.merge_field_infos(info, default=None)
        optional.default_factory = None
        fields[field_name] = (Optional[info.annotation], optional)
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


TrainingConfigUpdate = _all_optional(TrainingConfigParams, "TrainingConfigUpdate")


class ServerStatus(BaseModel):
    """The "server status dictionary" every route returns; routes add their own fields."""

    model_config = ConfigDict(extra="allow")

    state: str
    session_active: bool
    message: str
    model_ready: bool
    session_id: Optional[str] = None
    preprocess: Optional[dict[str, Any]] = None
    training: Optional[dict[str, Any]] = None
    error: Optional[dict[str, Any]] = None
