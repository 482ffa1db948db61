"""Waiting for the cluster to have a run's workers free, within a time limit.

Ray Train waits for its workers' placement group without end (it retries the group every minute), so a run
whose CPUs are held by another job, or whose GPU node never comes, sat in `training` with no step and no word.
Before its datasets (which run Ray tasks) and fit(), the run reserves the same bundles itself, says what it
waits for while it waits, releases them as soon as they are granted (Ray Train then places its own), and
gives up past the limit, naming what it needed and what the cluster had.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

FIRST_LOOK_S = 1.0  # a group the cluster can place now is granted within milliseconds: no message for those
POLL_S = 2.0  # how often the status says what is missing, while waiting

OnWaiting = Callable[[str], None]


class ResourceWaitTimeout(Exception):
    """The workers' resources did not come free in time; the message names what was needed and what was free."""


@dataclass(frozen=True)
class Need:
    per_worker: dict[str, float]
    workers: int

    @property
    def total(self) -> dict[str, float]:
        return {name: amount * self.workers for name, amount in self.per_worker.items() if amount}

    def __str__(self) -> str:
        each = ", ".join(f"{amount:g} {name}" for name, amount in self.per_worker.items() if amount)
        plural = "s" if self.workers != 1 else ""
        return f"{_and(self.total)} ({self.workers} worker{plural} x {each})"


def _and(amounts: dict[str, float]) -> str:
    return " and ".join(f"{amount:g} {name}" for name, amount in amounts.items())


def shortfall(need: Need, free: dict, total: dict) -> str:
    """What the run needs against what the cluster has free of each of those resources."""
    has = ", ".join(f"{free.get(name, 0):g} of {total[name]:g} {name} free" if total.get(name) else f"no {name}"
                    for name in need.total)
    return f"needs {need}, the cluster has {has}"


def wait_for(ready: Callable[[float], bool], need: Need, resources: Callable[[], tuple[dict, dict]],
             timeout_s: float, on_waiting: OnWaiting, clock: Callable[[], float] = time.monotonic) -> None:
    """Return once `ready(s)` (which waits up to s seconds) grants the workers; meanwhile tell `on_waiting` what is
    missing (`resources()` gives the cluster's free and total resources); past `timeout_s`, raise
    ResourceWaitTimeout."""
    started = clock()
    if ready(min(FIRST_LOOK_S, timeout_s)):
        return
    while True:
        waited = clock() - started
        missing = shortfall(need, *resources())
        if waited >= timeout_s:
            raise ResourceWaitTimeout(
                f"the training workers got no resources within {timeout_s:g} s (resource_wait_timeout_s): {missing}; "
                "free them (another run, trial or job holds them), add nodes, or lower num_workers")
        on_waiting(f"waiting for resources: {missing}; the run fails if they are not free within {timeout_s:g} s")
        if ready(min(POLL_S, timeout_s - waited)):
            return


def wait_for_workers(per_worker: dict[str, float], workers: int, timeout_s: float, on_waiting: OnWaiting) -> None:
    """wait_for on the cluster: a placement group of the workers' bundles (PACK, as Ray Train's), removed again
    whatever happens; a run stopped while waiting takes it with its job actor."""
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    group = placement_group([per_worker] * workers, strategy="PACK")
    try:
        wait_for(group.wait, Need(per_worker, workers), lambda: (ray.available_resources(), ray.cluster_resources()),
                 timeout_s, on_waiting)
    finally:
        remove_placement_group(group)
