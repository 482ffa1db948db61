"""Unit tests of train_jobs/training/search.py pieces that need no cluster: space, trial spec, table, stop."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from ray import tune

from train_jobs.config import TrainingConfigParams
from train_jobs.models.lookup import bundled_model_dir
from train_jobs.specs import DatasetSpec, TrainingSpec
from train_jobs.training.hyperparams import plan
from train_jobs.training.search import StopOnUserStop, TrialTable, param_space, trial_spec
from train_jobs.training.selection import BEST, NONE_YET

DATASET = DatasetSpec(train={"rows": 607}, test={"rows": 200}, labels=["a", "b"])


def spec(tmp_path: Path, dataset: DatasetSpec = DATASET, **config) -> TrainingSpec:
    cfg = TrainingConfigParams(**config)
    return TrainingSpec(run_id="r", config=cfg, dataset=dataset, cache={"rows": {"train": 607}, "text_columns": ["text"]},
                        hyper=plan(cfg, dataset, bundled_model_dir()), model_dir=str(bundled_model_dir()),
                        storage_path=str(tmp_path / "r"), results_dir=str(tmp_path / "results"),
                        model_archive="m", results_archive="r", search_dir=str(tmp_path / "search"))


def test_param_space_samples_each_range_as_documented(tmp_path):
    s = spec(tmp_path, search={"space": {"learning_rate": [1e-5, 1e-3], "epochs": [2, 4], "batch_size": [16, 32]}})
    space = param_space(s)
    assert set(space) == {"learning_rate", "epochs", "batch_size"}
    assert isinstance(space["learning_rate"], tune.search.sample.Float)
    assert space["learning_rate"].lower == 1e-5 and space["learning_rate"].upper == 1e-3
    assert space["epochs"].lower == 2 and space["epochs"].upper == 5  # randint's upper bound is exclusive
    assert space["batch_size"].categories == [16, 32]


def test_a_trial_spec_sets_the_sample_resolves_auto_again_and_has_its_own_folders(tmp_path):
    s = spec(tmp_path, search={"trials": 3})
    t = trial_spec(s, {"learning_rate": 3e-4, "batch_size": 32}, tmp_path / "search" / "t1")
    assert t.config.search is None and t.config.learning_rate == 3e-4
    assert (t.hyper.learning_rate, t.hyper.batch_size) == (3e-4, 32)
    assert t.hyper.epochs == s.hyper.epochs and t.hyper.validation_rows == s.hyper.validation_rows == 61
    assert t.hyper.steps_per_epoch == 18  # 546 rows in batches of 32, not the 16 "auto" gave the run
    assert t.results_dir == str(tmp_path / "search" / "t1" / "results")
    assert t.storage_path == str(tmp_path / "search" / "t1" / "train")


def test_a_trial_selects_on_the_runs_resolved_metric(tmp_path):
    rare = DatasetSpec(**{**DATASET.model_dump(), "train": {"rows": 607, "label_counts": {"a": 540, "b": 67}}})  # 1 in 9
    s = spec(tmp_path, rare, search={"trials": 3})
    t = trial_spec(s, {"learning_rate": 3e-4}, tmp_path / "search" / "t1")
    assert s.best_metric == t.best_metric == t.hyper.metric_for_best_model == "f1_macro"
    assert not t.best_metric_minimised


def test_the_trial_table_reports_each_trial_with_its_best_score(tmp_path):
    sent = []
    table = TrialTable(sent.append, spec(tmp_path, search={}), StopOnUserStop())
    trial = SimpleNamespace(trial_id="t_00001", config={"learning_rate": 1e-4}, status="RUNNING", last_result={})
    table.on_trial_start(0, [], trial)
    assert sent[-1] == [{"trial": "t_00001", "config": {"learning_rate": 1e-4}, "evaluations": 0, "state": "RUNNING"}]
    table.on_trial_result(0, [], trial, {BEST: NONE_YET, "training_iteration": 1})
    assert sent[-1][0]["best"] is None
    table.on_trial_result(0, [], trial, {BEST: 0.75, "training_iteration": 2})
    table.on_trial_complete(0, [], trial)
    assert sent[-1][0] == {"trial": "t_00001", "config": {"learning_rate": 1e-4}, "evaluations": 2,
                           "state": "TERMINATED", "best": 0.75}


def test_a_minimised_metric_is_shown_with_its_own_sign(tmp_path):
    sent = []
    table = TrialTable(sent.append, spec(tmp_path, task_type="regression", search={}), StopOnUserStop())
    trial = SimpleNamespace(trial_id="t", config={}, status="RUNNING")
    table.on_trial_result(0, [], trial, {BEST: -0.25, "training_iteration": 1})
    assert sent[-1][0]["best"] == 0.25  # mse


def test_a_trial_ended_by_a_user_stop_starts_no_other_and_is_not_killed(tmp_path):
    stop = StopOnUserStop()
    table = TrialTable(lambda rows: None, spec(tmp_path, search={}), stop)
    trial = SimpleNamespace(trial_id="a", config={}, status="RUNNING", last_result={BEST: 0.5})
    table.on_trial_complete(0, [], trial)
    assert stop.stop_all() is False
    assert stop("b", {"stopped": 1}) is False  # the trial that saw the stop ends by itself
    table.on_trial_complete(0, [], SimpleNamespace(trial_id="b", config={}, status="RUNNING",
                                                   last_result={"stopped": 1}))
    assert stop.stop_all() is True
