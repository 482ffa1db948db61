"""Two sessions on a cluster of two 1-CPU nodes (`max_sessions=2`, through `serve run` over HTTP): each run's one
worker holds one node's CPU, so the queue starts both at once and each trains on its own node, to the model one
session alone gets. Minutes long, so it runs only with `-m multinode` (see test_two_nodes.py)."""

from __future__ import annotations

import pytest
from conftest import TINY_MODEL
from data import sentiment_files
from helpers import wait_for
from ray_nodes import AUTH, head_and_second

from training_client import TrainingModuleClient
from training_client.local_server import ServerProcess

pytestmark = pytest.mark.multinode

CONFIG = {"model": TINY_MODEL, "epochs": 2, "batch_size": 8, "learning_rate": 1e-3, "precision": "fp32",
          "num_workers": 1}


@pytest.fixture(scope="module")
def nodes():
    with head_and_second() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def two_session_server(nodes, tmp_path_factory):
    from tiny_model import build_tiny_bert

    root = tmp_path_factory.mktemp("storage-two-sessions")
    build_tiny_bert(root / "models" / TINY_MODEL)
    with ServerProcess(root, tmp_path_factory.mktemp("server-two-sessions"), ray_address=nodes.address,
                       env=AUTH, progress_every_steps=2, max_sessions=2) as server:
        yield server


def test_two_sessions_train_at_once_one_on_each_node(two_session_server, nodes, tmp_path):
    files = sentiment_files(tmp_path, 600, 40)
    clients = [TrainingModuleClient(two_session_server.url, timeout=120) for _ in range(2)]
    for client in clients:
        client.start_session()
        client.set_parameters(**CONFIG)
        client.upload_dataset(*files)
        client.preprocess()
    for client in clients:
        client.wait_preprocessed()

    started = [client.start_training() for client in clients]
    assert [s["state"] for s in started] == ["training", "training"], started  # neither queued: each fits a node
    wait_for(lambda: len(nodes.train_workers("head")) == 1 and len(nodes.train_workers("second")) == 1, 180,
             "one Ray Train worker on each node")

    ended = [client.wait_trained(poll_s=0.5) for client in clients]
    assert [e["state"] for e in ended] == ["trained", "trained"], ended
    first, second = (client.runs()[0] for client in clients)
    assert second["started_at"] < first["finished_at"] and first["started_at"] < second["finished_at"]
    assert clients[0].monitor()["metrics"] == clients[1].monitor()["metrics"]  # same seed and data, as alone
