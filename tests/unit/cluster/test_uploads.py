"""Unit tests of cluster/uploads.py: uploads stream under a limit, leave nothing behind, and stage under safe names."""

from __future__ import annotations

import asyncio
import io

import pytest

from cluster.uploads import save_upload, staged_name
from train_jobs.errors import TooLarge


class FakePart:
    """A multipart file part as Starlette hands it over: a name and async reads (the data is real bytes)."""

    def __init__(self, data: bytes, filename: str = "train.csv"):
        self.filename, self._data = filename, io.BytesIO(data)

    async def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


def test_an_upload_within_the_limit_is_written(tmp_path):
    dest = asyncio.run(save_upload(FakePart(b"text,label\na,b\n"), tmp_path / "t.csv", "train_file", 1 << 20))
    assert dest.read_bytes() == b"text,label\na,b\n"


def test_an_upload_over_the_limit_names_the_setting_and_leaves_no_file(tmp_path):
    with pytest.raises(TooLarge) as err:
        asyncio.run(save_upload(FakePart(b"x" * (3 << 20)), tmp_path / "m.archive", "file", 2 << 20,
                                setting="max_model_upload_mb"))
    assert "max_model_upload_mb" in err.value.message and err.value.status_code == 413
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("filename, name", [
    ("data.CSV", "train.csv"), ("x.jsonl", "train.jsonl"), ("noext", "train.upload"),
    ("a." + "s" * 300, "train.upload"), ("../../etc/passwd", "train.upload"), (None, "train.upload"),
    ("evil.c$v", "train.upload"),
])
def test_staged_names_are_safe(filename, name):
    assert staged_name("train", filename) == name
