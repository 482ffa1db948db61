"""A run with tracking on shows up in MLflow (a real file store): its params, per-evaluation metrics and the
model archive, read back with MLflow's own client; /monitor names the MLflow run."""

from __future__ import annotations

import mlflow
from conftest import TINY_MODEL
from data import sentiment_files
from helpers import prepared_session


def test_a_tracked_run_is_in_mlflow_with_params_metrics_and_model(server, tmp_path):
    store = f"file://{tmp_path / 'mlruns'}"
    client = prepared_session(server, tmp_path, sentiment_files(tmp_path), model=TINY_MODEL, epochs=2,
                              tracking={"mlflow": {"tracking_uri": store, "experiment": "e2e"}})
    client.start_training()
    client.wait_trained(poll_s=1)
    monitor = client.monitor()
    logged = monitor["training"]["tracking"]["mlflow"]
    assert "error" not in logged, logged

    runs = mlflow.MlflowClient(tracking_uri=store)
    run = runs.get_run(logged["run_id"])
    assert run.data.params["config.epochs"] == "2" and run.data.params["resolved.epochs"] == "2"
    assert [m.step for m in runs.get_metric_history(run.info.run_id, "validation_accuracy")] == [
        entry["step"] for entry in monitor["history"]]
    assert "final_test_accuracy" in run.data.metrics
    assert [a.path for a in runs.list_artifacts(run.info.run_id)] == ["model.tar.gz"]
