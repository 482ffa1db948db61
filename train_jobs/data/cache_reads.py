"""A split of the preprocessing cache as training reads it: held in the object store when small, streamed from
its Parquet files when larger than the `stream_cache_above_mb` setting; and the validation hold-out carved from
a streamed train split one file at a time."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa
import ray

from train_jobs.data.validation import carve, held_out_index

MB = 1 << 20


def _natural(path: Path) -> list:
    # Ray Data names a write task's files `<uuid>_<task:06>-<i>.parquet`, `i` not zero-padded: `-10` after `-9`.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def split_files(cache_path: str, split: str) -> list[Path]:
    """A split's Parquet files in row order (the order the build wrote them in)."""
    return sorted((Path(cache_path) / split).glob("*.parquet"), key=_natural)


def streamed(files: list[Path], above_mb: Optional[float]) -> bool:
    """Whether training streams these files (more than `above_mb` MB on disk; None: never) rather than holding
    them in the object store, which starts faster (about 3 s for SST-2) but holds the whole split at once."""
    return above_mb is not None and sum(f.stat().st_size for f in files) > above_mb * MB


def read_tables(files: list[Path]) -> list[pa.Table]:
    """Cache files as Arrow tables, one per file, in the order given."""
    import pyarrow.parquet as pq

    return [pq.read_table(f) for f in files]


def read_split_tables(cache_path: str, split: str) -> list[pa.Table]:
    """A split of the cache as Arrow tables, one per Parquet file, in row order."""
    return read_tables(split_files(cache_path, split))


def _read_files(batch: dict):
    """Each cache file named in `batch`, read whole (at most CACHE_FILE_ROWS rows), as a block of its own."""
    import pyarrow.parquet as pq

    for path in batch["path"]:
        yield pq.read_table(str(path))


def stream_files(files: list[Path]) -> ray.data.Dataset:
    """A lazy read of `files`, in their order: a file at a time, each epoch, never the whole split.

    Not ray.data.read_parquet: its file listing is a task of 1 CPU, which never runs while the training workers
    hold every CPU (the run waited forever). Here the paths are in memory already and each file is read by a
    0-CPU task (Parquet decoding, brief)."""
    return ray.data.from_items([{"path": str(f)} for f in files], override_num_blocks=max(1, len(files))).map_batches(
        _read_files, batch_size=1, batch_format="numpy", num_cpus=0)


def read_split(cache_path: str, split: str, stream_above_mb: Optional[float] = None) -> ray.data.Dataset:
    """A split of the cache as a Ray Dataset: streamed from its files when larger than `stream_above_mb`, else
    already in the object store (one block per file).

    The small split is read with pyarrow in this process rather than by a Ray Data read and materialise:
    ready in milliseconds for SST-2 (67k rows) where the Ray Data execution took 3-4 s,
    all of it before the first training step. The cache (int32 token ids) passes
    through this process's memory once on its way to the object store.
    """
    files = split_files(cache_path, split)
    if streamed(files, stream_above_mb):
        return stream_files(files)
    return ray.data.from_arrow(read_tables(files))


def ingest_options():
    """Ray Train's ingest options, rows in file order: a streamed split's blocks otherwise arrive as their reads
    finish, and the shuffle buffer, hence the model, would differ between two runs of the same seed."""
    from ray.train import DataConfig

    options = DataConfig.default_ingest_options()
    options.preserve_order = True
    return options


def carve_files(files: list[Path], rows: int, seed: int, stratify: bool, out: Path) -> tuple[list[Path], list[Path]]:
    """validation.carve over a split's files without holding the split: the same rows held out for the same seed
    (the index is chosen from the `labels` column alone), each file then read once and its kept and held rows
    written to `out`/train and `out`/validation. Returns their files, in row order."""
    import pyarrow.parquet as pq

    shutil.rmtree(out, ignore_errors=True)  # an earlier attempt's
    counts = [pq.read_metadata(f).num_rows for f in files]
    labels = (pa.concat_tables([pq.read_table(f, columns=["labels"]) for f in files]).column("labels").to_numpy()
              if stratify else None)
    _, held = held_out_index(sum(counts), labels, rows, seed)
    is_held = np.zeros(sum(counts), dtype=bool)
    is_held[held] = True
    written: dict[str, list[Path]] = {"train": [], "validation": []}
    start = 0
    for n, (f, count) in enumerate(zip(files, counts)):
        table, mask = pq.read_table(f), is_held[start: start + count]
        start += count
        for part, keep in (("train", ~mask), ("validation", mask)):
            if keep.any():
                dest = out / part / f"{n:06d}.parquet"
                dest.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(table.filter(pa.array(keep)), dest)
                written[part].append(dest)
    return written["train"], written["validation"]


def carved_split(cache_path: str, rows: int, seed: int, stratify: bool, stream_above_mb: Optional[float],
                 out: Path) -> tuple[ray.data.Dataset, ray.data.Dataset]:
    """(train, validation) of the train split, `rows` held out by `seed`: in the object store, or streamed from
    files under `out` when the split is larger than `stream_above_mb` (the same rows either way)."""
    files = split_files(cache_path, "train")
    if streamed(files, stream_above_mb):
        train, held = carve_files(files, rows, seed, stratify, out)
        return stream_files(train), stream_files(held)
    train, held = carve(pa.concat_tables(read_tables(files)), rows, seed, stratify)
    return ray.data.from_arrow(train), ray.data.from_arrow(held)
