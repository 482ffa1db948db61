"""Unit tests of train_jobs/data/build_progress.py: rows and bytes counted per split, the ETA from the rate so far."""

from __future__ import annotations

from train_jobs.data.build_progress import BuildProgress, totals
from train_jobs.specs import DatasetSpec


def upload(tmp_path, test_path: str = "") -> DatasetSpec:
    (tmp_path / "train.csv").write_bytes(b"x" * 3000)
    (tmp_path / "test.csv").write_bytes(b"y" * 1000)
    return DatasetSpec(train={"rows": 300, "path": str(tmp_path / "train.csv")},
                       test={"rows": 100, "path": test_path or str(tmp_path / "test.csv")})


def test_rows_and_bytes_add_up_split_by_split_with_an_eta(tmp_path):
    now = [10.0]
    reports = []
    progress = BuildProgress(upload(tmp_path), lambda *r: reports.append(r), clock=lambda: now[0])
    progress.started("train")
    assert reports[-1][0] == 0.0 and reports[-1][2].eta_s is None  # no rate before a row is done
    now[0] = 12.0
    progress.advance("train", 150)
    fraction, message, counts = reports[-1]
    assert fraction == 150 / 400 and message == "tokenising train (150 of 300 rows)"
    assert (counts.rows_done, counts.rows_total, counts.bytes_done, counts.bytes_total) == (150, 400, 1500, 4000)
    assert counts.eta_s == round(2.0 / 150 * 250, 3)
    progress.advance("train", 500)  # never past the split's rows
    assert reports[-1][2].rows_done == 300 and reports[-1][2].bytes_done == 3000
    progress.finished("done")
    fraction, message, counts = reports[-1]
    assert (fraction, message, counts.rows_done, counts.bytes_done, counts.eta_s) == (1.0, "done", 400, 4000, 0.0)


def test_a_file_that_cannot_be_read_here_counts_no_bytes(tmp_path):
    start = totals(upload(tmp_path, test_path="s3://bucket/test.csv"))
    assert (start.rows_total, start.bytes_total, start.rows_done, start.eta_s) == (400, 3000, 0, None)
