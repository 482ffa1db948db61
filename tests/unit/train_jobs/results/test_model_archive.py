"""Unit tests of the model archive (train_jobs/results/archives.py): a tar.gz any tool opens, the weights stored
as they are (compressing them cost seconds of every run for 8%), the training state left out."""

from __future__ import annotations

import tarfile

import numpy as np
import torch
from safetensors.torch import save_file

from train_jobs.results.archives import RESUME_FILES, build_model_archive


def test_the_model_archive_stores_the_weights_and_leaves_the_training_state_out(tmp_path):
    model = tmp_path / "checkpoint_000001"
    model.mkdir()
    weights = torch.from_numpy(np.random.default_rng(0).normal(0, 0.02, 1 << 20).astype(np.float32))
    save_file({"w": weights}, str(model / "model.safetensors"))
    (model / "config.json").write_text('{"model_type": "bert"}')
    for name in RESUME_FILES:
        (model / name).write_bytes(b"state")
    archive = build_model_archive(model, tmp_path / "model.tar.gz")

    with tarfile.open(archive, "r:gz") as tar:
        assert sorted(tar.getnames()) == ["model", "model/config.json", "model/model.safetensors"]
        tar.extractall(tmp_path / "out", filter="data")
    assert (tmp_path / "out/model/model.safetensors").read_bytes() == (model / "model.safetensors").read_bytes()
    assert archive.stat().st_size > (model / "model.safetensors").stat().st_size  # stored, not compressed
