"""Unit tests of train_jobs/training/hyperparams.py: what "auto" resolves to, and that set values win."""

from __future__ import annotations

import pytest

from train_jobs.config import TrainingConfigParams
from train_jobs.training.hyperparams import (
    MAX_EPOCHS,
    MIN_EPOCHS,
    MIN_STEPS,
    STEPS_PER_LABEL,
    WARMUP_RATIO,
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
    assert hp.auto == ["early_stopping_patience"]
    assert hp.early_stopping_patience is None  # epochs were set: no early stop unless asked


def test_auto_resolves_warmup_and_patience_only_with_validation():
    hp = resolve(TrainingConfigParams(), 546, 61, True, MINILM)
    assert hp.warmup_ratio == WARMUP_RATIO and hp.early_stopping_patience == 3
    assert set(hp.auto) == {"batch_size", "epochs", "learning_rate", "warmup_ratio", "early_stopping_patience"}
    assert resolve(TrainingConfigParams(validation_split=0), 546, 0, False, MINILM).early_stopping_patience is None
    assert resolve(TrainingConfigParams(early_stopping_patience=5, epochs=9), 546, 0, True,
                   MINILM).early_stopping_patience == 5


def test_plan_holds_validation_rows_out_of_train_unless_a_file_came():
    dataset = {"train": {"rows": 607}, "test": {"rows": 200}, "labels": [f"intent{i}" for i in range(77)]}
    from train_jobs.models.lookup import bundled_model_dir

    hp = plan(TrainingConfigParams(), dataset, bundled_model_dir())
    assert (hp.train_rows, hp.validation_rows, hp.learning_rate) == (546, 61, 1e-4)
    # BANKING77's size: its 77 labels (from the upload's summary) raise the step floor.
    assert plan(TrainingConfigParams(), {**dataset, "train": {"rows": 10_003}}, bundled_model_dir()).epochs == 9
    hp = plan(TrainingConfigParams(), {**dataset, "validation": {"rows": 50}}, bundled_model_dir())
    assert (hp.train_rows, hp.validation_rows) == (607, 0)
    hp = plan(TrainingConfigParams(validation_split=0), dataset, bundled_model_dir())
    assert (hp.train_rows, hp.validation_rows, hp.early_stopping_patience) == (607, 0, None)
