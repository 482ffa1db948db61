"""Unit tests of train_jobs/training/tracking.py against a real MLflow store (a file store in tmp_path): a run's
params, every evaluation's metrics at its step, the test metrics and the model archive are read back."""

from __future__ import annotations

import json

import mlflow
import pytest
from pydantic import ValidationError

from train_jobs.config import MlflowTracking, TrainingConfigParams
from train_jobs.training.tracking import log_run

HISTORY = [{"epoch": 1, "step": 10, "split": "validation", "train_loss": 0.9, "accuracy": 0.7},
           {"epoch": 2, "step": 20, "split": "validation", "train_loss": 0.4, "accuracy": 0.8}]


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store for opt-in use
    return f"file://{tmp_path / 'mlruns'}"


def test_a_finished_run_is_logged_with_params_metrics_and_model(store, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "history.json").write_text(json.dumps(HISTORY))
    (results / "final_metrics.json").write_text(json.dumps({"epoch": 2, "step": 20, "accuracy": 0.82}))
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(b"an archive")
    target = MlflowTracking(tracking_uri=store, experiment="tests")

    run_id = log_run(target, "s1-train-1", {"epochs": "auto", "seed": 42}, {"epochs": 10, "learning_rate": 1e-4},
                     results, archive)

    client = mlflow.MlflowClient(tracking_uri=store)
    run = client.get_run(run_id)
    assert run.info.run_name == "s1-train-1" and run.info.status == "FINISHED"
    assert run.data.params["config.epochs"] == "auto" and run.data.params["resolved.epochs"] == "10"
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "validation_accuracy")] == [(10, 0.7), (20, 0.8)]
    assert [m.value for m in client.get_metric_history(run_id, "train_loss")] == [0.9, 0.4]
    assert run.data.metrics["final_test_accuracy"] == 0.82
    assert [a.path for a in client.list_artifacts(run_id)] == ["model.tar.gz"]


def test_a_tracking_block_is_checked_when_set():
    with pytest.raises(ValidationError, match="tracking_uri"):
        TrainingConfigParams(tracking={"mlflow": {"experiment": "x"}})
    assert TrainingConfigParams(tracking={"mlflow": {"tracking_uri": "http://mlflow:5000"}}).tracking.mlflow
