"""Run history through `serve run` over HTTP: two runs in one session are both kept, each downloads by its id."""

from __future__ import annotations

import hashlib

from conftest import TINY_MODEL
from data import sentiment_files
from helpers import expect_error, extract, prepared_session


def weights_digest(client, tmp_path, name: str, run_id: str | None = None) -> str:
    folder = extract(client.download_model(tmp_path / f"{name}.tar.gz", run_id=run_id), tmp_path / name)
    return hashlib.sha256(next(folder.rglob("model.safetensors")).read_bytes()).hexdigest()


def test_two_runs_are_kept_each_with_its_model(server, tmp_path):
    client = prepared_session(server, tmp_path, sentiment_files(tmp_path, 64, 16), model=TINY_MODEL, epochs=1,
                              batch_size=16, learning_rate=1e-3, precision="fp32")
    first = client.start_training()["training"]["id"]
    client.wait_trained()
    first_weights = weights_digest(client, tmp_path, "first-then")

    client.set_parameters(seed=7)  # another model: a new config returns to setup, the cache answers at once
    client.preprocess()
    client.wait_preprocessed()
    second = client.start_training()["training"]["id"]
    client.wait_trained()

    runs = client.runs()
    assert [r["run_id"] for r in runs] == [second, first]
    assert all(r["state"] == "done" and r["finished_at"] >= r["started_at"] for r in runs)
    assert all(r["selected"]["metric"] == "accuracy" and 0 <= r["selected"]["value"] <= 1 for r in runs)
    detail = client.run(first)
    assert detail["config"]["seed"] == 42 and client.run(second)["config"]["seed"] == 7
    assert detail["hyperparameters"]["epochs"] == 1 and detail["final_metrics"]["accuracy"] is not None
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds[0] == "state" and "evaluation" in kinds and detail["events"][-1]["data"] == {"status": "done"}

    # The first run's model is intact after the second, and downloads by its id; the default is the latest.
    assert weights_digest(client, tmp_path, "first-now", first) == first_weights
    assert weights_digest(client, tmp_path, "latest") == weights_digest(client, tmp_path, "second", second)
    assert weights_digest(client, tmp_path, "latest") != first_weights
    assert client.download_results(tmp_path / "first-results.tar.gz", run_id=first).stat().st_size > 0

    error = expect_error(404, client.run, "not-a-run")
    assert "no run 'not-a-run' in this session" in error.body["message"]
    client.delete_run(first)
    assert [r["run_id"] for r in client.runs()] == [second]
    expect_error(404, client.download_model, tmp_path / "gone.tar.gz", run_id=first)
    assert client.model_ready()["model_ready"] is True  # the latest run's model stays
