"""Evaluation metrics, computed with scikit-learn."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Optional

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from train_jobs.metric_names import TASK_METRIC_NAMES


def _average(n_labels: int) -> str:
    # Binary scores where the task is binary, macro averages otherwise.
    return "binary" if n_labels == 2 else "macro"


def _roc_auc(y: np.ndarray, pred: np.ndarray, probs: np.ndarray) -> float:
    if probs.shape[1] == 2:
        return skm.roc_auc_score(y, probs[:, 1])
    return skm.roc_auc_score(y, probs, multi_class="ovr", labels=list(range(probs.shape[1])))


MetricFn = Callable[[np.ndarray, np.ndarray, np.ndarray], float]

CLASSIFICATION_METRICS: dict[str, MetricFn] = {
    "accuracy": lambda y, p, _: skm.accuracy_score(y, p),
    "f1": lambda y, p, pr: skm.f1_score(y, p, average=_average(pr.shape[1]), zero_division=0),
    "f1_macro": lambda y, p, _: skm.f1_score(y, p, average="macro", zero_division=0),
    "f1_micro": lambda y, p, _: skm.f1_score(y, p, average="micro", zero_division=0),
    "f1_weighted": lambda y, p, _: skm.f1_score(y, p, average="weighted", zero_division=0),
    "precision": lambda y, p, pr: skm.precision_score(y, p, average=_average(pr.shape[1]), zero_division=0),
    "recall": lambda y, p, pr: skm.recall_score(y, p, average=_average(pr.shape[1]), zero_division=0),
    "matthews_correlation": lambda y, p, _: skm.matthews_corrcoef(y, p),
    "roc_auc": _roc_auc,
}

# Multi-label (rows of 0/1 per label): the same names. accuracy is exact match of the whole label set;
# f1, precision and recall are micro averages over every (row, label) decision; matthews_correlation
# is taken over those decisions too; roc_auc is the macro average over labels.
MULTI_LABEL_METRICS: dict[str, MetricFn] = {
    **CLASSIFICATION_METRICS,
    "f1": lambda y, p, _: skm.f1_score(y, p, average="micro", zero_division=0),
    "precision": lambda y, p, _: skm.precision_score(y, p, average="micro", zero_division=0),
    "recall": lambda y, p, _: skm.recall_score(y, p, average="micro", zero_division=0),
    "matthews_correlation": lambda y, p, _: skm.matthews_corrcoef(y.ravel(), p.ravel()),
    "roc_auc": lambda y, _, pr: skm.roc_auc_score(y, pr, average="macro"),
}
assert MULTI_LABEL_METRICS.keys() == CLASSIFICATION_METRICS.keys()


REGRESSION_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "mse": skm.mean_squared_error,
    "rmse": lambda y, p: math.sqrt(skm.mean_squared_error(y, p)),
    "mae": skm.mean_absolute_error,
    "r2": skm.r2_score,
    "pearson": lambda y, p: stats.pearsonr(y, p)[0],
    "spearman": lambda y, p: stats.spearmanr(y, p)[0],
}

def _seqeval(name: str):
    from seqeval import metrics as sm  # entity-level scores, as the CoNLL evaluation defines them

    fn = {"precision": sm.precision_score, "recall": sm.recall_score, "f1": sm.f1_score,
          "accuracy": sm.accuracy_score}[name]
    return (lambda y, p: fn(y, p)) if name == "accuracy" else (lambda y, p: fn(y, p, zero_division=0))


TOKEN_METRICS = {name: _seqeval(name) for name in ("precision", "recall", "f1", "accuracy")}

TASK_METRICS = {"sequence_classification": CLASSIFICATION_METRICS, "regression": REGRESSION_METRICS,
                "token_classification": TOKEN_METRICS}
assert {task: set(table) for task, table in TASK_METRICS.items()} == {
    task: set(names) for task, names in TASK_METRIC_NAMES.items()}


def token_metrics(names: list[str], true_tags: list[list[str]], pred_tags: list[list[str]]) -> dict[str, float]:
    """Entity-level precision/recall/f1 (and token accuracy) over tag sequences."""
    return {name: float(TOKEN_METRICS[name](true_tags, pred_tags)) for name in names}


def entity_report(true_tags: list[list[str]], pred_tags: list[list[str]]) -> dict:
    """Precision, recall, f1 and support per entity type (seqeval)."""
    from seqeval.metrics import classification_report

    report = classification_report(true_tags, pred_tags, output_dict=True, zero_division=0)
    return {k: {m: float(v) for m, v in scores.items()} for k, scores in report.items()}


def regression_metrics(names: list[str], targets: np.ndarray, predictions: np.ndarray) -> dict[str, float | None]:
    """Metrics by name; one undefined on this data (e.g. pearson of a constant) is None."""
    out: dict[str, float | None] = {}
    for name in names:
        try:
            value = float(REGRESSION_METRICS[name](targets, predictions))
            out[name] = None if math.isnan(value) else value
        except ValueError:
            out[name] = None
    return out


def predicted_classes(probs: np.ndarray, threshold: Optional[float] = None) -> np.ndarray:
    """Class ids (argmax) for single-label; 0/1 rows (probability >= threshold) for multi-label."""
    return probs.argmax(axis=1) if threshold is None else (probs >= threshold).astype(np.int64)


def classification_metrics(names: list[str], labels: np.ndarray, probs: np.ndarray,
                           threshold: Optional[float] = None) -> dict[str, float | None]:
    """Metrics by name; a metric undefined on this data (e.g. roc_auc with one class) is None.

    `threshold` given: multi-label, `labels` are 0/1 rows and `probs` per-label sigmoid outputs.
    """
    table = CLASSIFICATION_METRICS if threshold is None else MULTI_LABEL_METRICS
    if threshold is not None:
        labels = labels.astype(np.int64)
    preds = predicted_classes(probs, threshold)
    out: dict[str, float | None] = {}
    for name in names:
        try:
            value = float(table[name](labels, preds, probs))
            out[name] = None if math.isnan(value) else value
        except ValueError:
            out[name] = None
    return out


def per_class_report(labels: np.ndarray, preds: np.ndarray, id2label: dict[int, str]) -> dict:
    """Precision, recall, f1 and support per class; for multi-label, `labels` and `preds` are 0/1 rows."""
    ids = sorted(id2label)
    return skm.classification_report(
        labels, preds, labels=ids, target_names=[id2label[i] for i in ids], output_dict=True, zero_division=0
    )
