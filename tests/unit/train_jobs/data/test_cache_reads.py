"""Unit tests of train_jobs/data/cache_reads.py without Ray: a split's files in row order, the stream threshold,
and the hold-out carved file by file equal to the one carved from the whole split."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from train_jobs.data.cache_reads import MB, carve_files, split_files, streamed
from train_jobs.data.validation import carve


def write_split(folder, sizes: list[int], names=None) -> list:
    """A split of len(sizes) files holding rows 0.. in order (input_ids [i, i], labels i % 3 skewed)."""
    folder.mkdir(parents=True)
    start, paths = 0, []
    for n, size in enumerate(sizes):
        rows = range(start, start + size)
        table = pa.table({"input_ids": pa.array([[i, i] for i in rows], type=pa.list_(pa.int32())),
                          "labels": pa.array([0 if i % 5 else 1 for i in rows], type=pa.int64())})
        path = folder / (names[n] if names else f"f-{n:03d}.parquet")
        pq.write_table(table, path)
        paths.append(path)
        start += size
    return paths


def test_split_files_follow_ray_datas_write_order(tmp_path):
    # A write task's files: `-i` not zero-padded, so `-10` must come after `-9` (plain sorting puts it after `-1`).
    names = [f"ab12_000000-{i}.parquet" for i in range(12)] + ["ab12_000001-0.parquet"]
    write_split(tmp_path / "train", [1] * len(names), names)
    assert [p.name for p in split_files(str(tmp_path), "train")] == names


def test_streamed_above_the_threshold_only(tmp_path):
    files = write_split(tmp_path / "train", [300, 300])
    size = sum(f.stat().st_size for f in files) / MB
    assert streamed(files, 0) and streamed(files, size * 0.99)
    assert not streamed(files, size) and not streamed(files, None)


@pytest.mark.parametrize("stratify", [True, False])
def test_carving_file_by_file_holds_out_the_same_rows(tmp_path, stratify):
    files = write_split(tmp_path / "train", [37, 100, 1, 62])
    whole = pa.concat_tables([pq.read_table(f) for f in files])
    train, held = carve(whole, 40, seed=42, stratify=stratify)
    kept_files, held_files = carve_files(files, 40, 42, stratify, tmp_path / "carved")
    streamed_train = pa.concat_tables([pq.read_table(f) for f in kept_files])
    streamed_held = pa.concat_tables([pq.read_table(f) for f in held_files])
    assert streamed_train.equals(train) and streamed_held.equals(held)
    assert len(kept_files) <= len(files) and all(f.parent.parent == tmp_path / "carved" for f in held_files)
    # A second carve (a resumed run) replaces the first's files.
    assert carve_files(files, 40, 42, stratify, tmp_path / "carved") == (kept_files, held_files)


def test_reads_are_cut_in_bounded_blocks(tmp_path):
    from train_jobs.data.preprocess import BLOCK_BYTES, read_blocks
    from train_jobs.specs import SplitSummary

    upload = tmp_path / "train.csv"
    upload.write_bytes(b"x" * 100)
    assert read_blocks(SplitSummary(path=str(upload)), cpus=2) == 4  # two per CPU at least
    shards = {"scheme": "file", "shards": [{"path": f"/d/{i}.parquet"} for i in range(9)]}
    assert read_blocks(SplitSummary(source=shards, bytes=100), cpus=2) == 9  # a shard each at least
    assert read_blocks(SplitSummary(source=shards, bytes=20 * BLOCK_BYTES + 1), cpus=2) == 21
