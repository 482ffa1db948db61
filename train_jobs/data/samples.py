"""A split's raw inputs in the form /predict takes them (texts, text pairs or word lists): what an export is
checked on against the trained model (train_jobs/inference/export.py)."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Optional

from train_jobs.data.formats import iter_records
from train_jobs.data.token_files import iter_sentences
from train_jobs.specs import DatasetSpec

# The test file first: the rows the model never trained on; validation, then train, when it is gone.
SPLIT_ORDER = ("test", "validation", "train")


def split_inputs(dataset: DatasetSpec, split: str, limit: int) -> tuple[str, list]:
    """(kind, the first `limit` inputs) of one split of an uploaded dataset (its summary, with each file's path)."""
    info = dataset.splits[split]
    path, name = Path(info.path), f"{split}_file"
    fmt = info.sample_format or info.format  # a dataset by URI keeps a sample of its split (Parquet's as JSONL)
    if dataset.task_type == "token_classification":
        return "tokens", [tokens for _, tokens, _ in islice(iter_sentences(path, fmt, name), limit)]
    columns = info.text_columns
    rows = (row for _, row in iter_records(path, fmt, name) if "__header__" not in row)
    values = [[str(row[c]) for c in columns] for row in islice(rows, limit)]
    return ("pairs", values) if len(columns) == 2 else ("texts", [v[0] for v in values])


def held_out_inputs(dataset: Optional[DatasetSpec], limit: int) -> Optional[tuple[str, str, list]]:
    """(split, kind, inputs) from the first split whose file is still there, or None when none is."""
    for split in SPLIT_ORDER:
        info = dataset.splits.get(split) if dataset else None
        if info and info.path and Path(info.path).is_file():
            kind, items = split_inputs(dataset, split, limit)
            if items:
                return split, kind, items
    return None
