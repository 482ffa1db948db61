"""The per-worker training loop that Ray Train's TorchTrainer runs.

Follows Hugging Face's text-classification example (AdamW, linear schedule,
grad clipping at 1.0) but reads the tokenised Ray Data cache and pads per batch.
With validation data, every evaluation scores it; a better score is reported
with a checkpoint (so the one Ray Train keeps is the best), patience may stop
the run early, and the test split is scored once, at the end, on the best model.
Without validation, evaluations score test and the last epoch's model is kept.
"""

from __future__ import annotations

import json
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
from train_jobs.training.hyperparams import steps_per_epoch
from train_jobs.training.precision import autocast, autocast_dtype
from train_jobs.training.priority import lower_priority
from train_jobs.training.progress import ProgressReporter
from train_jobs.training.selection import BEST, SCORE, Selection

MAX_GRAD_NORM = 1.0


def loop_config(spec: TrainingSpec, sink: TrainingSink, torch_threads: int, shuffle_buffer: int) -> dict:
    """What `train_loop_per_worker` receives: the spec (as plain data) and this run's worker settings."""
    return {"spec": spec.model_dump(), "sink": sink, "torch_threads": torch_threads, "shuffle_buffer": shuffle_buffer}


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


def _setup(loop: dict) -> Worker:
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
    selection = Selection(cfg.best_metric, cfg.best_metric_minimised, hp.early_stopping_patience)
    return Worker(spec, rank, world, device, amp, tokenizer, model, core, optimizer, scheduler,
                  PadCollate(tokenizer.pad_token_id or 0), reporter,
                  ray.train.get_dataset_shard("validation" if spec.validation else "test"), selection)


def evaluate(w: Worker, dataset, split: str, epoch: int, step: int, final: bool,
             epoch_loss: Optional[float]) -> dict:
    """Rank 0 scores `dataset` and returns the entry (writing the result files when `final`); others get {}."""
    if w.rank != 0:
        return {}
    # Imported at the first evaluation, not at start: scikit-learn and SciPy take about a
    # second to import, in this worker and in every process that unpickles this function.
    from train_jobs.training.evaluation import evaluate_sequences, evaluate_tokens, write_final_results

    tokens = w.spec.config.task_type == "token_classification"
    evaluate_split = evaluate_tokens if tokens else evaluate_sequences
    # fp32, not autocast: metrics and predictions are those of the saved model as users will load it.
    metrics, predictions = evaluate_split(w.core, dataset, w.collate, w.device, w.spec, keep_predictions=final)
    entry = {"epoch": epoch, "step": step, "split": split, "train_loss": epoch_loss, **metrics}
    if final:
        write_final_results(Path(w.spec.results_dir), w.spec, predictions)
    return entry


def agree(w: Worker, flag: bool) -> bool:
    """Rank 0's decision, for every rank: all of them leave the loop or save at the same step."""
    if w.world > 1:
        t = torch.tensor([int(flag)], device=w.device if w.device.type == "cuda" else "cpu")
        dist.broadcast(t, src=0)
        flag = bool(t.item())
    return flag


def stop_requested(w: Worker, step: int, epoch: int) -> bool:
    """Push progress (rank 0) and agree on the session's stop flag across ranks."""
    return agree(w, w.reporter.push(epoch=epoch, step=step, lr=w.scheduler.get_last_lr()[0]) if w.rank == 0 else False)


def evaluation_point(w: Worker, epoch: int, step: int, epoch_loss: Optional[float]) -> bool:
    """Evaluate, keep the model when it is the best so far, report; True when patience ran out."""
    # Without validation, the last epoch's evaluation scores test for the results, and that model is kept.
    final = not w.spec.validation and epoch == w.spec.hyper.epochs and epoch_loss is not None
    if step == w.last_eval_step and not final:  # an eval_steps evaluation just ran at this step
        return False
    w.last_eval_step = step
    split = "validation" if w.spec.validation else "test"
    entry = evaluate(w, w.eval_ds, split, epoch, step, final, epoch_loss)
    improved = agree(w, w.rank == 0 and (w.selection.update(entry) if w.spec.validation else step > 0))
    if w.rank == 0:
        w.history.append(entry)
        atomic_write_json(Path(w.spec.results_dir) / "history.json", w.history)
        if final:
            atomic_write_json(Path(w.spec.results_dir) / "final_metrics.json", entry)
        w.reporter.push(epoch=epoch, step=step, lr=w.scheduler.get_last_lr()[0], phase="evaluating",
                        evaluation=entry)
    if improved and w.rank == 0 and w.spec.validation:
        w.best_state = {k: v.detach().to("cpu", copy=True) for k, v in w.core.state_dict().items()}
    metrics = {"epoch": epoch, "step": step, **{k: v for k, v in entry.items() if isinstance(v, (int, float))}}
    report(w, metrics, checkpoint=improved)
    return agree(w, w.rank == 0 and w.selection.exhausted)


def train_epoch(w: Worker, shard, epoch: int, step: int, shuffle_buffer: int) -> tuple[int, float, str]:
    """One epoch of optimiser steps; returns the step reached, the epoch's mean loss and why it ended
    ("done", "stopped" by the user, or "patience" run out at a mid-epoch evaluation)."""
    cfg, hp = w.spec.config, w.spec.hyper
    loss_sum, loss_n = torch.zeros((), device=w.device), 0
    batches = epoch_batches(shard, batch_size=max(1, hp.batch_size // w.world), seed=cfg.seed + epoch,
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
            return step, loss_sum.item() / max(loss_n, 1), "stopped"
        if cfg.eval_steps and step % cfg.eval_steps == 0 and evaluation_point(w, epoch, step, None):
            return step, loss_sum.item() / max(loss_n, 1), "patience"
    return step, loss_sum.item() / max(loss_n, 1), "done"


def report(w: Worker, metrics: dict, checkpoint: bool) -> None:
    """Every rank reports; with `checkpoint`, rank 0 attaches the model as a Hugging Face directory."""
    if w.spec.validation:
        metrics = {**metrics, BEST: w.selection.score()}
    if w.rank != 0 or not checkpoint:
        ray.train.report(metrics)
        return
    w.checkpointed = True
    config = w.spec.archived_config()
    if w.spec.validation and w.selection.best is not None:
        config["selected"] = w.selection.describe()
        metrics = {**metrics, SCORE: w.selection.score()}
    else:
        metrics = {**metrics, SCORE: float(metrics.get("step", 0))}  # no selection: the latest is the one kept
    with tempfile.TemporaryDirectory() as d:
        w.core.save_pretrained(d)
        w.tokenizer.save_pretrained(d)
        (Path(d) / "training_config.json").write_text(json.dumps(config, indent=1))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))


def test_selected_model(w: Worker, epoch: int, step: int) -> None:
    """The test split, scored once on the best validation model: final_metrics.json and the predictions."""
    if w.rank == 0 and w.best_state is not None:
        w.core.load_state_dict(w.best_state)
    if w.rank == 0:
        w.reporter.push(epoch=epoch, step=step, lr=w.scheduler.get_last_lr()[0], phase="testing")
        best = w.selection.best or {"epoch": epoch, "step": step}
        entry = evaluate(w, ray.train.get_dataset_shard("test"), "test", best["epoch"], best["step"], True, None)
        entry["selected"] = w.selection.describe() if w.selection.best else None
        atomic_write_json(Path(w.spec.results_dir) / "final_metrics.json", entry)
    report(w, {"epoch": epoch, "step": step}, checkpoint=not agree(w, w.checkpointed))


def train_loop_per_worker(loop: dict) -> None:
    spec = TrainingSpec(**loop["spec"])
    lower_priority(spec.yield_cpu_to_api)
    torch.set_num_threads(loop["torch_threads"])
    w = _setup(loop)
    cfg = spec.config
    train_shard = ray.train.get_dataset_shard("train")
    if cfg.init_eval:
        evaluation_point(w, 0, 0, None)

    step, epoch = 0, 0
    w.model.train()
    for epoch in range(1, spec.hyper.epochs + 1):
        step, epoch_loss, ended = train_epoch(w, train_shard, epoch, step, loop["shuffle_buffer"])
        if ended == "stopped":  # keep the best model so far; without validation (or none yet), the weights so far
            keep_best = spec.validation and agree(w, w.checkpointed)
            report(w, {"epoch": epoch, "step": step, "stopped": 1}, checkpoint=not keep_best)
            return
        if ended == "patience":
            break
        if (epoch == spec.hyper.epochs or epoch % cfg.epochs_per_test_run == 0) and \
                evaluation_point(w, epoch, step, epoch_loss):
            break
    if spec.validation:
        test_selected_model(w, epoch, step)
