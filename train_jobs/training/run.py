"""One training run, or a search: size the workers, run the TorchTrainer (or the Tuner), package the outputs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

import ray
from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from train_jobs.data.cache_reads import carved_split, ingest_options, read_split
from train_jobs.files import atomic_write_json, read_json
from train_jobs.results.archives import build_model_archive, build_results, kept_checkpoint
from train_jobs.specs import TrainingSink, TrainingSpec
from train_jobs.training.loop import train_loop_per_worker
from train_jobs.training.resource_wait import OnWaiting, wait_for_workers
from train_jobs.training.scaling import cluster_size, worker_plan
from train_jobs.training.search import OnTrials, adopt_best_trial, best_checkpoint, run_search
from train_jobs.training.selection import SCORE
from train_jobs.training.timings import FILE as TIMINGS_FILE
from train_jobs.training.timings import Timings, breakdown, read_worker_timings
from train_jobs.training.tracking import track
from train_jobs.training.worker import loop_config

SHUFFLE_BUFFER = 10_000
# How often Ray Train's controller polls the workers (its default: 2 s). Each poll also takes the workers' latest
# report, so a second report within one interval, and the end of the run, waited for the next poll: about 3 s of
# every run. Read from the environment of the process that calls fit() (this job actor's own) and passed on.
POLL_ENV, POLL_S = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5"
# Ray Train's run records, which the dashboard's Train page reads (off by default): each run appears there under
# its RunConfig name, the run id that names its session (`<session id[:8]>-train-N`). One actor, no CPU.
STATE_ENV = "RAY_TRAIN_ENABLE_STATE_TRACKING"


def scaling_for(spec: TrainingSpec) -> tuple[ScalingConfig, int]:
    """Workers and CPUs per worker from the cluster; returns the config and torch threads per worker."""
    resources = cluster_size()
    if spec.config.use_gpu and not resources.get("GPU"):
        raise ValueError("use_gpu is true but the Ray cluster has no GPU")
    use_gpu, workers, cpus = worker_plan(spec.config.use_gpu, spec.config.num_workers, spec.default_workers, resources)
    per_worker = {"CPU": cpus, **({"GPU": 1} if use_gpu else {})}
    return ScalingConfig(num_workers=workers, use_gpu=use_gpu, resources_per_worker=per_worker,
                         placement_strategy=spec.config.placement_strategy), cpus


def training_datasets(spec: TrainingSpec) -> dict[str, ray.data.Dataset]:
    """train, test and validation (the uploaded file's, or rows held out of train by the seed) as Ray Datasets.

    A split up to `stream_cache_above_mb` is in the object store before fit(): the workers then hold every CPU
    without starving Ray Data. A larger one is streamed from its files (cache_reads.py), and the hold-out carved
    from it is written under the run's folder (`carved/`) a file at a time.
    """
    path, above = spec.cache.path, spec.stream_cache_above_mb
    datasets = {"test": read_split(path, "test", above)}
    if "validation" in spec.cache.rows:
        datasets.update(train=read_split(path, "train", above), validation=read_split(path, "validation", above))
    elif spec.hyper.validation_rows:
        stratify = spec.config.task_type == "sequence_classification" and not spec.multi_label
        train, held = carved_split(path, spec.hyper.validation_rows, spec.config.seed, stratify, above,
                                   carved_dir(spec))
        datasets.update(train=train, validation=held)
    else:
        datasets["train"] = read_split(path, "train", above)
    return datasets


def carved_dir(spec: TrainingSpec) -> Path:
    """Where a streamed train split's kept and held-out rows are written for this run (removed at its end)."""
    return Path(spec.storage_path).parent / "carved"


def fit_one(spec: TrainingSpec, sink: TrainingSink, datasets: dict, scaling: ScalingConfig,
            threads: int, timings: Timings) -> tuple[Optional[Path], bool]:
    """One Ray Train run; returns the checkpoint kept (the best on validation) and whether a stop ended it."""
    storage = Path(spec.storage_path)
    timings.mark("fit_started")
    result = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop_config(spec, sink, threads, SHUFFLE_BUFFER),
        scaling_config=scaling,
        run_config=RunConfig(
            name=storage.name,
            storage_path=str(storage.parent),
            # Only a better evaluation reports a checkpoint, so the one kept is the best (see loop.py).
            checkpoint_config=CheckpointConfig(num_to_keep=1, checkpoint_score_attribute=SCORE,
                                               checkpoint_score_order="max"),
            # A lost worker or node: restart the worker group, which resumes from the latest checkpoint.
            failure_config=FailureConfig(max_failures=spec.config.max_failures),
        ),
        datasets=datasets,
        # One worker reads all of train itself: a streaming split starts a coordinator actor (a process of its
        # own) before the first batch, to split nothing.
        dataset_config=DataConfig(datasets_to_split=["train"] if scaling.num_workers > 1 else [],
                                  execution_options=ingest_options()),
    ).fit()
    timings.mark("fit_ended")
    return kept_checkpoint(storage), bool(result.metrics and result.metrics.get("stopped"))


def run_training(spec: TrainingSpec, sink: TrainingSink, on_trials: OnTrials = lambda trials: None,
                 on_waiting: OnWaiting = lambda message: None) -> dict:
    """Fine-tune as `spec` says (one run, or a search), reporting live progress to `sink`, a search's trials
    to `on_trials` and a wait for resources to `on_waiting`; returns the run's outcome (paths, metrics).

    Raises ResourceWaitTimeout when the workers' resources are not free within `resource_wait_timeout_s`."""
    timings = Timings()
    timings.mark("began")
    os.environ.setdefault(POLL_ENV, POLL_S)  # a value the server was started with wins (both)
    os.environ.setdefault(STATE_ENV, "1")
    results_dir = Path(spec.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    with timings.phase("datasets"):
        scaling, threads = scaling_for(spec)
        # First: building the datasets runs Ray tasks too, which would wait for the same CPUs without a word.
        wait_for_workers(scaling.resources_per_worker, scaling.num_workers, spec.resource_wait_timeout_s, on_waiting)
        datasets = training_datasets(spec)
    config = spec.archived_config()
    if spec.config.search:
        trial_dir, stopped = run_search(spec, sink, on_trials, datasets, scaling, threads, SHUFFLE_BUFFER)
        checkpoint = best_checkpoint(trial_dir) if trial_dir else None
        if trial_dir:
            adopt_best_trial(trial_dir, results_dir)
            config = {**(read_json(checkpoint / "training_config.json") if checkpoint else config),
                      "search": spec.config.search.model_dump()}
    else:
        checkpoint, stopped = fit_one(spec, sink, datasets, scaling, threads, timings)
    shutil.rmtree(carved_dir(spec), ignore_errors=True)  # a resume carves the same rows again
    worker_timings = read_worker_timings(results_dir)  # rank 0's (a search's: the best trial's, adopted)
    outcome: dict = {"final_metrics": read_json(results_dir / "final_metrics.json"),
                     "resumable": stopped and checkpoint is not None and not spec.config.search}
    if checkpoint is not None:
        outcome["model_dir"] = str(checkpoint)
        with timings.phase("model_archive"):
            outcome["model_archive"] = str(build_model_archive(checkpoint, Path(spec.model_archive)))
    # In the results: every phase but the results archive's own.
    atomic_write_json(results_dir / TIMINGS_FILE, breakdown(timings, worker_timings))
    with timings.phase("results"):
        outcome["results_archive"] = str(build_results(results_dir, config, spec.dataset.model_dump(),
                                                       Path(spec.results_archive), stopped))
    outcome["tracking"] = track(spec, outcome)
    outcome["timings"] = breakdown(timings, worker_timings)
    return outcome
