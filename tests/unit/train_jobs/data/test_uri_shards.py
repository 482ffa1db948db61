"""Unit tests of datasets by URI without Ray (train_jobs/data/shards.py, stores.py, dataset.inspect_sources): shards
listed from a local folder and from a real S3-compatible server (moto's, on 127.0.0.1), their identity, a bounded
sample checked as an upload is, and each refusal naming the URI and the shard."""

from __future__ import annotations

import json
import os
import time

import pyarrow as pa
import pytest
from s3_store import as_csv, as_parquet, bucket, put_shards, s3_server

from train_jobs.data.dataset import current_sources, inspect_sources
from train_jobs.data.samples import split_inputs
from train_jobs.data.shards import list_shards, sample_shards
from train_jobs.data.sources import parse_sources, parse_uri
from train_jobs.data.stores import filesystem
from train_jobs.errors import BadDataset
from train_jobs.specs import DatasetSpec, StoreOptions

LOCAL = StoreOptions()


def rows(n: int, labels=("neg", "pos"), start: int = 0) -> pa.Table:
    return pa.table({"text": [f"row {start + i} text" for i in range(n)],
                     "label": [labels[(start + i) % len(labels)] for i in range(n)]})


def local(path) -> tuple:
    source = parse_uri("train_uri", f"file://{path}", [str(path.parent)])
    return source, filesystem("file", LOCAL)


def test_a_folder_lists_its_shards_in_path_order_skipping_writer_files(tmp_path):
    folder = tmp_path / "train"
    (folder / "b").mkdir(parents=True)
    (folder / "b" / "part-1.csv").write_bytes(as_csv(rows(3)))
    (folder / "part-0.csv").write_bytes(as_csv(rows(3)))
    for junk in ("_SUCCESS", ".part-0.csv.crc", "README.md"):
        (folder / junk).write_text("x")
    shards = list_shards(*local(folder))
    assert shards.format == "csv"
    assert [s.path for s in shards.shards] == [str(folder / "b" / "part-1.csv"), str(folder / "part-0.csv")]
    assert all(s.size > 0 and s.mtime for s in shards.shards)
    assert shards.record()["uri"] == f"file://{folder}" and "shards" in shards.record()


def test_identity_follows_every_shard(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "a.csv").write_bytes(as_csv(rows(3)))
    first = list_shards(*local(folder)).identity()
    assert list_shards(*local(folder)).identity() == first  # unchanged: the same key
    (folder / "a.csv").write_bytes(as_csv(rows(4)))
    os.utime(folder / "a.csv", (time.time() + 5, time.time() + 5))
    assert list_shards(*local(folder)).identity() != first


@pytest.mark.parametrize("files, says", [
    ({}, "an empty folder"),
    ({"a.csv": b"text,label\na,b\n", "b.parquet": as_parquet(rows(2))}, "a folder of mixed formats: csv"),
    ({"a.csv": b""}, "a.csv is empty"),
    ({"a.xlsx": b"x"}, "a.xlsx is not CSV, TSV, JSONL or Parquet"),
])
def test_folders_that_cannot_be_a_split_are_400_naming_the_uri_and_the_shard(tmp_path, files, says):
    folder = tmp_path / "train"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    with pytest.raises(BadDataset, match=f"train_uri file://{folder}") as refused:
        list_shards(*local(folder))
    assert says in refused.value.message
    with pytest.raises(BadDataset, match="no such file or folder"):
        list_shards(*local(tmp_path / "missing"))


def test_the_sample_is_bounded_but_reads_the_head_of_every_shard(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    for i in range(3):
        (folder / f"part-{i}.csv").write_bytes(as_csv(rows(100, start=100 * i)))
    source, fs = local(folder)
    parts, whole = sample_shards(list_shards(source, fs), fs, tmp_path, "train", rows=150)
    lines = [path.read_text().count("\n") - 1 for path, _, _ in parts]
    assert lines == [100, 50, 20] and whole is False  # 150 over the shards, and 20 of the last all the same
    assert parts[2][2] == f"train_uri file://{folder}/part-2.csv"
    assert sample_shards(list_shards(source, fs), fs, tmp_path, "train", rows=1000)[1] is True


def test_a_sample_of_sorted_labels_defers_the_label_checks_to_the_whole(tmp_path):
    """Train sorted by label, larger than the sample: the sample sees one label, which is no reason to refuse."""
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.csv").write_bytes(as_csv(pa.table({"text": [f"t{i}" for i in range(60)],
                                                                  "label": ["neg"] * 30 + ["pos"] * 30})))
    (tmp_path / "test.csv").write_bytes(as_csv(rows(4)))
    sources = parse_sources({"train_uri": f"file://{tmp_path}/train", "test_uri": f"file://{tmp_path}/test.csv"},
                            [str(tmp_path)])
    summary = inspect_sources(sources, "sequence_classification", StoreOptions(sample_rows=20), tmp_path)
    assert summary["train"]["sampled"] is True and summary["labels"] == ["neg"]  # the whole's at preprocessing
    assert summary["test"]["sampled"] is False and summary["test"]["label_counts"] == {"neg": 2, "pos": 2}
    # the whole train read: a test label not in it is refused
    (tmp_path / "test.csv").write_bytes(as_csv(rows(4, labels=("neg", "other"))))
    with pytest.raises(BadDataset, match="test_uri file://.*/test.csv: line 3, column 2 \\(label\\): label 'other'"):
        inspect_sources(sources, "sequence_classification", LOCAL, tmp_path)


def test_shards_on_s3_sampled_and_checked_as_an_upload(tmp_path):
    with s3_server() as endpoint:
        stores = StoreOptions(s3_endpoint_url=endpoint, timeout_s=5)
        s3 = bucket(endpoint, "unit-shards")
        train_uri = put_shards(s3, "unit-shards", "train", rows(90, labels=("neg", "pos", "mid")), 3, "parquet")
        test_uri = put_shards(s3, "unit-shards", "test", rows(12), 1, "csv")
        s3.put_object(Bucket="unit-shards", Key="wide/a.csv", Body=as_csv(rows(5)))
        s3.put_object(Bucket="unit-shards", Key="wide/b.csv", Body=as_csv(rows(5).append_column("x", rows(5)[0])))
        sources = parse_sources({"train_uri": train_uri, "test_uri": test_uri}, [])
        summary = inspect_sources(sources, "sequence_classification", stores, tmp_path)
        assert summary["train"]["rows"] == 90 and summary["train"]["format"] == "parquet"
        assert summary["labels"] == ["mid", "neg", "pos"] and summary["test"]["format"] == "csv"
        assert len(summary["train"]["source"]["shards"]) == 3
        assert endpoint not in json.dumps(summary)  # the session keeps the source, not the server's settings
        assert current_sources(DatasetSpec(**summary), stores).train.sha256 == summary["train"]["sha256"]
        # the first shard's sample stays: the rows an ONNX export is checked on (Parquet's kept as JSONL)
        assert split_inputs(DatasetSpec(**summary), "train", 2) == ("texts", ["row 0 text", "row 1 text"])
        for uri, says in [("s3://no-such-bucket/x", "no such bucket"),
                          ("s3://unit-shards/wide", "s3://unit-shards/wide/b.csv: line 1: columns")]:
            with pytest.raises(BadDataset, match="train_uri") as refused:
                inspect_sources(parse_sources({"train_uri": uri, "test_uri": test_uri}, []),
                                "sequence_classification", stores, tmp_path)
            assert says in refused.value.message
    with pytest.raises(BadDataset, match="cannot be read: the store could not be reached"):  # the server is gone
        inspect_sources(sources, "sequence_classification", stores, tmp_path)
