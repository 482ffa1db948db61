"""Short remote tasks the service runs off the Serve replica: checking an upload, building archives and
exports."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import ray

if TYPE_CHECKING:
    from train_jobs.specs import DatasetSpec


@ray.remote(num_cpus=0)
def inspect_upload_task(files: dict[str, tuple[str, str]], task: str) -> dict:
    """Check a staged upload ((path, client filename) per split) for `task` and summarise it."""
    from train_jobs.data.dataset import inspect_upload

    return inspect_upload({split: (Path(path), name) for split, (path, name) in files.items()}, task)


@ray.remote(num_cpus=0, max_retries=0)
def inspect_source_task(sources: dict, task: str, stores, staging: str) -> dict:
    """Check a dataset by URI (a DataSource per split) for `task` on a bounded sample written under `staging`.
    Not retried: a store that did not answer is reported at once."""
    from train_jobs.data.dataset import inspect_sources

    return inspect_sources(sources, task, stores, Path(staging))


@ray.remote(num_cpus=0)
def build_model_archive_task(model_dir: str, dest: str) -> str:
    from train_jobs.results.archives import build_model_archive

    return str(build_model_archive(Path(model_dir), Path(dest)))


@ray.remote(num_cpus=0)
def build_catalogue_archive_task(model_dir: str, dest: str, tokenizer: bool) -> str:
    from train_jobs.results.archives import build_catalogue_archive

    return str(build_catalogue_archive(Path(model_dir), Path(dest), tokenizer))


@ray.remote(num_cpus=0, max_retries=0)
def model_export_task(model_dir: str, export_dir: str, fmt: str, dataset: Optional[DatasetSpec],
                      archive: Optional[str] = None) -> str:
    """The model's `fmt` export (reused when current), or its archive when `archive` is given. Exporting and
    checking are deterministic, so a failure is not retried."""
    from train_jobs.inference.export import ensure_export

    return str(ensure_export(Path(model_dir), Path(export_dir), fmt, dataset, Path(archive) if archive else None))
