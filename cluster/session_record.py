"""The session's persistent record: what the actor holds and writes to disk."""

from __future__ import annotations

import time
from enum import Enum
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from train_jobs.config import TrainingConfigParams
from train_jobs.inference.formats import ModelFormat
from train_jobs.specs import DatasetSpec


class State(str, Enum):
    idle = "idle"
    setup = "setup"
    preprocessing = "preprocessing"
    preprocessed = "preprocessed"
    queued = "queued"  # a training run waiting for its turn on the cluster (the run queue, session_registry.py)
    training = "training"
    trained = "trained"
    stopped = "stopped"
    failed = "failed"


BUSY = (State.preprocessing, State.queued, State.training)
# States from which a cache exists and training may (re)start.
TRAINABLE = (State.preprocessed, State.trained, State.stopped, State.failed)


class JobInfo(BaseModel):
    """One background job (preprocessing or a training run)."""

    id: str = ""
    actor: str = ""  # name of the job's detached actor, for liveness checks and kills
    status: str = "not_started"  # not_started | running | done | failed | stopped
    progress: float = 0.0
    message: str = ""
    error: Optional[str] = None
    started_at: Optional[float] = None
    finished_at: Optional[float] = None


class PreprocessInfo(JobInfo):
    cache: Optional[dict[str, Any]] = None
    # How far the job is (train_jobs.specs.PreprocessCounts; 0 and None in records written before they existed).
    rows_done: int = Field(0, description="rows tokenised so far, all splits together")
    rows_total: Optional[int] = Field(None, description="rows of the upload, all splits together")
    bytes_done: int = Field(0, description="bytes of the upload files read so far (pro rata within a split)")
    bytes_total: Optional[int] = Field(None, description="bytes of the upload files")
    eta_s: Optional[float] = Field(None, description="seconds still to go at the rate so far (0 once done; null "
                                   "until a row is done)")


class TrainingInfo(JobInfo):
    stop_requested: bool = False
    live: dict[str, Any] = Field(default_factory=dict)  # latest step, loss, lr, samples/s, ETA
    history: list[dict[str, Any]] = Field(default_factory=list)  # one entry per evaluation
    final_metrics: Optional[dict[str, Any]] = None  # the test file's, on the selected model
    run_storage: Optional[str] = None
    hyperparameters: Optional[dict[str, Any]] = None  # the config's "auto" fields as resolved for this run
    trials: list[dict[str, Any]] = Field(default_factory=list)  # a search's trials: config, state, best score
    spec: Optional[dict[str, Any]] = None  # the TrainingSpec, to resume the run after a restart or a stop
    resumable: bool = False  # stopped with a checkpoint to go on from: training/start?resume=true continues it
    restarts: int = 0  # times the run was resumed (after a server restart or a stop)
    tracking: Optional[dict[str, Any]] = None  # where the finished run was logged (the MLflow run), or why not
    timings: Optional[dict[str, Any]] = None  # where the run's wall time went, by phase (results/timings.json)
    queued_at: Optional[float] = None  # when the run joined the queue: the queue's order, across restarts
    queue_position: Optional[int] = None  # 1 = next to start; set by the registry while the run is queued


class ImportInfo(JobInfo):
    name: Optional[str] = None  # the catalogue name
    model_type: Optional[str] = None
    model_name: Optional[str] = None
    entry: Optional[dict[str, Any]] = None  # the catalogue entry once done


class Artifacts(BaseModel):
    model_dir: Optional[str] = None
    model_archive: Optional[str] = None
    results_dir: Optional[str] = None
    results_archive: Optional[str] = None


class RunEvent(BaseModel):
    """Something that happened to a run, with its time: what hosted fine-tuning services call job events."""

    at: float = Field(default_factory=time.time)
    kind: Literal["state", "evaluation", "restart", "error"]
    message: str
    data: Optional[dict[str, Any]] = None


class RunRecord(BaseModel):
    """One training run of the session, kept when the next one starts: GET /runs/{key}/{run_id}.

    While the run is the session's current one, its live fields (history, metrics) are read from `training`."""

    run_id: str
    status: str = "running"  # running | done | failed | stopped
    started_at: float = Field(default_factory=time.time)
    finished_at: Optional[float] = None
    config: TrainingConfigParams
    hyperparameters: Optional[dict[str, Any]] = None
    history: list[dict[str, Any]] = Field(default_factory=list)
    final_metrics: Optional[dict[str, Any]] = None
    trials: list[dict[str, Any]] = Field(default_factory=list)
    tracking: Optional[dict[str, Any]] = None
    timings: Optional[dict[str, Any]] = None
    restarts: int = 0
    error: Optional[str] = None
    artifacts: Artifacts = Field(default_factory=Artifacts)
    events: list[RunEvent] = Field(default_factory=list)


class DeployOptions(BaseModel):
    """How the model deployment runs (the body of POST /deploy/{key}; every field optional)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"max_batch_size": 32, "batch_wait_timeout_s": 0.01, "min_replicas": 1, "max_replicas": 2},
        {"runtime": "onnx-int8", "num_cpus": 1}]})

    max_batch_size: int = Field(16, ge=1, le=1024, description="inputs a replica runs in one forward pass")
    batch_wait_timeout_s: float = Field(0.01, ge=0, le=10, description="how long a batch waits to fill")
    min_replicas: int = Field(1, ge=0, le=64, description="autoscaling lower bound")
    max_replicas: int = Field(1, ge=1, le=64, description="autoscaling upper bound")
    num_cpus: float = Field(0.5, gt=0, le=64, description="CPUs per replica (also its torch or onnxruntime threads)")
    use_gpu: Optional[bool] = Field(None, description="one GPU per replica; default: when the cluster has one "
                                                      "(torch runtime only)")
    runtime: ModelFormat = Field("torch", description="torch: the trained model; onnx or onnx-int8: its ONNX export "
                                 "on onnxruntime's CPU provider, built and checked first (as GET /download_model "
                                 "with that format)")
    max_inputs_per_call: int = Field(64, ge=1, le=4096, description="inputs one /predict call may send")
    max_text_chars: int = Field(10_000, ge=1, description="characters one input may have")

    @model_validator(mode="after")
    def _bounds(self) -> DeployOptions:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} is above max_replicas {self.max_replicas}")
        if self.use_gpu and self.runtime != "torch":
            raise ValueError(f"runtime {self.runtime} runs on CPU (onnxruntime's CPU provider); use_gpu needs the "
                             "torch runtime")
        return self


class DeploymentInfo(BaseModel):
    """The session's model deployment: recorded so a restarted server brings it back."""

    app: str  # the Serve application's name
    model_dir: str
    run_id: str
    options: DeployOptions = Field(default_factory=DeployOptions)
    deployed_at: float = Field(default_factory=time.time)


class SessionRecord(BaseModel):
    session_id: str
    key: str
    state: State = State.setup
    created_at: float = Field(default_factory=time.time)
    touched_at: float = Field(default_factory=time.time)  # the last keyed call: session_ttl_hours counts from it
    message: str = ""
    config: TrainingConfigParams = Field(default_factory=TrainingConfigParams)
    dataset: Optional[DatasetSpec] = None  # the upload's summary; keys it does not name are kept
    preprocess: PreprocessInfo = Field(default_factory=PreprocessInfo)
    training: TrainingInfo = Field(default_factory=TrainingInfo)
    artifacts: Artifacts = Field(default_factory=Artifacts)
    imports: ImportInfo = Field(default_factory=ImportInfo)  # the latest model import
    error: Optional[dict[str, Any]] = None
    deployment: Optional[DeploymentInfo] = None  # the trained model served by Ray Serve (POST /deploy)
    runs: int = 0  # counter for job names
    run_history: list[RunRecord] = Field(default_factory=list)  # every training run, oldest first

    @property
    def model_ready(self) -> bool:
        return self.artifacts.model_dir is not None and self.state not in BUSY
