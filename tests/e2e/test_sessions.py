"""Several sessions on one server (max_sessions=3) through `serve run` over HTTP: each its own key, state and
runs; the cluster (2 CPUs here) fits one run, so the others queue and start in order, with the same metrics."""

from __future__ import annotations

import os

import httpx
import pytest
from conftest import API_TOKEN, MAX_UPLOAD_MB, TINY_MODEL
from data import sentiment_files
from helpers import checkpoint_kept, crash_and_restart, expect_error, new_sessions, own_server, ready_sessions, wait_for

from training_client import TrainingModuleClient
from training_client.client import auth_headers

CONFIG = {"model": TINY_MODEL, "epochs": 1, "batch_size": 16, "learning_rate": 1e-3, "precision": "fp32"}


@pytest.fixture(scope="module")
def several(tmp_path_factory):
    os.environ["TM_API_TOKEN"] = API_TOKEN
    with own_server(tmp_path_factory, "several", max_upload_mb=MAX_UPLOAD_MB, progress_every_steps=2,
                    max_sessions=3) as server:
        yield server


@pytest.fixture(scope="module")
def clients(several):
    """The server's three sessions (its max_sessions), one client each; a test wipes one to start afresh."""
    return new_sessions(several, 3)


def test_three_sessions_queue_for_the_cluster_and_train_in_order(clients, several, tmp_path):
    ready_sessions(clients, sentiment_files(tmp_path, 64, 16), CONFIG)
    started = [client.start_training() for client in clients]
    assert [s["state"] for s in started] == ["training", "queued", "queued"]
    assert [s["training"].get("queue_position") for s in started] == [None, 1, 2]

    summary = httpx.get(f"{several.url}/status", headers=auth_headers(API_TOKEN)).json()
    assert summary["state"] == "sessions" and summary["sessions"]["count"] == 3
    assert summary["sessions"]["by_state"].get("queued", 0) >= 1
    assert all(c.key not in str(summary) for c in clients)
    listed = clients[0].sessions()
    assert len(listed["sessions"]) == 3 and listed["max_sessions"] == 3
    assert all(c.key not in str(listed) for c in clients)

    ended = [client.wait_trained(poll_s=0.5) for client in clients]
    assert [e["state"] for e in ended] == ["trained"] * 3
    runs = [client.runs()[0] for client in clients]
    for before, after in zip(runs, runs[1:]):  # one after the other, in the order they asked
        assert after["started_at"] >= before["finished_at"] - 1, (before, after)
    metrics = [client.monitor()["metrics"] for client in clients]
    assert metrics[0] == metrics[1] == metrics[2]  # same seed and data: the same model as alone
    events = [e["message"] for e in clients[2].run(runs[2]["run_id"])["events"]]
    assert "queued" in events and "started from the queue" in events


def test_a_sessions_key_opens_nothing_of_anothers(clients, several):
    first, second = clients[:2]
    for client in (first, second):
        client.start_session(force_restart=True)  # the header names the session to wipe: each its own
    second.set_parameters(epochs=3)
    assert first.get_parameters()["config"]["epochs"] != 3  # the header names first's session
    assert second.get_parameters()["config"]["epochs"] == 3
    assert first.status()["session_id"] != second.status()["session_id"]
    stranger = TrainingModuleClient(several.url, key="x" * len(first.key))
    for call in (stranger.monitor, stranger.runs, stranger.status, stranger.get_parameters):
        expect_error(403, call)
    expect_error(404, second.run, f"{first.status()['session_id'][:8]}-train-1")  # never confirms another's


def test_the_limit_and_force_restart_name_one_session(clients, several):
    error = expect_error(409, TrainingModuleClient(several.url).start_session)
    assert "limit of 3 sessions" in error.body["message"] and "max_sessions" in error.body["message"]
    error = expect_error(409, TrainingModuleClient(several.url).start_session, force_restart=True)
    assert "X-Session-Key" in error.body["hint"]
    mine, other = clients[2], clients[0]
    old, other_id = mine.key, other.status()["session_id"]
    mine.set_parameters(epochs=5)
    assert mine.start_session(force_restart=True)["key"] != old  # wipes only the session the header names
    assert mine.get_parameters()["config"]["epochs"] != 5
    assert other.status()["session_id"] == other_id
    expect_error(403, TrainingModuleClient(several.url, key=old).monitor)


def test_a_restart_with_one_run_training_and_two_queued_ends_all_three_trained_in_order(clients, several, tmp_path):
    for client in clients:
        client.start_session(force_restart=True)
    ready_sessions(clients, sentiment_files(tmp_path, 400, 16), {**CONFIG, "epochs": 2, "batch_size": 8})
    assert [c.start_training()["state"] for c in clients] == ["training", "queued", "queued"]
    wait_for(lambda: checkpoint_kept(clients[0]), 180, "a first epoch and its checkpoint")

    crash_and_restart(several)  # Ray goes away at once, with the run training and two queued

    back = [client.status() for client in clients]
    assert back[2]["state"] in ("queued", "training"), back  # the queue came back
    ended = [client.wait_trained(poll_s=0.5) for client in clients]
    assert [e["state"] for e in ended] == ["trained"] * 3
    runs = [client.runs()[0] for client in clients]
    for before, after in zip(runs, runs[1:]):
        assert after["started_at"] >= before["finished_at"] - 1, (before, after)
