"""Server settings: where files live and how work is sized.

Settings travel explicitly (app builder args -> deployment -> actors/tasks) so
no worker on another node depends on its own environment variables.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cluster.layout import Layout
from train_jobs.specs import ArchiveLimits, StoreOptions

NAMESPACE = "training_module"
SESSION_ACTOR_NAME = "training_module_session"
# The ingress, the session actor and the job actors take a sliver of the head node's own resource (as Serve's
# controller does), so losing a worker node never takes them with it, nor Ray Train's controller, which runs on
# its job actor's node.
ON_HEAD_NODE = {"node:__internal_head__": 0.001}


def _default_storage_root() -> str:
    return os.environ.get("TM_STORAGE_ROOT") or str(Path.home() / ".training_module")


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    storage_root: str = Field(default_factory=_default_storage_root)
    max_upload_mb: float = Field(
        default_factory=lambda: float(os.environ.get("TM_MAX_UPLOAD_MB", "512")), gt=0
    )
    # Workers for Ray Train; None picks one per GPU, or one CPU worker.
    num_workers: Optional[int] = Field(default=None, ge=1)
    # A run whose workers' resources are not free within this fails, saying what it needed (config may override).
    resource_wait_timeout_s: float = Field(default=600.0, gt=0)
    # Rank 0 pushes progress to the session actor every this many steps.
    progress_every_steps: int = Field(default=5, ge=1)
    # Directories models may be imported from (model_type=directory); default <storage_root>/imports.
    import_roots: Optional[list[str]] = None
    # Folders a dataset may be read from by file:// URI (train_uri=file:///...); anything else is 403. Default
    # <storage_root>/data.
    data_roots: Optional[list[str]] = None
    # Datasets by s3:// URI are read from this S3-compatible endpoint (MinIO, Ceph: http://host:9000) instead of
    # AWS; credentials always come from the standard AWS chain of the server's processes (environment, files).
    s3_endpoint_url: Optional[str] = Field(default_factory=lambda: os.environ.get("TM_S3_ENDPOINT_URL") or None)
    # The time limit on each request to S3 or GCS reading a dataset by URI (the Hub's is hub_timeout_s).
    uri_timeout_s: float = Field(default=10.0, gt=0)
    # Rows of each split (over its shards; at least 20 of every shard) a dataset by URI is checked on at upload.
    uri_sample_rows: int = Field(default=1000, ge=1)
    max_model_upload_mb: float = Field(default=4096, gt=0)
    # An uploaded model archive is refused before unpacking past any of these (a zip bomb writes nothing).
    max_model_unpacked_mb: float = Field(default=16384, gt=0)
    max_archive_entries: int = Field(default=10_000, ge=1)
    max_archive_ratio: float = Field(default=100.0, gt=1)
    # The Hugging Face Hub imports come from (HF_ENDPOINT, as huggingface_hub reads it), and the time limit on
    # each of its requests: a Hub that does not answer fails the import instead of holding it.
    hub_endpoint: Optional[str] = Field(default_factory=lambda: os.environ.get("HF_ENDPOINT") or None)
    hub_timeout_s: float = Field(default=10.0, gt=0)
    # With a token, every route but /healthcheck needs `Authorization: Bearer <token>`.
    api_token: Optional[str] = Field(default_factory=lambda: os.environ.get("TM_API_TOKEN") or None, min_length=16)
    # Serving beyond loopback without api_token is refused (serve_app/bind.py) unless this says it is meant.
    allow_unauthenticated_remote: bool = Field(
        default_factory=lambda: os.environ.get("TM_ALLOW_UNAUTHENTICATED", "").lower() in ("1", "true", "yes"))
    # Sessions the server holds at once. 1 is the reference's behaviour: /start_session is refused (409) while the
    # session exists. Above 1 each /start_session adds one until the limit, and each session keeps its own state,
    # files, runs and deployment; its key opens nothing of another's.
    max_sessions: int = Field(default=1, ge=1)
    # Training runs waiting for the cluster's resources (state queued) at most; past it training/start is 429.
    max_queue: int = Field(default=100, ge=1)
    # A session with no keyed call for this long, not busy and not deployed, is removed with its files (checked at
    # each /start_session and /sessions). None: sessions stay until wiped.
    session_ttl_hours: Optional[float] = Field(default=None, gt=0)
    # A session's files (uploads, runs, exports) may take this much; past it a new run or upload is refused (507)
    # naming the runs to delete. None: no quota, only the disk's space.
    max_session_storage_mb: Optional[float] = Field(default=None, gt=0)
    # With a token, /openapi.json, /docs and /redoc need it too, unless this opens them (the schema then shows
    # every route to anyone who reaches the port; a browser cannot send the token to /docs).
    open_api_docs: bool = False
    # Proxies (IP addresses or networks, comma-separated as a `serve run` arg) whose X-Forwarded-For the brake on
    # wrong keys and tokens believes; from anyone else the header is ignored and the connection's own address
    # counts, as uvicorn's forwarded_allow_ips does. Empty: no one's.
    trusted_proxies: list[str] = []
    # Uploads of up to this many rows (all splits) are tokenised in one process (one Ray task), larger ones on Ray
    # Data; None: train_jobs.data.local_build.IN_PROCESS_ROWS (5,000), 0: always Ray Data.
    preprocess_in_process_rows: Optional[int] = Field(default=None, ge=0)
    # A cache split (tokenised, on disk) larger than this many MB reaches training as a stream read from its
    # Parquet files a file at a time, so no process holds it whole; a smaller one is put in the object store at
    # once, which starts training about 3 s sooner (SST-2's train split: 1.6 MB). 0: always streamed.
    stream_cache_above_mb: float = Field(default=16.0, ge=0)
    # Training workers run under SCHED_IDLE, so the API answers fast while they fill the CPUs.
    yield_cpu_to_api: bool = True
    # The server's own log records (request log, job failures) at this level and above, in every process.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default_factory=lambda: os.environ.get("TM_LOG_LEVEL", "INFO").upper())

    @field_validator("storage_root")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return str(Path(value).expanduser().resolve())

    @field_validator("import_roots", "data_roots", "trusted_proxies", mode="before")
    @classmethod
    def _split_list(cls, value):
        # `serve run serve_app:app import_roots=/a,/b` passes one string.
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for proxy in value:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {proxy!r} is not an IP address or network "
                                 "(give addresses like 10.0.0.2 or networks like 10.0.0.0/24)") from None
        return value

    @classmethod
    def from_args(cls, args: Optional[dict[str, Any]] = None) -> Settings:
        """Build from `serve run serve_app:app key=value` args (strings) or a config's `args:`."""
        return cls(**{k: v for k, v in (args or {}).items() if v is not None})

    @property
    def root(self) -> Path:
        return Path(self.storage_root)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def allowed_import_roots(self) -> list[str]:
        return [str(Path(r).expanduser().resolve()) for r in self.import_roots] if self.import_roots is not None \
            else [str(self.layout.default_import_root)]

    @property
    def allowed_data_roots(self) -> list[str]:
        roots = self.data_roots if self.data_roots is not None else [str(self.root / "data")]
        return [str(Path(r).expanduser().resolve()) for r in roots]

    @property
    def store_options(self) -> StoreOptions:
        return StoreOptions(s3_endpoint_url=self.s3_endpoint_url, hub_endpoint=self.hub_endpoint,
                            hub_timeout_s=self.hub_timeout_s, timeout_s=self.uri_timeout_s,
                            sample_rows=self.uri_sample_rows)

    @property
    def archive_limits(self) -> ArchiveLimits:
        return ArchiveLimits(max_unpacked_bytes=int(self.max_model_unpacked_mb * (1 << 20)),
                             max_entries=self.max_archive_entries, max_ratio=self.max_archive_ratio)

    @property
    def layout(self) -> Layout:
        return Layout(self.root)
