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

EVAL_BATCH = 128  # rows per forward pass
# Rows read at a time, sorted by length and scored in passes of EVAL_BATCH, then put back in order: a pass pads to
# its longest row, and on a CPU padding is compute (SST-2 dev in file order pads to about twice its tokens).
EVAL_WINDOW = 16 * EVAL_BATCH


def length_sorted_passes(input_ids) -> list[np.ndarray]:
    """The row indices of a window, shortest first, in passes of up to EVAL_BATCH rows."""
    lengths = np.fromiter((len(ids) for ids in input_ids), dtype=np.int64, count=len(input_ids))
    order = np.argsort(lengths, kind="stable")
    return [order[i: i + EVAL_BATCH] for i in range(0, len(order), EVAL_BATCH)]


def in_window_order(outputs: list[np.ndarray], passes: list[np.ndarray]) -> np.ndarray:
    """The passes' outputs (rows in pass order) back in the window's row order."""
    ordered = np.empty_like(np.concatenate(outputs))
    ordered[np.concatenate(passes)] = np.concatenate(outputs)
    return ordered


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
        for window in dataset.iter_batches(batch_size=EVAL_WINDOW, batch_format="numpy"):
            passes = length_sorted_passes(window["input_ids"])
            out, truth = [], []
            for rows in passes:
                tensors = collate({k: v[rows] for k, v in window.items()})
                logits = model(**model_inputs(tensors, device)).logits.float()
                out.append((logits[:, 0] if regression else activation(logits)).cpu().numpy())
                truth.append(tensors["labels"].numpy())
            probs.append(in_window_order(out, passes))
            labels.append(in_window_order(truth, passes))
            if keep_predictions:
                for c in texts:
                    texts[c].extend(window[c].tolist())
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
        for window in dataset.iter_batches(batch_size=EVAL_WINDOW, batch_format="numpy"):
            passes = length_sorted_passes(window["input_ids"])
            true_rows, pred_rows = [None] * len(window["input_ids"]), [None] * len(window["input_ids"])
            for rows in passes:
                tensors = collate({k: v[rows] for k, v in window.items()})
                preds = model(**model_inputs(tensors, device)).logits.argmax(-1).cpu().numpy()
                labels = tensors["labels"].numpy()
                for i, row in enumerate(rows):
                    keep = labels[i] != IGNORE_INDEX
                    true_rows[row] = [id2label[int(t)] for t in labels[i][keep]]
                    pred_rows[row] = [id2label[int(t)] for t in preds[i][keep]]
            true_tags.extend(true_rows)
            pred_tags.extend(pred_rows)
            if keep_predictions:
                words.extend(list(w) for w in window["tokens"])
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
