"""Checking text uploads (CSV, TSV, JSONL) for sequence classification and regression, and summarising them.

Every problem is reported with the file, line and column so the user knows
what to fix. Files are read as a stream, never whole into memory.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Optional

from train_jobs.data.formats import iter_records, sniff_format
from train_jobs.data.labels import (
    SCORE_COLUMN,
    Target,
    check_label_count,
    check_test_labels,
    find_target,
    label_problem,
    ordered_labels,
    row_labels,
    score_value,
)
from train_jobs.errors import BadDataset

TEXT_COLUMNS = (("text",), ("text_a", "text_b"))


def _layout(columns: list[str], name: str, task: str) -> tuple[tuple[str, ...], Target]:
    target = find_target(columns, task)
    for candidate in reversed(TEXT_COLUMNS):
        if target and all(c in columns for c in candidate):
            return candidate, target
    expected = ("'text,score' or 'text_a,text_b,score'" if task == "regression" else
                "'text,label' or 'text_a,text_b,label'; for multi-label, 'text,labels' (a list per row) "
                "or 'text' with two or more 'label_<name>' columns of 0/1")
    raise BadDataset(f"{name}: line 1: columns {columns} do not fit {task}; expected {expected}")


def scan_file(path: Path, name: str, filename: str = "", task: str = "sequence_classification") -> dict:
    """Check one file for `task` and summarise it."""
    if path.stat().st_size == 0:
        raise BadDataset(f"{name}: the file is empty; upload a file with a header row and data rows")
    fmt = sniff_format(path, filename)
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
            score = score_value(row.get(SCORE_COLUMN))
            if score is None:
                raise BadDataset(f"{name}: line {line_no}, column {col_no.get(SCORE_COLUMN, '?')} (score): "
                                 f"{row.get(SCORE_COLUMN)!r} is not a number; every row needs a numeric score")
            scores.append(score)
        else:
            labels = row_labels(row, target)
            if labels is None:
                where, problem = label_problem(row, target)
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


# One file a split is read from: (local path, file name telling its format, the name errors give it). An upload is
# one; a dataset by URI has the samples of its shards.
Part = tuple[Path, str, str]


def _first_with_label(parts: list[Part], label: str, target: Target) -> tuple[str, int]:
    """The part, and its line, where `label` first occurs."""
    for path, filename, name in parts:
        for line_no, row in iter_records(path, sniff_format(path, filename), name):
            if "__header__" not in row and label in (row_labels(row, target) or []):
                return name, line_no
    return parts[0][2], 0


def _check_fits_train(tr: dict, held: dict, parts: list[Part], train_name: str, target: Target, task: str,
                      labels_known: bool = True) -> None:
    """A held-out split (test or validation) has train's columns, and only labels that train has."""
    name = parts[0][2]
    if tr["text_columns"] != held["text_columns"]:
        raise BadDataset(
            f"{name}: line 1: text columns {held['text_columns']} differ from {train_name}'s {tr['text_columns']}"
        )
    if tr["target_columns"] != held["target_columns"]:
        raise BadDataset(f"{name}: line 1: label columns {held['target_columns']} differ from {train_name}'s "
                         f"{tr['target_columns']}; both files need the same ones")
    if task == "regression" or not labels_known:
        return
    unseen = [label for label in held["label_counts"] if label not in tr["label_counts"]]
    if unseen:
        name, line = _first_with_label(parts, unseen[0], target)
        column = f"column {held['columns'].index(target.columns[0]) + 1} ({target.columns[0]})"
        check_test_labels(tr["label_counts"], held["label_counts"], file=name, where=lambda _: f"line {line}, {column}")


def _merge(first: dict, other: dict) -> dict:
    """Two parts' summaries (same columns) as one: rows, bytes and label counts added, scores combined."""
    merged = {**first, "rows": first["rows"] + other["rows"], "bytes": first["bytes"] + other["bytes"]}
    if "score" in first:
        a, b = first["score"], other["score"]
        mean = (a["mean"] * first["rows"] + b["mean"] * other["rows"]) / merged["rows"]
        merged["score"] = {"min": min(a["min"], b["min"]), "max": max(a["max"], b["max"]), "mean": mean}
    if "label_counts" in first:
        counts = Counter(first["label_counts"])
        counts.update(other["label_counts"])
        merged["label_counts"] = dict(sorted(counts.items()))
    if "rows_without_labels" in first:
        merged["rows_without_labels"] = first["rows_without_labels"] + other["rows_without_labels"]
    return merged


def scan_parts(parts: list[Part], task: str) -> dict:
    """Check every part of one split for `task`; all need the first one's columns. Their summary as one."""
    summary = None
    for path, filename, name in parts:
        part = scan_file(path, name, filename, task)
        if summary is not None and part["columns"] != summary["columns"]:
            raise BadDataset(f"{name}: line 1: columns {part['columns']} differ from {parts[0][2]}'s "
                             f"{summary['columns']}; every shard of a split needs the same columns")
        summary = part if summary is None else _merge(summary, part)
    return summary


def summarise_text_parts(parts: dict[str, list[Part]], task: str = "sequence_classification",
                         labels_known: bool = True) -> dict:
    """Check train, test and an optional validation split (a list of parts each) and how they fit together.
    Unless `labels_known` (train's parts are a sample of more), train's labels are only those seen so far: the
    checks that need all of them (test labels in train, at least two) wait for the whole, at preprocessing."""
    tr = scan_parts(parts["train"], task)
    target = find_target(tr["columns"], task)
    summary = {"task_type": task, "pair": len(tr["text_columns"]) == 2, "multi_label": target.multi_label,
               "target": target.columns[0] if len(target.columns) == 1 else list(target.columns), "labels": [],
               "train": tr}
    train_name = parts["train"][0][2].split(" ")[0]  # train_file, or train_uri
    for split in ("test", "validation"):
        if split in parts:
            summary[split] = scan_parts(parts[split], task)
            _check_fits_train(tr, summary[split], parts[split], train_name, target, task, labels_known)
    if task != "regression":
        summary["labels"] = target.flag_labels() if target.kind == "flags" else ordered_labels(tr["label_counts"])
        if labels_known:
            check_label_count(summary["labels"], name=train_name)
    return summary


def summarise_text_dataset(files: dict[str, tuple[Path, str]], task: str = "sequence_classification") -> dict:
    """Check train, test and an optional validation file ((path, upload name) each) and how they fit together."""
    return summarise_text_parts({split: [(path, filename, f"{split}_file")] for split, (path, filename) in files.items()},
                                task)
