"""A run whose workers' CPUs are held by another job waits, says what it waits for, and fails past its limit.

Another job, a driver of its own on the server's Ray instance, holds every CPU with a placement group, as a
second job or a Tune trial would; a 1-worker run (all CPUs per worker) then fits the cluster, but not now.
"""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager

from conftest import TINY_MODEL
from data import sentiment_files
from helpers import driver_on_server_ray, prepared_session, wait_for

LIMIT_S = 4
# Holds every CPU until its stdin closes; each line it reads is answered with the number of placement groups
# still waiting for resources on the cluster.
HOLDER = """
import sys, ray
from ray.util.placement_group import placement_group, placement_group_table
ray.init(address=sys.argv[1], log_to_driver=False)
cpus = ray.cluster_resources()["CPU"]
assert placement_group([{"CPU": cpus}]).wait(60)
print("held", cpus, flush=True)
for _ in sys.stdin:
    print(sum(g["state"] == "PENDING" for g in placement_group_table().values()), flush=True)
"""


@contextmanager
def every_cpu_held(server):
    """Yields (the cluster's CPUs, a call that counts the placement groups waiting)."""
    address, env = driver_on_server_ray(server)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, address], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env)

    def pending() -> int:
        holder.stdin.write("pending?\n")
        holder.stdin.flush()
        return int(holder.stdout.readline())

    try:
        held = holder.stdout.readline().split()
        assert held[:1] == ["held"], "the holder could not take the CPUs"
        yield float(held[1]), pending
    finally:
        holder.stdin.close()  # the holder's driver ends, and its placement group with it
        try:
            holder.wait(60)
        except subprocess.TimeoutExpired:
            holder.kill()


def test_a_run_waiting_for_held_cpus_says_so_and_fails_past_its_limit(server, tmp_path):
    client = prepared_session(server, tmp_path, sentiment_files(tmp_path), model=TINY_MODEL, epochs=1,
                              resource_wait_timeout_s=LIMIT_S)
    with every_cpu_held(server) as (cpus, pending):
        started = time.monotonic()
        client.start_training()
        waiting = wait_for(lambda: (s := client.status())["message"].startswith("waiting for resources") and s,
                           30, "the status to say the run waits")
        assert f"needs {cpus:g} CPU (1 worker x {cpus:g} CPU), the cluster has 0 of {cpus:g} CPU free" \
            in waiting["message"], waiting
        assert waiting["state"] == "training" and waiting["training"]["message"] == waiting["message"]
        final = wait_for(lambda: (s := client.status())["state"] != "training" and s, LIMIT_S + 60, "the run to end")
        took = time.monotonic() - started
        assert pending() == 0, "the run left a placement group waiting"
    assert final["state"] == "failed", final
    error = final["error"]["message"]
    assert f"got no resources within {LIMIT_S} s (resource_wait_timeout_s)" in error, error
    assert f"needs {cpus:g} CPU" in error and f"0 of {cpus:g} CPU free" in error
    assert took < LIMIT_S + 30, f"the run failed {took:.0f}s after it started, with a {LIMIT_S}s limit"
    # The CPUs are free again: the same session trains.
    client.start_training()
    assert client.wait_trained(poll_s=0.5)["state"] == "trained"
