"""Unit tests of train_jobs/logs.py: one format and level for our packages, set once however often asked."""

from __future__ import annotations

import logging

import pytest

from train_jobs.logs import PACKAGES, configure_logging


@pytest.fixture(autouse=True)
def restore_loggers():
    """Other tests read our records through pytest's handler on the root logger: give them back to it."""
    yield
    for name in PACKAGES:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


def test_our_packages_log_in_one_format_at_the_level_asked_once_each(capfd):
    configure_logging("WARNING")
    configure_logging("WARNING")  # an actor restarted in the same process: still one handler
    for name in PACKAGES:
        assert len(logging.getLogger(name).handlers) == 1 and not logging.getLogger(name).propagate
    logging.getLogger("cluster.jobs").info("not shown")
    logging.getLogger("cluster.jobs").warning("job %s failed", "j1")
    err = capfd.readouterr().err
    assert "not shown" not in err
    assert "WARNING cluster.jobs [pid " in err and "]: job j1 failed" in err
