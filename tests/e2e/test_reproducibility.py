"""Same seed, data, config and workers: the same weights, bit for bit in fp32 on CPU, through the real path.

The data is large enough for the cache to hold several Parquet blocks, and the second run rebuilds the cache
(`overwrite_cache`) in a new session, so Ray Data's block order, the validation hold-out, the shuffle buffer and
length grouping all run twice.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq
import torch
from conftest import TINY_MODEL
from data import sentiment_files
from helpers import extract, new_session
from safetensors.torch import load_file


def train_once(server, tmp: Path, files, name: str, **config) -> tuple[dict, dict, dict]:
    client = new_session(server)
    client.set_parameters(model=TINY_MODEL, epochs=2, batch_size=32, learning_rate=1e-3, precision="fp32",
                          eval_metrics=["accuracy", "f1"], **config)
    client.upload_dataset(*files)
    client.preprocess()
    cache = client.wait_preprocessed()["preprocess"]["cache"]
    client.start_training()
    final = client.wait_trained(poll_s=0.5)
    assert final["state"] == "trained", final
    model = extract(client.download_model(tmp / f"{name}.tar.gz"), tmp / name) / "model"
    return cache, final, load_file(model / "model.safetensors")


def rows_in_cache_order(cache: dict, split: str) -> list[str]:
    tables = [pq.read_table(f) for f in sorted((Path(cache["path"]) / split).glob("*.parquet"))]
    return [text for t in tables for text in t.column("text").to_pylist()]


def test_two_runs_from_scratch_give_the_same_weights(server, tmp_path):
    files = sentiment_files(tmp_path, train_rows=3000, test_rows=2500)
    cache, first, weights = train_once(server, tmp_path, files, "first")
    assert len(list((Path(cache["path"]) / "train").glob("*.parquet"))) > 1
    with open(files[1], newline="") as f:  # the cache keeps the upload's row order (the test split keeps text)
        assert rows_in_cache_order(cache, "test") == [row["text"] for row in csv.DictReader(f)]
    again_cache, again, again_weights = train_once(server, tmp_path, files, "second", overwrite_cache=True)
    assert again_cache["reused"] is False and again_cache["path"] == cache["path"]
    assert again["history"] == first["history"] and again["metrics"] == first["metrics"]
    assert weights.keys() == again_weights.keys()
    assert all(torch.equal(weights[k], again_weights[k]) for k in weights)
