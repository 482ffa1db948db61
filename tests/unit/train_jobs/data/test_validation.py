"""Unit tests of train_jobs/data/validation.py: the hold-out is sized, stratified and the same for the same seed."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from train_jobs.data.validation import MIN_VALIDATION_ROWS, carve, validation_size


@pytest.mark.parametrize("rows, split, held", [
    (607, 0.1, 61), (10_003, 0.1, 1_000), (200, 0.1, 40), (40, 0.1, 8), (300, 0.1, MIN_VALIDATION_ROWS),
    (607, 0.0, 0), (1, 0.1, 0), (2, 0.5, 1),
])
def test_validation_size(rows, split, held):
    assert validation_size(rows, split) == held


def table(labels):
    return pa.table({"input_ids": [[i, i + 1] for i in range(len(labels))], "labels": labels})


def test_carve_is_stratified_deterministic_and_keeps_file_order():
    labels = [0] * 80 + [1] * 20
    train, held = carve(table(labels), 10, seed=42, stratify=True)
    assert len(train) == 90 and len(held) == 10
    assert Counter(held.column("labels").to_pylist()) == {0: 8, 1: 2}
    first = [row[0] for row in held.column("input_ids").to_pylist()]
    assert first == sorted(first)
    again = carve(table(labels), 10, seed=42, stratify=True)[1]
    assert again.equals(held)
    assert not carve(table(labels), 10, seed=7, stratify=True)[1].equals(held)
    kept = sorted(r[0] for r in train.column("input_ids").to_pylist()) + first
    assert sorted(kept) == list(range(100))


def test_carve_falls_back_to_random_when_a_label_has_one_row():
    train, held = carve(table([0] * 30 + [1]), 5, seed=1, stratify=True)
    assert len(train) == 26 and len(held) == 5
