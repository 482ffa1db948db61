"""Unit tests of train_jobs/training/timings.py: the job's and rank 0's phases become one table in run order."""

from __future__ import annotations

import time

from train_jobs.training.timings import Timings, breakdown, read_worker_timings


def test_phases_of_job_and_worker_merge_in_run_order_with_the_hand_overs_between(tmp_path):
    job = Timings()
    job.mark("began")
    job.add("datasets", 0.5)
    job.marks["fit_started"] = 100.0
    job.marks["fit_ended"] = 130.0
    worker = Timings()
    worker.marks.update(loop_started=108.0, loop_ended=127.5)
    for seconds in (0.2, 0.3, 0.25):
        worker.add("steps", seconds)
    worker.add("first_step", 1.5)
    with worker.phase("evaluations"):
        time.sleep(0.01)
    worker.write(tmp_path)
    job.add("model_archive", 0.3)

    table = breakdown(job, read_worker_timings(tmp_path))
    phases = table["phases"]
    assert list(phases) == ["datasets", "workers_start", "first_step", "steps", "evaluations", "workers_stop",
                            "model_archive"]
    assert phases["workers_start"] == {"s": 8.0} and phases["workers_stop"] == {"s": 2.5}
    assert phases["steps"] == {"s": 0.75, "n": 3}  # a repeated phase says how often
    assert 0.01 <= phases["evaluations"]["s"] < 1
    assert table["began_at"] == job.marks["began"] and 0 <= table["total_s"] < 5


def test_without_worker_timings_the_job_phases_stand_alone(tmp_path):
    job = Timings()
    job.add("datasets", 0.1)
    assert breakdown(job, read_worker_timings(tmp_path))["phases"] == {"datasets": {"s": 0.1}}
