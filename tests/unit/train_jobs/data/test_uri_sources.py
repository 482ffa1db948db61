"""Unit tests of train_jobs/data/sources.py: a dataset URI parsed and checked (scheme, form, data_roots) before
anything is read."""

from __future__ import annotations

import pytest

from train_jobs.data.sources import parse_sources, parse_uri
from train_jobs.data.stores import read_failure
from train_jobs.errors import BadDataset, Forbidden


@pytest.mark.parametrize("uri, scheme, path", [
    ("s3://bucket/data/train", "s3", "bucket/data/train"),
    ("s3://bucket/data/train/", "s3", "bucket/data/train"),
    ("S3://bucket/a%20b.csv", "s3", "bucket/a b.csv"),
    ("gs://bucket/train.parquet", "gs", "bucket/train.parquet"),
    ("hf://datasets/org/name", "hf", "datasets/org/name"),
    ("hf://datasets/org/name/data/train.csv", "hf", "datasets/org/name/data/train.csv"),
    ("  s3://bucket  ", "s3", "bucket"),
])
def test_store_uris_parse_to_their_filesystem_path(uri, scheme, path):
    source = parse_uri("train_uri", uri, [])
    assert (source.scheme, source.path, source.field) == (scheme, path, "train_uri")
    assert source.shard_uri(path) == f"{scheme}://{path}"


@pytest.mark.parametrize("uri, says", [
    ("", "train_uri: empty URI"),
    ("ftp://host/train.csv", "scheme ftp:// is not one the server reads"),
    ("/data/train.csv", "scheme (none) is not one"),
    ("https://example.com/train.csv", "scheme https://"),
    ("s3:///train.csv", "no bucket named"),
    ("hf://models/org/name", "hf://datasets/<org>/<name>"),
    ("hf://datasets/org", "hf://datasets/<org>/<name>"),
    ("s3://bucket/train.csv?versionId=1", "no ?query"),
    ("file://otherhost/data/train.csv", "not on another host"),
    ("s3://[bucket/x", "not a URI (Invalid IPv6 URL)"),
    ("file:///data/a\x00b.csv", "not a URI (control characters)"),
])
def test_malformed_uris_and_other_schemes_are_400_naming_the_field(uri, says):
    with pytest.raises(BadDataset, match="train_uri") as refused:
        parse_uri("train_uri", uri, [])
    assert says in refused.value.message


def test_credentials_in_a_uri_are_refused_without_echoing_them():
    with pytest.raises(BadDataset) as refused:
        parse_uri("train_uri", "s3://AKIAKEY:hunter2@bucket/train.csv", [])
    assert "credentials" in refused.value.message and "hunter2" not in refused.value.message
    assert "AKIAKEY" not in refused.value.message


def test_file_uris_resolve_under_data_roots_only(tmp_path):
    root, outside = tmp_path / "data", tmp_path / "elsewhere"
    (root / "set").mkdir(parents=True)
    outside.mkdir()
    (root / "set" / "out").symlink_to(outside)
    source = parse_uri("test_uri", f"file://{root}/set/../set/train.csv", [str(root)])
    assert (source.scheme, source.path) == ("file", str(root / "set" / "train.csv"))
    assert parse_uri("test_uri", f"file://localhost{root}/set", [str(root)]).path == str(root / "set")
    for uri in (f"file://{outside}/train.csv", f"file://{root}/set/out/train.csv", f"file://{root}/../elsewhere"):
        with pytest.raises(Forbidden, match="outside the folders datasets may be read from") as refused:
            parse_uri("test_uri", uri, [str(root)])
        assert refused.value.status_code == 403 and "data_roots" in refused.value.hint
    with pytest.raises(Forbidden, match="none configured"):
        parse_uri("test_uri", f"file://{root}/set", [])


def test_train_and_test_are_required_validation_is_optional():
    sources = parse_sources({"train_uri": "s3://b/train", "test_uri": "s3://b/test", "validation_uri": " "}, [])
    assert set(sources) == {"train", "test"}
    assert set(parse_sources({"train_uri": "s3://b/t", "test_uri": "s3://b/u", "validation_uri": "gs://b/v"}, [])) \
        == {"train", "test", "validation"}
    with pytest.raises(BadDataset, match="test_uri: no URI given"):
        parse_sources({"train_uri": "s3://b/train"}, [])


@pytest.mark.parametrize("error, reason", [
    (OSError("AWS Error NO_SUCH_BUCKET during ListObjectsV2 operation"), "no such bucket"),
    (OSError("AWS Error ACCESS_DENIED during HeadObject operation"), "access denied"),
    (OSError("AWS Error INVALID_ACCESS_KEY_ID during HeadObject"), "no valid credentials"),
    (OSError("Could not create a OAuth2 access token to authenticate the request"), "no valid credentials"),
    (OSError("curlCode: 28, Timeout was reached"), "no answer in time"),
    (OSError("AWS Error NETWORK_CONNECTION: curlCode: 7, Could not connect to server"), "could not be reached"),
    (ValueError("something else entirely"), "cannot be read: something else entirely"),
])
def test_store_failures_are_400_naming_the_uri_the_shard_and_the_reason(error, reason):
    source = parse_uri("test_uri", "s3://bucket/test", [])
    failure = read_failure(source, error, "s3://bucket/test/part-1.csv")
    assert failure.status_code == 400 and reason in failure.message
    assert failure.message.startswith("test_uri s3://bucket/test (shard s3://bucket/test/part-1.csv): cannot be read")
