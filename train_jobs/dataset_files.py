"""Reading and checking uploaded dataset files (CSV, TSV, JSONL).

Every problem is reported with the file, line and column so the user knows
what to fix. Files are read as a stream, never whole into memory.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Iterator, Optional

from cluster.errors import BadDataset

FORMATS = ("csv", "tsv", "jsonl")
TEXT_COLUMNS = (("text",), ("text_a", "text_b"))
LABEL_COLUMN = "label"
TARGET_COLUMNS = {"sequence_classification": LABEL_COLUMN, "regression": "score"}

csv.field_size_limit(16 * 1024 * 1024)


def detect_format(path: Path, filename: str = "") -> str:
    suffix = Path(filename or path.name).suffix.lower().lstrip(".")
    if suffix in ("jsonl", "json", "ndjson"):
        return "jsonl"
    if suffix in ("csv", "tsv"):
        return suffix
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"{"):
        return "jsonl"
    first_line = head.split(b"\n", 1)[0]
    return "tsv" if b"\t" in first_line else "csv"


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
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [h.strip() for h in header]
    yield 1, {"__header__": header}
    start = reader.line_num + 1
    for fields in reader:
        line_no, start = start, reader.line_num + 1
        if not fields or fields == [""]:
            continue
        if len(fields) != len(header):
            raise BadDataset(
                f"{name}: line {line_no}: expected {len(header)} fields ({','.join(header)}), found {len(fields)}"
            )
        yield line_no, dict(zip(header, fields))


def _text_columns(columns: list[str], name: str, task: str) -> tuple[str, ...]:
    target = TARGET_COLUMNS[task]
    for candidate in reversed(TEXT_COLUMNS):
        if all(c in columns for c in candidate):
            if target not in columns:
                break
            return candidate
    raise BadDataset(
        f"{name}: line 1: columns {columns} do not fit {task}; "
        f"expected 'text,{target}' or 'text_a,text_b,{target}'"
    )


def _score(value) -> Optional[float]:
    if isinstance(value, bool) or value is None:
        return None
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    return score if score == score and abs(score) != float("inf") else None


def label_text(value) -> Optional[str]:
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def scan_file(path: Path, name: str, filename: str = "", task: str = "sequence_classification") -> dict:
    """Check one file for `task` and summarise it."""
    if path.stat().st_size == 0:
        raise BadDataset(f"{name}: the file is empty; upload a file with a header row and data rows")
    fmt = detect_format(path, filename)
    columns: Optional[list[str]] = None
    text_cols: tuple[str, ...] = ()
    counts: Counter[str] = Counter()
    scores: list[float] = []
    rows = 0
    for line_no, row in iter_records(path, fmt, name):
        if "__header__" in row:
            columns = row["__header__"]
            text_cols = _text_columns(columns, name, task)
            continue
        if columns is None:  # JSONL: the first object fixes the columns
            columns = list(row)
            text_cols = _text_columns(columns, name, task)
        col_no = {c: i + 1 for i, c in enumerate(columns)}
        for col in text_cols:
            value = row.get(col)
            if not isinstance(value, str) or not value.strip():
                raise BadDataset(
                    f"{name}: line {line_no}, column {col_no.get(col, '?')} ({col}): empty or missing text"
                )
        if task == "regression":
            score = _score(row.get("score"))
            if score is None:
                raise BadDataset(f"{name}: line {line_no}, column {col_no.get('score', '?')} (score): "
                                 f"{row.get('score')!r} is not a number; every row needs a numeric score")
            scores.append(score)
        else:
            label = label_text(row.get(LABEL_COLUMN))
            if label is None:
                raise BadDataset(
                    f"{name}: line {line_no}, column {col_no.get(LABEL_COLUMN, '?')} ({LABEL_COLUMN}): "
                    "missing label; every row needs a label"
                )
            counts[label] += 1
        rows += 1
    if rows == 0:
        raise BadDataset(f"{name}: no data rows after the header")
    summary = {
        "filename": filename or path.name,
        "format": fmt,
        "columns": columns,
        "text_columns": list(text_cols),
        "rows": rows,
        "bytes": path.stat().st_size,
    }
    if task == "regression":
        summary["score"] = {"min": min(scores), "max": max(scores), "mean": sum(scores) / len(scores)}
    else:
        summary["label_counts"] = dict(sorted(counts.items()))
    return summary


def ordered_labels(labels) -> list[str]:
    """Integer labels sort numerically (so "2" < "10"), others alphabetically."""
    labels = list(labels)
    try:
        return sorted(labels, key=int)
    except ValueError:
        return sorted(labels)


def first_line_with_label(path: Path, fmt: str, name: str, label: str) -> int:
    for line_no, row in iter_records(path, fmt, name):
        if "__header__" not in row and label_text(row.get(LABEL_COLUMN)) == label:
            return line_no
    return 0


def summarise_dataset(train: Path, test: Path, train_name: str = "", test_name: str = "",
                      task: str = "sequence_classification") -> dict:
    """Check both files and how they fit together; returns the dataset summary."""
    if task == "token_classification":
        from train_jobs.token_files import summarise_token_dataset

        return summarise_token_dataset(train, test, train_name, test_name)
    tr = scan_file(train, "train_file", train_name, task)
    te = scan_file(test, "test_file", test_name, task)
    if tr["text_columns"] != te["text_columns"]:
        raise BadDataset(
            f"test_file: line 1: text columns {te['text_columns']} differ from train_file's {tr['text_columns']}"
        )
    if task == "regression":
        return {"task_type": task, "pair": len(tr["text_columns"]) == 2, "labels": [], "target": "score",
                "train": tr, "test": te}
    unseen = [label for label in te["label_counts"] if label not in tr["label_counts"]]
    if unseen:
        line = first_line_with_label(test, te["format"], "test_file", unseen[0])
        col = te["columns"].index(LABEL_COLUMN) + 1
        raise BadDataset(
            f"test_file: line {line}, column {col} (label): label {unseen[0]!r} does not occur in train_file"
            + (f" ({len(unseen)} unseen labels: {unseen[:10]})" if len(unseen) > 1 else "")
        )
    labels = ordered_labels(tr["label_counts"])
    if len(labels) < 2:
        raise BadDataset(f"train_file: needs at least 2 distinct labels, found {labels}")
    return {
        "task_type": task,
        "pair": len(tr["text_columns"]) == 2,
        "labels": labels,
        "target": LABEL_COLUMN,
        "train": tr,
        "test": te,
    }
