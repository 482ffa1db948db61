"""Preprocessing progress in rows and bytes, with an ETA: what the job reports as it tokenises.

Rows are counted as they are tokenised (per batch in process, per split on Ray Data, whose write
runs as one call). Bytes are the upload files' sizes, counted pro rata to the rows done within each split. The
ETA is the time so far per row done, times the rows left.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Optional

from train_jobs.specs import DatasetSpec, PreprocessCounts, PreprocessProgress


def split_sizes(dataset: DatasetSpec) -> dict[str, tuple[int, int]]:
    """(rows, bytes) of each split of an upload's summary; bytes 0 where the file cannot be read here."""
    sizes = {}
    for split, info in dataset.splits.items():
        try:  # a dataset by URI: its shards' bytes (its path is the local sample checked at upload)
            size = info.bytes if info.bytes is not None else os.path.getsize(info.path)
        except (OSError, TypeError):
            size = 0
        sizes[split] = (info.rows, size)
    return sizes


def totals(dataset: DatasetSpec) -> PreprocessCounts:
    """Nothing done yet of the whole upload."""
    sizes = split_sizes(dataset).values()
    return PreprocessCounts(rows_done=0, rows_total=sum(r for r, _ in sizes), bytes_done=0,
                            bytes_total=sum(b for _, b in sizes), eta_s=None)


class BuildProgress:
    """Counts the rows tokenised of each split and reports (fraction, message, counts) through `on_progress`."""

    def __init__(self, dataset: DatasetSpec, on_progress: PreprocessProgress,
                 clock: Callable[[], float] = time.time):  # wall time: reports may come from another process
        self.sizes = split_sizes(dataset)
        self.done = dict.fromkeys(self.sizes, 0)
        self.on_progress, self.clock = on_progress, clock
        self.start = clock()
        self.rows_total = sum(r for r, _ in self.sizes.values())

    def counts(self) -> PreprocessCounts:
        rows_done = sum(self.done.values())
        bytes_done = sum(b * self.done[s] // r if r else 0 for s, (r, b) in self.sizes.items())
        eta: Optional[float] = None
        if rows_done:
            eta = round((self.clock() - self.start) / rows_done * max(0, self.rows_total - rows_done), 3)
        return PreprocessCounts(rows_done=rows_done, rows_total=self.rows_total, bytes_done=bytes_done,
                                bytes_total=sum(b for _, b in self.sizes.values()), eta_s=eta)

    def report(self, message: str) -> None:
        counts = self.counts()
        fraction = counts.rows_done / self.rows_total if self.rows_total else 0.0
        self.on_progress(min(1.0, fraction), message, counts)

    def started(self, split: str) -> None:
        self.report(f"tokenising {split} ({self.sizes[split][0]} rows)")

    def advance(self, split: str, rows: int) -> None:
        self.done[split] = min(self.sizes[split][0], self.done[split] + rows)
        self.report(f"tokenising {split} ({self.done[split]} of {self.sizes[split][0]} rows)")

    def finished(self, message: str) -> None:
        """Every split done (a finished build, or a cache that was already there)."""
        self.done = {s: r for s, (r, _) in self.sizes.items()}
        self.report(message)
