"""Token classification uploads: JSONL `{"tokens": [...], "tags": [...]}` or CoNLL (`token<TAB>tag`, blank
line between sentences). Problems are reported with file, line and column, like the text uploads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from train_jobs.data.formats import decoded_lines, iter_records, sniff_format
from train_jobs.data.labels import check_label_count, check_test_labels
from train_jobs.errors import BadDataset


def iter_sentences(path: Path, fmt: str, name: str) -> Iterator[tuple[int, list[str], list[str]]]:
    """(line of the sentence's start, tokens, tags) for each sentence; raises BadDataset on bad lines."""
    if fmt == "jsonl":
        for line_no, row in iter_records(path, "jsonl", name):
            tokens, tags = row.get("tokens"), row.get("tags")
            if not isinstance(tokens, list) or not isinstance(tags, list):
                raise BadDataset(f"{name}: line {line_no}: expected an object with lists 'tokens' and 'tags'")
            if len(tokens) != len(tags):
                raise BadDataset(f"{name}: line {line_no}: {len(tokens)} tokens but {len(tags)} tags")
            for i, (tok, tag) in enumerate(zip(tokens, tags)):
                if not isinstance(tok, str) or not tok.strip():
                    raise BadDataset(f"{name}: line {line_no}, token {i + 1}: empty or non-string token")
                if not isinstance(tag, str) or not tag.strip():
                    raise BadDataset(f"{name}: line {line_no}, token {i + 1} ({tok}): empty or non-string tag")
            if tokens:
                yield line_no, tokens, [t.strip() for t in tags]
        return
    tokens: list[str] = []
    tags: list[str] = []
    start = 1
    for line_no, line in enumerate(decoded_lines(path, name), 1):
        fields = line.rstrip("\r\n").split("\t") if "\t" in line else line.split()
        if not line.strip():
            if tokens:
                yield start, tokens, tags
            tokens, tags, start = [], [], line_no + 1
            continue
        if line.startswith("-DOCSTART-"):
            continue
        if len(fields) < 2 or not fields[0].strip() or not fields[-1].strip():
            raise BadDataset(f"{name}: line {line_no}, column 2: expected 'token<TAB>tag'")
        tokens.append(fields[0].strip())
        tags.append(fields[-1].strip())
    if tokens:
        yield start, tokens, tags


def scan_token_file(path: Path, name: str, filename: str = "") -> dict:
    if path.stat().st_size == 0:
        raise BadDataset(f"{name}: the file is empty; upload JSONL with tokens and tags, or CoNLL")
    fmt = sniff_format(path, filename, tokens=True)
    counts: Counter[str] = Counter()
    sentences = tokens = 0
    for _, toks, tags in iter_sentences(path, fmt, name):
        counts.update(tags)
        sentences += 1
        tokens += len(toks)
    if sentences == 0:
        raise BadDataset(f"{name}: no sentences found")
    return {"filename": filename or path.name, "format": fmt, "columns": ["tokens", "tags"],
            "text_columns": ["tokens"], "rows": sentences, "tokens": tokens,
            "label_counts": dict(sorted(counts.items())), "bytes": path.stat().st_size}


def ordered_tags(tags) -> list[str]:
    """"O" first, then by entity type with B- before I-, so the label map reads naturally."""
    return sorted(tags, key=lambda t: (t != "O", t[2:] if t[1:2] == "-" else t, t))


def summarise_token_dataset(files: dict[str, tuple[Path, str]]) -> dict:
    """Check train, test and an optional validation file ((path, upload name) each): held-out tags must be in train."""
    path, filename = files["train"]
    summary = {"task_type": "token_classification", "pair": False, "target": "tags",
               "train": scan_token_file(path, "train_file", filename)}
    for split in ("test", "validation"):
        if split not in files:
            continue
        path, filename = files[split]
        held = summary[split] = scan_token_file(path, f"{split}_file", filename)

        def where(tag: str, path=path, held=held, name=f"{split}_file") -> str:
            sentences = iter_sentences(path, held["format"], name)
            return f"line {next(start for start, _, tags in sentences if tag in tags)}"

        check_test_labels(summary["train"]["label_counts"], held["label_counts"], where, what="tag",
                          file=f"{split}_file")
    summary["labels"] = ordered_tags(summary["train"]["label_counts"])
    check_label_count(summary["labels"], what="tag")
    return summary
