"""A split read as a Ray Dataset, every column a string: an uploaded file, or every shard of a dataset by URI
read from its store (preprocess.py tokenises it; whole_labels.py counts its labels)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pyarrow as pa
import ray

from train_jobs.data.formats import as_text
from train_jobs.data.local_build import csv_options, jsonl_columns
from train_jobs.data.stores import filesystem
from train_jobs.specs import SplitSummary, StoreOptions


def _as_strings(batch: pa.Table, *, columns: list[str]) -> pa.Table:
    """Parquet columns as the text a CSV cell would hold (a numeric label, a list of labels)."""
    return pa.table({c: pa.array([as_text(v) for v in batch.column(c).to_pylist()], type=pa.string())
                     for c in columns})


def read_table(path, fmt: str, columns: list[str], fs=None, blocks: Optional[int] = None) -> ray.data.Dataset:
    """Every column as strings: a text column of digits stays text, a label list stays one value. `path`: a file
    or a list of shards, in `fs` (a store's filesystem, for a dataset by URI), read in `blocks` blocks (None: as
    Ray Data chooses)."""
    if fmt == "jsonl":
        # Lines parsed by us, not Arrow's JSON reader, whose type inference breaks on mixed values
        # (an empty label list in one block, strings in the next).
        return ray.data.read_text(path, filesystem=fs, override_num_blocks=blocks).map_batches(
            jsonl_columns, batch_format="pyarrow", fn_kwargs={"columns": columns})
    if fmt == "parquet":
        return ray.data.read_parquet(path, filesystem=fs, columns=columns, override_num_blocks=blocks).map_batches(
            _as_strings, batch_format="pyarrow", fn_kwargs={"columns": columns})
    return ray.data.read_csv(path, filesystem=fs, override_num_blocks=blocks,
                             **csv_options(fmt, columns)).select_columns(columns)


def read_source(info: SplitSummary, columns: list[str], stores: StoreOptions,
                blocks: Optional[int] = None) -> ray.data.Dataset:
    """An uploaded file, or every shard of a dataset by URI read from its store."""
    if info.source is None:
        return read_table(info.path, info.format, columns, blocks=blocks)
    fs = filesystem(info.source["scheme"], stores)
    return read_table([shard["path"] for shard in info.source["shards"]], info.format, columns, fs, blocks)


def read_sentences(info: SplitSummary) -> ray.data.Dataset:
    from train_jobs.data.token_files import iter_sentences

    items = [{"tokens": toks, "tags": tags} for _, toks, tags in iter_sentences(Path(info.path), info.format,
                                                                              "file")]
    return ray.data.from_items(items)
