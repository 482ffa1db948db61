"""Reading and checking uploaded dataset files (CSV, TSV, JSONL).

Every problem is reported with the file, line and column so the user knows
what to fix. Files are read as a stream, never whole into memory.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from cluster.errors import BadDataset

FORMATS = ("csv", "tsv", "jsonl")
TEXT_COLUMNS = (("text",), ("text_a", "text_b"))
LABEL_COLUMN = "label"
LABELS_COLUMN = "labels"  # multi-label: a list per row
FLAG_PREFIX = "label_"  # multi-label: one 0/1 column per label
SCORE_COLUMN = "score"
LABEL_SEPARATOR = "|"
IGNORE_INDEX = -100  # the label PyTorch's cross-entropy skips: padding and continuation sub-tokens

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


@dataclass(frozen=True)
class Target:
    """Where a row's target lives: `label`, `labels` (a list), several `label_<name>` flags, or `score`."""

    kind: str  # "label" | "labels" | "flags" | "score"
    columns: tuple[str, ...]

    @property
    def multi_label(self) -> bool:
        return self.kind in ("labels", "flags")

    def flag_labels(self) -> list[str]:
        return [c[len(FLAG_PREFIX):] for c in self.columns]


def find_target(columns: list[str], task: str) -> Optional[Target]:
    if task == "regression":
        return Target("score", (SCORE_COLUMN,)) if SCORE_COLUMN in columns else None
    if LABEL_COLUMN in columns:
        return Target("label", (LABEL_COLUMN,))
    if LABELS_COLUMN in columns:
        return Target("labels", (LABELS_COLUMN,))
    flags = tuple(c for c in columns if c.startswith(FLAG_PREFIX) and len(c) > len(FLAG_PREFIX))
    return Target("flags", flags) if len(flags) >= 2 else None


def _layout(columns: list[str], name: str, task: str) -> tuple[tuple[str, ...], Target]:
    target = find_target(columns, task)
    for candidate in reversed(TEXT_COLUMNS):
        if target and all(c in columns for c in candidate):
            return candidate, target
    expected = ("'text,score' or 'text_a,text_b,score'" if task == "regression" else
                "'text,label' or 'text_a,text_b,label'; for multi-label, 'text,labels' (a list per row) "
                "or 'text' with two or more 'label_<name>' columns of 0/1")
    raise BadDataset(f"{name}: line 1: columns {columns} do not fit {task}; expected {expected}")


def _score(value) -> Optional[float]:
    if isinstance(value, bool) or value is None:
        return None
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    return score if score == score and abs(score) != float("inf") else None


def label_set(value) -> Optional[list[str]]:
    """A row's labels for multi-label: a list, a JSON list in a string, or names joined by '|'; '' is none."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return None
        else:
            value = [part for part in text.split(LABEL_SEPARATOR) if part.strip()]
    if not isinstance(value, list):
        return None
    labels = [label_text(v) for v in value]
    return None if None in labels else list(dict.fromkeys(labels))


FLAG_VALUES = {"1": True, "0": False, "true": True, "false": False, "1.0": True, "0.0": False}


def flag(value) -> Optional[bool]:
    """A 0/1 label column's value (also true/false)."""
    if isinstance(value, bool):
        return value
    return FLAG_VALUES.get(str(value).strip().lower()) if value is not None else None


def row_labels(row: dict, target: Target) -> Optional[list[str]]:
    """The labels of one row (one for single-label), or None where the value cannot be read."""
    if target.kind == "label":
        label = label_text(row.get(LABEL_COLUMN))
        return None if label is None else [label]
    if target.kind == "labels":
        return label_set(row.get(LABELS_COLUMN))
    flags = [flag(row.get(c)) for c in target.columns]
    return None if None in flags else [name for name, on in zip(target.flag_labels(), flags) if on]


def _label_problem(row: dict, target: Target) -> tuple[str, str]:
    """The column at fault and what to fix there."""
    if target.kind == "label":
        return LABEL_COLUMN, "missing label; every row needs a label"
    if target.kind == "labels":
        return LABELS_COLUMN, (f"{row.get(LABELS_COLUMN)!r} is not a list of labels; write a JSON list, or "
                               f"names joined by '{LABEL_SEPARATOR}' (empty for none)")
    bad = next(c for c in target.columns if flag(row.get(c)) is None)
    return bad, f"{row.get(bad)!r} is not 0 or 1 (true/false also work)"


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
    target: Optional[Target] = None
    counts: Counter[str] = Counter()
    scores: list[float] = []
    rows = unlabelled = 0
    for line_no, row in iter_records(path, fmt, name):
        if "__header__" in row:
            columns = row["__header__"]
            text_cols, target = _layout(columns, name, task)
            continue
        if columns is None:  # JSONL: the first object fixes the columns
            columns = list(row)
            text_cols, target = _layout(columns, name, task)
        col_no = {c: i + 1 for i, c in enumerate(columns)}
        for col in text_cols:
            value = row.get(col)
            if not isinstance(value, str) or not value.strip():
                raise BadDataset(
                    f"{name}: line {line_no}, column {col_no.get(col, '?')} ({col}): empty or missing text"
                )
        if target.kind == "score":
            score = _score(row.get(SCORE_COLUMN))
            if score is None:
                raise BadDataset(f"{name}: line {line_no}, column {col_no.get(SCORE_COLUMN, '?')} (score): "
                                 f"{row.get(SCORE_COLUMN)!r} is not a number; every row needs a numeric score")
            scores.append(score)
        else:
            labels = row_labels(row, target)
            if labels is None:
                where, problem = _label_problem(row, target)
                raise BadDataset(f"{name}: line {line_no}, column {col_no.get(where, '?')} ({where}): {problem}")
            counts.update(labels)
            unlabelled += not labels
        rows += 1
    if rows == 0:
        raise BadDataset(f"{name}: no data rows after the header")
    summary = {
        "filename": filename or path.name,
        "format": fmt,
        "columns": columns,
        "text_columns": list(text_cols),
        "target_columns": list(target.columns),
        "rows": rows,
        "bytes": path.stat().st_size,
    }
    if target.kind == "score":
        summary["score"] = {"min": min(scores), "max": max(scores), "mean": sum(scores) / len(scores)}
    else:
        summary["label_counts"] = dict(sorted(counts.items()))
        if target.multi_label:
            summary["rows_without_labels"] = unlabelled
            if target.kind == "flags":  # every label column counts, even one never set
                summary["label_counts"] = {label: counts[label] for label in target.flag_labels()}
    return summary


def ordered_labels(labels) -> list[str]:
    """Integer labels sort numerically (so "2" < "10"), others alphabetically."""
    labels = list(labels)
    try:
        return sorted(labels, key=int)
    except ValueError:
        return sorted(labels)


def first_line_with_label(path: Path, fmt: str, name: str, label: str, target: Target) -> int:
    for line_no, row in iter_records(path, fmt, name):
        if "__header__" not in row and label in (row_labels(row, target) or []):
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
    if tr["target_columns"] != te["target_columns"]:
        raise BadDataset(f"test_file: line 1: label columns {te['target_columns']} differ from train_file's "
                         f"{tr['target_columns']}; both files need the same ones")
    target = find_target(tr["columns"], task)
    common = {"task_type": task, "pair": len(tr["text_columns"]) == 2, "multi_label": target.multi_label,
              "target": target.columns[0] if len(target.columns) == 1 else list(target.columns)}
    if task == "regression":
        return {**common, "labels": [], "train": tr, "test": te}
    unseen = [label for label in te["label_counts"] if label not in tr["label_counts"]]
    if unseen:
        line = first_line_with_label(test, te["format"], "test_file", unseen[0], target)
        col = te["columns"].index(target.columns[0]) + 1
        raise BadDataset(
            f"test_file: line {line}, column {col} ({target.columns[0]}): label {unseen[0]!r} does not occur "
            "in train_file" + (f" ({len(unseen)} unseen labels: {unseen[:10]})" if len(unseen) > 1 else "")
        )
    labels = target.flag_labels() if target.kind == "flags" else ordered_labels(tr["label_counts"])
    if len(labels) < 2:
        raise BadDataset(f"train_file: needs at least 2 distinct labels, found {labels}")
    return {**common, "labels": labels, "train": tr, "test": te}
