"""A run outlives a lost worker: Ray Train restarts the worker group, which resumes from the latest checkpoint
and ends exactly as an uninterrupted run (same seed, fp32: the same history, metrics and weights)."""

from __future__ import annotations

import os
import signal

import psutil
import torch
from conftest import TINY_MODEL
from data import sentiment_files
from helpers import extract, new_session, wait_for
from safetensors.torch import load_file

CONFIG = {"model": TINY_MODEL, "epochs": 4, "batch_size": 8, "learning_rate": 1e-3, "precision": "fp32",
          "eval_metrics": ["accuracy", "f1"], "checkpoint_every_steps": 40}


def train_workers(server) -> list[psutil.Process]:
    """This server's Ray Train workers (its local Ray instance's processes descend from `serve run`)."""
    return [p for p in psutil.Process(server.proc.pid).children(recursive=True)
            if "RayTrainWorker" in " ".join(p.cmdline())]


def start_run(server, files):
    client = new_session(server)
    client.set_parameters(**CONFIG)
    client.upload_dataset(*files)
    client.preprocess()
    client.wait_preprocessed()
    client.start_training()
    return client


def weights(client, tmp_path, name: str) -> dict:
    return load_file(extract(client.download_model(tmp_path / f"{name}.tar.gz"), tmp_path / name) / "model"
                     / "model.safetensors")


def test_a_killed_worker_resumes_and_ends_as_an_uninterrupted_run(server, tmp_path):
    files = sentiment_files(tmp_path, 1200, 40)
    client = start_run(server, files)
    reference = client.wait_trained(poll_s=0.5)
    assert reference["state"] == "trained" and "restarts" not in reference["training"]["live"]
    expected = weights(client, tmp_path, "reference")

    client = start_run(server, files)
    wait_for(lambda: len(client.monitor()["history"]) >= 1, 180, "the first epoch's evaluation and checkpoint")
    killed = train_workers(server)
    assert killed, "no Ray Train worker process found"
    for process in killed:
        os.kill(process.pid, signal.SIGKILL)
    final = client.wait_trained(poll_s=0.5)
    assert final["state"] == "trained", final
    live = final["training"]["live"]
    assert live["restarts"] == 1 and 0 < live["resumed_from_step"] < live["total_steps"]
    assert final["history"] == reference["history"] and final["metrics"] == reference["metrics"]
    resumed = weights(client, tmp_path, "resumed")
    assert resumed.keys() == expected.keys() and all(torch.equal(resumed[k], expected[k]) for k in expected)
