"""Experiment tracking, opt-in: a finished run logged to MLflow.

Logged once the run has ended, from what it left on disk (the same files the results archive holds), so a
tracking server that is slow or down never slows or breaks training: params (the config as given and the
hyper-parameters as resolved), every evaluation's metrics at its step (the per-epoch training loss is the loss
curve), the test metrics of the selected model, and the model archive as an artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from train_jobs.config import MlflowTracking
from train_jobs.files import read_json
from train_jobs.specs import TrainingSpec


def flat(prefix: str, values: dict[str, Any]) -> dict[str, str]:
    """MLflow params are flat strings (500 characters at most)."""
    return {f"{prefix}{k}": str(v)[:500] for k, v in values.items() if v is not None}


def numbers(entry: dict) -> dict[str, float]:
    return {k: float(v) for k, v in entry.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def log_run(target: MlflowTracking, run_id: str, config: dict, hyper: dict, results_dir: Path,
            model_archive: Optional[Path]) -> str:
    """Log the run to `target`; returns the MLflow run id."""
    import mlflow  # the `tracking` extra: only a job that tracks needs it

    client = mlflow.MlflowClient(tracking_uri=target.tracking_uri)
    experiment = client.get_experiment_by_name(target.experiment)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(target.experiment)
    run = client.create_run(experiment_id, run_name=target.run_name or run_id, tags={"training_module.run_id": run_id})
    params = {**flat("config.", {k: v for k, v in config.items() if k not in ("tracking", "search")}),
              **flat("resolved.", hyper)}
    for name, value in params.items():
        client.log_param(run.info.run_id, name, value)
    for entry in read_json(results_dir / "history.json") or []:
        split = entry.get("split", "validation")
        for name, value in numbers(entry).items():
            if name not in ("epoch", "step"):
                client.log_metric(run.info.run_id, name if name == "train_loss" else f"{split}_{name}", value,
                                  step=int(entry.get("step", 0)))
    final = read_json(results_dir / "final_metrics.json") or {}
    for name, value in numbers(final).items():
        if name not in ("epoch", "step"):
            client.log_metric(run.info.run_id, f"final_test_{name}", value)
    if model_archive and model_archive.exists():
        client.log_artifact(run.info.run_id, str(model_archive))
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def track(spec: TrainingSpec, outcome: dict) -> Optional[dict]:
    """Log the finished run where its config says; what the session records: the MLflow run, or why not. A
    tracking server that fails costs the run nothing but this entry."""
    target = spec.config.tracking.mlflow if spec.config.tracking else None
    if target is None:
        return None
    archive = Path(outcome["model_archive"]) if outcome.get("model_archive") else None
    try:
        run = log_run(target, spec.run_id, spec.archived_config(), spec.hyper.model_dump(), Path(spec.results_dir),
                      archive)
    except Exception as e:  # any failure of a tracking server is reported; none is fatal
        return {"mlflow": {"error": f"{type(e).__name__}: {str(e)[:300]}", "tracking_uri": target.tracking_uri}}
    return {"mlflow": {"run_id": run, "experiment": target.experiment, "tracking_uri": target.tracking_uri}}
