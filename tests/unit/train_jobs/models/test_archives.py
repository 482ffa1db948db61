"""Unit tests of archive extraction in train_jobs/models/importer.py: a zip bomb is refused before it is unpacked."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from train_jobs.models.importer import ImportFailed, extract_archive
from train_jobs.specs import ArchiveLimits


def zip_of(path, files: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def tar_of(path, files: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("pack", [zip_of, tar_of])
def test_a_bomb_is_refused_by_its_ratio_and_nothing_is_written(tmp_path, pack):
    archive = pack(tmp_path / "bomb.archive", {"model/config.json": b"{}", "model/zeros.bin": bytes(20 << 20)})
    dest = tmp_path / "out"
    with pytest.raises(ImportFailed) as err:
        extract_archive(archive, dest, ArchiveLimits())
    assert "max_archive_ratio" in str(err.value)
    assert not any(dest.rglob("*"))


@pytest.mark.parametrize("limits, setting", [
    (ArchiveLimits(max_unpacked_bytes=1 << 10), "max_model_unpacked_mb"),
    (ArchiveLimits(max_entries=2), "max_archive_entries"),
])
def test_size_and_entry_caps_name_their_setting(tmp_path, limits, setting):
    files = {f"model/{i}.bin": bytes(range(256)) * 16 for i in range(3)} | {"model/config.json": b"{}"}
    with pytest.raises(ImportFailed) as err:
        extract_archive(zip_of(tmp_path / "a.zip", files), tmp_path / "out", limits)
    assert setting in str(err.value)


def test_an_archive_within_the_limits_unpacks(tmp_path):
    archive = tar_of(tmp_path / "m.tar.gz", {"m/config.json": b"{}", "m/model.safetensors": b"x" * 1000})
    assert extract_archive(archive, tmp_path / "out", ArchiveLimits()) == tmp_path / "out" / "m"
