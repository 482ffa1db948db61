"""A checkpoint that cannot fit under the storage root ends the run with a message naming the root, the step and
the size (train_jobs/training/checkpoints.py), before anything is copied there: at the start of each attempt from
a lower bound (the weights and AdamW's two moments), and before each report from the checkpoint's own files. No
Ray: both checks raise before Ray Train is called."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from helpers import small_disk
from test_session_machine import Harness

from train_jobs.errors import CheckpointDidNotFit
from train_jobs.training.checkpoints import _persist, resume
from train_jobs.training.worker import Position, Worker


def worker(tmp_path: Path, storage_root: Path, model: torch.nn.Module, step: int = 0) -> Worker:
    _, spec = Harness(tmp_path / "session").training()
    spec = spec.model_copy(update={"storage_root": str(storage_root), "storage_path": str(storage_root / "run")})
    w = Worker(spec, 0, 1, torch.device("cpu"), None, None, model, model, None, None, None, None, None, None)
    w.position = Position(step=step)
    return w


def test_a_checkpoint_larger_than_the_space_left_is_refused_before_it_is_reported(tmp_path):
    root = tmp_path / "storage"
    root.mkdir()
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    with open(checkpoint / "model.safetensors", "wb") as f:  # sparse: as large as it says, without the disk
        f.truncate(os.statvfs(root).f_bavail * os.statvfs(root).f_frsize + (64 << 20))
    w = worker(tmp_path, root, torch.nn.Linear(2, 2), step=16)
    with pytest.raises(CheckpointDidNotFit) as exc:
        _persist(w, checkpoint, {"step": 16})
    message = str(exc.value)
    assert message.startswith("the checkpoint of step 16 (") and "MB) did not fit" in message
    assert f"in the storage root {root}: no space left (" in message and "MB free)" in message
    assert not (root / "run").exists()


def test_a_run_whose_weights_and_moments_cannot_fit_ends_before_it_trains(tmp_path):
    with small_disk(tmp_path / "disk", "4m") as disk:
        w = worker(tmp_path, disk, torch.nn.Linear(1000, 1000))  # 4 MB of weights, 12 MB with AdamW's moments
        with pytest.raises(CheckpointDidNotFit) as exc:
            resume(w)
        assert str(exc.value).startswith("a checkpoint of this run (at least 12.0 MB) did not fit in the storage "
                                         f"root {disk}: no space left (")
