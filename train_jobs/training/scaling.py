"""How many Ray Train workers a run gets, and what each one holds: one rule for the run and for the checks."""

from __future__ import annotations

from typing import Optional


def worker_plan(use_gpu: Optional[bool], num_workers: Optional[int], default_workers: Optional[int],
                resources: dict) -> tuple[bool, int, int]:
    """(use_gpu, workers, CPUs per worker) for the cluster's `resources` (ray.cluster_resources()).

    GPUs are used when the cluster has them unless the config says no; one worker per GPU, else one; the
    ingress, session and job actors take no CPU, so the workers share every CPU.
    """
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    use_gpu = gpus > 0 if use_gpu is None else use_gpu
    workers = num_workers or default_workers or (gpus if use_gpu else 1)
    return use_gpu, workers, max(1, cpus // workers)
