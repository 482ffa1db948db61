"""Unit tests of cluster/resources.py: a config the cluster can never run is refused up front, saying what it has."""

from __future__ import annotations

import pytest

from cluster.resources import check_deployment, check_resources
from train_jobs.errors import WrongState
from train_jobs.training.scaling import LARGEST_NODE_CPU, worker_plan

LAPTOP = {"CPU": 2.0}
GPU_NODE = {"CPU": 16.0, "GPU": 2.0}


@pytest.mark.parametrize("use_gpu, workers, resources, says", [
    (True, None, LAPTOP, "no GPU (it has 2 CPUs)"),
    (None, 4, LAPTOP, "4 training workers need 4 CPUs; the Ray cluster has 2"),
    (None, 3, GPU_NODE, "3 GPU workers need 3 GPUs; the Ray cluster has 2"),
])
def test_what_cannot_run_is_409_naming_what_the_cluster_has(use_gpu, workers, resources, says):
    with pytest.raises(WrongState) as err:
        check_resources(use_gpu, workers, None, resources)
    assert err.value.status_code == 409 and says in err.value.message and "num_workers" in err.value.hint


@pytest.mark.parametrize("use_gpu, workers, fits, one_less", [
    (None, None, {"CPU": 1.0}, {"CPU": 0.0}),  # the default: one CPU worker
    (False, 2, LAPTOP, {"CPU": 1.0}),
    (None, None, GPU_NODE, {"CPU": 1.0, "GPU": 2.0}),  # the default on GPUs: one worker (and one CPU) per GPU
    (False, 16, GPU_NODE, {"CPU": 15.0, "GPU": 2.0}),
    (True, 2, GPU_NODE, {"CPU": 16.0, "GPU": 1.0}),
])
def test_what_just_fits_passes_and_one_less_is_refused(use_gpu, workers, fits, one_less):
    """A config passes on a cluster with exactly what it needs, and the same config on a cluster with one CPU or
    GPU less is refused: the check looks at what the cluster has, neither more nor less strictly."""
    assert check_resources(use_gpu, workers, None, fits) is None
    with pytest.raises(WrongState) as err:
        check_resources(use_gpu, workers, None, one_less)
    assert err.value.status_code == 409


@pytest.mark.parametrize("use_gpu, workers, default, resources, plan", [
    (None, None, None, LAPTOP, (False, 1, 2)),
    (None, None, None, GPU_NODE, (True, 2, 8)),
    (False, None, None, GPU_NODE, (False, 1, 16)),
    (None, None, 2, LAPTOP, (False, 2, 1)),
    (None, 4, 2, {"CPU": 8.0}, (False, 4, 2)),
    # Two 1-CPU nodes: one worker holds one node's CPU (2 would never be placed), so two runs fit at once.
    (None, None, None, {"CPU": 2.0, LARGEST_NODE_CPU: 1.0}, (False, 1, 1)),
    (None, 2, None, {"CPU": 16.0, LARGEST_NODE_CPU: 4.0}, (False, 2, 4)),
    (None, None, None, {"CPU": 2.0, LARGEST_NODE_CPU: 2.0}, (False, 1, 2)),  # one node: as before
])
def test_worker_plan(use_gpu, workers, default, resources, plan):
    assert worker_plan(use_gpu, workers, default, resources) == plan


@pytest.mark.parametrize("use_gpu, num_cpus, min_replicas, resources, says", [
    (True, 0.5, 1, LAPTOP, "no GPU (it has 2 CPUs)"),
    (None, 16, 1, LAPTOP, "1 model replica of 16 CPUs needs 16 CPUs; the Ray cluster has 2"),
    (None, 0.5, 0, {"CPU": 0.25}, "1 model replica of 0.5 CPUs needs 0.5 CPUs; the Ray cluster has 0.25"),
    (False, 1, 3, LAPTOP, "3 model replicas of 1 CPUs need 3 CPUs; the Ray cluster has 2"),
    (True, 1, 3, GPU_NODE, "3 GPU model replicas need 3 GPUs; the Ray cluster has 2"),
])
def test_a_deployment_that_cannot_run_is_409_naming_what_the_cluster_has(use_gpu, num_cpus, min_replicas,
                                                                           resources, says):
    with pytest.raises(WrongState) as err:
        check_deployment(use_gpu, num_cpus, min_replicas, resources)
    assert err.value.status_code == 409 and says in err.value.message
    assert "num_cpus" in err.value.hint and "kept" in err.value.hint


@pytest.mark.parametrize("use_gpu, num_cpus, min_replicas, resources", [
    (None, 0.5, 1, LAPTOP), (None, 2, 1, LAPTOP), (False, 0.5, 4, LAPTOP), (None, 1, 0, LAPTOP),
    (True, 4, 2, GPU_NODE),
])
def test_a_deployment_that_can_run_passes(use_gpu, num_cpus, min_replicas, resources):
    check_deployment(use_gpu, num_cpus, min_replicas, resources)
