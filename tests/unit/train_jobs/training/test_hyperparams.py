"""Unit tests of train_jobs/training/hyperparams.py: what "auto" resolves to, and that set values win."""

from __future__ import annotations

from fractions import Fraction

import pytest

from train_jobs.config import TrainingConfigParams
from train_jobs.specs import DatasetSpec
from train_jobs.training.hyperparams import (
    IMBALANCE_LIMIT,
    MAX_EPOCHS,
    MIN_EPOCHS,
    MIN_STEPS,
    STEPS_PER_LABEL,
    WARMUP_RATIO,
    best_metric_for,
    label_imbalance,
    learning_rate_for,
    plan,
    resolve,
    step_floor,
    steps_per_epoch,
)

MINILM = 22_713_728  # all-MiniLM-L6-v2


@pytest.mark.parametrize("parameters, lr", [(MINILM, 1e-4), (110_000_000, 5e-5), (335_000_000, 3e-5),
                                            (1_500_000_000, 2e-5), (None, 5e-5)])
def test_learning_rate_follows_model_size(parameters, lr):
    assert learning_rate_for(parameters) == lr


@pytest.mark.parametrize("rows, labels, batch, epochs", [
    (546, 5, 16, MAX_EPOCHS),      # the bundled sample: few steps per epoch, so the most epochs
    (2_700, 0, 16, 6),             # STS-B 3,000 rows less the hold-out: ceil(1000 / 169)
    (3_600, 2, 16, 5),             # SST-2 4,000 rows less the hold-out
    (9_003, 77, 32, 9),            # BANKING77: 77 labels raise the floor to 2,310 steps, ceil(2310 / 282)
    (9_003, 2, 32, 4),             # the same rows with two labels: ceil(1000 / 282)
    (60_000, 2, 32, MIN_EPOCHS),   # plenty of steps in one epoch: the floor
])
def test_auto_batch_and_epochs_follow_the_data_size(rows, labels, batch, epochs):
    hp = resolve(TrainingConfigParams(), rows, 0, True, MINILM, labels=labels)
    assert (hp.batch_size, hp.epochs) == (batch, epochs)
    assert hp.steps_per_epoch == steps_per_epoch(rows, batch, 1)
    assert hp.epochs in (MAX_EPOCHS, MIN_EPOCHS) or hp.epochs * hp.steps_per_epoch >= step_floor(labels)


def test_the_step_floor_grows_with_many_labels_only():
    assert step_floor(0) == step_floor(2) == step_floor(MIN_STEPS // STEPS_PER_LABEL) == MIN_STEPS
    assert step_floor(77) == 77 * STEPS_PER_LABEL > MIN_STEPS


def test_values_set_by_the_user_are_used_as_given():
    config = TrainingConfigParams(batch_size=8, epochs=2, learning_rate=3e-3, warmup_ratio=0.0)
    hp = resolve(config, 546, 0, True, MINILM)
    assert (hp.batch_size, hp.epochs, hp.learning_rate, hp.warmup_ratio) == (8, 2, 3e-3, 0.0)
    assert hp.auto == ["early_stopping_patience", "metric_for_best_model"]
    assert hp.early_stopping_patience is None  # epochs were set: no early stop unless asked


def test_auto_resolves_warmup_and_patience_only_with_validation():
    hp = resolve(TrainingConfigParams(), 546, 61, True, MINILM)
    assert hp.warmup_ratio == WARMUP_RATIO and hp.early_stopping_patience == 3
    assert set(hp.auto) == {"batch_size", "epochs", "learning_rate", "warmup_ratio", "early_stopping_patience",
                           "metric_for_best_model"}
    assert resolve(TrainingConfigParams(validation_split=0), 546, 0, False, MINILM).early_stopping_patience is None
    assert resolve(TrainingConfigParams(early_stopping_patience=5, epochs=9), 546, 0, True,
                   MINILM).early_stopping_patience == 5


def test_plan_holds_validation_rows_out_of_train_unless_a_file_came():
    fields = {"train": {"rows": 607}, "test": {"rows": 200}, "labels": [f"intent{i}" for i in range(77)]}
    dataset = summary(**fields)
    from train_jobs.models.lookup import bundled_model_dir

    hp = plan(TrainingConfigParams(), dataset, bundled_model_dir())
    assert (hp.train_rows, hp.validation_rows, hp.learning_rate) == (546, 61, 1e-4)
    # BANKING77's size: its 77 labels (from the upload's summary) raise the step floor.
    assert plan(TrainingConfigParams(), summary(**{**fields, "train": {"rows": 10_003}}), bundled_model_dir()).epochs == 9
    hp = plan(TrainingConfigParams(), summary(**fields, validation={"rows": 50}), bundled_model_dir())
    assert (hp.train_rows, hp.validation_rows) == (607, 0)
    hp = plan(TrainingConfigParams(validation_split=0), dataset, bundled_model_dir())
    assert (hp.train_rows, hp.validation_rows, hp.early_stopping_patience) == (607, 0, None)


# --- metric_for_best_model: "auto" --------------------------------------------------------------------------


def summary(**fields) -> DatasetSpec:
    """An upload's summary with these fields (an empty test file unless given)."""
    return DatasetSpec(**{"test": {}, **fields})


def single(*counts: int, **fields) -> DatasetSpec:
    """An upload's summary with these rows per label."""
    return summary(train={"rows": sum(counts), "label_counts": {f"l{i}": n for i, n in enumerate(counts)}},
                   labels=[f"l{i}" for i in range(len(counts))], **fields)


# BANKING77's train (10,003 rows): rows per label, sorted. The rarest has a fifth of the largest's rows.
BANKING77 = single(
    35, 41, 59, 61, 82, 86, 87, 95, 97, 97, 98, 102, 103, 104, 105, 106, 108, 110, 111, 112, 112, 112, 113, 113, 114,
    114, 115, 118, 120, 121, 121, 121, 121, 121, 122, 126, 126, 126, 127, 128, 129, 129, 129, 129, 133, 135, 137, 139,
    143, 145, 146, 148, 149, 153, 153, 156, 157, 159, 159, 160, 161, 162, 163, 166, 167, 168, 169, 171, 171, 172, 173,
    175, 177, 180, 181, 182, 187)


@pytest.mark.parametrize("dataset, imbalance", [
    (single(500, 500), 0),
    (single(3500, 500), Fraction(3, 8)),         # one row in eight: 1/2 - 1/8
    (single(300, 100), Fraction(1, 4)),          # one in four: the limit itself
    (single(2474, 1194), Fraction(640, 3668)),   # MRPC's train: (2474 - 1834) / 3668
    (single(60, 30, 10), Fraction(8, 30)),       # (60 - 33.3) / 100: the two under a third make up what is over
])
def test_label_imbalance_is_the_share_of_rows_off_balance(dataset, imbalance):
    assert label_imbalance(dataset) == imbalance


def test_label_imbalance_of_multi_label_data_is_its_most_uneven_label():
    dataset = summary(multi_label=True, train={"rows": 100, "label_counts": {"a": 50, "b": 10, "c": 95}})
    assert label_imbalance(dataset) == Fraction(1, 2) - Fraction(5, 100)  # c: only 5 rows without it
    assert label_imbalance(summary(train={"rows": 100, "score": {}})) == 0  # regression: no labels


@pytest.mark.parametrize("dataset, metric", [
    (single(500, 500), "accuracy"),
    (single(3500, 500), "f1_macro"),      # the one positive row in eight
    (single(3200, 800), "f1_macro"),      # one in five
    (single(300, 100), "accuracy"),       # one in four: not over the limit
    (single(2474, 1194), "accuracy"),     # MRPC: a third of rows in the rarer label
    (BANKING77, "accuracy"),              # many labels, roughly balanced, though the rarest is a fifth of the largest
    (single(60, 30, 10), "f1_macro"),
    (single(45, 45, 10), "accuracy"),     # one small label among three: 0.23 off balance
])
def test_auto_selects_on_accuracy_unless_the_labels_are_imbalanced(dataset, metric):
    assert best_metric_for(TrainingConfigParams(), label_imbalance(dataset)) == metric


def test_banking77_is_well_under_the_limit():
    assert BANKING77.train.rows == 10_003 and len(BANKING77.labels) == 77
    assert label_imbalance(BANKING77) < IMBALANCE_LIMIT / 2  # about 0.10


def test_auto_keeps_a_first_metric_other_than_accuracy_and_the_other_tasks_defaults():
    rare = Fraction(3, 8)
    assert best_metric_for(TrainingConfigParams(eval_metrics=["f1", "accuracy"]), rare) == "f1"
    assert best_metric_for(TrainingConfigParams(task_type="regression"), rare) == "mse"
    assert best_metric_for(TrainingConfigParams(task_type="regression", eval_metrics=["pearson"]), rare) == "pearson"
    assert best_metric_for(TrainingConfigParams(task_type="token_classification"), rare) == "f1"
    token_accuracy = TrainingConfigParams(task_type="token_classification", eval_metrics=["accuracy"])
    assert best_metric_for(token_accuracy, rare) == "accuracy"  # tags are always uneven: seqeval's f1 is the default


def test_a_metric_for_best_model_you_set_is_used_as_given_and_null_means_the_first_eval_metric():
    rare = Fraction(3, 8)
    assert best_metric_for(TrainingConfigParams(metric_for_best_model="accuracy"), rare) == "accuracy"
    assert best_metric_for(TrainingConfigParams(metric_for_best_model="roc_auc"), 0) == "roc_auc"
    assert best_metric_for(TrainingConfigParams(metric_for_best_model=None), rare) == "accuracy"
    assert best_metric_for(TrainingConfigParams(metric_for_best_model=None, eval_metrics=["f1_micro"])) == "f1_micro"


def test_plan_resolves_the_metric_from_the_uploads_label_counts():
    from train_jobs.models.lookup import bundled_model_dir

    hp = plan(TrainingConfigParams(), single(3500, 500, test={"rows": 10}), bundled_model_dir())
    assert hp.metric_for_best_model == "f1_macro" and "metric_for_best_model" in hp.auto
    hp = plan(TrainingConfigParams(metric_for_best_model="accuracy"), single(3500, 500, test={"rows": 10}),
              bundled_model_dir())
    assert hp.metric_for_best_model == "accuracy" and "metric_for_best_model" not in hp.auto
    multi = summary(multi_label=True, train={"rows": 400, "label_counts": {"a": 200, "b": 40}}, labels=["a", "b"])
    assert plan(TrainingConfigParams(), multi, bundled_model_dir()).metric_for_best_model == "f1_macro"
