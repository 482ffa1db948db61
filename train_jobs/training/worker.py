"""One training worker's state, built from the spec: model, optimiser, schedule, data and selection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import ray.train
import ray.train.torch
import torch

from train_jobs.specs import TrainingSink, TrainingSpec
from train_jobs.training.collate import PadCollate
from train_jobs.training.hyperparams import steps_per_epoch
from train_jobs.training.precision import autocast_dtype
from train_jobs.training.progress import ProgressReporter
from train_jobs.training.selection import Selection
from train_jobs.training.timings import Timings


def loop_config(spec: TrainingSpec, sink: TrainingSink, torch_threads: int, shuffle_buffer: int) -> dict:
    """What `train_loop_per_worker` receives: the spec (as plain data) and this run's worker settings."""
    return {"spec": spec.model_dump(), "sink": sink, "torch_threads": torch_threads, "shuffle_buffer": shuffle_buffer}


@dataclass
class Position:
    """Where the run is: the next epoch to train and how far into it, with that epoch's running loss."""

    epoch: int = 1
    step: int = 0
    in_epoch: int = 0  # optimiser steps of `epoch` already taken (a resume skips their batches)
    loss_sum: float = 0.0
    loss_n: int = 0
    restarts: int = 0  # times this run resumed from a checkpoint


def head_config(spec: TrainingSpec) -> dict:
    """The classification head's config: one output and MSE loss for regression, the label map otherwise."""
    if spec.config.task_type == "regression":
        return {"num_labels": 1, "problem_type": "regression"}
    labels = spec.labels
    head = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)}}
    if spec.config.task_type == "token_classification":
        return head
    # multi_label_classification: a sigmoid per label and BCE loss in the transformers head.
    return {**head, "problem_type": "multi_label_classification" if spec.multi_label
            else "single_label_classification"}


@dataclass
class Worker:
    """One worker's run: what every step of the loop reads."""

    spec: TrainingSpec
    rank: int
    world: int
    device: torch.device
    amp: Optional[torch.dtype]
    tokenizer: Any
    model: torch.nn.Module  # DDP-wrapped when world > 1
    core: torch.nn.Module  # the bare model, for evaluation and saving
    optimizer: torch.optim.Optimizer
    scheduler: Any
    collate: PadCollate
    reporter: Optional[ProgressReporter]
    eval_ds: Any  # validation when there is some, else test; not split: rank 0 evaluates all of it
    selection: Selection
    history: list[dict] = field(default_factory=list)
    best_state: Optional[dict] = None  # rank 0: the best evaluation's weights, on the CPU
    checkpointed: bool = False
    last_eval_step: int = -1
    position: Position = field(default_factory=Position)
    timings: Timings = field(default_factory=Timings)  # rank 0's phases, for results/timings.json


def setup(loop: dict) -> Worker:
    # Imported here, in the worker: the job actor imports this module for loop_config before it starts the
    # workers, and transformers would add about half a second to every run's start-up there.
    from transformers import (
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
        set_seed,
    )

    spec = TrainingSpec(**loop["spec"])
    cfg, hp = spec.config, spec.hyper
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    set_seed(cfg.seed)
    device = ray.train.torch.get_device()
    amp = autocast_dtype(cfg.precision, device)

    tokenizer = AutoTokenizer.from_pretrained(spec.model_dir, use_fast=True)
    model_class = (AutoModelForTokenClassification if cfg.task_type == "token_classification"
                   else AutoModelForSequenceClassification)
    model = model_class.from_pretrained(spec.model_dir, **head_config(spec))
    model = ray.train.torch.prepare_model(model)  # moves to device; DDP when world > 1
    core = model.module if hasattr(model, "module") else model

    optimizer = torch.optim.AdamW(model.parameters(), lr=hp.learning_rate, weight_decay=cfg.weight_decay)
    total_steps = steps_per_epoch(hp.train_rows, hp.batch_size, world) * hp.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(hp.warmup_ratio * total_steps), total_steps)
    reporter = (ProgressReporter(loop["sink"], total_steps, hp.batch_size, str(device), world,
                                 precision="bf16" if amp else "fp32") if rank == 0 else None)
    selection = Selection(spec.best_metric, spec.best_metric_minimised, hp.early_stopping_patience)
    return Worker(spec, rank, world, device, amp, tokenizer, model, core, optimizer, scheduler,
                  PadCollate(tokenizer.pad_token_id or 0), reporter,
                  ray.train.get_dataset_shard("validation" if spec.validation else "test"), selection)


