"""The per-worker training loop that Ray Train's TorchTrainer runs.

Follows Hugging Face's text-classification example (AdamW, linear schedule,
grad clipping at 1.0) but reads the tokenised Ray Data cache and pads per batch.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from transformers import (AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer,
                          get_linear_schedule_with_warmup)
from transformers import set_seed

from cluster.storage import atomic_write_json
from train_jobs.collate import IGNORE_INDEX, PadCollate
from train_jobs.metrics import (classification_metrics, entity_report, per_class_report, predicted_classes,
                                regression_metrics, token_metrics)
from train_jobs.progress import ProgressReporter

EVAL_BATCH = 128
MAX_GRAD_NORM = 1.0


def steps_per_epoch(train_rows: int, batch_size: int, world_size: int) -> int:
    per_worker = max(1, batch_size // world_size)
    return max(1, math.ceil((train_rows // world_size) / per_worker))


def _model_inputs(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items() if k != "labels"}


def _evaluate(model, test_ds, collate, device, cfg: dict, keep_predictions: bool):
    """Metrics on the whole test split (rank 0 only), plus predictions when asked.

    Outputs are class probabilities for classification (per-label sigmoid for multi-label) and the
    predicted score for regression.
    """
    regression = cfg["task_type"] == "regression"
    threshold = cfg["multi_label_threshold"] if cfg["multi_label"] else None
    activation = torch.sigmoid if threshold is not None else lambda x: torch.softmax(x, dim=-1)
    model.eval()
    probs, labels, texts = [], [], {c: [] for c in cfg["text_columns"]}
    with torch.no_grad():
        for batch in test_ds.iter_batches(batch_size=EVAL_BATCH, batch_format="numpy"):
            tensors = collate(batch)
            logits = model(**_model_inputs(tensors, device)).logits.float()
            probs.append((logits[:, 0] if regression else activation(logits)).cpu().numpy())
            labels.append(tensors["labels"].numpy())
            if keep_predictions:
                for c in texts:
                    texts[c].extend(batch[c].tolist())
    model.train()
    probs_np, labels_np = np.concatenate(probs), np.concatenate(labels)
    if regression:
        metrics = regression_metrics(cfg["eval_metrics"], labels_np, probs_np)
    else:
        metrics = classification_metrics(cfg["eval_metrics"], labels_np, probs_np, threshold)
    return metrics, (probs_np, labels_np, texts)


def _evaluate_tokens(model, test_ds, collate, device, cfg: dict, keep_predictions: bool):
    """Entity-level metrics over the words of the test split (their first sub-tokens)."""
    id2label = dict(enumerate(cfg["labels"]))
    model.eval()
    true_tags, pred_tags, words = [], [], []
    with torch.no_grad():
        for batch in test_ds.iter_batches(batch_size=EVAL_BATCH, batch_format="numpy"):
            tensors = collate(batch)
            preds = model(**_model_inputs(tensors, device)).logits.argmax(-1).cpu().numpy()
            labels = tensors["labels"].numpy()
            for i in range(len(labels)):
                keep = labels[i] != IGNORE_INDEX
                true_tags.append([id2label[int(t)] for t in labels[i][keep]])
                pred_tags.append([id2label[int(t)] for t in preds[i][keep]])
            if keep_predictions:
                words.extend(list(w) for w in batch["tokens"])
    model.train()
    return token_metrics(cfg["eval_metrics"], true_tags, pred_tags), (true_tags, pred_tags, words)


def _write_token_results(results_dir: Path, predictions) -> None:
    true_tags, pred_tags, words = predictions
    atomic_write_json(results_dir / "per_class_report.json", entity_report(true_tags, pred_tags))
    tmp = results_dir / ".predictions.jsonl.tmp"
    with open(tmp, "w") as f:
        for toks, true, pred in zip(words, true_tags, pred_tags):
            # Words cut by max_seq_length have no prediction; they are left out here too.
            f.write(json.dumps({"tokens": toks[: len(true)], "tags": true, "predicted": pred}) + "\n")
    tmp.replace(results_dir / "predictions.jsonl")


def _write_csv(path: Path, header: list[str], rows) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(path)


def _write_final_results(results_dir: Path, cfg: dict, predictions) -> None:
    if cfg["task_type"] == "token_classification":
        return _write_token_results(results_dir, predictions)
    probs, labels, texts = predictions
    if cfg["task_type"] == "regression":
        _write_csv(results_dir / "predictions.csv", [*texts, "score", "prediction"],
                   ([*(texts[c][i] for c in texts), f"{labels[i]:.6g}", f"{probs[i]:.6f}"]
                    for i in range(len(labels))))
        return
    id2label = {i: label for i, label in enumerate(cfg["labels"])}
    preds = predicted_classes(probs, cfg["multi_label_threshold"] if cfg["multi_label"] else None)
    atomic_write_json(results_dir / "per_class_report.json", per_class_report(labels, preds, id2label))
    if cfg["multi_label"]:  # label sets joined by '|', as a CSV upload writes them
        def names(row):
            return "|".join(id2label[i] for i in np.flatnonzero(row))
        label_cells = [(names(labels[i]), names(preds[i])) for i in range(len(labels))]
    else:
        label_cells = [(id2label[int(labels[i])], id2label[int(preds[i])]) for i in range(len(labels))]
    _write_csv(results_dir / "predictions.csv",
               [*texts, "label", "prediction", *[f"prob_{id2label[i]}" for i in sorted(id2label)]],
               ([*(texts[c][i] for c in texts), *label_cells[i], *(f"{p:.6f}" for p in probs[i])]
                for i in range(len(labels))))


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
    reporter = (ProgressReporter(cfg["run_id"], total_steps, cfg["batch_size"], str(device), world)
                if rank == 0 else None)
    results_dir = Path(cfg["results_dir"])
    history: list[dict] = []

    def evaluate(epoch: int, step: int, final: bool, epoch_loss: Optional[float]) -> dict:
        if rank != 0:
            return {}
        evaluate_split = _evaluate_tokens if tokens_task else _evaluate
        metrics, predictions = evaluate_split(core, test_ds, collate, device, cfg, keep_predictions=final)
        entry = {"epoch": epoch, "step": step, "train_loss": epoch_loss, **metrics}
        history.append(entry)
        atomic_write_json(results_dir / "history.json", history)
        if final:
            _write_final_results(results_dir, cfg, predictions)
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
        loss_sum, loss_n = 0.0, 0
        batches = train_shard.iter_torch_batches(
            batch_size=max(1, cfg["batch_size"] // world), collate_fn=collate,
            local_shuffle_buffer_size=cfg["shuffle_buffer"], local_shuffle_seed=cfg["seed"] + epoch,
        )
        for batch in batches:
            out = model(**_model_inputs(batch, device), labels=batch["labels"].to(device))
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            loss = out.loss.item()
            loss_sum, loss_n = loss_sum + loss, loss_n + 1
            if reporter:
                reporter.add_step(loss)
            if step % cfg["progress_every_steps"] == 0 and stop_requested(step, epoch):
                stopped = True
                break
        if stopped:
            break
        last = epoch == cfg["epochs"]
        entry = {}
        if last or epoch % cfg["epochs_per_test_run"] == 0:
            entry = evaluate(epoch, step, final=last, epoch_loss=loss_sum / max(loss_n, 1))
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
