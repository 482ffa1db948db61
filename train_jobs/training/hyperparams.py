"""Hyper-parameters that are right without thought: what "auto" resolves to, from the model and data size.

The rule, and the measurements it comes from, are in the docs (docs/guides/training-config.md, "Automatic
hyper-parameters"). A value the user set is always used as given.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Optional

from train_jobs.config import TrainingConfigParams
from train_jobs.data.validation import validation_size
from train_jobs.models.lookup import parameter_count
from train_jobs.specs import DatasetSpec, Hyperparameters

SMALL_DATA_ROWS = 5_000  # below this, batches of 16: twice the optimiser steps per epoch
MIN_STEPS = 1_000  # auto epochs aim for at least this many optimiser steps...
STEPS_PER_LABEL = 30  # ...or this many per label, when there are many labels (each has a head row to learn)...
MIN_EPOCHS, MAX_EPOCHS = 3, 10  # ...within these bounds
WARMUP_RATIO = 0.1
AUTO_PATIENCE = 3  # evaluations without improvement, when epochs is auto and there is validation data
# Peak learning rate by model size (parameters): small encoders take a larger step than base or large ones.
LEARNING_RATES = ((60e6, 1e-4), (200e6, 5e-5), (600e6, 3e-5), (math.inf, 2e-5))
UNKNOWN_SIZE_LR = 5e-5
# Above this label imbalance, "auto" selects on f1_macro instead of accuracy: with two labels, the rarest under a
# quarter of train (docs/guides/model-selection.md says why).
IMBALANCE_LIMIT = Fraction(1, 4)


def steps_per_epoch(train_rows: int, batch_size: int, world_size: int) -> int:
    """Optimiser steps in one epoch: each worker takes its share of the rows in batches of its share."""
    per_worker = max(1, batch_size // world_size)
    return max(1, math.ceil((train_rows // world_size) / per_worker))


def learning_rate_for(parameters: Optional[int]) -> float:
    if not parameters:
        return UNKNOWN_SIZE_LR
    return next(lr for limit, lr in LEARNING_RATES if parameters <= limit)


def step_floor(labels: int) -> int:
    """The optimiser steps auto epochs aim for: more with many labels (bench/hparam_sweep.py measured it)."""
    return max(MIN_STEPS, STEPS_PER_LABEL * labels)


def label_imbalance(dataset: DatasetSpec) -> Fraction:
    """How far train's labels (an upload's summary) are from balanced: the share of rows that would have to change
    label for every label to have as many rows (total variation from uniform), 0 when balanced; for two labels,
    1/2 less the rarest label's share. Multi-label: each label is a yes/no decision of its own, and the most
    uneven one counts. 0 without label counts (regression)."""
    counts, rows = dataset.train.label_counts, dataset.train.rows
    if not counts:
        return Fraction(0)
    if dataset.multi_label:
        return max(Fraction(1, 2) - Fraction(min(n, rows - n), rows) for n in counts.values())
    total = sum(counts.values())
    return sum(abs(Fraction(n, total) - Fraction(1, len(counts))) for n in counts.values()) / 2


def best_metric_for(config: TrainingConfigParams, imbalance: Fraction = Fraction(0)) -> str:
    """The metric that selects the model: `metric_for_best_model` as set; null: the first of `eval_metrics`;
    "auto": the same, except that accuracy, which a model earns by neglecting a rare label, gives way to f1_macro
    (each label counts alike) on classification data more imbalanced than IMBALANCE_LIMIT."""
    first = config.eval_metrics[0]
    if config.metric_for_best_model != "auto":
        return config.metric_for_best_model or first
    imbalanced = config.task_type == "sequence_classification" and imbalance > IMBALANCE_LIMIT
    return "f1_macro" if first == "accuracy" and imbalanced else first


def resolve(config: TrainingConfigParams, train_rows: int, validation_rows: int, validation: bool,
            parameters: Optional[int], labels: int = 0, world_size: int = 1,
            imbalance: Fraction = Fraction(0)) -> Hyperparameters:
    """Resolve every "auto" field for `train_rows` training rows (after the hold-out), `labels` labels (0 for
    regression), labels this uneven (`label_imbalance`) and a model this size."""
    auto = [f for f in ("batch_size", "epochs", "learning_rate", "warmup_ratio", "early_stopping_patience",
                        "metric_for_best_model") if getattr(config, f) == "auto"]
    batch = config.batch_size if config.batch_size != "auto" else (16 if train_rows < SMALL_DATA_ROWS else 32)
    per_epoch = steps_per_epoch(train_rows, batch, world_size)
    wanted = math.ceil(step_floor(labels) / per_epoch)
    epochs = config.epochs if config.epochs != "auto" else min(MAX_EPOCHS, max(MIN_EPOCHS, wanted))
    patience = config.early_stopping_patience
    if patience == "auto":
        patience = AUTO_PATIENCE if config.epochs == "auto" and validation else None
    return Hyperparameters(
        batch_size=batch, epochs=epochs, steps_per_epoch=per_epoch, early_stopping_patience=patience,
        learning_rate=config.learning_rate if config.learning_rate != "auto" else learning_rate_for(parameters),
        warmup_ratio=config.warmup_ratio if config.warmup_ratio != "auto" else WARMUP_RATIO,
        metric_for_best_model=best_metric_for(config, imbalance),
        train_rows=train_rows, validation_rows=validation_rows, auto=auto)


def plan(config: TrainingConfigParams, dataset: DatasetSpec, model_dir: Path) -> Hyperparameters:
    """The hyper-parameters a run on `dataset` (an upload's summary) with this model will use."""
    rows = dataset.train.rows
    uploaded = dataset.validation is not None
    held = 0 if uploaded else validation_size(rows, config.validation_split)
    return resolve(config, rows - held, held, uploaded or held > 0, parameter_count(model_dir),
                   labels=len(dataset.labels), imbalance=label_imbalance(dataset))
