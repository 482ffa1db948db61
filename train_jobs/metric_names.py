"""Metric names per task: what the config validates against, without importing scikit-learn or SciPy.

`train_jobs/metrics.py` implements each name and checks that its tables match these.
"""

from __future__ import annotations

CLASSIFICATION = ("accuracy", "f1", "f1_macro", "f1_micro", "f1_weighted", "precision", "recall",
                  "matthews_correlation", "roc_auc")
REGRESSION = ("mse", "rmse", "mae", "r2", "pearson", "spearman")
TOKEN = ("precision", "recall", "f1", "accuracy")

TASK_METRIC_NAMES = {"sequence_classification": CLASSIFICATION, "regression": REGRESSION,
                     "token_classification": TOKEN}
DEFAULT_METRICS = {"sequence_classification": ["accuracy"], "regression": ["mse"], "token_classification": ["f1"]}

# Loss-like metrics: smaller is better when they select the model.
LOWER_IS_BETTER = ("mse", "rmse", "mae")
