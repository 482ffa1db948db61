"""Dynamic padding: each batch is padded to its own longest sequence."""

from __future__ import annotations

import numpy as np
import torch
from ray.data.collate_fn import NumpyBatchCollateFn

from train_jobs.data.labels import IGNORE_INDEX


def pad_batch(batch: dict[str, np.ndarray], pad_token_id: int = 0) -> dict[str, torch.Tensor]:
    """Collate a Ray Data numpy batch (ragged `input_ids`) into padded tensors."""
    seqs = batch["input_ids"]
    n, width = len(seqs), max(len(s) for s in seqs)
    input_ids = np.full((n, width), pad_token_id, dtype=np.int64)
    attention = np.zeros((n, width), dtype=np.int64)
    types = np.zeros((n, width), dtype=np.int64) if "token_type_ids" in batch else None
    for i, s in enumerate(seqs):
        input_ids[i, : len(s)] = s
        attention[i, : len(s)] = 1
        if types is not None:
            types[i, : len(s)] = batch["token_type_ids"][i]
    out = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention),
           "labels": _labels(batch["labels"], width)}
    if types is not None:
        out["token_type_ids"] = torch.from_numpy(types)
    return out


def _labels(labels: np.ndarray, width: int) -> torch.Tensor:
    """Class ids as int64; regression scores and multi-hot rows as float32; per-token ids padded with -100.

    Always a copy: Ray's arrays are read-only.
    """
    rows = labels.dtype == object or labels.ndim == 2
    if rows and np.asarray(labels[0]).dtype.kind == "f":  # multi-label: one 0/1 float per label
        return torch.tensor(np.stack(labels), dtype=torch.float32)
    if rows:  # one label per token
        out = np.full((len(labels), width), IGNORE_INDEX, dtype=np.int64)
        for i, row in enumerate(labels):
            out[i, : len(row)] = row
        return torch.from_numpy(out)
    return torch.tensor(np.asarray(labels), dtype=torch.float32 if labels.dtype.kind == "f" else torch.int64)


def model_inputs(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    """The batch's tensors the model takes as inputs, on `device` (labels go to the loss separately)."""
    return {k: v.to(device) for k, v in batch.items() if k != "labels"}


class PadCollate(NumpyBatchCollateFn):
    """`pad_batch` in the form `iter_torch_batches(collate_fn=...)` expects."""

    def __init__(self, pad_token_id: int = 0):
        self.pad_token_id = pad_token_id

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return pad_batch(batch, self.pad_token_id)
