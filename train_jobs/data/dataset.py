"""A staged upload checked for its task and summarised: the dataset summary the session keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from train_jobs.data.shards import list_shards, sample_shards
from train_jobs.data.sources import DataSource
from train_jobs.data.stores import filesystem
from train_jobs.data.text_files import summarise_text_dataset, summarise_text_parts
from train_jobs.data.token_files import summarise_token_dataset
from train_jobs.errors import BadDataset
from train_jobs.files import sha256_file
from train_jobs.specs import DatasetSpec, StoreOptions

SPLITS = ("train", "test", "validation")  # validation is optional


def splits_of(dataset: dict) -> list[str]:
    """The splits an upload has: train and test, and validation when a validation file came with them."""
    return [s for s in SPLITS if s in dataset]


def summarise_dataset(train: Path, test: Path, train_name: str = "", test_name: str = "",
                      task: str = "sequence_classification", validation: Optional[Path] = None,
                      validation_name: str = "") -> dict:
    """Check the files for `task` and how they fit together; raises BadDataset naming file, line and column."""
    files = {"train": (train, train_name), "test": (test, test_name)}
    if validation is not None:
        files["validation"] = (validation, validation_name)
    return summarise_files(files, task)


def summarise_files(files: dict[str, tuple[Path, str]], task: str) -> dict:
    """`summarise_dataset` for (path, upload name) per split."""
    if task == "token_classification":
        return summarise_token_dataset(files)
    return summarise_text_dataset(files, task)


def inspect_upload(files: dict[str, tuple[Path, str]], task: str) -> dict:
    """The summary of a staged upload ((path, upload name) per split), with each file's path and SHA-256
    (the preprocessing cache's key)."""
    summary = summarise_files(files, task)
    for split, (path, _) in files.items():
        summary[split].update(path=str(path), sha256=sha256_file(path))
    return summary


def inspect_sources(sources: dict[str, DataSource], task: str, stores: StoreOptions, staging: Path) -> dict:
    """The summary of a dataset by URI: its shards listed, a bounded sample of each (written under `staging`)
    checked as an upload is, and each split's source with its identity (the preprocessing cache's key)."""
    if task == "token_classification":
        raise BadDataset("train_uri: token_classification datasets come as uploaded files (CoNLL or JSONL); "
                         "datasets by URI take sequence classification, multi-label and regression")
    shard_sets, parts, whole = {}, {}, {}
    for split, source in sources.items():
        fs = filesystem(source.scheme, stores)
        shard_sets[split] = list_shards(source, fs)
        parts[split], whole[split] = sample_shards(shard_sets[split], fs, staging, split, stores.sample_rows)
    summary = summarise_text_parts(parts, task, labels_known=whole["train"])
    for split, shards in shard_sets.items():
        # rows: of the sample when it is not the whole split (`sampled`); preprocessing counts them all. The first
        # shard's sample stays as the split's local `path`: the rows an ONNX export is checked on.
        summary[split].update(filename=shards.source.uri, format=shards.format, sha256=shards.identity(),
                              source=shards.record(), sampled=not whole[split],
                              bytes=sum(shard.size for shard in shards.shards), path=str(parts[split][0][0]),
                              sample_format="jsonl" if shards.format == "parquet" else shards.format)
    return summary


def current_sources(dataset: DatasetSpec, stores: StoreOptions) -> DatasetSpec:
    """`dataset` with each split by URI listed again: its shards and identity as they are now (a changed source
    gets a new cache key; an unchanged one keeps its own)."""
    fresh = dataset.model_dump()
    for split, info in dataset.splits.items():
        if info.source:
            source = DataSource(**{k: info.source[k] for k in ("field", "uri", "scheme", "path")})
            shards = list_shards(source, filesystem(source.scheme, stores))
            fresh[split] = {**fresh[split], "sha256": shards.identity(), "source": shards.record()}
    return DatasetSpec(**fresh)
