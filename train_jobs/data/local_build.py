"""The token cache of a small upload built in one process (one Ray task, preprocess.py): no Ray Data.

Ray Data's first build on a running Ray starts worker processes that each import pyarrow, Ray Data and the
tokenizer (seconds), where a plain pass over a few thousand rows takes a fraction of a second. Below
IN_PROCESS_ROWS rows one process reads and tokenises the splits, with the same readers'
options and the same batch functions as the Ray Data path, and writes the same Parquet layout: the same rows in
the same order, so the cache, and the model trained on it, are the same whichever path built it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from train_jobs.data.formats import as_text

# Rows of all splits together up to which the job tokenises in its own process. On 2 cores the in-process pass
# runs at about 20,000-30,000 rows/s and Ray Data's first build costs 3 s more than its warm one, so a plain pass is
# cheaper far beyond this; the limit is low to keep the job's memory small (it holds one split at a time) and
# to leave larger data to Ray Data, which spreads it over the cluster (bench/preprocess_throughput.py).
IN_PROCESS_ROWS = 5_000
BATCH_ROWS = 1024  # as the Ray Data path's map_batches


def jsonl_columns(batch: pa.Table, *, columns: list[str]) -> pa.Table:
    rows = [json.loads(line) for line in batch.column("text").to_pylist() if line.strip()]
    return pa.table({c: pa.array([as_text(r.get(c)) for r in rows], type=pa.string()) for c in columns})


def read_text_split(path: str, fmt: str, columns: list[str]) -> pa.Table:
    """A CSV, TSV or JSONL split as the Ray Data path reads it: every column a string, in file order."""
    if fmt == "jsonl":  # as ray.data.read_text: lines split on "\n", empty ones dropped
        lines = [line for line in Path(path).read_text(encoding="utf-8").split("\n") if line]
        return jsonl_columns(pa.table({"text": pa.array(lines, type=pa.string())}), columns=columns)
    import pyarrow.csv as pacsv

    return pacsv.read_csv(path, **csv_options(fmt, columns)).select(columns)


def csv_options(fmt: str, columns: list[str]) -> dict:
    """How a CSV or TSV split is parsed, by this path and by Ray Data's alike: quoted line breaks allowed, every
    column a string (a text of digits stays text)."""
    import pyarrow.csv as pacsv

    return {"parse_options": pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",", newlines_in_values=True),
            "convert_options": pacsv.ConvertOptions(column_types={c: pa.string() for c in columns})}


def read_sentences_split(path: str, fmt: str) -> pa.Table:
    from train_jobs.data.token_files import iter_sentences

    items = [(toks, tags) for _, toks, tags in iter_sentences(Path(path), fmt, "file")]
    return pa.table({"tokens": pa.array([t for t, _ in items], type=pa.list_(pa.string())),
                     "tags": pa.array([g for _, g in items], type=pa.list_(pa.string()))})


def write_split(table: pa.Table, fn: Callable[..., pa.Table], kwargs: dict, out: Path,
                on_rows: Callable[[int], None]) -> int:
    """Tokenise `table` in batches of BATCH_ROWS with `fn` into `out/` (one Parquet file, as Ray Data writes a
    small split); `on_rows(n)` after each batch. Returns the rows written."""
    out.mkdir(parents=True, exist_ok=True)
    writer = None
    try:
        for start in range(0, table.num_rows, BATCH_ROWS):
            batch = fn(table.slice(start, BATCH_ROWS), **kwargs)
            writer = writer or pq.ParquetWriter(out / "part-000000.parquet", batch.schema)
            writer.write_table(batch)
            on_rows(batch.num_rows)
    finally:
        if writer is not None:
            writer.close()
    return table.num_rows
