"""How many Ray Train workers a run gets, and what each one holds: one rule for the run and for the checks."""

from __future__ import annotations

from typing import Optional

# Added to ray.cluster_resources() by cluster_size(): the most CPUs one alive node has. A worker's CPUs come from
# one node, so on a cluster of small nodes a worker holds at most one node's CPUs, not a share of the total.
LARGEST_NODE_CPU = "largest_node_CPU"


def cluster_size() -> dict:
    """ray.cluster_resources(), with the largest alive node's CPUs under LARGEST_NODE_CPU."""
    import ray

    nodes = [node["Resources"].get("CPU", 0) for node in ray.nodes() if node.get("Alive")]
    return {**ray.cluster_resources(), LARGEST_NODE_CPU: max(nodes, default=0)}


def worker_plan(use_gpu: Optional[bool], num_workers: Optional[int], default_workers: Optional[int],
                resources: dict) -> tuple[bool, int, int]:
    """(use_gpu, workers, CPUs per worker) for the cluster's `resources` (cluster_size(), or
    ray.cluster_resources(), which says nothing of nodes).

    GPUs are used when the cluster has them unless the config says no; one worker per GPU, else one; the
    ingress, session and job actors take no CPU, so the workers share every CPU, each at most one node's.
    """
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    use_gpu = gpus > 0 if use_gpu is None else use_gpu
    workers = num_workers or default_workers or (gpus if use_gpu else 1)
    per_worker = cpus // workers
    if resources.get(LARGEST_NODE_CPU):
        per_worker = min(per_worker, int(resources[LARGEST_NODE_CPU]))
    return use_gpu, workers, max(1, per_worker)
