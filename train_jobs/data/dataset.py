"""A staged upload checked for its task and summarised: the dataset summary the session keeps."""

from __future__ import annotations

from pathlib import Path

from train_jobs.data.text_files import summarise_text_dataset
from train_jobs.data.token_files import summarise_token_dataset
from train_jobs.files import sha256_file


def summarise_dataset(train: Path, test: Path, train_name: str = "", test_name: str = "",
                      task: str = "sequence_classification") -> dict:
    """Check both files for `task` and how they fit together; raises BadDataset naming file, line and column."""
    if task == "token_classification":
        return summarise_token_dataset(train, test, train_name, test_name)
    return summarise_text_dataset(train, test, train_name, test_name, task)


def inspect_upload(train: Path, test: Path, train_name: str, test_name: str, task: str) -> dict:
    """The summary of a staged upload, with each file's path and SHA-256 (the preprocessing cache's key)."""
    summary = summarise_dataset(train, test, train_name, test_name, task)
    for split, path in (("train", train), ("test", test)):
        summary[split].update(path=str(path), sha256=sha256_file(path))
    return summary
