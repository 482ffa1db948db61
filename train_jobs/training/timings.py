"""Where a run's wall time goes: phases timed by rank 0 and by the job, for `results/timings.json` and the status.

The worker times its own phases (model load, first step, steps, evaluations,
checkpoints, the test) and stamps when its loop began and ended; the job adds
what surrounds them (datasets, Ray Train's worker start and stop, archives). The
first step is apart because it pays for starting the data pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from train_jobs.files import atomic_write_json, read_json

FILE = "timings.json"
# The order a run goes through them; a phase that did not happen is left out.
ORDER = ("datasets", "workers_start", "setup", "first_step", "steps", "evaluations", "checkpoints", "test",
         "workers_stop", "model_archive", "results")


class Timings:
    """Seconds and counts per phase, and wall-clock marks (time.time()) where processes hand over."""

    def __init__(self) -> None:
        self.phases: dict[str, dict] = {}
        self.marks: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        phase = self.phases.setdefault(name, {"s": 0.0, "n": 0})
        phase["s"] += seconds
        phase["n"] += 1

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def mark(self, name: str) -> None:
        self.marks[name] = time.time()

    def as_dict(self) -> dict:
        return {"phases": self.phases, "marks": self.marks}

    def write(self, results_dir: Path) -> None:
        atomic_write_json(results_dir / FILE, self.as_dict())


def breakdown(job: Timings, worker: Optional[dict]) -> dict:
    """One table from the job's and rank 0's timings: phases in run order (seconds rounded, with counts where a
    phase repeats), the total since the job began and `began_at` (wall clock) to line it up with a request."""
    phases = {**job.phases, **((worker or {}).get("phases") or {})}
    marks = {**job.marks, **((worker or {}).get("marks") or {})}
    for name, (start, end) in {"workers_start": ("fit_started", "loop_started"),
                               "workers_stop": ("loop_ended", "fit_ended")}.items():
        if start in marks and end in marks:
            phases[name] = {"s": marks[end] - marks[start], "n": 1}
    table = {name: {"s": round(phases[name]["s"], 3),
                    **({"n": phases[name]["n"]} if phases[name].get("n", 1) > 1 else {})}
             for name in ORDER if name in phases}
    began = marks.get("began", time.time())
    return {"phases": table, "total_s": round(time.time() - began, 3), "began_at": began}


def read_worker_timings(results_dir: Path) -> Optional[dict]:
    return read_json(results_dir / FILE)
