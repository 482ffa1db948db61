"""The training config: the body of `POST /parameters/{key}` and its defaults."""

from __future__ import annotations

import importlib.util
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from train_jobs.metric_names import DEFAULT_METRICS, TASK_METRIC_NAMES

DEFAULT_MODEL = "all-MiniLM-L6-v2"
TaskType = Literal["sequence_classification", "regression", "token_classification"]
Auto = Literal["auto"]
AUTO_DOC = ' "auto" (the default) picks it from the model and data size: see the docs\' Training config guide.'


class SearchSpace(BaseModel):
    """Ranges to sample, each optional: [low, high] (learning rate log-uniform, the others uniform; epochs
    whole numbers), or a list of batch sizes to choose from."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: Optional[tuple[Annotated[float, Field(gt=0, le=1)], Annotated[float, Field(gt=0, le=1)]]] = None
    warmup_ratio: Optional[tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]]] = None
    weight_decay: Optional[tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]] = None
    epochs: Optional[tuple[Annotated[int, Field(ge=1, le=1000)], Annotated[int, Field(ge=1, le=1000)]]] = None
    batch_size: Optional[list[Annotated[int, Field(ge=1, le=4096)]]] = Field(None, min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> SearchSpace:
        for name in ("learning_rate", "warmup_ratio", "weight_decay", "epochs"):
            bounds = getattr(self, name)
            if bounds is not None and not bounds[0] < bounds[1]:
                raise ValueError(f"search.space.{name}: [low, high] needs low < high, got {list(bounds)}")
        if not any(getattr(self, name) is not None for name in type(self).model_fields):
            raise ValueError("search.space is empty; give at least one range, e.g. {\"learning_rate\": [2e-5, 3e-4]}")
        return self


class SearchConfig(BaseModel):
    """A hyper-parameter search with Ray Tune: `trials` runs sampled from `space`, each a Ray Train run; the best
    on validation (`metric_for_best_model`) becomes the session's model."""

    model_config = ConfigDict(extra="forbid")

    trials: int = Field(8, ge=2, le=200)
    space: SearchSpace = Field(default_factory=lambda: SearchSpace(learning_rate=(2e-5, 3e-4)))
    scheduler: Literal["asha", "fifo"] = Field(
        "asha", description="asha: stop trials that trail at each evaluation rung; fifo: run every trial out.")
    # Not "what the cluster fits": a trial ASHA stops leaves its workers' placement group reserved, which only a
    # trial started after it, one at a time, can tell from a sibling's and free (search.py); and trials filling
    # every CPU would leave none for the Ray Data tasks that feed them.
    max_concurrent: Optional[int] = Field(
        None, ge=1, description="Trials at once; default 1 (one at a time). More at once: prefer scheduler fifo.")


class MlflowTracking(BaseModel):
    """Where a run is logged: an MLflow tracking server's URL (or any URI MLflow takes) and the experiment."""

    model_config = ConfigDict(extra="forbid")

    tracking_uri: str = Field(..., min_length=1, description="e.g. http://mlflow:5000 or sqlite:///mlflow.db")
    experiment: str = Field("training-module", min_length=1)
    run_name: Optional[str] = Field(None, description="Default: the server's run id.")


class Tracking(BaseModel):
    """Experiment tracking, opt-in."""

    model_config = ConfigDict(extra="forbid")

    mlflow: Optional[MlflowTracking] = None

    @model_validator(mode="after")
    def _installed(self) -> Tracking:
        if self.mlflow and importlib.util.find_spec("mlflow") is None:
            raise ValueError("tracking.mlflow needs MLflow on the server: pip install 'training-module[tracking]'")
        return self


class TrainingConfigParams(BaseModel):
    """Fields of the vendor reference plus a few extras, each with a default that needs no thought."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(DEFAULT_MODEL, description="An imported model's name, or the bundled default.")
    task_type: TaskType = "sequence_classification"
    batch_size: Union[Annotated[int, Field(ge=1, le=4096)], Auto] = Field(
        "auto", description="Global batch per optimiser step." + AUTO_DOC)
    epochs: Union[Annotated[int, Field(ge=1, le=1000)], Auto] = Field(
        "auto", description="Most epochs to train; the best evaluation's model is kept." + AUTO_DOC)
    eval_metrics: Optional[list[str]] = Field(
        None, description="Default: accuracy (classification), mse (regression), f1 (token classification).")
    epochs_per_test_run: int = Field(1, ge=1, description="Evaluate every N epochs and after the last.")
    learning_rate: Union[Annotated[float, Field(gt=0, le=1)], Auto] = Field(
        "auto", description="AdamW peak learning rate, then linear decay." + AUTO_DOC)
    seed: int = Field(42, ge=0, lt=2**32, description="Same seed, data, config and workers: the same model.")
    init_eval: bool = Field(False, description="Evaluate the untrained model before the first epoch.")
    cache_dir: Optional[str] = Field(None, description="Inside the storage root; default <root>/cache.")
    overwrite_cache: bool = False
    # Extras beyond the reference.
    max_seq_length: int = Field(128, ge=8, le=8192, description="Tokens kept per example (truncation).")
    warmup_ratio: Union[Annotated[float, Field(ge=0, lt=1)], Auto] = Field(
        "auto", description="Share of steps with linear LR warm-up." + AUTO_DOC)
    weight_decay: float = Field(0.0, ge=0, le=1)
    num_workers: Optional[int] = Field(None, ge=1, description="Ray Train workers; default from the cluster.")
    use_gpu: Optional[bool] = Field(None, description="Default: use GPUs when the cluster has them.")
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field(
        "PACK", description="Where the workers go on a multi-node cluster (Ray placement group strategy): PACK "
        "fills a node first (fastest gradient exchange), SPREAD puts them on different nodes where it can, "
        "STRICT_SPREAD one per node or none.")
    group_by_length: bool = Field(
        True, description="Batch rows of similar length together (less padding); batch order stays random.")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="bf16 autocast; auto: bf16 where the GPU or CPU runs it natively, else fp32.")
    multi_label_threshold: float = Field(
        0.5, gt=0, lt=1, description="Multi-label data: a label is predicted when its probability reaches this.")
    # Model selection: evaluations run on validation data; the test file is scored once, on the selected model.
    validation_split: float = Field(
        0.1, ge=0, le=0.5, description="Share of train held out for validation when no validation_file is "
        "uploaded (stratified for classification, at least 50 rows where train allows); 0 turns selection off.")
    metric_for_best_model: Union[str, None] = Field(
        "auto", description="The validation metric that picks the model kept. \"auto\": the first eval_metrics "
        "entry, except that accuracy gives way to f1_macro when train's labels are imbalanced (see the docs' "
        "Model selection guide); null: the first eval_metrics entry. Loss-like metrics (mse, rmse, mae) are minimised, "
        "the others maximised.")
    early_stopping_patience: Union[Annotated[int, Field(ge=1)], Auto, None] = Field(
        "auto", description="Stop after this many evaluations without improvement; null: never. \"auto\": 3 "
        "when epochs is auto, never when you set epochs.")
    eval_steps: Optional[int] = Field(
        None, ge=1, description="Also evaluate every N optimiser steps, besides every epochs_per_test_run epochs.")
    checkpoint_every_steps: Optional[int] = Field(
        None, ge=1, description="Also checkpoint every N optimiser steps (always at each epoch's end and evaluation), "
        "so a lost worker costs at most N steps.")
    max_failures: int = Field(
        3, ge=0, le=100, description="Worker-group restarts after a lost worker or node; each resumes from the "
        "latest checkpoint.")
    resume_on_restart: bool = Field(
        True, description="A run cut off by a server or Ray restart resumes from its latest checkpoint by itself.")
    resource_wait_timeout_s: Optional[float] = Field(
        None, gt=0, description="Fail the run when its workers' CPUs/GPUs are not free within this many seconds "
        "(held by another job, or a node still to come); default: the server's resource_wait_timeout_s.")
    search: Optional[SearchConfig] = Field(
        None, description="Search hyper-parameters with Ray Tune instead of one run; needs validation data.")
    tracking: Optional[Tracking] = Field(
        None, description='Log each run to MLflow: {"mlflow": {"tracking_uri": ..., "experiment": ...}}.')

    @model_validator(mode="after")
    def _known_metrics(self) -> TrainingConfigParams:
        if self.eval_metrics is None:
            self.eval_metrics = list(DEFAULT_METRICS[self.task_type])
        known = TASK_METRIC_NAMES[self.task_type]
        unknown = [m for m in self.eval_metrics if m not in known]
        if unknown:
            raise ValueError(
                f"unknown eval_metrics {unknown} for task_type {self.task_type!r}; choose from {sorted(known)}"
            )
        if not self.eval_metrics:
            raise ValueError(f"eval_metrics is empty; choose from {sorted(known)}")
        if self.metric_for_best_model not in (None, "auto", *known):
            raise ValueError(f"unknown metric_for_best_model {self.metric_for_best_model!r} for task_type "
                             f"{self.task_type!r}; choose from {sorted(known)}, or \"auto\"")
        return self
