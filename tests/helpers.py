"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import tarfile
import time
from pathlib import Path

from training_client import TrainingModuleClient, TrainingModuleError


def new_session(server) -> TrainingModuleClient:
    client = TrainingModuleClient(server.url, timeout=120)
    client.start_session(force_restart=True)
    return client


def expect_error(status_code: int, call, *args, **kwargs) -> TrainingModuleError:
    try:
        call(*args, **kwargs)
    except TrainingModuleError as e:
        assert e.status_code == status_code, e
        return e
    raise AssertionError(f"expected HTTP {status_code}")


def wait_for(predicate, timeout: float, what: str, poll: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def extract(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest


def prepared_session(server, tmp_path, files, **config) -> TrainingModuleClient:
    """A session with config set, dataset uploaded and preprocessing done."""
    client = new_session(server)
    client.set_parameters(**config)
    client.upload_dataset(*files)
    client.preprocess()
    client.wait_preprocessed()
    return client
