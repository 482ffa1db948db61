"""The training config: the body of `POST /parameters/{key}` and its defaults."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from train_jobs.metric_names import DEFAULT_METRICS, TASK_METRIC_NAMES

DEFAULT_MODEL = "all-MiniLM-L6-v2"
TaskType = Literal["sequence_classification", "regression", "token_classification"]


class TrainingConfigParams(BaseModel):
    """Fields of the vendor reference plus a few extras, each with a default that needs no thought."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(DEFAULT_MODEL, description="An imported model's name, or the bundled default.")
    task_type: TaskType = "sequence_classification"
    batch_size: int = Field(32, ge=1, le=4096, description="Global batch per optimiser step.")
    epochs: int = Field(3, ge=1, le=1000)
    eval_metrics: Optional[list[str]] = Field(
        None, description="Default: accuracy (classification), mse (regression), f1 (token classification).")
    epochs_per_test_run: int = Field(1, ge=1, description="Evaluate every N epochs and after the last.")
    learning_rate: float = Field(5e-5, gt=0, le=1)
    seed: int = 42
    init_eval: bool = Field(False, description="Evaluate the untrained model before the first epoch.")
    cache_dir: Optional[str] = Field(None, description="Inside the storage root; default <root>/cache.")
    overwrite_cache: bool = False
    # Extras beyond the reference.
    max_seq_length: int = Field(128, ge=8, le=8192, description="Tokens kept per example (truncation).")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Share of steps with linear LR warm-up.")
    weight_decay: float = Field(0.0, ge=0, le=1)
    num_workers: Optional[int] = Field(None, ge=1, description="Ray Train workers; default from the cluster.")
    use_gpu: Optional[bool] = Field(None, description="Default: use GPUs when the cluster has them.")
    group_by_length: bool = Field(
        True, description="Batch rows of similar length together (less padding); batch order stays random.")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="bf16 autocast; auto: bf16 where the GPU or CPU runs it natively, else fp32.")
    multi_label_threshold: float = Field(
        0.5, gt=0, lt=1, description="Multi-label data: a label is predicted when its probability reaches this.")

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
        return self
