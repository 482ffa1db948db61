"""Two Ray nodes on this machine (a head and a second node, one CPU each), the server on them over HTTP: a run
with a worker on each node loses the second node mid-epoch, the node comes back, and the run ends `trained`,
resumed from its latest checkpoint by Ray Train's restarted worker group.

Storage is one local directory, shared by both nodes because they are on one machine: on a real cluster it is a
shared filesystem (docs/guides/cluster.md). Minutes long, so it runs only with `-m multinode`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY_MODEL
from data import sentiment_files
from helpers import own_server, prepared_session, wait_for
from ray_nodes import AUTH

pytestmark = pytest.mark.multinode

EPOCHS = 2
CONFIG = {"model": TINY_MODEL, "epochs": EPOCHS, "batch_size": 8, "learning_rate": 1e-3, "precision": "fp32",
          "num_workers": 2, "placement_strategy": "STRICT_SPREAD", "checkpoint_every_steps": 10}


@pytest.fixture(scope="module")
def two_node_server(nodes, tmp_path_factory):
    with own_server(tmp_path_factory, "two-nodes", ray_address=nodes.address, env=AUTH, progress_every_steps=2) as server:
        yield server


def live(client) -> dict:
    return client.monitor()["training"].get("live") or {}


def registered_checkpoint(storage_root: Path) -> dict:
    """The metrics of the latest checkpoint Ray Train has registered (its snapshot, next to the checkpoints in the
    run's folder), or {}. Ray Train collects reports every couple of seconds, so a checkpoint written just before
    a node dies may never count: the restart would then begin from the start, not resume."""
    for snapshot in storage_root.glob("sessions/*/runs/*/*/checkpoint_manager_snapshot.json"):
        try:
            return (json.loads(snapshot.read_text()).get("latest_checkpoint_result") or {}).get("metrics") or {}
        except ValueError:  # being rewritten
            pass
    return {}


def test_a_run_that_loses_a_node_mid_epoch_ends_trained(two_node_server, nodes, tmp_path):
    client = prepared_session(two_node_server, tmp_path, sentiment_files(tmp_path, 1000, 40), **CONFIG)
    client.start_training()
    wait_for(lambda: nodes.train_workers("head") and nodes.train_workers("second"), 120,
             "a Ray Train worker on each node")
    # Past a checkpoint Ray Train has registered, still in the first epoch: the kill costs the steps since it.
    wait_for(lambda: registered_checkpoint(two_node_server.storage_root), 120, "a registered checkpoint", poll=0.2)
    at_kill = live(client)
    assert at_kill["workers"] == 2 and at_kill["epoch"] == 1 and at_kill["step"] < at_kill["total_steps"] / EPOCHS
    nodes.kill_node("second")
    nodes.add_node("second", num_cpus=1)  # a new node, as a replaced machine: its own id and temp dir

    final = wait_for(lambda: (m := client.monitor())["state"] in ("trained", "failed", "stopped") and m, 300,
                     "the run's end")
    assert final["state"] == "trained", final
    info = final["training"]["live"]
    assert info["restarts"] == 1 and info["workers"] == 2, info
    # From a step checkpoint of the first epoch, the one Ray Train had registered (or one the head's worker
    # reported as the node went).
    every = CONFIG["checkpoint_every_steps"]
    assert 0 < info["resumed_from_step"] < info["total_steps"] / EPOCHS and info["resumed_from_step"] % every == 0
    assert info["step"] == info["total_steps"]
    assert [e["epoch"] for e in final["history"]] == list(range(1, EPOCHS + 1))
    assert final["model_ready"]
