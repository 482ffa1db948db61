"""Evaluation of a split (rank 0) and the result files the final test leaves: metrics, predictions, per-class report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from train_jobs.files import atomic_write_csv, atomic_write_json, atomic_write_lines
from train_jobs.specs import TrainingSpec
from train_jobs.training.collate import IGNORE_INDEX, model_inputs
from train_jobs.training.metrics import (
    classification_metrics,
    entity_report,
    per_class_report,
    predicted_classes,
    regression_metrics,
    token_metrics,
)

EVAL_BATCH = 128


def evaluate_sequences(model, dataset, collate, device, spec: TrainingSpec, keep_predictions: bool):
    """Metrics on a whole split (rank 0 only), plus predictions when asked.

    Outputs are class probabilities for classification (per-label sigmoid for multi-label) and the
    predicted score for regression.
    """
    regression = spec.config.task_type == "regression"
    threshold = spec.config.multi_label_threshold if spec.multi_label else None
    activation = torch.sigmoid if threshold is not None else lambda x: torch.softmax(x, dim=-1)
    model.eval()
    probs, labels, texts = [], [], {c: [] for c in spec.text_columns}
    with torch.no_grad():
        for batch in dataset.iter_batches(batch_size=EVAL_BATCH, batch_format="numpy"):
            tensors = collate(batch)
            logits = model(**model_inputs(tensors, device)).logits.float()
            probs.append((logits[:, 0] if regression else activation(logits)).cpu().numpy())
            labels.append(tensors["labels"].numpy())
            if keep_predictions:
                for c in texts:
                    texts[c].extend(batch[c].tolist())
    model.train()
    probs_np, labels_np = np.concatenate(probs), np.concatenate(labels)
    if regression:
        metrics = regression_metrics(spec.scored_metrics, labels_np, probs_np)
    else:
        metrics = classification_metrics(spec.scored_metrics, labels_np, probs_np, threshold)
    return metrics, (probs_np, labels_np, texts)


def evaluate_tokens(model, dataset, collate, device, spec: TrainingSpec, keep_predictions: bool):
    """Entity-level metrics over the words of a split (their first sub-tokens)."""
    id2label = dict(enumerate(spec.labels))
    model.eval()
    true_tags, pred_tags, words = [], [], []
    with torch.no_grad():
        for batch in dataset.iter_batches(batch_size=EVAL_BATCH, batch_format="numpy"):
            tensors = collate(batch)
            preds = model(**model_inputs(tensors, device)).logits.argmax(-1).cpu().numpy()
            labels = tensors["labels"].numpy()
            for i in range(len(labels)):
                keep = labels[i] != IGNORE_INDEX
                true_tags.append([id2label[int(t)] for t in labels[i][keep]])
                pred_tags.append([id2label[int(t)] for t in preds[i][keep]])
            if keep_predictions:
                words.extend(list(w) for w in batch["tokens"])
    model.train()
    return token_metrics(spec.scored_metrics, true_tags, pred_tags), (true_tags, pred_tags, words)


def _write_token_results(results_dir: Path, predictions) -> None:
    true_tags, pred_tags, words = predictions
    atomic_write_json(results_dir / "per_class_report.json", entity_report(true_tags, pred_tags))
    # Words cut by max_seq_length have no prediction; they are left out here too.
    atomic_write_lines(results_dir / "predictions.jsonl",
                       (json.dumps({"tokens": toks[: len(true)], "tags": true, "predicted": pred}) + "\n"
                        for toks, true, pred in zip(words, true_tags, pred_tags)))


def write_final_results(results_dir: Path, spec: TrainingSpec, predictions) -> None:
    if spec.config.task_type == "token_classification":
        return _write_token_results(results_dir, predictions)
    probs, labels, texts = predictions
    if spec.config.task_type == "regression":
        atomic_write_csv(results_dir / "predictions.csv", [*texts, "score", "prediction"],
                   ([*(texts[c][i] for c in texts), f"{labels[i]:.6g}", f"{probs[i]:.6f}"]
                    for i in range(len(labels))))
        return
    id2label = dict(enumerate(spec.labels))
    preds = predicted_classes(probs, spec.config.multi_label_threshold if spec.multi_label else None)
    atomic_write_json(results_dir / "per_class_report.json", per_class_report(labels, preds, id2label))
    if spec.multi_label:  # label sets joined by '|', as a CSV upload writes them
        def names(row):
            return "|".join(id2label[i] for i in np.flatnonzero(row))
        label_cells = [(names(labels[i]), names(preds[i])) for i in range(len(labels))]
    else:
        label_cells = [(id2label[int(labels[i])], id2label[int(preds[i])]) for i in range(len(labels))]
    atomic_write_csv(results_dir / "predictions.csv",
               [*texts, "label", "prediction", *[f"prob_{id2label[i]}" for i in sorted(id2label)]],
               ([*(texts[c][i] for c in texts), *label_cells[i], *(f"{p:.6f}" for p in probs[i])]
                for i in range(len(labels))))
