"""Labels in uploaded rows: where the target lives, how a row's labels read, and the check that test fits train."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

from train_jobs.errors import BadDataset

LABEL_COLUMN = "label"
LABELS_COLUMN = "labels"  # multi-label: a list per row
FLAG_PREFIX = "label_"  # multi-label: one 0/1 column per label
SCORE_COLUMN = "score"
LABEL_SEPARATOR = "|"
IGNORE_INDEX = -100  # the label PyTorch's cross-entropy skips: padding and continuation sub-tokens


@dataclass(frozen=True)
class Target:
    """Where a row's target lives: `label`, `labels` (a list), several `label_<name>` flags, or `score`."""

    kind: str  # "label" | "labels" | "flags" | "score"
    columns: tuple[str, ...]

    @property
    def multi_label(self) -> bool:
        return self.kind in ("labels", "flags")

    def flag_labels(self) -> list[str]:
        return [c[len(FLAG_PREFIX):] for c in self.columns]


def find_target(columns: list[str], task: str) -> Optional[Target]:
    if task == "regression":
        return Target("score", (SCORE_COLUMN,)) if SCORE_COLUMN in columns else None
    if LABEL_COLUMN in columns:
        return Target("label", (LABEL_COLUMN,))
    if LABELS_COLUMN in columns:
        return Target("labels", (LABELS_COLUMN,))
    flags = tuple(c for c in columns if c.startswith(FLAG_PREFIX) and len(c) > len(FLAG_PREFIX))
    return Target("flags", flags) if len(flags) >= 2 else None


def score_value(value) -> Optional[float]:
    if isinstance(value, bool) or value is None:
        return None
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    return score if score == score and abs(score) != float("inf") else None


def label_set(value) -> Optional[list[str]]:
    """A row's labels for multi-label: a list, a JSON list in a string, or names joined by '|'; '' is none."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return None
        else:
            value = [part for part in text.split(LABEL_SEPARATOR) if part.strip()]
    if not isinstance(value, list):
        return None
    labels = [label_text(v) for v in value]
    return None if None in labels else list(dict.fromkeys(labels))


FLAG_VALUES = {"1": True, "0": False, "true": True, "false": False, "1.0": True, "0.0": False}


def flag(value) -> Optional[bool]:
    """A 0/1 label column's value (also true/false)."""
    if isinstance(value, bool):
        return value
    return FLAG_VALUES.get(str(value).strip().lower()) if value is not None else None


def row_labels(row: dict, target: Target) -> Optional[list[str]]:
    """The labels of one row (one for single-label), or None where the value cannot be read."""
    if target.kind == "label":
        label = label_text(row.get(LABEL_COLUMN))
        return None if label is None else [label]
    if target.kind == "labels":
        return label_set(row.get(LABELS_COLUMN))
    flags = [flag(row.get(c)) for c in target.columns]
    return None if None in flags else [name for name, on in zip(target.flag_labels(), flags) if on]


def label_problem(row: dict, target: Target) -> tuple[str, str]:
    """The column at fault and what to fix there."""
    if target.kind == "label":
        return LABEL_COLUMN, "missing label; every row needs a label"
    if target.kind == "labels":
        return LABELS_COLUMN, (f"{row.get(LABELS_COLUMN)!r} is not a list of labels; write a JSON list, or "
                               f"names joined by '{LABEL_SEPARATOR}' (empty for none)")
    bad = next(c for c in target.columns if flag(row.get(c)) is None)
    return bad, f"{row.get(bad)!r} is not 0 or 1 (true/false also work)"


def label_text(value) -> Optional[str]:
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def ordered_labels(labels) -> list[str]:
    """Integer labels sort numerically (so "2" < "10"), others alphabetically."""
    labels = list(labels)
    try:
        return sorted(labels, key=int)
    except ValueError:
        return sorted(labels)


def check_test_labels(train_counts: dict, test_counts: dict, where: Callable[[str], str], what: str = "label",
                      file: str = "test_file") -> None:
    """Every label of a held-out file must occur in train; `where(label)` names the first place it occurs."""
    unseen = [label for label in test_counts if label not in train_counts]
    if unseen:
        raise BadDataset(f"{file}: {where(unseen[0])}: {what} {unseen[0]!r} does not occur in train_file"
                         + (f" ({len(unseen)} unseen {what}s: {unseen[:10]})" if len(unseen) > 1 else ""))


def check_label_count(labels: list[str], what: str = "label", name: str = "train_file") -> None:
    if len(labels) < 2:
        raise BadDataset(f"{name}: needs at least 2 distinct {what}s, found {labels}")
