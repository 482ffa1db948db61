"""Preprocessing: read the uploads, tokenise in batches, write a Parquet cache (on Ray Data, or for a small
upload in one process: local_build.py).

No padding here: batches are padded per batch at training time.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import ray

from train_jobs.data.build_progress import BuildProgress
from train_jobs.data.cache import cache_path, reusable_cache
from train_jobs.data.dataset import current_sources
from train_jobs.data.labels import IGNORE_INDEX, Target, find_target, row_labels
from train_jobs.data.local_build import IN_PROCESS_ROWS, read_sentences_split, read_text_split, write_split
from train_jobs.data.ray_reads import read_sentences, read_source
from train_jobs.data.whole_labels import whole_labels
from train_jobs.files import atomic_write_json, swap_directory
from train_jobs.specs import DatasetSpec, PreprocessProgress, PreprocessSpec, SplitSummary

CACHE_FILE_ROWS = 50_000  # rows per cache file at most: what training's carve or stream holds of a split at once
BLOCK_BYTES = 8 << 20  # source bytes per block read (a 1M-row file of short texts: ~8 blocks)


@functools.lru_cache(maxsize=4)
def load_fast_tokenizer(model_dir: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, use_fast=True)
    if not tok.is_fast:
        raise ValueError(f"model at {model_dir} has no fast tokenizer (tokenizer.json)")
    return tok


def _target_array(batch: pa.Table, target: Target, label2id: dict[str, int]) -> pa.Array:
    """Class ids (single-label), multi-hot float rows (multi-label) or the score (regression)."""
    if target.kind == "score":
        return pa.array([float(v) for v in batch.column(target.columns[0]).to_pylist()], type=pa.float32())
    rows = batch.select(list(target.columns)).to_pylist()
    if target.kind == "label":
        return pa.array([label2id[row_labels(r, target)[0]] for r in rows], type=pa.int64())
    hot = np.zeros((len(rows), len(label2id)), dtype=np.float32)
    for i, r in enumerate(rows):
        hot[i, [label2id[label] for label in row_labels(r, target)]] = 1.0
    return pa.FixedSizeListArray.from_arrays(pa.array(hot.ravel()), len(label2id))


def tokenize_batch(batch: pa.Table, *, model_dir: str, text_columns: list[str], target: Target,
                   label2id: dict[str, int], max_seq_length: int, keep_text: bool) -> pa.Table:
    tok = load_fast_tokenizer(model_dir)
    texts = [[str(t) for t in batch.column(c).to_pylist()] for c in text_columns]
    enc = tok(*texts, truncation=True, max_length=max_seq_length, return_attention_mask=False)
    out = {"input_ids": pa.array(enc["input_ids"], type=pa.list_(pa.int32())),
           "labels": _target_array(batch, target, label2id)}
    if len(text_columns) == 2 and "token_type_ids" in enc:
        out["token_type_ids"] = pa.array(enc["token_type_ids"], type=pa.list_(pa.int8()))
    if keep_text:  # the test split keeps its text for the predictions file
        for col, values in zip(text_columns, texts):
            out[col] = pa.array(values, type=pa.string())
    return pa.table(out)


def tokenize_words_batch(batch: pa.Table, *, model_dir: str, label2id: dict[str, int], max_seq_length: int,
                         keep_text: bool) -> pa.Table:
    """Pre-split words to sub-tokens; each word's first sub-token carries its tag, the rest -100."""
    tok = load_fast_tokenizer(model_dir)
    words, tags = batch.column("tokens").to_pylist(), batch.column("tags").to_pylist()
    enc = tok(words, is_split_into_words=True, truncation=True, max_length=max_seq_length,
              return_attention_mask=False)
    labels = []
    for i, sentence_tags in enumerate(tags):
        row, previous = [], None
        for word in enc.word_ids(i):
            row.append(IGNORE_INDEX if word is None or word == previous else label2id[sentence_tags[word]])
            previous = word
        labels.append(row)
    out = {"input_ids": pa.array(enc["input_ids"], type=pa.list_(pa.int32())),
           "labels": pa.array(labels, type=pa.list_(pa.int32()))}
    if keep_text:
        out["tokens"] = pa.array(words, type=pa.list_(pa.string()))
    return pa.table(out)


def build_cache(spec: PreprocessSpec, on_progress: PreprocessProgress) -> dict:
    """Tokenise both splits into `<cache_dir>/<key>/`, or reuse a finished cache with the same key.

    Up to `spec.in_process_rows` rows (None: IN_PROCESS_ROWS) of uploaded files in one Ray task, more on Ray Data:
    the same cache. A dataset by URI is read on Ray Data from its store, its labels counted over the whole first.
    """
    by_uri = spec.dataset.by_uri
    if by_uri:  # its source as it is now: the cache key covers every shard's identity
        on_progress(0.0, "listing the dataset's shards at its URIs", None)
        spec = spec.model_copy(update={"dataset": current_sources(spec.dataset, spec.stores)})
    progress = BuildProgress(spec.dataset, on_progress)
    reused = reusable_cache(spec)
    if reused:
        progress.finished("reused an existing cache made from the same files, tokenizer and settings")
        return reused
    final = cache_path(spec)
    key = final.name
    tmp = Path(spec.cache_dir) / f".{key}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    dataset = _with_whole_labels(spec) if by_uri else spec.dataset
    limit = IN_PROCESS_ROWS if spec.in_process_rows is None else spec.in_process_rows
    in_process = not by_uri and progress.rows_total <= limit
    if in_process:
        ray.get(_build_here.remote(spec, tmp, progress))
    for split, info in dataset.splits.items():
        if not in_process:
            progress.started(split)
            _build_split_on_ray(spec, dataset, split, tmp / split)
        progress.advance(split, info.rows)
    rows = {s: _written_rows(tmp / s) if info.source else info.rows for s, info in dataset.splits.items()}
    meta = {"key": key, "path": str(final), "rows": rows,
            "max_seq_length": spec.max_seq_length, "labels": dataset.labels,
            "text_columns": dataset.train.text_columns, "target": dataset.target,
            "multi_label": dataset.multi_label}
    atomic_write_json(tmp / "meta.json", meta)
    swap_directory(tmp, final)
    progress.finished("preprocessing finished" + (" (in process)" if in_process else " (Ray Data)"))
    return {**meta, "reused": False}


def _with_whole_labels(spec: PreprocessSpec) -> DatasetSpec:
    """A dataset by URI with the labels of its whole source (its upload counted a sample's)."""
    dataset = spec.dataset
    target = find_target(dataset.train.columns, dataset.task_type)
    if target.kind == "score":
        return dataset
    return DatasetSpec(**{**dataset.model_dump(), "labels": whole_labels(dataset, target, spec.stores)})


def _written_rows(folder: Path) -> int:
    """The rows of a split's cache (a dataset by URI: its upload counted only a sample)."""
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(f).num_rows for f in folder.glob("*.parquet"))


def _split_work(spec: PreprocessSpec, dataset: DatasetSpec, split: str) -> tuple[Callable, dict, list[str]]:
    """The batch function for `split`, its arguments, and the columns to read (none: tagged sentences)."""
    common = {"model_dir": spec.model_dir, "label2id": {label: i for i, label in enumerate(dataset.labels)},
              "max_seq_length": spec.max_seq_length, "keep_text": split == "test"}
    if dataset.task_type == "token_classification":
        return tokenize_words_batch, common, []
    text_columns = dataset.train.text_columns
    target = find_target(dataset.train.columns, dataset.task_type)
    return tokenize_batch, dict(common, text_columns=text_columns, target=target), text_columns + list(target.columns)


# One Ray task for every split, not the job actor itself: the actor is a new process for every job, where
# importing the tokenizer takes about 2 s, while Ray's pooled workers keep it imported from job to job (this
# task's, Ray Data's). 0 CPUs, as the job actor: a fraction of a second of work starts at once, beside training.
@ray.remote(num_cpus=0)
def _build_here(spec: PreprocessSpec, tmp: Path, progress: BuildProgress) -> None:
    """Every split read and tokenised in this process (local_build.py), reporting each batch."""
    for split, info in spec.dataset.splits.items():
        progress.started(split)
        fn, kwargs, columns = _split_work(spec, spec.dataset, split)
        table = (read_text_split(info.path, info.format, columns) if columns
                 else read_sentences_split(info.path, info.format))
        write_split(table, fn, kwargs, tmp / split, lambda rows, split=split: progress.advance(split, rows))


def _build_split_on_ray(spec: PreprocessSpec, dataset: DatasetSpec, split: str, out: Path) -> None:
    # Rows keep the upload's order: Ray Data otherwise emits blocks as their tasks finish, so the Parquet files,
    # and with them the hold-out, the shuffle and the model, could differ between two builds of the same data.
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    fn, kwargs, columns = _split_work(spec, dataset, split)
    info = dataset.splits[split]
    # Streamed: read blocks of a bounded size (a single file too), each tokenised and written as it comes, in
    # files of at most CACHE_FILE_ROWS rows. No repartition: that all-to-all step held every block at once.
    blocks = read_blocks(info, int(ray.cluster_resources().get("CPU", 1)))
    ds = read_source(info, columns, spec.stores, blocks) if columns else read_sentences(info)
    ds = ds.map_batches(fn, batch_format="pyarrow", batch_size=1024, fn_kwargs=kwargs)
    ds.write_parquet(str(out), max_rows_per_file=CACHE_FILE_ROWS)


def read_blocks(info: SplitSummary, cpus: int) -> int:
    """Blocks to read a split in: two per CPU at least (so every CPU tokenises), one per shard at least, and
    about BLOCK_BYTES of source each, so no task holds more than that however large the split."""
    size = info.bytes if info.source else Path(info.path).stat().st_size
    shards = len(info.source["shards"]) if info.source else 1
    return max(2 * cpus, shards, -(-(size or 0) // BLOCK_BYTES))
