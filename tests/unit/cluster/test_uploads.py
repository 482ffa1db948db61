"""Unit tests of cluster/uploads.py: multipart bodies stream to their files under a limit (no Content-Length needed),
leave nothing behind when refused, stage under safe names, and write off the event loop."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import pytest
from helpers import Pipe, fill, small_disk

from cluster.uploads import MiB, UploadStream, body_limit, save_parts, staged_name
from train_jobs.errors import BadDataset, InvalidParameters, TooLarge, storage_full

BOUNDARY = "----tm-test-boundary"


def part(name: str, data: bytes, filename: str | None = "train.csv") -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    return (f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\nContent-Type: text/csv\r\n\r\n".encode()
            + data + b"\r\n")


def form(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def stream(body: bytes, chunk: int = 7, content_type: str = f"multipart/form-data; boundary={BOUNDARY}",
           read: list | None = None) -> UploadStream:
    """The body in small chunks, as a chunked request without Content-Length arrives; `read` counts what was
    taken from it."""
    async def chunks():
        for i in range(0, len(body), chunk):
            if read is not None:
                read.append(min(chunk, len(body) - i))
            yield body[i:i + chunk]
    return UploadStream(content_type, chunks())


def save(body: UploadStream, tmp_path: Path, limit: int = MiB, **kwargs) -> dict:
    dest = {field: (lambda name, field=field: tmp_path / staged_name(field, name))
            for field in ("train_file", "test_file", "validation_file")}
    return asyncio.run(save_parts(body, dest, limit, **kwargs))


def test_file_parts_are_written_as_they_come_and_other_parts_dropped(tmp_path):
    body = form(part("note", b"a plain field", filename=None), part("train_file", b"text,label\na,b\n"),
                part("other", b"x" * 1000, "other.bin"), part("test_file", b"text,label\nc,d\n", "t.tsv"),
                part("validation_file", b"", filename=""))  # an empty file input, as browsers send it
    saved = save(stream(body), tmp_path, required=("train_file", "test_file"))
    assert {field: (path.name, name) for field, (path, name) in saved.items()} == {
        "train_file": ("train_file.csv", "train.csv"), "test_file": ("test_file.tsv", "t.tsv")}
    assert saved["train_file"][0].read_bytes() == b"text,label\na,b\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test_file.tsv", "train_file.csv"]


def test_a_file_over_the_limit_stops_the_stream_names_the_setting_and_leaves_nothing(tmp_path):
    read: list[int] = []
    body = form(part("train_file", b"ok\n"), part("test_file", b"x" * (3 * MiB)))
    with pytest.raises(TooLarge) as err:
        save(stream(body, chunk=64 << 10, read=read), tmp_path, limit=2 * MiB, setting="max_model_upload_mb")
    assert err.value.status_code == 413 and "test_file" in err.value.message
    assert "max_model_upload_mb" in err.value.message and "2 MiB" in err.value.message
    assert sum(read) < 2 * MiB + (256 << 10)  # stopped at the limit, not after the whole body
    assert list(tmp_path.iterdir()) == []


def test_the_whole_body_is_limited_too_whatever_its_parts_are(tmp_path):
    limit = 64 << 10
    junk = b"".join(part(f"junk{i}", b"y" * limit, "j.bin") for i in range(body_limit(limit, 3) // limit + 1))
    with pytest.raises(TooLarge) as err:
        save(stream(form(part("train_file", b"ok\n"), junk), chunk=4096), tmp_path, limit=limit)
    assert "request body" in err.value.message and "max_upload_mb" in err.value.message
    assert list(tmp_path.iterdir()) == []


def test_a_missing_required_file_is_422_naming_the_field_and_leaves_nothing(tmp_path):
    with pytest.raises(InvalidParameters) as err:
        save(stream(form(part("train_file", b"ok\n"))), tmp_path, required=("train_file", "test_file"))
    assert err.value.detail[0]["loc"] == ["body", "test_file"] and "test_file" in err.value.message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("body, content_type, error", [
    (b"text,label\n", "text/csv", InvalidParameters),
    (b"", "multipart/form-data", InvalidParameters),  # no boundary
    (part("train_file", b"cut off in the midd"), None, BadDataset),
    (form(part("train_file", b"one"), part("train_file", b"two")), None, BadDataset),
])
def test_malformed_bodies_are_refused_and_leave_nothing(tmp_path, body, content_type, error):
    upload = stream(body) if content_type is None else stream(body, content_type=content_type)
    with pytest.raises(error):
        save(upload, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_mid_upload_leaves_no_partial_file_and_maps_to_507(tmp_path):
    with small_disk(tmp_path / "disk", "1m") as disk:
        dest = {"train_file": lambda name: disk / "train.csv"}
        with pytest.raises(OSError) as err:
            asyncio.run(save_parts(stream(form(part("train_file", b"z" * (2 * MiB))), chunk=64 << 10), dest,
                                   4 * MiB))
        assert err.value.errno == errno.ENOSPC
        assert list(disk.iterdir()) == []
        full = storage_full(err.value, str(disk))
        assert full.status_code == 507 and str(disk) in full.message and "free space" in full.hint


def test_storage_full_maps_only_a_full_disk_and_finds_it_behind_other_errors():
    assert storage_full(OSError(errno.EACCES, "Permission denied"), "/data") is None
    assert storage_full(ValueError("no"), "/data") is None
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded", "/data/session.json")
        except OSError as e:
            raise RuntimeError("writing the session") from e
    except RuntimeError as wrapped:
        full = storage_full(wrapped, "/data")
    assert full.status_code == 507 and "/data/session.json" in full.message


def test_fill_leaves_the_disk_full(tmp_path):
    with small_disk(tmp_path / "disk", "1m") as disk:
        fill(disk)
        with pytest.raises(OSError) as err, open(disk / "more", "wb") as f:
            f.write(b"x" * 8192)
            f.flush()
        assert err.value.errno == errno.ENOSPC


@pytest.mark.parametrize("filename, name", [
    ("data.CSV", "train.csv"), ("x.jsonl", "train.jsonl"), ("noext", "train.upload"),
    ("a." + "s" * 300, "train.upload"), ("../../etc/passwd", "train.upload"), (None, "train.upload"),
    ("evil.c$v", "train.upload"),
])
def test_staged_names_are_safe(filename, name):
    assert staged_name("train", filename) == name


def test_a_write_that_stalls_holds_its_upload_not_the_event_loop(tmp_path):
    """The train file is a FIFO nobody reads yet: once its buffer is full the write stalls, as on slow shared
    storage. The event loop goes on meanwhile (before, the whole replica waited with it); the upload ends, whole,
    once the storage takes its bytes."""
    data = b"x" * (4 * MiB)  # far more than a pipe holds (64 KiB)
    with Pipe(tmp_path / "train_file.csv") as pipe:
        async def run() -> dict:
            upload = asyncio.create_task(save_parts(stream(form(part("train_file", data)), chunk=64 << 10),
                                                    {"train_file": lambda _: pipe.path}, 8 * MiB))
            await pipe.stalled(upload)  # the upload is writing, and waits for the storage
            for _ in range(5):  # the loop runs other work meanwhile
                await asyncio.sleep(0.01)
            assert not upload.done() and not pipe.rescued, "the event loop was held while the upload wrote"
            pipe.drain()
            return await upload

        saved = asyncio.run(run())
    assert saved["train_file"][0] == pipe.path and pipe.read == data


def test_plain_fields_asked_for_are_kept_whole_across_chunks_and_others_dropped(tmp_path):
    values = dict.fromkeys(("train_uri", "test_uri", "validation_uri"), "")
    uri = "s3://bucket/données/train"  # non-ASCII, split across 3-byte chunks
    body = form(part("train_uri", uri.encode(), filename=None), part("test_uri", b"gs://b/test.csv", filename=None),
                part("note", b"dropped", filename=None))
    assert save(stream(body, chunk=3), tmp_path, values=values) == {}
    assert values == {"train_uri": uri, "test_uri": "gs://b/test.csv"}  # validation_uri was not sent
    with pytest.raises(BadDataset, match="train_uri: longer than"):
        save(stream(form(part("train_uri", b"s3://" + b"x" * 5000, filename=None))), tmp_path,
             values={"train_uri": ""})
