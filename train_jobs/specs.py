"""Typed specs: what crosses a process boundary from the session to a job, and from a run to its workers.

The cluster layer fills every path from its storage layout; jobs only read them.
Adding a training config field means editing `TrainingConfigParams` and the code
that uses it: the spec carries the whole config.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from train_jobs.config import TrainingConfigParams
from train_jobs.metric_names import LOWER_IS_BETTER

# A job's progress: (fraction done, what it is doing).
OnProgress = Callable[[float, str], None]
# Rank 0's live report: (step info, an evaluation entry or None) -> True when the run should stop.
TrainingSink = Callable[[dict, Optional[dict]], bool]


# Where an imported model comes from (`model_type` of /import_model).
ModelSource = Literal["hub", "directory", "archive", "bundled"]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hyperparameters(Spec):
    """The values a run trains with; `auto` lists the fields that were resolved rather than set."""

    batch_size: int
    epochs: int
    learning_rate: float
    warmup_ratio: float
    early_stopping_patience: Optional[int]
    metric_for_best_model: str  # the validation metric that selects the model kept
    train_rows: int  # after the validation rows are held out
    validation_rows: int  # held out of train (0: a validation file, or no validation)
    steps_per_epoch: int
    auto: list[str]


class OpenRecord(BaseModel):
    """A record written by the upload check, kept in the session file: keys it does not name are kept, and it dumps
    just the keys it was given (a default it fills in for an older record is not written back), so a record already
    on disk, the /parameters reply and a run's dataset.json read exactly as they did when the record was a dict."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_serializer(mode="wrap")
    def _given_keys_only(self, handler: SerializerFunctionWrapHandler) -> dict:
        given = self.model_fields_set | set(self.model_extra or {})
        return {k: v for k, v in handler(self).items() if k in given}


class SplitSummary(OpenRecord):
    """One uploaded file as its check summarised it (text_files.scan_file, token_files.scan_token_file), with the
    path it is stored at and its SHA-256 (inspect_upload)."""

    filename: str = ""  # the upload's name
    format: str = ""  # csv, tsv, jsonl or conll
    columns: list[str] = []
    text_columns: list[str] = []
    rows: int = 0  # rows, or sentences for token classification
    label_counts: Optional[dict[str, int]] = None  # none for a score (regression)
    score: Optional[dict[str, float]] = None  # regression: min, max and mean
    path: str = ""
    sha256: str = ""  # the preprocessing cache's key hashes it (a dataset by URI: its shards' identity)
    # A dataset by URI (train_jobs/data/dataset.py, inspect_sources): its URI and shards (no credential), whether
    # `rows` counts only the sample checked at upload, its shards' bytes, and the format of the sample kept as `path`.
    source: Optional[dict] = None
    sampled: bool = False
    bytes: Optional[int] = None
    sample_format: Optional[str] = None


class DatasetSpec(OpenRecord):
    """The session's uploaded dataset (train_jobs.data.dataset.inspect_upload, and the folder it was moved to)."""

    task_type: str = "sequence_classification"  # the task the files were checked for
    pair: bool = False  # two text columns (text_a, text_b)
    multi_label: bool = False
    target: Union[str, list[str], None] = None  # the target column, or columns
    labels: list[str] = []  # none for a score (regression)
    train: SplitSummary
    test: SplitSummary
    validation: Optional[SplitSummary] = None  # an uploaded validation file
    dir: str = ""  # the folder holding the files

    @property
    def splits(self) -> dict[str, SplitSummary]:
        """The uploaded files by split: train and test, and validation when a validation file came with them."""
        return {"train": self.train, "test": self.test, **({"validation": self.validation} if self.validation else {})}

    @property
    def by_uri(self) -> bool:
        """Read where it lives (its splits have sources), not uploaded as files."""
        return any(info.source for info in self.splits.values())


class StoreOptions(Spec):
    """How datasets by URI are reached (server settings; credentials are never here: each store's own chain)."""

    s3_endpoint_url: Optional[str] = None  # an S3-compatible store (MinIO, say) instead of AWS
    hub_endpoint: Optional[str] = None
    hub_timeout_s: float = 10.0
    timeout_s: float = 10.0  # each request to S3 or GCS
    sample_rows: int = 1000  # of a split, over its shards: what the check at upload reads


class PreprocessSpec(Spec):
    job_id: str
    dataset: DatasetSpec
    model_dir: str
    max_seq_length: int
    cache_dir: str
    overwrite_cache: bool = False
    in_process_rows: Optional[int] = None  # tokenise up to this many rows in one process (None: the default)
    stores: StoreOptions = StoreOptions()  # where a dataset by URI is read from


class PreprocessCounts(Spec):
    """How far a preprocessing job is: rows tokenised, bytes of the upload files read (pro rata within a split)
    and the seconds it expects to take still (None until a row is done)."""

    rows_done: int
    rows_total: int
    bytes_done: int
    bytes_total: int
    eta_s: Optional[float] = None


# A preprocessing job's progress: (fraction done, what it is doing, rows and bytes so far).
PreprocessProgress = Callable[[float, str, Optional[PreprocessCounts]], None]


class ArchiveLimits(Spec):
    """What an uploaded model archive may unpack to (server settings)."""

    max_unpacked_bytes: int = 16 << 30
    max_entries: int = 10_000
    max_ratio: float = 100.0


class ImportSpec(Spec):
    job_id: str
    name: str  # the catalogue name
    model_type: ModelSource
    model_name: str
    models_dir: str
    archive_path: Optional[str] = None  # model_type=archive: the staged upload, removed when the import ends
    limits: ArchiveLimits = ArchiveLimits()
    hub_endpoint: Optional[str] = None  # model_type=hub: the Hub's URL; None: HF_ENDPOINT, else huggingface.co
    hub_timeout_s: float = 10.0  # each request to the Hub (connect, read)


class CacheMeta(BaseModel):
    """The preprocessing cache's meta.json (train_jobs.data.preprocess.build_cache), as a run reads it. Keys it does
    not name are kept (`reused`: preprocessing found the cache built), so a spec written before a key was named
    still loads, and one written after still loads in older code."""

    model_config = ConfigDict(extra="allow", frozen=True)

    key: str = ""  # the cache's folder name (train_jobs.data.cache.cache_key)
    path: str = ""  # the cache's folder: one Parquet folder per split
    rows: dict[str, int]  # rows per split: train and test, validation when a validation file came
    max_seq_length: Optional[int] = None
    labels: list[str] = []  # none for a score (regression)
    text_columns: list[str]
    target: Union[str, list[str], None] = None  # the target column, or columns
    multi_label: bool = False


class TrainingSpec(Spec):
    run_id: str
    config: TrainingConfigParams
    dataset: DatasetSpec
    cache: CacheMeta
    hyper: Hyperparameters  # the config's "auto" fields resolved for this data and model
    model_dir: str
    storage_path: str  # Ray Train's RunConfig storage: checkpoints live here
    storage_root: str = ""  # the server's storage root, which holds storage_path: named when a checkpoint does not fit
    results_dir: str
    model_archive: str
    results_archive: str
    search_dir: str = ""  # a Ray Tune search's trials, each in a folder of its own
    outcome_file: str = ""  # the run's end, written by the job whether or not the session actor is there to hear it
    default_workers: Optional[int] = None  # the server's num_workers, when the config gives none
    progress_every_steps: int = 5
    yield_cpu_to_api: bool = True
    resource_wait_timeout_s: float = 600.0  # the run fails when its workers' resources are not free within this
    stream_cache_above_mb: Optional[float] = 16.0  # a cache split larger on disk is streamed to training (None: never)

    @property
    def labels(self) -> list[str]:
        return self.dataset.labels

    @property
    def multi_label(self) -> bool:
        return self.dataset.multi_label

    @property
    def text_columns(self) -> list[str]:
        return self.cache.text_columns

    @property
    def best_metric(self) -> str:
        """The metric that selects the model, "auto" resolved."""
        return self.hyper.metric_for_best_model

    @property
    def best_metric_minimised(self) -> bool:
        return self.best_metric in LOWER_IS_BETTER

    @property
    def scored_metrics(self) -> list[str]:
        """What each evaluation computes: `eval_metrics`, and the metric that selects the model."""
        names = list(self.config.eval_metrics)
        return names if self.best_metric in names else [*names, self.best_metric]

    @property
    def validation(self) -> bool:
        """Evaluations run on validation data (an uploaded file or a hold-out) and select the model."""
        return "validation" in self.cache.rows or self.hyper.validation_rows > 0

    def archived_config(self) -> dict:
        """The config that travels in the model archive (training_config.json) and the results."""
        return {**self.config.model_dump(), "hyperparameters": self.hyper.model_dump(), "labels": self.labels,
                "base_model": self.config.model, "text_columns": self.text_columns}
