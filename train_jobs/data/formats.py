"""Upload file formats: which one a file is, and its lines and records as a stream with line numbers.

Every problem is reported with the file and line, so the user knows what to fix.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from train_jobs.errors import BadDataset

csv.field_size_limit(16 * 1024 * 1024)

JSONL_SUFFIXES = ("jsonl", "json", "ndjson")
TEXT_SUFFIXES = {**dict.fromkeys(JSONL_SUFFIXES, "jsonl"), "csv": "csv", "tsv": "tsv"}
TOKEN_SUFFIXES = {**dict.fromkeys(JSONL_SUFFIXES, "jsonl"),
                  **dict.fromkeys(("conll", "conllu", "txt", "tsv", "bio", "iob"), "conll")}


def as_text(value) -> str:
    """A JSON value as the text a CSV cell would hold, so every format parses the same way."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value)


def _head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(4096).lstrip(b"\xef\xbb\xbf").lstrip()


def sniff_format(path: Path, filename: str = "", tokens: bool = False) -> str:
    """The format by the upload's file name, else by content: jsonl, csv or tsv (conll for token uploads)."""
    suffix = Path(filename or path.name).suffix.lower().lstrip(".")
    by_suffix = (TOKEN_SUFFIXES if tokens else TEXT_SUFFIXES).get(suffix)
    if by_suffix:
        return by_suffix
    head = _head(path)
    if head.startswith(b"{"):
        return "jsonl"
    if tokens:
        return "conll"
    return "tsv" if b"\t" in head.split(b"\n", 1)[0] else "csv"


def decoded_lines(path: Path, name: str) -> Iterator[str]:
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise BadDataset(
                    f"{name}: line {line_no}, byte {e.start + 1}: not valid UTF-8; save the file as UTF-8"
                ) from None


def iter_records(path: Path, fmt: str, name: str) -> Iterator[tuple[int, dict]]:
    """Yield (line number, row) pairs; raises BadDataset on malformed lines."""
    if fmt == "jsonl":
        for line_no, line in enumerate(decoded_lines(path, name), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise BadDataset(f"{name}: line {line_no}, column {e.colno}: invalid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise BadDataset(f"{name}: line {line_no}: expected a JSON object per line")
            yield line_no, row
        return
    reader = csv.reader(decoded_lines(path, name), delimiter="\t" if fmt == "tsv" else ",")
    rows = _csv_rows(reader, name)
    header = next(rows, None)
    if header is None:
        return
    header = [h.strip() for h in header]
    yield 1, {"__header__": header}
    start = reader.line_num + 1
    for fields in rows:
        line_no, start = start, reader.line_num + 1
        if not fields or fields == [""]:
            continue
        if len(fields) != len(header):
            raise BadDataset(
                f"{name}: line {line_no}: expected {len(header)} fields ({','.join(header)}), found {len(fields)}"
            )
        yield line_no, dict(zip(header, fields))


def _csv_rows(reader, name: str) -> Iterator[list[str]]:
    """The reader's rows, with the csv module's own errors (a field over the size limit, a stray quote under
    strict parsing) as BadDataset naming the line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise BadDataset(f"{name}: line {reader.line_num}: {e}; fields may hold at most "
                             f"{csv.field_size_limit() // (1 << 20)} MiB") from None
