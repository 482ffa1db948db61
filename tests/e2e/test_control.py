"""Controlling runs: concurrent starts, stop mid-epoch, a killed session actor, a restarted Ray."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from conftest import TINY_MODEL
from data import pair_files, sentiment_files
from helpers import (
    checkpoint_kept,
    crash_and_restart,
    expect_error,
    extract,
    kill_session_actor,
    prepared_session,
    server_processes,
    wait_for,
)
from transformers import AutoModelForSequenceClassification

from training_client import TrainingModuleClient, TrainingModuleError


def _live_step(client: TrainingModuleClient) -> int:
    return (client.monitor()["training"]["live"] or {}).get("step", 0)


def test_concurrent_starts_run_once_and_stop_mid_epoch_keeps_a_model(server, tmp_path):
    # Sentence pairs with integer labels; long enough that we stop it well before the end.
    client = prepared_session(server, tmp_path, pair_files(tmp_path, 2000, 50), model=TINY_MODEL, epochs=30,
                              batch_size=8)

    def start(_):
        try:
            client.start_training()
            return 200
        except TrainingModuleError as e:
            return e.status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(start, range(8)))
    assert sorted(codes) == [200] + [409] * 7

    wait_for(lambda: _live_step(client) >= 4, 120, "training to report steps")
    asked = time.monotonic()
    assert client.stop_training()["state"] == "training"  # the stop is requested, then honoured
    final = client.wait_trained(poll_s=0.2)
    took = time.monotonic() - asked
    assert final["state"] == "stopped", final
    assert took < 15, f"stop took {took:.1f}s"
    live = final["training"]["live"]
    assert live["step"] < live["total_steps"] and live["epoch"] == 1  # stopped mid-epoch
    assert final["model_ready"] is True
    model_dir = extract(client.download_model(tmp_path / "model.tar.gz"), tmp_path / "m") / "model"
    assert AutoModelForSequenceClassification.from_pretrained(model_dir).config.id2label == {0: "0", 1: "1"}


def test_killing_the_session_actor_mid_training_loses_nothing(server, tmp_path):
    client = prepared_session(server, tmp_path, sentiment_files(tmp_path, 400, 40), model=TINY_MODEL, epochs=6,
                              batch_size=8, eval_metrics=["accuracy", "f1"])
    client.start_training()
    wait_for(lambda: client.monitor()["history"], 120, "a first evaluation")
    before = client.get_parameters()

    kill_session_actor(server)  # this server's own, by PID

    status = wait_for(lambda: _status_or_none(server.url), 60, "/status after the kill")
    assert status["state"] in ("training", "trained")
    after = client.get_parameters()  # same key, config and dataset
    assert after["config"] == before["config"] and after["dataset"] == before["dataset"]
    final = client.wait_trained(poll_s=0.5)
    assert final["state"] == "trained"
    assert [e["epoch"] for e in final["history"]][-1] == 6


def _status_or_none(url: str):
    try:
        response = httpx.get(f"{url}/status", timeout=10,
                             headers={"Authorization": f"Bearer {os.environ['TM_API_TOKEN']}"})
        return response.json() if response.status_code == 200 else None
    except httpx.HTTPError:
        return None


def test_restarting_ray_brings_back_the_session_and_the_cut_off_run_resumes_by_itself(server, tmp_path):
    client = prepared_session(server, tmp_path, sentiment_files(tmp_path, 400, 40), model=TINY_MODEL, epochs=6,
                              batch_size=8)
    client.start_training()
    wait_for(lambda: checkpoint_kept(client), 180, "a first epoch and its checkpoint")
    before = client.get_parameters()

    crash_and_restart(server)  # the local Ray instance goes away mid-training, at once

    status = client.monitor()  # the same key still works
    # Resumed by itself (on a fast machine the few epochs left may be done already).
    assert status["training"]["restarts"] == 1, status
    assert status["state"] == "trained" or "restart resumed" in status["message"], status
    final = client.wait_trained(poll_s=0.5)
    assert final["state"] == "trained", final
    assert [e["epoch"] for e in final["history"]] == [1, 2, 3, 4, 5, 6]
    after = client.get_parameters()
    assert after["config"] == before["config"] and after["dataset"] == before["dataset"]
    model_dir = extract(client.download_model(tmp_path / "model.tar.gz"), tmp_path / "m") / "model"
    assert AutoModelForSequenceClassification.from_pretrained(model_dir).num_labels == 2
    assert not (model_dir / "train_state.pt").exists()  # the resume state stays out of the model archive
    # The session is usable again: train on from the preprocessed cache.
    client.set_parameters(epochs=1)
    expect_error(409, client.start_training)  # config changed: preprocess first
    reply = client.preprocess()  # a cache hit is answered by the call itself, with no job to wait for
    assert reply["state"] == "preprocessed" and reply["preprocess"]["cache"]["reused"] is True
    assert reply["preprocess"]["message"].startswith("reused")


def test_stop_then_resume_is_pause_and_resume(server, tmp_path):
    client = prepared_session(server, tmp_path, sentiment_files(tmp_path, 400, 40), model=TINY_MODEL, epochs=4,
                              batch_size=8, learning_rate=1e-3)
    client.start_training()
    wait_for(lambda: len(client.monitor()["history"]) >= 1, 180, "a first epoch")
    client.stop_training()
    stopped = wait_for(lambda: (m := client.monitor())["state"] != "training" and m, 120, "the run to stop")
    assert stopped["state"] == "stopped" and stopped["training"]["resumable"] is True
    client.start_training(resume=True)
    final = client.wait_trained(poll_s=0.5)
    assert final["state"] == "trained", final
    assert final["training"]["restarts"] == 1 and final["history"][-1]["epoch"] == 4
    assert [e["epoch"] for e in final["history"]] == sorted({e["epoch"] for e in final["history"]})


def test_stop_before_the_first_step_ends_the_run_at_once(server, tmp_path):
    client = prepared_session(server, tmp_path, sentiment_files(tmp_path, 200, 20), model=TINY_MODEL, epochs=50,
                              batch_size=8)
    client.start_training()
    stopped = client.stop_training()  # the workers are still starting: nothing to keep
    assert stopped["state"] == "stopped" and stopped["model_ready"] is False
    assert "before its first step" in stopped["message"]
    expect_error(404, client.download_model, tmp_path / "m.tar.gz")
    # Once the run's actor is gone, nothing can report for the run any more: the session stays stopped.
    wait_for(lambda: not server_processes(server, "ray::TrainingJob"), 60, "the stopped run's actor to end")
    assert client.status()["state"] == "stopped"
    assert client.start_training()["state"] == "training"  # and training can start again

    old_key, old_id = client.key, client.get_parameters()["session_id"]
    wiped = client.stop_training(force_restart=True)  # stop the run and wipe the session
    assert wiped["state"] == "setup" and client.key != old_key
    assert not (server.storage_root / "sessions" / old_id).exists()
    wait_for(lambda: not server_processes(server, "ray::TrainingJob"), 60, "the wiped session's run to end")
    assert client.status()["session_id"] != old_id and client.status()["state"] == "setup"
