"""Typed request and response bodies of the HTTP API, and the error statuses each route declares."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictStr, create_model, model_validator

from cluster.session_record import DeploymentInfo, ImportInfo, PreprocessInfo, RunRecord, State, TrainingInfo
from train_jobs.config import TrainingConfigParams


def _all_optional(model: type[BaseModel], name: str, examples: list[dict]) -> type[BaseModel]:
    """The same fields, constraints and docs, each optional: a POST merges into the current config."""
    fields = {}
    for field_name, info in model.model_fields.items():
        inner = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        fields[field_name] = (Optional[inner], Field(None, description=info.description))
    config = ConfigDict(extra="forbid", json_schema_extra={"examples": examples})
    return create_model(name, __config__=config, **fields)


TrainingConfigUpdate = _all_optional(TrainingConfigParams, "TrainingConfigUpdate", [
    {"task_type": "sequence_classification", "eval_metrics": ["accuracy", "f1_macro"]},
    {"epochs": 5, "learning_rate": 1e-4, "seed": 7},
    {"search": {"trials": 8, "space": {"learning_rate": [2e-5, 3e-4], "batch_size": [16, 32]}}}])


class ModelFormat(str, Enum):
    """What GET /download_model returns: the trained Hugging Face directory, or its ONNX export (fp32 or int8)."""

    torch = "torch"
    onnx = "onnx"
    onnx_int8 = "onnx-int8"


class _Open(BaseModel):
    # Responses carry what the session reports; a field added there is passed on, not dropped.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# The session's own record types, open to fields added there; the status leaves out training's history and spec.
class PreprocessStatus(PreprocessInfo, _Open):
    pass


class TrainingStatus(TrainingInfo, _Open):
    last_eval: Optional[dict[str, Any]] = None


class ImportStatus(ImportInfo, _Open):
    pass


class ErrorInfo(_Open):
    during: str
    message: str


class SessionsSummary(_Open):
    count: int
    max_sessions: int
    by_state: dict[str, int] = Field(description="sessions in each state")


class ServerStatus(_Open):
    """The "server status dictionary" every route returns; routes add their own fields."""

    state: Union[State, Literal["sessions"]] = Field(description="the session's state; `sessions` for the summary "
                                                     "an unkeyed GET /status gives while several sessions exist")
    session_active: bool
    message: str
    model_ready: bool
    session_id: Optional[str] = None
    preprocess: Optional[PreprocessStatus] = None
    training: Optional[TrainingStatus] = None
    import_: Optional[ImportStatus] = Field(None, alias="import")
    error: Optional[ErrorInfo] = None
    sessions: Optional[SessionsSummary] = None


class SessionInfo(_Open):
    session_id: str
    state: State
    created_at: float
    touched_at: float = Field(description="the last call with its key")
    runs: int = Field(description="training runs in its history")
    deployed: bool
    message: str = ""


class SessionList(_Open):
    sessions: list[SessionInfo] = Field(description="oldest first; keys are never listed")
    max_sessions: int


class StartedSession(ServerStatus):
    key: str = Field(description="The session key: every keyed route needs it. Shown only here.")


class Parameters(ServerStatus):
    config: TrainingConfigParams
    dataset: Optional[dict[str, Any]] = None
    resolved: Optional[dict[str, Any]] = Field(
        None, description="With a dataset: the hyper-parameters a run will use, \"auto\" fields resolved.")


class DatasetUploaded(ServerStatus):
    dataset: dict[str, Any]


class Monitor(ServerStatus):
    history: list[dict[str, Any]]
    metrics: Optional[dict[str, Any]] = None


class HealthCheck(BaseModel):
    ok: bool
    message: str


class Health(ServerStatus):
    healthy: bool
    checks: dict[str, HealthCheck] = Field(
        default_factory=dict, description="what was checked: session_actor (it answers), recovery (what a restart "
                                          "interrupted is recorded), storage (the storage root takes a write)")


class Unhealthy(_Open):
    """503 from /healthcheck: `checks` says which failed; the session's status fields when its actor answered."""

    healthy: bool = False
    message: str
    checks: dict[str, HealthCheck]
    state: Optional[State] = None
    session_active: Optional[bool] = None
    model_ready: Optional[bool] = None


class Catalogue(ServerStatus):
    models: list[dict[str, Any]]


class ImportedModel(ServerStatus):
    model: dict[str, Any]


class SelectedMetric(_Open):
    metric: str
    value: Optional[float] = None
    split: str = Field(description="validation (the best evaluation's), or test when the run had no validation data")


class RunSummary(_Open):
    run_id: str
    state: str = Field(description="running | done | failed | stopped")
    started_at: float
    finished_at: Optional[float] = None
    selected: Optional[SelectedMetric] = Field(None, description="the metric that picks the model, and its best value")
    deployed: bool = False


class RunList(_Open):
    runs: list[RunSummary] = Field(description="newest first")


class RunDetail(RunRecord, _Open):
    """A run with its config, resolved hyper-parameters, evaluations, test metrics, artifacts and events."""

    selected: Optional[SelectedMetric] = None
    live: Optional[dict[str, Any]] = Field(None, description="while it is the session's current run: its last "
                                                             "progress report")


class RunDeleted(ServerStatus):
    deleted: str


class DeploymentStatus(DeploymentInfo, _Open):
    state: str = Field(description="deploying | ready | failed | deleting | absent (not running: deploy again)")
    message: str = ""
    replicas: dict[str, int] = Field(default_factory=dict, description="replicas by state (running, starting, ...)")
    model: Optional[dict[str, Any]] = Field(None, description="once ready: task, input field, labels, device, "
                                                               "runtime (torch, onnx or onnx-int8)")


class NoDeployment(_Open):
    state: str = "none"


class Deployment(ServerStatus):
    deployment: Union[DeploymentStatus, NoDeployment]


class PredictRequest(BaseModel):
    """Exactly one of `texts`, `pairs` (pair tasks) or `tokens` (token classification: words per sentence)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"texts": ["My card still hasn't arrived", "Why did my top-up fail?"]},
        {"pairs": [["A man is playing a flute.", "A man plays a flute."]]},
        {"tokens": [["Paris", "is", "in", "France"]]}]})

    texts: Optional[list[StrictStr]] = Field(None, min_length=1)
    pairs: Optional[list[Annotated[list[StrictStr], Field(min_length=2, max_length=2)]]] = Field(None, min_length=1)
    tokens: Optional[list[Annotated[list[StrictStr], Field(min_length=1)]]] = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> PredictRequest:
        given = [k for k in ("texts", "pairs", "tokens") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of texts, pairs or tokens (got {given or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("texts", "pairs", "tokens") if getattr(self, k) is not None)

    @property
    def items(self) -> list:
        return getattr(self, self.kind)


class Predictions(BaseModel):
    task: str = Field(description="single_label | multi_label | regression | token_classification")
    predictions: list[dict[str, Any]] = Field(
        description="one per input, in order: {label, probabilities} (single-label), {labels, probabilities} over "
                    "the threshold (multi-label), {score} (regression), {tokens, tags} (token classification)")


class ErrorBody(BaseModel):
    """Every error: `message` says what went wrong; 409s add the `state` and a `hint` naming the call to make."""

    detail: Union[str, list[dict[str, Any]]]
    message: str
    state: Optional[str] = None
    hint: Optional[str] = None


_MEANING = {
    400: "a dataset or model that cannot be used: the message names the file, line and column",
    401: "missing or wrong API token, when the server has one",
    403: "wrong session key (nothing changes)",
    404: "nothing to download yet",
    409: "wrong state: `state` says which, `hint` names the call to make first",
    413: "an upload over the size limit",
    422: "invalid parameters, or a body that is not UTF-8 JSON: FastAPI's `detail` array",
    503: "the model replica answering the call was lost and Serve is starting a new one: retry after `Retry-After` "
         "seconds",
    429: "a wrong token or key past the limit from this client: wait for `Retry-After` seconds (the right one passes)",
    507: "the storage root is full: the message names it; free space there (nothing was changed)",
}


def errors(*codes: int) -> dict:
    """The `responses=` entry declaring these error statuses with their body."""
    return {code: {"model": ErrorBody, "description": _MEANING[code]} for code in codes}


# Every route behind the API token: its refusal, and the limiter on wrong tokens and keys.
GUARDED = errors(401, 429)


def multipart_files(required: tuple[str, ...] = (), texts: Optional[dict[str, str]] = None, **fields: str) -> dict:
    """The `openapi_extra=` entry declaring a multipart body of binary file parts (field=description), and of the
    plain text fields in `texts`, for routes that stream the body themselves: with no UploadFile parameters, FastAPI
    would not list them."""
    binary = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}
    properties = {name: {**binary, "description": text} for name, text in fields.items()}
    properties.update({name: {"type": "string", "description": text} for name, text in (texts or {}).items()})
    schema = {"type": "object", "properties": properties, **({"required": list(required)} if required else {})}
    return {"requestBody": {"required": bool(required or texts), "content": {"multipart/form-data": {"schema": schema}}}}
