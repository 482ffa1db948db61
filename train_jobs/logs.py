"""One log format for the server's own code, in every process it runs in (Serve replica, session and job actors).

Ray and Serve keep their own loggers; ours (serve_app, cluster, train_jobs) get one handler each, to stderr,
which Ray captures per worker (`ray logs`, the dashboard) and Serve's replica logs hold. Ray Data's progress bars
are off in the jobs: the API reports their progress.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s [pid %(process)d]: %(message)s"
PACKAGES = ("serve_app", "cluster", "train_jobs")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class _Handler(logging.StreamHandler):
    """Ours, so that configuring twice in one process (an actor restarted in place) adds no second handler."""


def configure_logging(level: str = "INFO") -> None:
    """Send our packages' records at `level` and above to stderr in FORMAT, and not on to the root logger, which
    Ray may have given a handler of its own (each record would show twice)."""
    for name in PACKAGES:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.propagate = False
        if not any(isinstance(h, _Handler) for h in logger.handlers):
            handler = _Handler(sys.stderr)
            handler.setFormatter(logging.Formatter(FORMAT))
            logger.addHandler(handler)


def quiet_ray_data() -> None:
    """Ray Data's progress bars off in this job and in what copies its DataContext (Ray Train's workers and
    dataset manager, at fit()). Workers' bars are drawn by the driver, `serve run`, where they piled up, a bar per
    dataset per run and none closed: 29k lines of its output after 10 tiny runs (844 without), 633k after the
    end-to-end suite, and the drawing cost about 7% of a tiny run's time on 2 cores."""
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
