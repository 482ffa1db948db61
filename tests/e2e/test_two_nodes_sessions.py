"""Two sessions on a cluster of two 1-CPU nodes (`max_sessions=2`, through `serve run` over HTTP): each run's one
worker holds one node's CPU, so the queue starts both at once and each trains on its own node, to the model one
session alone gets. Minutes long, so it runs only with `-m multinode` (see test_two_nodes.py)."""

from __future__ import annotations

import pytest
from conftest import TINY_MODEL
from data import sentiment_files
from helpers import new_sessions, own_server, ready_sessions, wait_for
from ray_nodes import AUTH

pytestmark = pytest.mark.multinode

CONFIG = {"model": TINY_MODEL, "epochs": 2, "batch_size": 8, "learning_rate": 1e-3, "precision": "fp32",
          "num_workers": 1}


@pytest.fixture(scope="module")
def two_session_server(nodes, tmp_path_factory):
    with own_server(tmp_path_factory, "two-sessions", ray_address=nodes.address, env=AUTH, progress_every_steps=2,
                    max_sessions=2) as server:
        yield server


def test_two_sessions_train_at_once_one_on_each_node(two_session_server, nodes, tmp_path):
    clients = ready_sessions(new_sessions(two_session_server, 2), sentiment_files(tmp_path, 600, 40), CONFIG)

    started = [client.start_training() for client in clients]
    assert [s["state"] for s in started] == ["training", "training"], started  # neither queued: each fits a node
    wait_for(lambda: len(nodes.train_workers("head")) == 1 and len(nodes.train_workers("second")) == 1, 180,
             "one Ray Train worker on each node")

    ended = [client.wait_trained(poll_s=0.5) for client in clients]
    assert [e["state"] for e in ended] == ["trained", "trained"], ended
    first, second = (client.runs()[0] for client in clients)
    assert second["started_at"] < first["finished_at"] and first["started_at"] < second["finished_at"]
    assert clients[0].monitor()["metrics"] == clients[1].monitor()["metrics"]  # same seed and data, as alone
