"""The shards behind a dataset URI: listed (one format per folder), identified, and sampled to local files.

A URI names one file or a folder of them. The check at upload reads a bounded
sample of every shard (its head, at least, so a shard with other columns is
caught); preprocessing reads them all. A shard's size and modification time
(and etag where the store gives one) are its identity, so the preprocessing
cache knows an unchanged source without reading it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Optional

import pyarrow.fs as pafs
from pydantic import BaseModel, ConfigDict

from train_jobs.data.formats import as_text
from train_jobs.data.sources import DataSource
from train_jobs.data.stores import read_failure
from train_jobs.errors import BadDataset, SessionError

SHARD_FORMATS = {"csv": "csv", "tsv": "tsv", "jsonl": "jsonl", "json": "jsonl", "ndjson": "jsonl",
                 "parquet": "parquet", "pq": "parquet"}
SAMPLE_ROWS = 1000  # rows of a split the check at upload reads, over all its shards (setting uri_sample_rows)
HEAD_ROWS = 20  # rows read from every shard, whatever is left of SAMPLE_ROWS: its columns are checked
SAMPLE_BYTES = 8 << 20  # of one text shard at most
READ_CHUNK = 64 << 10
MAX_SHARDS = 10_000
SKIPPED = (".md",)  # a folder's README (a Hub dataset has one) is not a shard


class Shard(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    size: int
    mtime: Optional[str] = None


class ShardSet(BaseModel):
    """A split's source and its shards, in path order."""

    source: DataSource
    format: str
    shards: list[Shard]

    def identity(self) -> str:
        """A digest of the URI and every shard's path, size and time: the preprocessing cache's key for it."""
        parts = {"uri": self.source.uri, "format": self.format, "shards": [s.model_dump() for s in self.shards]}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def record(self) -> dict:
        """What the session keeps: where the data is and what it was (no credentials: a URI holds none)."""
        return {**self.source.model_dump(), "format": self.format, "shards": [s.model_dump() for s in self.shards]}


def shard_format(path: str) -> Optional[str]:
    return SHARD_FORMATS.get(PurePosixPath(path).suffix.lower().lstrip("."))


def _hidden(path: str, root: str) -> bool:
    """Files a writer leaves beside its shards (_SUCCESS, .crc, .gitattributes), and READMEs."""
    inside = PurePosixPath(path).relative_to(root).parts if path != root else (PurePosixPath(path).name,)
    return any(p.startswith((".", "_")) for p in inside) or PurePosixPath(path).suffix.lower() in SKIPPED


def _files(source: DataSource, fs: pafs.FileSystem) -> list[pafs.FileInfo]:
    info = fs.get_file_info(source.path)
    if info.type == pafs.FileType.NotFound:
        bucket = source.path.split("/")[0]
        if source.scheme in ("s3", "gs") and fs.get_file_info(bucket).type == pafs.FileType.NotFound:
            raise BadDataset(f"{source.field} {source.uri}: no such bucket ({bucket})")
        raise BadDataset(f"{source.field} {source.uri}: no such file or folder")
    if info.type == pafs.FileType.File:
        return [info]
    found = [i for i in fs.get_file_info(pafs.FileSelector(source.path, recursive=True))
             if i.type == pafs.FileType.File and not _hidden(i.path, source.path)]
    if len(found) > MAX_SHARDS:
        raise BadDataset(f"{source.field} {source.uri}: {len(found)} files, more than {MAX_SHARDS}; "
                         "merge them into fewer shards")
    if any(i.mtime is None for i in found):  # a listing without times: ask each file (one request each)
        found = fs.get_file_info([i.path for i in found])
    return sorted(found, key=lambda i: i.path)


def list_shards(source: DataSource, fs: pafs.FileSystem) -> ShardSet:
    """The shards of `source`: one format, none empty; 400 naming the URI (and the shard) otherwise."""
    try:
        found = _files(source, fs)
    except SessionError:
        raise
    except Exception as e:
        raise read_failure(source, e) from None
    if not found:
        raise BadDataset(f"{source.field} {source.uri}: an empty folder; it needs CSV, TSV, JSONL or Parquet files")
    formats: dict[str, str] = {}
    for info in found:
        fmt = shard_format(info.path)
        if fmt is None:
            raise BadDataset(f"{source.field} {source.uri}: shard {source.shard_uri(info.path)} is not CSV, TSV, "
                             "JSONL or Parquet by its name (.csv, .tsv, .jsonl, .parquet)")
        if info.size == 0:
            raise BadDataset(f"{source.field} {source.uri}: shard {source.shard_uri(info.path)} is empty")
        formats.setdefault(fmt, info.path)
    if len(formats) > 1:
        shown = ", ".join(f"{fmt} ({source.shard_uri(path)})" for fmt, path in formats.items())
        raise BadDataset(f"{source.field} {source.uri}: a folder of mixed formats: {shown}; keep one format per "
                         "folder")
    shards = [Shard(path=i.path, size=i.size, mtime=i.mtime.isoformat() if i.mtime else None) for i in found]
    return ShardSet(source=source, format=next(iter(formats)), shards=shards)


def _sample_text(fs: pafs.FileSystem, path: str, dest: Path, rows: int) -> tuple[int, bool]:
    """The header and first `rows` lines of a text shard (whole lines, SAMPLE_BYTES at most): (lines after the
    header, whether that is the whole shard)."""
    data = bytearray()
    ended = False
    with fs.open_input_stream(path) as f:
        while data.count(b"\n") <= rows and len(data) < SAMPLE_BYTES:
            chunk = f.read(READ_CHUNK)
            if not chunk:
                ended = True
                break
            data += chunk
    if not ended:  # cut after the last whole line wanted
        cut, seen = -1, 0
        while seen <= rows:
            found = data.find(b"\n", cut + 1)
            if found < 0:
                break
            cut, seen = found, seen + 1
        del data[cut + 1:]
    dest.write_bytes(bytes(data))
    return max(0, data.count(b"\n") - 1), ended


def _sample_parquet(fs: pafs.FileSystem, path: str, dest: Path, rows: int) -> tuple[int, bool]:
    """The first `rows` rows of a Parquet shard as JSONL, every value as the text a CSV cell would hold: (rows,
    whether that is the whole shard)."""
    import pyarrow.parquet as pq

    with fs.open_input_file(path) as f:
        shard = pq.ParquetFile(f)
        batch = next(shard.iter_batches(batch_size=rows), None)
        total = shard.metadata.num_rows
    lines = [json.dumps({k: as_text(v) for k, v in row.items()}) for row in (batch.to_pylist() if batch else [])]
    dest.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines), len(lines) >= total


def sample_shards(shards: ShardSet, fs: pafs.FileSystem, dest: Path, split: str,
                  rows: Optional[int] = None) -> tuple[list[tuple[Path, str, str]], bool]:
    """A local sample of every shard (`rows` over them all, default SAMPLE_ROWS), for the upload's checks: (path,
    file name, the name errors give) each, and whether the samples hold the whole split."""
    parquet = shards.format == "parquet"
    left, parts, whole = SAMPLE_ROWS if rows is None else rows, [], True
    for i, shard in enumerate(shards.shards):
        local = dest / f"{split}-{i:05d}.{'jsonl' if parquet else shards.format}"
        try:
            got, ended = (_sample_parquet if parquet else _sample_text)(fs, shard.path, local, max(left, HEAD_ROWS))
        except Exception as e:
            raise read_failure(shards.source, e, shards.source.shard_uri(shard.path)) from None
        left, whole = max(0, left - got), whole and ended
        parts.append((local, local.name, f"{shards.source.field} {shards.source.shard_uri(shard.path)}"))
    return parts, whole
