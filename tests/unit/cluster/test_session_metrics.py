"""Unit tests of cluster/metrics.py's reading of the record (the gauges themselves need Ray: tests/e2e)."""

from __future__ import annotations

from cluster.metrics import rows_per_second
from cluster.session_record import PreprocessInfo, SessionRecord


def record(**preprocess) -> SessionRecord:
    return SessionRecord(session_id="s", key="k", preprocess=PreprocessInfo(**preprocess),
                         dataset={"train": {"rows": 900}, "test": {"rows": 100}, "validation": {"rows": 50}})


def test_preprocessing_rate_counts_every_split_over_the_jobs_time():
    assert rows_per_second(record(status="done", started_at=100.0, finished_at=102.0)) == 525.0


def test_no_preprocessing_rate_until_a_job_finished():
    assert rows_per_second(record(status="running", started_at=100.0)) is None
    assert rows_per_second(record(status="done", started_at=100.0, finished_at=100.0)) is None
