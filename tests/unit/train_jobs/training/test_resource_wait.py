"""Unit tests of train_jobs/training/resource_wait.py: the wait for the workers' resources, and its limit.

No Ray: `ready` is a stand-in for the placement group's wait that moves a clock of the test's own.
"""

from __future__ import annotations

import pytest

from train_jobs.training.resource_wait import FIRST_LOOK_S, Need, ResourceWaitTimeout, shortfall, wait_for

HELD = ({"CPU": 0.0}, {"CPU": 2.0})  # (free, total): another job holds both CPUs
ONE_WORKER = Need({"CPU": 2.0}, 1)


class Cluster:
    """The workers are granted once the clock reaches `grants_at` (never with None)."""

    def __init__(self, grants_at=None):
        self.now, self.grants_at, self.messages = 100.0, grants_at, []

    def clock(self) -> float:
        return self.now

    def ready(self, wait_s: float) -> bool:
        assert wait_s > 0
        if self.grants_at is not None and self.now + wait_s >= self.grants_at:
            self.now = max(self.now, self.grants_at)
            return True
        self.now += wait_s
        return False

    def wait(self, timeout_s: float) -> None:
        wait_for(self.ready, ONE_WORKER, lambda: HELD, timeout_s, self.messages.append, self.clock)


@pytest.mark.parametrize("need, says", [
    (Need({"CPU": 2.0}, 1), "needs 2 CPU (1 worker x 2 CPU), the cluster has 0 of 2 CPU free"),
    (Need({"CPU": 4.0, "GPU": 1.0}, 2), "needs 8 CPU and 2 GPU (2 workers x 4 CPU, 1 GPU), the cluster has "
                                        "0 of 2 CPU free, no GPU"),
])
def test_the_shortfall_names_what_the_run_needs_and_what_is_free(need, says):
    assert shortfall(need, *HELD) == says


def test_workers_granted_at_once_say_nothing():
    cluster = Cluster(grants_at=100.0)
    cluster.wait(600)
    assert cluster.messages == [] and cluster.now == 100.0


def test_while_waiting_the_status_says_what_is_missing_until_the_workers_are_granted():
    cluster = Cluster(grants_at=130.0)
    cluster.wait(600)
    assert cluster.now == 130.0 and len(cluster.messages) > 1
    assert cluster.messages[0] == ("waiting for resources: needs 2 CPU (1 worker x 2 CPU), the cluster has 0 of 2 CPU "
                                   "free; the run fails if they are not free within 600 s")


def test_past_the_limit_the_wait_fails_naming_what_was_needed_and_free():
    cluster = Cluster(grants_at=None)
    with pytest.raises(ResourceWaitTimeout) as err:
        cluster.wait(10)
    assert cluster.now == 110.0, "gives up at the limit, not a poll later"
    message = str(err.value)
    assert message.startswith("the training workers got no resources within 10 s (resource_wait_timeout_s): "
                              "needs 2 CPU (1 worker x 2 CPU), the cluster has 0 of 2 CPU free")
    assert "num_workers" in message and cluster.messages


def test_a_limit_shorter_than_the_first_look_is_kept():
    cluster = Cluster(grants_at=None)
    with pytest.raises(ResourceWaitTimeout):
        cluster.wait(FIRST_LOOK_S / 2)
    assert cluster.now == 100.0 + FIRST_LOOK_S / 2 and cluster.messages == []
