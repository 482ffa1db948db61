"""A cache streamed to training (the server's stream_cache_above_mb=0: every split, train's hold-out carved file by
file) trains the very model the in-memory path does: same seed, data and config, same weights and metrics."""

from __future__ import annotations

import hashlib

from data import sentiment_files
from helpers import extract, own_server, trained_session

CONFIG = {"seed": 7, "validation_split": 0.2, "precision": "fp32"}


def weights(client, folder) -> str:
    archive = client.download_model(folder / "model.tar.gz")
    return hashlib.sha256((extract(archive, folder / "model") / "model" / "model.safetensors").read_bytes()).hexdigest()


def test_a_streamed_cache_trains_the_same_model(server, tmp_path_factory, tmp_path):
    files = sentiment_files(tmp_path / "data", 260, 60)
    in_memory = trained_session(server, files, **CONFIG)
    with own_server(tmp_path_factory, "streamed", stream_cache_above_mb=0, progress_every_steps=2) as streaming:
        streamed = trained_session(streaming, files, **CONFIG)
        assert streamed.monitor()["metrics"] == in_memory.monitor()["metrics"]
        assert weights(streamed, tmp_path / "streamed") == weights(in_memory, tmp_path / "in_memory")
        assert not list(streaming.storage_root.rglob("carved"))  # the carved rows go with the run's end
