"""A staged upload checked for its task and summarised: the dataset summary the session keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from train_jobs.data.text_files import summarise_text_dataset
from train_jobs.data.token_files import summarise_token_dataset
from train_jobs.files import sha256_file

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
