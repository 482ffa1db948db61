"""What the cluster can run: a training config or a model deployment asking for GPUs or CPUs it can never have is
refused up front (409 naming what the cluster has), before anything changes."""

from __future__ import annotations

from typing import Optional

from train_jobs.errors import WrongState
from train_jobs.training.scaling import worker_plan


def _has(resources: dict) -> tuple[int, float]:
    return int(resources.get("GPU", 0)), float(resources.get("CPU", 0))


def check_resources(use_gpu: Optional[bool], num_workers: Optional[int], default_workers: Optional[int],
                    resources: dict) -> None:
    """409 naming what the cluster has when `use_gpu` or the worker count cannot be met (one CPU, and one GPU
    with use_gpu, per worker)."""
    gpus, cpus = _has(resources)
    hint = "change use_gpu or num_workers with POST /parameters/{key}, or add nodes to the Ray cluster"
    if use_gpu and gpus == 0:
        raise WrongState(f"use_gpu is true but the Ray cluster has no GPU (it has {cpus:g} CPUs)", hint=hint)
    use_gpu, workers, _ = worker_plan(use_gpu, num_workers, default_workers, resources)
    if workers > cpus:
        raise WrongState(f"{workers} training workers need {workers} CPUs; the Ray cluster has {cpus:g}", hint=hint)
    if use_gpu and workers > gpus:
        raise WrongState(f"{workers} GPU workers need {workers} GPUs; the Ray cluster has {gpus}", hint=hint)


def check_deployment(use_gpu: Optional[bool], num_cpus: float, min_replicas: int, resources: dict) -> None:
    """409 naming what the cluster has when the model's replicas can never start: `use_gpu` without a GPU, or the
    replicas it keeps running (min_replicas, at least the one a call scales up to) asking for more CPUs, or GPUs,
    than the cluster has. Serve would accept such a deployment and leave it deploying for good."""
    gpus, cpus = _has(resources)
    hint = ("lower num_cpus or min_replicas, or leave use_gpu out, in the POST /deploy/{key} body, or add nodes to "
            "the Ray cluster; the deployment in place (if any) is kept")
    if use_gpu and gpus == 0:
        raise WrongState(f"use_gpu is true but the Ray cluster has no GPU (it has {cpus:g} CPUs)", hint=hint)
    replicas = max(min_replicas, 1)
    each = f"{replicas} model replicas of {num_cpus:g} CPUs need" if replicas > 1 else \
        f"1 model replica of {num_cpus:g} CPUs needs"
    if replicas * num_cpus > cpus:
        raise WrongState(f"{each} {replicas * num_cpus:g} CPUs; the Ray cluster has {cpus:g}", hint=hint)
    if use_gpu and replicas > gpus:
        raise WrongState(f"{replicas} GPU model replicas need {replicas} GPUs; the Ray cluster has {gpus}", hint=hint)
