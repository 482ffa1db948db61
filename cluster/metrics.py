"""Prometheus metrics through Ray's metrics export (`ray.util.metrics`): Ray's metrics endpoint and the
dashboard's Grafana panels show them next to Ray's own.

They are read off the session record each time the session actor persists it, so they say exactly what
/status and /monitor say, and no job has to report twice.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional

from cluster.session_record import SessionRecord, State

TRAINING = {  # gauge name: (the key in the record's live training progress, description)
    "tm_training_step": ("step", "Optimiser steps taken by the current training run"),
    "tm_training_progress": ("progress", "Share of the current run's steps taken (0 to 1)"),
    "tm_training_loss": ("loss", "Mean training loss over the latest progress window"),
    "tm_training_samples_per_second": ("samples_per_s", "Training samples per second, latest window"),
    "tm_training_tokens_per_second": ("tokens_per_s", "Training tokens per second, latest window"),
    "tm_training_eta_seconds": ("eta_s", "Estimated seconds until the current run's last step"),
}


PREPROCESS = {  # gauge name: (the field of the record's preprocess job, description)
    "tm_preprocess_rows_done": ("rows_done", "Rows tokenised so far by the current or latest preprocessing"),
    "tm_preprocess_rows_total": ("rows_total", "Rows of the dataset being (or last) preprocessed"),
    "tm_preprocess_bytes_done": ("bytes_done", "Bytes of the upload files read so far (pro rata within a split)"),
    "tm_preprocess_bytes_total": ("bytes_total", "Bytes of the upload files being (or last) preprocessed"),
    "tm_preprocess_eta_seconds": ("eta_s", "Estimated seconds until the current preprocessing ends"),
}


class SessionMetrics:
    """The gauges, created once per process (Ray registers a metric by name)."""

    def __init__(self):
        from ray.util.metrics import Gauge

        self.training = {name: Gauge(name, description=text) for name, (_, text) in TRAINING.items()}
        self.state = Gauge("tm_session_state", description="Sessions in each state (with one session: 1 for its "
                           "state, 0 for the others)",
                           tag_keys=("state",))
        self.preprocess = Gauge("tm_preprocess_progress", description="Share of the dataset tokenised (0 to 1)")
        self.preprocess_rows = Gauge("tm_preprocess_rows_per_second",
                                     description="Rows per second of the latest finished preprocessing")
        self.preprocess_counts = {name: Gauge(name, description=text) for name, (_, text) in PREPROCESS.items()}
        self.model_import = Gauge("tm_import_progress", description="Share of the latest model import done (0 to 1)")

    def record(self, records: list[SessionRecord]) -> None:
        """The sessions by state; the progress gauges from each session in turn (with several sessions, the last
        one's: /monitor/{key} has each session's own)."""
        counts = Counter(r.state for r in records) if records else Counter([State.idle])
        for state in State:
            self.state.set(float(counts[state]), tags={"state": state.value})
        for record in records:
            self._progress(record)

    def _progress(self, record: SessionRecord) -> None:
        for name, (key, _) in TRAINING.items():
            value = record.training.live.get(key)
            if isinstance(value, (int, float)):
                self.training[name].set(float(value))
        self.preprocess.set(record.preprocess.progress)
        for name, (field, _) in PREPROCESS.items():
            value = getattr(record.preprocess, field)
            if value is not None:
                self.preprocess_counts[name].set(float(value))
        rate = rows_per_second(record)
        if rate is not None:
            self.preprocess_rows.set(rate)
        self.model_import.set(record.imports.progress)


def rows_per_second(record: SessionRecord) -> Optional[float]:
    """Rows tokenised per second by the latest finished preprocessing (train, test and validation together)."""
    job, dataset = record.preprocess, record.dataset
    if job.status != "done" or not job.started_at or not job.finished_at or job.finished_at <= job.started_at:
        return None
    rows = sum(split.rows for split in dataset.splits.values()) if dataset else 0
    return rows / (job.finished_at - job.started_at)
