"""Unit tests of train_jobs/metrics.py against values worked out by hand."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from train_jobs.training.metrics import CLASSIFICATION_METRICS, classification_metrics, per_class_report

ALL = sorted(CLASSIFICATION_METRICS)


def two_class(p1):
    p1 = np.asarray(p1, dtype=float)
    return np.stack([1 - p1, p1], axis=1)


# Binary: y and P(class 1); argmax gives preds [1,1,0,0,1,0,0,1].
# TP=2 FN=1 FP=2 TN=3.
Y2 = np.array([1, 1, 1, 0, 0, 0, 0, 0])
P2 = two_class([0.9, 0.6, 0.4, 0.3, 0.7, 0.2, 0.1, 0.55])
F1_POS = 4 / 7  # P=2/4, R=2/3
F1_NEG = 2 / 3  # P=3/4, R=3/5
BINARY = {
    "accuracy": 5 / 8,
    "f1": F1_POS,  # binary average: the positive class only
    "f1_macro": (F1_POS + F1_NEG) / 2,
    "f1_micro": 5 / 8,
    "f1_weighted": (3 * F1_POS + 5 * F1_NEG) / 8,
    "precision": 2 / 4,
    "recall": 2 / 3,
    "matthews_correlation": (2 * 3 - 2 * 1) / math.sqrt(4 * 3 * 5 * 4),
    "roc_auc": 12 / 15,  # positive/negative pairs ranked right
}

# Three classes; argmax gives preds [0,1,1,1,2,0].
Y3 = np.array([0, 0, 1, 1, 2, 2])
P3 = np.array([
    [0.7, 0.2, 0.1],
    [0.3, 0.6, 0.1],
    [0.1, 0.8, 0.1],
    [0.2, 0.5, 0.3],
    [0.1, 0.2, 0.7],
    [0.5, 0.1, 0.4],
])
F1_3 = (1 / 2, 4 / 5, 2 / 3)  # per class: P=(1/2, 2/3, 1), R=(1/2, 1, 1/2)
MULTI = {
    "accuracy": 4 / 6,
    "f1": sum(F1_3) / 3,  # macro where there are more than 2 classes
    "f1_macro": sum(F1_3) / 3,
    "f1_micro": 4 / 6,
    "f1_weighted": sum(F1_3) / 3,  # equal supports
    "precision": (1 / 2 + 2 / 3 + 1) / 3,
    "recall": (1 / 2 + 1 + 1 / 2) / 3,
    # Gorodkin's K-class MCC: (c*s - sum t_k p_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2))
    "matthews_correlation": (4 * 6 - (2 * 2 + 2 * 3 + 2 * 1)) / math.sqrt((36 - (4 + 9 + 1)) * (36 - 12)),
    "roc_auc": (7 / 8 + 7 / 8 + 8 / 8) / 3,  # one-vs-rest, macro
}


@pytest.mark.parametrize("labels, probs, expected", [(Y2, P2, BINARY), (Y3, P3, MULTI)], ids=["binary", "3-class"])
@pytest.mark.parametrize("name", ALL)
def test_metric_values(labels, probs, expected, name):
    out = classification_metrics([name], labels, probs)
    assert list(out) == [name]
    assert isinstance(out[name], float)
    assert out[name] == pytest.approx(expected[name], abs=1e-12)


def test_every_metric_is_checked():
    assert set(BINARY) == set(MULTI) == set(CLASSIFICATION_METRICS)


def test_returns_only_requested_names_in_order():
    out = classification_metrics(["recall", "accuracy"], Y2, P2)
    assert list(out) == ["recall", "accuracy"]


def test_unknown_metric_name_raises():
    with pytest.raises(KeyError):
        classification_metrics(["bogus"], Y2, P2)


@pytest.mark.parametrize(
    "labels, probs",
    [(np.array([1, 1, 1]), two_class([0.9, 0.2, 0.6])), (np.zeros(6, dtype=int), P3)],
    ids=["binary", "3-class"],
)
def test_roc_auc_none_with_one_class(labels, probs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = classification_metrics(ALL, labels, probs)
    assert out["roc_auc"] is None
    # the other metrics are still computed
    assert out["accuracy"] == pytest.approx(float(np.mean(probs.argmax(axis=1) == labels)))


def test_perfect_predictions():
    out = classification_metrics(ALL, Y3, np.eye(3)[Y3] * 0.8 + 0.2 / 3)
    assert out == {name: pytest.approx(1.0) for name in ALL}


def test_per_class_report_uses_label_names():
    preds = P3.argmax(axis=1)
    report = per_class_report(Y3, preds, {0: "neg", 1: "neutral", 2: "pos"})
    assert {"neg", "neutral", "pos", "accuracy", "macro avg", "weighted avg"} <= set(report)
    assert not {"0", "1", "2"} & set(report)
    assert report["neg"]["precision"] == pytest.approx(1 / 2)
    assert report["neutral"]["precision"] == pytest.approx(2 / 3)
    assert report["neutral"]["recall"] == pytest.approx(1.0)
    assert report["pos"]["recall"] == pytest.approx(1 / 2)
    assert report["pos"]["f1-score"] == pytest.approx(2 / 3)
    assert report["neg"]["support"] == 2
    assert report["accuracy"] == pytest.approx(4 / 6)


def test_per_class_report_lists_absent_classes():
    # Class 2 ("c") occurs in neither labels nor preds, yet has its row with support 0.
    report = per_class_report(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), {1: "b", 0: "a", 2: "c"})
    assert report["c"]["support"] == 0
    assert report["c"]["f1-score"] == 0.0
    assert report["a"]["recall"] == pytest.approx(1.0)
    assert report["b"]["recall"] == pytest.approx(1 / 2)


def test_regression_metrics_match_their_definitions():
    from train_jobs.training.metrics import regression_metrics

    y = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    p = np.array([0.5, 1.0, 1.5, 3.5, 3.0])
    got = regression_metrics(["mse", "rmse", "mae", "r2", "pearson", "spearman"], y, p)
    err = p - y
    assert got["mse"] == pytest.approx(np.mean(err ** 2))
    assert got["rmse"] == pytest.approx(math.sqrt(np.mean(err ** 2)))
    assert got["mae"] == pytest.approx(np.mean(np.abs(err)))
    assert got["r2"] == pytest.approx(1 - np.sum(err ** 2) / np.sum((y - y.mean()) ** 2))
    assert got["pearson"] == pytest.approx(np.corrcoef(y, p)[0, 1])
    assert got["spearman"] == pytest.approx(0.9)  # prediction ranks 1,2,3,5,4: 1 - 6*2/(5*24)
    assert regression_metrics(["pearson"], y, np.ones(5))["pearson"] is None  # undefined for a constant


# Multi-label: 3 labels, 4 rows; threshold 0.5.
YM = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
PM = np.array([[0.9, 0.2, 0.7], [0.1, 0.8, 0.6], [0.6, 0.3, 0.1], [0.2, 0.1, 0.4]])
# Predicted: [1,0,1] exact, [0,1,1] one FP, [1,0,0] one FN, [0,0,0] exact. TP=4, FP=1, FN=1.


def test_multi_label_metrics_by_hand():
    m = classification_metrics(["accuracy", "f1", "precision", "recall", "roc_auc"], YM, PM, threshold=0.5)
    assert m["accuracy"] == pytest.approx(2 / 4)  # exact match of the whole set
    assert m["precision"] == pytest.approx(4 / 5) and m["recall"] == pytest.approx(4 / 5)
    assert m["f1"] == pytest.approx(4 / 5)
    assert m["roc_auc"] == pytest.approx(1.0)  # every label ranks its positives above its negatives


def test_multi_label_threshold_moves_predictions():
    low = classification_metrics(["recall", "precision"], YM, PM, threshold=0.05)
    assert low["recall"] == 1.0 and low["precision"] == pytest.approx(5 / 12)


def test_multi_label_every_metric_is_defined():
    m = classification_metrics(ALL, YM, PM, threshold=0.5)
    assert all(isinstance(m[name], float) for name in ALL), m


def test_multi_label_per_class_report():
    preds = (PM >= 0.5).astype(int)
    report = per_class_report(YM, preds, {0: "a", 1: "b", 2: "c"})
    assert report["a"]["recall"] == pytest.approx(1.0) and report["c"]["precision"] == pytest.approx(0.5)
    assert report["b"]["support"] == 2
