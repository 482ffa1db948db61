"""What the cluster can run: a config asking for GPUs or workers it can never have is refused up front."""

from __future__ import annotations

from typing import Optional

from train_jobs.errors import WrongState
from train_jobs.training.scaling import worker_plan


def check_resources(use_gpu: Optional[bool], num_workers: Optional[int], default_workers: Optional[int],
                    resources: dict) -> None:
    """409 naming what the cluster has when `use_gpu` or the worker count cannot be met (one CPU, and one GPU
    with use_gpu, per worker)."""
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
    hint = "change use_gpu or num_workers with POST /parameters/{key}, or add nodes to the Ray cluster"
    if use_gpu and gpus == 0:
        raise WrongState(f"use_gpu is true but the Ray cluster has no GPU (it has {cpus} CPUs)", hint=hint)
    use_gpu, workers, _ = worker_plan(use_gpu, num_workers, default_workers, resources)
    if workers > cpus:
        raise WrongState(f"{workers} training workers need {workers} CPUs; the Ray cluster has {cpus}", hint=hint)
    if use_gpu and workers > gpus:
        raise WrongState(f"{workers} GPU workers need {workers} GPUs; the Ray cluster has {gpus}", hint=hint)
