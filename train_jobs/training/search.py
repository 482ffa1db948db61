"""Hyper-parameter search with Ray Tune: trials sampled from the config's space, each a Ray Train run.

Each trial is the same worker loop as a single run, with the sampled values in
its config; it reports every evaluation to Tune (the best validation score so
far), so ASHA can end trailing trials early. The best trial on validation gives
the session its model, test metrics and results, with a table and a plot of all
trials beside them. Samples are drawn from the seed, so a search repeats.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Optional

from ray import tune
from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator

from train_jobs.data.cache_reads import ingest_options
from train_jobs.files import atomic_write_csv, read_json
from train_jobs.models.lookup import parameter_count
from train_jobs.specs import TrainingSink, TrainingSpec
from train_jobs.training.hyperparams import label_imbalance, resolve
from train_jobs.training.loop import train_loop_per_worker
from train_jobs.training.selection import BEST, SCORE
from train_jobs.training.worker import loop_config

OnTrials = Callable[[list[dict]], None]
SPACE_SAMPLERS = {"learning_rate": lambda lo, hi: tune.loguniform(lo, hi), "warmup_ratio": tune.uniform,
                  "weight_decay": tune.uniform, "epochs": lambda lo, hi: tune.randint(lo, hi + 1)}


def param_space(spec: TrainingSpec) -> dict:
    space = spec.config.search.space
    sampled = {name: sample(*getattr(space, name)) for name, sample in SPACE_SAMPLERS.items()
               if getattr(space, name) is not None}
    if space.batch_size:
        sampled["batch_size"] = tune.choice(space.batch_size)
    return sampled


def trial_spec(spec: TrainingSpec, sampled: dict, trial_dir: Path) -> TrainingSpec:
    """The run's spec with the sampled values set, "auto" resolved again for them, and the trial's own folders."""
    config = spec.config.model_copy(update={**sampled, "search": None})
    hyper = resolve(config, spec.hyper.train_rows, spec.hyper.validation_rows, spec.validation,
                    parameter_count(Path(spec.model_dir)), labels=len(spec.labels),
                    imbalance=label_imbalance(spec.dataset))
    return spec.model_copy(update={"config": config, "hyper": hyper, "storage_path": str(trial_dir / "train"),
                                   "results_dir": str(trial_dir / "results")})


class TrialSink:
    """A trial's live progress and evaluations, tagged with the trial, to the run's sink."""

    def __init__(self, sink: TrainingSink, trial: str):
        self.sink, self.trial = sink, trial

    def __call__(self, info: dict, evaluation: Optional[dict]) -> bool:
        return self.sink({**info, "trial": self.trial}, {**evaluation, "trial": self.trial} if evaluation else None)


def free_stopped_trials_workers() -> int:
    """Remove the workers' placement groups this job still holds; returns how many. Called as a trial starts,
    one trial at a time: any such group then belongs to an earlier trial that ASHA stopped, whose Ray Train
    run was killed with its trial before it could release its workers (its CPUs would stay reserved, and this
    trial would wait for them for ever). Tune's own trial groups ask for memory alone and are left be."""
    import ray
    from ray.util.placement_group import PlacementGroup, placement_group_table, remove_placement_group

    job = ray.get_runtime_context().get_job_id()
    stale = [group_id for group_id, group in placement_group_table().items()
             if group["state"] == "CREATED" and group_id.endswith(job)  # a group's id ends with its job's
             and any(b.get("CPU") or b.get("GPU") for b in group["bundles"].values())]
    for group_id in stale:
        remove_placement_group(PlacementGroup(ray.PlacementGroupID(bytes.fromhex(group_id))))
    return len(stale)


def _trial(sampled: dict, *, spec: TrainingSpec, sink: TrainingSink, datasets: dict, scaling: ScalingConfig,
           threads: int, shuffle_buffer: int) -> None:
    trial = tune.get_context().get_trial_id()
    if (spec.config.search.max_concurrent or 1) == 1:
        free_stopped_trials_workers()
    tspec = trial_spec(spec, sampled, Path(spec.search_dir) / trial)
    TorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop_config(tspec, TrialSink(sink, trial), threads, shuffle_buffer),
        scaling_config=scaling,
        run_config=RunConfig(name="train", storage_path=str(Path(spec.search_dir) / trial),
                             checkpoint_config=CheckpointConfig(num_to_keep=1, checkpoint_score_attribute=SCORE,
                                                                checkpoint_score_order="max"),
                             failure_config=FailureConfig(max_failures=spec.config.max_failures),
                             callbacks=[TuneReportCallback()]),
        datasets=datasets,
        dataset_config=DataConfig(datasets_to_split=["train"], execution_options=ingest_options()),
    ).fit()


class TrialTable(tune.Callback):
    """Each trial's config, state and best score, sent to the session as they change."""

    def __init__(self, on_trials: OnTrials, spec: TrainingSpec, stop: StopOnUserStop):
        self.on_trials, self.spec, self.stop, self.rows = on_trials, spec, stop, {}

    def _update(self, trial, result: Optional[dict] = None, state: Optional[str] = None) -> None:
        row = self.rows.setdefault(trial.trial_id, {"trial": trial.trial_id, "config": trial.config, "evaluations": 0})
        if result and BEST in result:
            best = result[BEST]
            row["best"] = None if best <= -1e29 else (-best if self.spec.best_metric_minimised else best)
            row["evaluations"] = result.get("training_iteration", row["evaluations"])
        row["state"] = state or trial.status
        self.on_trials(sorted(self.rows.values(), key=lambda r: r["trial"]))

    def on_trial_start(self, iteration, trials, trial, **info):
        self._update(trial, state="RUNNING")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._update(trial, result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if (trial.last_result or {}).get("stopped"):  # it ended on a user's stop: start no other trial
            self.stop.stopped = True
        self._update(trial, state="TERMINATED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._update(trial, state="ERROR")


class StopOnUserStop(tune.Stopper):
    """A user's training/stop ends the trial that sees it, and no other trial starts after it.

    The trial ends by itself (it saves its checkpoint and its Ray Train run shuts down, freeing its workers'
    placement group); stopping it from here instead would kill it mid-cleanup and could leave the CPUs reserved.
    """

    def __init__(self):
        self.stopped = False

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.stopped


def run_search(spec: TrainingSpec, sink: TrainingSink, on_trials: OnTrials, datasets: dict,
               scaling: ScalingConfig, threads: int, shuffle_buffer: int) -> tuple[Optional[Path], bool]:
    """Run the trials; returns the best trial's folder (None when no trial evaluated) and whether a user's
    stop ended the search."""
    search = spec.config.search
    stop = StopOnUserStop()
    table = TrialTable(on_trials, spec, stop)
    trainable = tune.with_parameters(_trial, spec=spec, sink=sink, datasets=datasets, scaling=scaling,
                                     threads=threads, shuffle_buffer=shuffle_buffer)
    scheduler = (ASHAScheduler(time_attr="training_iteration", max_t=10_000, grace_period=1, reduction_factor=2)
                 if search.scheduler == "asha" else FIFOScheduler())
    tune.Tuner(
        # The trial only drives its trainer: no CPU (a byte of memory, as a placement group needs some resource).
        tune.with_resources(trainable, {"cpu": 0, "memory": 1}),
        param_space=param_space(spec),
        tune_config=tune.TuneConfig(
            metric=BEST, mode="max", num_samples=search.trials, scheduler=scheduler,
            search_alg=BasicVariantGenerator(random_state=spec.config.seed, max_concurrent=search.max_concurrent or 1),
            max_concurrent_trials=search.max_concurrent or 1),
        run_config=tune.RunConfig(name="tune", storage_path=spec.search_dir, stop=stop, callbacks=[table]),
    ).fit()
    rows = table.rows.values()
    write_trials(Path(spec.results_dir), list(rows), spec)
    scored = [r for r in rows if r.get("best") is not None
              and (Path(spec.search_dir) / r["trial"] / "results" / "final_metrics.json").is_file()]
    if not scored:
        return None, stop.stopped
    sign = -1 if spec.best_metric_minimised else 1
    best = max(sorted(scored, key=lambda r: r["trial"]), key=lambda r: sign * r["best"])  # a tie: the first trial
    return Path(spec.search_dir) / best["trial"], stop.stopped


def write_trials(results_dir: Path, rows: list[dict], spec: TrainingSpec) -> None:
    """trials.csv and trials.png in the results: every trial's sampled values, state and best validation score."""
    results_dir.mkdir(parents=True, exist_ok=True)
    names = sorted({k for r in rows for k in r["config"]})
    metric = f"best_{spec.best_metric}"
    atomic_write_csv(results_dir / "trials.csv", ["trial", *names, "state", "evaluations", metric],
                     ([r["trial"], *(r["config"].get(n) for n in names), r["state"], r["evaluations"], r.get("best")]
                      for r in sorted(rows, key=lambda r: r["trial"])))
    from train_jobs.results.report import plot_trials  # matplotlib: only where results are built

    plot_trials(rows, names, metric, results_dir / "trials.png")


def adopt_best_trial(trial_dir: Path, results_dir: Path) -> dict:
    """The best trial's results become the run's (beside trials.csv and trials.png); returns its test metrics."""
    shutil.copytree(trial_dir / "results", results_dir, dirs_exist_ok=True)
    return read_json(results_dir / "final_metrics.json") or {}


def best_checkpoint(trial_dir: Path) -> Optional[Path]:
    from train_jobs.results.archives import kept_checkpoint

    return kept_checkpoint(trial_dir / "train")


