"""One training run: size the workers, run the TorchTrainer, package the outputs."""

from __future__ import annotations

from pathlib import Path

import ray
from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from train_jobs.artifacts import build_model_archive, build_results, latest_checkpoint
from train_jobs.models import resolve_model
from train_jobs.preprocess import read_split
from train_jobs.train_loop import train_loop_per_worker

SHUFFLE_BUFFER = 10_000


def scaling_for(config: dict, settings: dict) -> tuple[ScalingConfig, int]:
    """Workers and CPUs per worker from the cluster; returns the config and torch threads per worker."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    use_gpu = config.get("use_gpu")
    use_gpu = gpus > 0 if use_gpu is None else use_gpu
    if use_gpu and gpus == 0:
        raise ValueError("use_gpu is true but the Ray cluster has no GPU")
    workers = config.get("num_workers") or settings.get("num_workers") or (gpus if use_gpu else 1)
    # The ingress, session and job actors take 0 CPUs, so the workers may use every CPU.
    cpus = max(1, int(resources.get("CPU", 1)) // workers)
    per_worker = {"CPU": cpus, **({"GPU": 1} if use_gpu else {})}
    return ScalingConfig(num_workers=workers, use_gpu=use_gpu, resources_per_worker=per_worker), cpus


def run_training(spec: dict) -> dict:
    config, dataset, cache = spec["config"], spec["dataset"], spec["cache"]
    run_dir = Path(spec["run_dir"])
    results_dir = run_dir / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    model_dir = resolve_model(config["model"], Path(spec["models_dir"]))
    scaling, threads = scaling_for(config, spec["settings"])

    # In the object store before fit(): the workers then hold every CPU without starving Ray Data.
    datasets = {split: read_split(cache["path"], split) for split in ("train", "test")}
    loop_config = {
        **{k: config[k] for k in ("task_type", "batch_size", "epochs", "learning_rate", "seed", "init_eval",
                                  "eval_metrics",
                                  "epochs_per_test_run", "warmup_ratio", "weight_decay",
                                  "multi_label_threshold", "group_by_length", "precision")},
        "multi_label": bool(dataset.get("multi_label")),
        "run_id": spec["run_id"],
        "model_dir": str(model_dir),
        "labels": dataset["labels"],
        "text_columns": cache["text_columns"],
        "train_rows": cache["rows"]["train"],
        "torch_threads": threads,
        "shuffle_buffer": SHUFFLE_BUFFER,
        "progress_every_steps": spec["settings"]["progress_every_steps"],
        "yield_cpu_to_api": spec["settings"]["yield_cpu_to_api"],
        "results_dir": str(results_dir),
        "training_config": {**config, "labels": dataset["labels"], "base_model": config["model"],
                            "text_columns": cache["text_columns"]},
    }
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop_config,
        scaling_config=scaling,
        run_config=RunConfig(
            name=f"{spec['run_id']}",
            storage_path=str(run_dir),
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            failure_config=FailureConfig(max_failures=0),
        ),
        datasets=datasets,
        dataset_config=DataConfig(datasets_to_split=["train"]),
    )
    result = trainer.fit()
    checkpoint = Path(result.checkpoint.path) if result.checkpoint else latest_checkpoint(run_dir / spec["run_id"])
    outcome: dict = {"final_metrics": None}
    if checkpoint is not None:
        outcome["model_dir"] = str(checkpoint)
        outcome["model_archive"] = str(build_model_archive(checkpoint, run_dir / "model.tar.gz"))
    final = results_dir / "final_metrics.json"
    if final.exists():
        import json

        outcome["final_metrics"] = json.loads(final.read_text())
    stopped = bool(result.metrics and result.metrics.get("stopped"))
    outcome["results_archive"] = str(build_results(results_dir, config, dataset, run_dir / "results.tar.gz", stopped))
    return outcome
