"""The validation hold-out: carved from train deterministically from the seed, stratified by label."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyarrow as pa

MIN_VALIDATION_ROWS = 50  # where train allows (a fifth of it at most)


def validation_size(train_rows: int, split: float) -> int:
    """Rows to hold out of `train_rows` for a `validation_split` of `split`; 0 turns validation off."""
    if split <= 0 or train_rows < 2:
        return 0
    return min(train_rows - 1, max(round(split * train_rows), min(MIN_VALIDATION_ROWS, train_rows // 5)))


def held_out_index(total: int, labels: Optional[np.ndarray], rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row numbers out of `total`, each ascending: `rows` held out, stratified on `labels`
    when given and possible. Only the labels are needed, so a split too large to hold is carved by its files."""
    from sklearn.model_selection import train_test_split  # scikit-learn: only in the job that trains

    index = np.arange(total)
    try:
        train, held = train_test_split(index, test_size=rows, random_state=seed, stratify=labels)
    except ValueError:  # a label with a single row cannot be stratified
        train, held = train_test_split(index, test_size=rows, random_state=seed)
    return np.sort(train), np.sort(held)


def carve(table: pa.Table, rows: int, seed: int, stratify: bool) -> tuple[pa.Table, pa.Table]:
    """(train, validation): `rows` rows held out, stratified on the `labels` column when asked and possible.

    Both keep the file order of their rows, so the same seed and data always give the same split.
    """
    labels = table.column("labels").to_numpy() if stratify else None
    train, held = held_out_index(len(table), labels, rows, seed)
    return table.take(train), table.take(held)
