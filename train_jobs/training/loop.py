"""The per-worker training loop that Ray Train's TorchTrainer runs.

Follows Hugging Face's text-classification example (AdamW, linear schedule,
grad clipping at 1.0) but reads the tokenised Ray Data cache and pads per batch.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    get_linear_schedule_with_warmup,
    set_seed,
)

from train_jobs.files import atomic_write_json
from train_jobs.specs import TrainingSink, TrainingSpec
from train_jobs.training.batching import epoch_batches
from train_jobs.training.collate import PadCollate, model_inputs
from train_jobs.training.precision import autocast, autocast_dtype
from train_jobs.training.priority import lower_priority
from train_jobs.training.progress import ProgressReporter

MAX_GRAD_NORM = 1.0


def loop_config(spec: TrainingSpec, sink: TrainingSink, torch_threads: int, shuffle_buffer: int) -> dict:
    """What `train_loop_per_worker` receives: the spec (as plain data) and this run's worker settings."""
    return {"spec": spec.model_dump(), "sink": sink, "torch_threads": torch_threads, "shuffle_buffer": shuffle_buffer}


def steps_per_epoch(train_rows: int, batch_size: int, world_size: int) -> int:
    per_worker = max(1, batch_size // world_size)
    return max(1, math.ceil((train_rows // world_size) / per_worker))


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
    test_ds: Any
    history: list[dict] = field(default_factory=list)


def _setup(loop: dict) -> Worker:
    spec = TrainingSpec(**loop["spec"])
    cfg = spec.config
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

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    total_steps = steps_per_epoch(spec.train_rows, cfg.batch_size, world) * cfg.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    reporter = (ProgressReporter(loop["sink"], total_steps, cfg.batch_size, str(device), world,
                                 precision="bf16" if amp else "fp32") if rank == 0 else None)
    return Worker(spec, rank, world, device, amp, tokenizer, model, core, optimizer, scheduler,
                  PadCollate(tokenizer.pad_token_id or 0), reporter,
                  ray.train.get_dataset_shard("test"))  # test is not split: rank 0 evaluates all of it


def evaluate(w: Worker, epoch: int, step: int, final: bool, epoch_loss: Optional[float]) -> dict:
    """Rank 0 scores the test split, records the history entry and pushes it; other ranks return {}."""
    if w.rank != 0:
        return {}
    # Imported at the first evaluation, not at start: scikit-learn and SciPy take about a
    # second to import, in this worker and in every process that unpickles this function.
    from train_jobs.training.evaluation import evaluate_sequences, evaluate_tokens, write_final_results

    tokens = w.spec.config.task_type == "token_classification"
    evaluate_split = evaluate_tokens if tokens else evaluate_sequences
    # fp32, not autocast: metrics and predictions are those of the saved model as users will load it.
    metrics, predictions = evaluate_split(w.core, w.test_ds, w.collate, w.device, w.spec, keep_predictions=final)
    entry = {"epoch": epoch, "step": step, "train_loss": epoch_loss, **metrics}
    w.history.append(entry)
    results_dir = Path(w.spec.results_dir)
    atomic_write_json(results_dir / "history.json", w.history)
    if final:
        write_final_results(results_dir, w.spec, predictions)
        atomic_write_json(results_dir / "final_metrics.json", entry)
    w.reporter.push(epoch=epoch, step=step, lr=w.scheduler.get_last_lr()[0], phase="evaluating", evaluation=entry)
    return entry


def stop_requested(w: Worker, step: int, epoch: int) -> bool:
    """Push progress (rank 0) and agree on the session's stop flag across ranks."""
    flag = w.reporter.push(epoch=epoch, step=step, lr=w.scheduler.get_last_lr()[0]) if w.rank == 0 else False
    if w.world > 1:  # every rank leaves the loop at the same step
        t = torch.tensor([int(flag)], device=w.device if w.device.type == "cuda" else "cpu")
        dist.broadcast(t, src=0)
        flag = bool(t.item())
    return flag


def train_epoch(w: Worker, shard, epoch: int, step: int, shuffle_buffer: int) -> tuple[int, float, bool]:
    """One epoch of optimiser steps; returns the step reached, the epoch's mean loss and whether a stop came."""
    cfg = w.spec.config
    loss_sum, loss_n = torch.zeros((), device=w.device), 0
    batches = epoch_batches(shard, batch_size=max(1, cfg.batch_size // w.world), seed=cfg.seed + epoch,
                            shuffle_buffer=shuffle_buffer, group_by_length=cfg.group_by_length, collate=w.collate)
    for batch in batches:
        with autocast(w.amp, w.device):
            out = w.model(**model_inputs(batch, w.device), labels=batch["labels"].to(w.device))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(w.model.parameters(), MAX_GRAD_NORM)
        w.optimizer.step()
        w.scheduler.step()
        w.optimizer.zero_grad(set_to_none=True)
        step += 1
        loss = out.loss.detach()  # no .item() here: on a GPU that would wait for every step
        loss_sum, loss_n = loss_sum + loss, loss_n + 1
        if w.reporter:
            w.reporter.add_step(loss, batch["input_ids"].numel())
        # Step 1 too, so the first step shows at once; then every N steps, off the hot path.
        if (step == 1 or step % w.spec.progress_every_steps == 0) and stop_requested(w, step, epoch):
            return step, loss_sum.item() / max(loss_n, 1), True
    return step, loss_sum.item() / max(loss_n, 1), False


def report(w: Worker, metrics: dict) -> None:
    """Every rank reports; rank 0 attaches the model as a Hugging Face directory checkpoint."""
    if w.rank != 0:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as d:
        w.core.save_pretrained(d)
        w.tokenizer.save_pretrained(d)
        (Path(d) / "training_config.json").write_text(json.dumps(w.spec.archived_config(), indent=1))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))


def train_loop_per_worker(loop: dict) -> None:
    spec = TrainingSpec(**loop["spec"])
    lower_priority(spec.yield_cpu_to_api)
    torch.set_num_threads(loop["torch_threads"])
    w = _setup(loop)
    cfg = spec.config
    train_shard = ray.train.get_dataset_shard("train")
    if cfg.init_eval:
        evaluate(w, 0, 0, final=False, epoch_loss=None)

    step = 0
    w.model.train()
    for epoch in range(1, cfg.epochs + 1):
        step, epoch_loss, stopped = train_epoch(w, train_shard, epoch, step, loop["shuffle_buffer"])
        if stopped:  # keep the weights trained so far
            report(w, {"epoch": epoch, "step": step, "stopped": 1})
            return
        last = epoch == cfg.epochs
        entry = {}
        if last or epoch % cfg.epochs_per_test_run == 0:
            entry = evaluate(w, epoch, step, final=last, epoch_loss=epoch_loss)
        report(w, {"epoch": epoch, "step": step, **{k: v for k, v in entry.items() if v is not None}})
