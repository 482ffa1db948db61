"""Datasets by URI through the real server: the bundled sample as CSV and as Parquet shards on a real S3-compatible
server (moto's, on 127.0.0.1) trains to the same test metrics as the same rows uploaded; file:// reads under the
server's data_roots only; bad URIs are refused naming the URI and the shard, the session left as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from conftest import TINY_MODEL
from helpers import expect_error, new_session
from s3_store import CREDENTIALS, as_csv, as_parquet, bucket, put_shards

import training_client.sample_data

SAMPLE = Path(training_client.sample_data.__file__).parent
CONFIG = {"model": TINY_MODEL, "epochs": 1, "batch_size": 16, "learning_rate": 1e-3, "precision": "fp32"}
BUCKET = "datasets-by-uri"


def _read(name: str, every: int) -> pa.Table:
    """Every `every`-th row of a bundled sample file (a few hundred rows keep the runs short), all as strings."""
    table = pacsv.read_csv(SAMPLE / name, convert_options=pacsv.ConvertOptions(column_types={"label": pa.string()}))
    return table.take(list(range(0, table.num_rows, every)))


@pytest.fixture(scope="module")
def sample() -> tuple[pa.Table, pa.Table]:
    return _read("banking77_train.csv", 3), _read("banking77_test.csv", 4)


def snapshot(client) -> dict:
    params = client.get_parameters()
    return {"state": params["state"], "config": params["config"], "dataset": params["dataset"]}


def train(server, upload) -> tuple[dict, dict, object]:
    """(the upload's reply, the trained run's final status, the client) for a new session given its dataset by
    `upload`."""
    client = new_session(server)
    client.set_parameters(**CONFIG)
    reply = upload(client)
    client.preprocess()
    client.wait_preprocessed()
    client.start_training()
    final = client.wait_trained(poll_s=0.5)
    assert final["state"] == "trained", final
    return reply, final, client


def test_s3_shards_train_to_the_metrics_of_the_same_rows_uploaded(server, s3_store, sample, tmp_path):
    train_rows, test_rows = sample
    files = tmp_path / "train.csv", tmp_path / "test.csv"
    files[0].write_bytes(as_csv(train_rows))
    files[1].write_bytes(as_csv(test_rows))
    _, uploaded, _ = train(server, lambda c: c.upload_dataset(*files))

    s3 = bucket(s3_store, BUCKET)
    for fmt in ("csv", "parquet"):
        uris = (put_shards(s3, BUCKET, f"{fmt}/train", train_rows, 2, fmt),
                put_shards(s3, BUCKET, f"{fmt}/test", test_rows, 1, fmt))
        reply, by_uri, client = train(server, lambda c, uris=uris: c.upload_dataset_uris(*uris))
        dataset = reply["dataset"]  # train checked on a sample (URI_SAMPLE_ROWS); test, smaller, whole
        assert dataset["train"]["sampled"] is True and dataset["train"]["rows"] < train_rows.num_rows
        assert dataset["test"]["sampled"] is False and dataset["test"]["rows"] == test_rows.num_rows
        assert dataset["train"]["source"]["uri"] == uris[0] and len(dataset["train"]["source"]["shards"]) == 2
        assert dataset["train"]["format"] == fmt
        whole = client.get_parameters()["dataset"]  # after preprocessing: the labels and rows of the whole
        assert whole["labels"] == sorted(set(train_rows["label"].to_pylist())) != dataset["labels"]
        assert whole["train"]["rows"] == train_rows.num_rows and whole["train"]["sampled"] is False
        assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in json.dumps(reply)  # never stored, never returned
        assert by_uri["metrics"] == uploaded["metrics"], fmt
        assert by_uri["history"] == uploaded["history"], fmt
    # The source unchanged: preprocessing again lists its shards and reuses the cache, tokenising nothing.
    client.preprocess()
    assert client.wait_preprocessed()["preprocess"]["cache"]["reused"] is True


def test_file_uris_read_under_data_roots_only(server, storage_root, sample, tmp_path):
    train_rows, test_rows = sample
    inside = storage_root / "data" / "banking"  # the default data_roots: <storage_root>/data
    inside.mkdir(parents=True, exist_ok=True)
    (inside / "train.tsv").write_bytes(as_csv(train_rows, delimiter="\t"))
    (inside / "test.parquet").write_bytes(as_parquet(test_rows))
    client = new_session(server)
    client.set_parameters(**CONFIG)
    reply = client.upload_dataset_uris(f"file://{inside}/train.tsv", f"file://{inside}/test.parquet")
    assert reply["dataset"]["train"]["sampled"] is True and reply["dataset"]["test"]["rows"] == test_rows.num_rows
    assert reply["dataset"]["train"]["format"] == "tsv" and reply["dataset"]["test"]["format"] == "parquet"
    before = snapshot(client)

    outside = tmp_path / "train.csv"
    outside.write_bytes(as_csv(train_rows))
    refused = expect_error(403, client.upload_dataset_uris, f"file://{outside}", f"file://{inside}/test.parquet")
    assert str(outside) in refused.body["message"] and "data_roots" in refused.body["hint"]
    link = inside / "link.csv"  # a link out of a root is outside it
    link.symlink_to(outside)
    expect_error(403, client.upload_dataset_uris, f"file://{link}", f"file://{inside}/test.parquet")
    assert snapshot(client) == before


def test_the_cli_trains_from_file_uris(server, storage_root, sample, tmp_path, capsys):
    from training_client.cli import main

    train_rows, test_rows = sample
    inside = storage_root / "data" / "cli"
    inside.mkdir(parents=True, exist_ok=True)
    for split, rows, shards in (("train", train_rows, 2), ("test", test_rows, 1)):
        (inside / split).mkdir(exist_ok=True)
        step = -(-rows.num_rows // shards)
        for i in range(shards):
            (inside / split / f"part-{i}.parquet").write_bytes(as_parquet(rows.slice(i * step, step)))
    settings = [item for field, value in CONFIG.items() for item in ("--set", f"{field}={json.dumps(value)}")]
    assert main(["--url", server.url, "run", "--force-restart", "--train-uri", f"file://{inside}/train",
                 "--test-uri", f"file://{inside}/test", *settings, "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "checked on a sample; preprocessing reads them all" in out and "test metrics of the selected model" in out
    assert (tmp_path / "out" / "model" / "config.json").exists()


def test_bad_uris_are_refused_naming_the_uri_and_the_shard(server, s3_store, sample):
    train_rows, test_rows = sample
    s3 = bucket(s3_store, "bad-uris")
    test_uri = put_shards(s3, "bad-uris", "test", test_rows, 1, "csv")
    s3.put_object(Bucket="bad-uris", Key="mixed/a.csv", Body=as_csv(train_rows))
    s3.put_object(Bucket="bad-uris", Key="mixed/b.parquet", Body=as_parquet(train_rows))
    s3.put_object(Bucket="bad-uris", Key="columns/a.csv", Body=as_csv(train_rows))
    s3.put_object(Bucket="bad-uris", Key="columns/b.csv", Body=as_csv(train_rows.append_column("extra", train_rows[0])))
    s3.put_object(Bucket="bad-uris", Key="rows/a.csv", Body=b"text,label\nfine,card_arrival\n,pin_blocked\n")
    s3.put_object(Bucket="bad-uris", Key="empty/a.csv", Body=b"")
    client = new_session(server)
    client.set_parameters(**CONFIG)
    before = snapshot(client)
    for uri, status, says in [
        ("ftp://host/train.csv", 400, "scheme ftp:// is not one the server reads"),
        ("s3://no-such-bucket/train", 400, "no such bucket"),
        ("s3://bad-uris/nothing-here", 400, "no such file or folder"),
        ("s3://bad-uris/mixed", 400, "mixed formats: csv (s3://bad-uris/mixed/a.csv), parquet"),
        ("s3://bad-uris/columns", 400, "s3://bad-uris/columns/b.csv: line 1: columns"),
        ("s3://bad-uris/rows", 400, "s3://bad-uris/rows/a.csv: line 3, column 1 (text): empty or missing text"),
        ("s3://bad-uris/empty", 400, "shard s3://bad-uris/empty/a.csv is empty"),
        ("s3://key:secret@bad-uris/train", 400, "may not carry credentials"),
    ]:
        error = expect_error(status, client.upload_dataset_uris, uri, test_uri)
        message = error.body["message"]
        assert says in message and "train_uri" in message, (uri, message)
        assert "secret" not in message
    assert snapshot(client) == before


def test_what_the_sample_could_not_see_is_checked_on_the_whole_at_preprocessing(server, s3_store, sample):
    """Train sorted by label and longer than the sample: the upload cannot know its labels, so a test label that
    train never has is found by preprocessing, which fails naming both URIs; the session keeps its dataset."""
    train_rows, test_rows = sample
    s3 = bucket(s3_store, "whole-checks")
    train_uri = put_shards(s3, "whole-checks", "train", train_rows, 1, "csv")
    unknown = test_rows.set_column(1, "label", pa.array(["never_in_train"] * test_rows.num_rows))
    test_uri = put_shards(s3, "whole-checks", "test", unknown, 1, "parquet")
    client = new_session(server)
    client.set_parameters(**CONFIG)
    client.upload_dataset_uris(train_uri, test_uri)  # train's sample has other labels: not decidable here
    client.preprocess()
    with pytest.raises(RuntimeError) as failed:
        client.wait_preprocessed()
    said = f"test_uri {test_uri}: label 'never_in_train' does not occur in train_uri {train_uri}"
    assert said in str(failed.value)
    assert client.preprocess_status()["state"] == "setup"
    assert client.get_parameters()["dataset"]["test"]["source"]["uri"] == test_uri
