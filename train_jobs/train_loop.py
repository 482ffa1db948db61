"""The per-worker training loop that Ray Train's TorchTrainer runs.

Follows Hugging Face's text-classification example (AdamW, linear schedule,
grad clipping at 1.0) but reads the tokenised Ray Data cache and pads per batch.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Optional

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from transformers import (AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer,
                          get_linear_schedule_with_warmup)
from transformers import set_seed

from cluster.storage import atomic_write_json
from train_jobs.batching import epoch_batches
from train_jobs.collate import PadCollate, model_inputs
from train_jobs.progress import ProgressReporter

MAX_GRAD_NORM = 1.0


def steps_per_epoch(train_rows: int, batch_size: int, world_size: int) -> int:
    per_worker = max(1, batch_size // world_size)
    return max(1, math.ceil((train_rows // world_size) / per_worker))


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matmuls run natively (on other CPUs bf16 is emulated, and slower)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """bf16 where asked, or on "auto" where the hardware runs it natively; None means fp32."""
    if precision != "auto":
        return torch.bfloat16 if precision == "bf16" else None
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_native_bf16()
    return torch.bfloat16 if native else None


def autocast(dtype: Optional[torch.dtype], device: torch.device):
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def _save_checkpoint(model, tokenizer, cfg: dict, metrics: dict) -> None:
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        tokenizer.save_pretrained(d)
        (Path(d) / "training_config.json").write_text(json.dumps(cfg["training_config"], indent=1))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))


def lower_priority(enabled: bool) -> None:
    """Run every thread of this worker under SCHED_IDLE (or at nice 19 where that does not exist).

    Training then takes every idle cycle but yields at once to the API, the session
    actor and Ray's own processes, so /status stays fast while training fills the CPUs.
    Threads started later (torch's pool, data prefetch) inherit the policy.
    """
    if not enabled:
        return
    tasks = Path("/proc/self/task")
    for tid in [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]:
        try:
            if hasattr(os, "SCHED_IDLE"):
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            else:
                os.setpriority(os.PRIO_PROCESS, tid, 19)
        except OSError:
            pass  # a thread that ended meanwhile


def head_config(cfg: dict) -> dict:
    """The classification head's config: one output and MSE loss for regression, the label map otherwise."""
    if cfg["task_type"] == "regression":
        return {"num_labels": 1, "problem_type": "regression"}
    labels = cfg["labels"]
    head = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)}}
    if cfg["task_type"] == "token_classification":
        return head
    # multi_label_classification: a sigmoid per label and BCE loss in the transformers head.
    return {**head, "problem_type": "multi_label_classification" if cfg.get("multi_label")
            else "single_label_classification"}


def train_loop_per_worker(cfg: dict) -> None:
    lower_priority(cfg["yield_cpu_to_api"])
    torch.set_num_threads(cfg["torch_threads"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    set_seed(cfg["seed"])
    device = ray.train.torch.get_device()
    amp = autocast_dtype(cfg["precision"], device)

    tokenizer = AutoTokenizer.from_pretrained(cfg["model_dir"], use_fast=True)
    tokens_task = cfg["task_type"] == "token_classification"
    model_class = AutoModelForTokenClassification if tokens_task else AutoModelForSequenceClassification
    model = model_class.from_pretrained(cfg["model_dir"], **head_config(cfg))
    model = ray.train.torch.prepare_model(model)  # moves to device; DDP when world > 1
    core = model.module if hasattr(model, "module") else model
    collate = PadCollate(tokenizer.pad_token_id or 0)

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["learning_rate"], weight_decay=cfg["weight_decay"])
    per_epoch = steps_per_epoch(cfg["train_rows"], cfg["batch_size"], world)
    total_steps = per_epoch * cfg["epochs"]
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg["warmup_ratio"] * total_steps), total_steps)

    train_shard = ray.train.get_dataset_shard("train")
    test_ds = ray.train.get_dataset_shard("test")  # not split: rank 0 evaluates all of it
    reporter = (ProgressReporter(cfg["run_id"], total_steps, cfg["batch_size"], str(device), world,
                                 precision="bf16" if amp else "fp32") if rank == 0 else None)
    results_dir = Path(cfg["results_dir"])
    history: list[dict] = []

    def evaluate(epoch: int, step: int, final: bool, epoch_loss: Optional[float]) -> dict:
        if rank != 0:
            return {}
        # Imported at the first evaluation, not at start: scikit-learn and SciPy take about a
        # second to import, in this worker and in every process that unpickles this function.
        from train_jobs.evaluation import evaluate_tokens, evaluate_sequences, write_final_results

        evaluate_split = evaluate_tokens if tokens_task else evaluate_sequences
        # fp32, not autocast: metrics and predictions are those of the saved model as users will load it.
        metrics, predictions = evaluate_split(core, test_ds, collate, device, cfg, keep_predictions=final)
        entry = {"epoch": epoch, "step": step, "train_loss": epoch_loss, **metrics}
        history.append(entry)
        atomic_write_json(results_dir / "history.json", history)
        if final:
            write_final_results(results_dir, cfg, predictions)
            atomic_write_json(results_dir / "final_metrics.json", entry)
        reporter.push(epoch=epoch, step=step, lr=scheduler.get_last_lr()[0], phase="evaluating", evaluation=entry)
        return entry

    def stop_requested(step: int, epoch: int) -> bool:
        flag = reporter.push(epoch=epoch, step=step, lr=scheduler.get_last_lr()[0]) if rank == 0 else False
        if world > 1:  # every rank leaves the loop at the same step
            t = torch.tensor([int(flag)], device=device if device.type == "cuda" else "cpu")
            dist.broadcast(t, src=0)
            flag = bool(t.item())
        return flag

    if cfg["init_eval"]:
        evaluate(0, 0, final=False, epoch_loss=None)

    step, stopped = 0, False
    model.train()
    for epoch in range(1, cfg["epochs"] + 1):
        loss_sum, loss_n = torch.zeros((), device=device), 0
        batches = epoch_batches(train_shard, batch_size=max(1, cfg["batch_size"] // world), seed=cfg["seed"] + epoch,
                                shuffle_buffer=cfg["shuffle_buffer"], group_by_length=cfg["group_by_length"],
                                collate=collate)
        for batch in batches:
            with autocast(amp, device):
                out = model(**model_inputs(batch, device), labels=batch["labels"].to(device))
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            loss = out.loss.detach()  # no .item() here: on a GPU that would wait for every step
            loss_sum, loss_n = loss_sum + loss, loss_n + 1
            if reporter:
                reporter.add_step(loss, batch["input_ids"].numel())
            # Step 1 too, so the first step shows at once; then every N steps, off the hot path.
            if (step == 1 or step % cfg["progress_every_steps"] == 0) and stop_requested(step, epoch):
                stopped = True
                break
        if stopped:
            break
        last = epoch == cfg["epochs"]
        entry = {}
        if last or epoch % cfg["epochs_per_test_run"] == 0:
            entry = evaluate(epoch, step, final=last, epoch_loss=loss_sum.item() / max(loss_n, 1))
        metrics = {"epoch": epoch, "step": step, **{k: v for k, v in entry.items() if v is not None}}
        if rank == 0:
            _save_checkpoint(core, tokenizer, cfg, metrics)
        else:
            ray.train.report(metrics)

    if stopped:  # keep the weights trained so far
        metrics = {"epoch": epoch, "step": step, "stopped": 1}
        if rank == 0:
            _save_checkpoint(core, tokenizer, cfg, metrics)
        else:
            ray.train.report(metrics)
