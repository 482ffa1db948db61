"""A small upload's cache built in the job's own process equals the one Ray Data builds, for every task type and
file format: the same rows in the same order, column for column (so the same model trains on it).

Runs build_cache both ways on a real local Ray (started here, 2 CPUs, no server) with the bundled tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
import ray
from data import multilabel_files, ner_files, pair_files, score_files, sentiment_files, sentiment_rows, write_csv

from train_jobs.data.cache_reads import read_split_tables
from train_jobs.data.dataset import inspect_upload
from train_jobs.data.local_build import IN_PROCESS_ROWS
from train_jobs.data.preprocess import build_cache
from train_jobs.models.lookup import bundled_model_dir
from train_jobs.specs import PreprocessSpec


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def awkward_files(folder: Path) -> tuple[Path, Path]:
    """CSV cells Arrow and Ray Data must read alike: quotes, commas, a line break, digits, non-ASCII."""
    odd = [('she said "superb", twice', "pos"), ("line one\nline two was dull", "neg"), ("12345", "neg"),
           ("ça était brilliant ✓", "pos")]
    return (write_csv(folder / "odd_train.csv", ["text", "label"], odd * 5 + sentiment_rows(40, seed=3)),
            write_csv(folder / "odd_test.csv", ["text", "label"], odd + sentiment_rows(10, seed=4)))


def tsv_files(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    train, test = folder / "train.tsv", folder / "test.tsv"
    for path, rows in ((train, sentiment_rows(50, seed=5)), (test, sentiment_rows(12, seed=6))):
        path.write_text("text\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in rows))
    return train, test


CASES = {  # name: (task type, files)
    "single_label_csv": ("sequence_classification", lambda d: sentiment_files(d, 60, 20)),
    "awkward_csv": ("sequence_classification", awkward_files),
    "single_label_tsv": ("sequence_classification", tsv_files),
    "pairs": ("sequence_classification", lambda d: pair_files(d, 40, 12)),
    "regression": ("regression", lambda d: score_files(d, 40, 12)),
    "multilabel_jsonl": ("sequence_classification", lambda d: multilabel_files(d, "jsonl", 40, 12)),
    "multilabel_flags": ("sequence_classification", lambda d: multilabel_files(d, "flags", 40, 12)),
    "token_classification": ("token_classification", lambda d: ner_files(d, 40, 12)),
}


def spec_for(task: str, files: tuple[Path, Path], cache_dir: Path, in_process_rows=None) -> PreprocessSpec:
    summary = inspect_upload({"train": (files[0], files[0].name), "test": (files[1], files[1].name)}, task)
    return PreprocessSpec(job_id="paths", dataset=summary, model_dir=str(bundled_model_dir()), max_seq_length=32,
                          cache_dir=str(cache_dir), overwrite_cache=True, in_process_rows=in_process_rows)


@pytest.mark.parametrize("case", list(CASES))
def test_in_process_and_ray_data_write_the_same_cache(case, tmp_path):
    task, make = CASES[case]
    files = make(tmp_path / "data")
    reports: list[tuple] = []
    metas = {}
    for in_process in (True, False):  # a limit no upload here reaches, then 0 (every upload on Ray Data)
        spec = spec_for(task, files, tmp_path / f"cache-{in_process}", 10**6 if in_process else 0)
        metas[in_process] = build_cache(spec, lambda *report: reports.append(report))
        assert reports[-1][1].endswith("(in process)" if in_process else "(Ray Data)")
    here, on_ray = metas[True], metas[False]
    assert {k: v for k, v in here.items() if k != "path"} == {k: v for k, v in on_ray.items() if k != "path"}
    for split in ("train", "test"):
        a = pa.concat_tables(read_split_tables(here["path"], split))
        b = pa.concat_tables(read_split_tables(on_ray["path"], split))
        assert a.num_rows == here["rows"][split] and a.schema == b.schema
        assert a.equals(b), f"{case}/{split}: the caches differ"
    if case == "awkward_csv":  # the test split keeps its text, in the upload's order
        assert a.column("text").to_pylist()[:4][1] == "line one\nline two was dull"
    _counts_end_whole(reports, sum(here["rows"].values()))


def _counts_end_whole(reports: list[tuple], rows: int) -> None:
    """Each build's reports count rows up to the whole upload, with an ETA once a row is done."""
    fractions = [f for f, _, _ in reports]
    assert all(0.0 <= f <= 1.0 for f in fractions) and fractions[-1] == 1.0
    last = reports[-1][2]
    assert last.rows_done == last.rows_total == rows and last.bytes_done == last.bytes_total > 0
    assert last.eta_s == 0.0 and json.dumps(last.model_dump())


def test_small_uploads_are_tokenised_in_process(tmp_path):
    spec = spec_for("sequence_classification", sentiment_files(tmp_path, 30, 10), tmp_path / "cache")
    messages = []
    build_cache(spec, lambda _f, message, _c: messages.append(message))
    assert IN_PROCESS_ROWS >= 40 and messages[-1] == "preprocessing finished (in process)"
