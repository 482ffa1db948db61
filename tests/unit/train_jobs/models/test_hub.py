"""A Hub that does not answer: the import fails within about its time limit, naming the Hub and the model.

The Hub here is a real TCP server on a local port that accepts connections and either never answers or drops
them after reading the request; huggingface_hub talks to it over real sockets.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from train_jobs.models.importer import ImportFailed, import_model
from train_jobs.specs import ImportSpec

TIMEOUT_S = 1.0


@contextmanager
def fake_hub(mode: str):
    """A local "Hub" at the yielded URL: `silent` keeps each connection open and never answers; `drop` reads the
    request and closes the connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop, held = threading.Event(), []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:  # the accept timed out: look at `stop` again
                continue
            held.append(conn)
            if mode == "drop":
                conn.recv(65536)
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


def hub_import(models_dir: Path, endpoint: str) -> ImportSpec:
    return ImportSpec(job_id="s-import-1", name="org--tiny", model_type="hub", model_name="org/tiny",
                      models_dir=str(models_dir), hub_endpoint=endpoint, hub_timeout_s=TIMEOUT_S)


@pytest.mark.parametrize("mode, says", [
    ("silent", f"no answer within {TIMEOUT_S:g} s"),
    ("drop", "the Hub closed the connection without an answer"),
])
def test_a_hub_that_does_not_answer_fails_the_import_in_time_naming_hub_and_model(tmp_path, mode, says):
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        pytest.skip("HF_HUB_OFFLINE is set: the import never reaches the Hub")
    models = tmp_path / "models"
    models.mkdir()
    with fake_hub(mode) as url:
        started = time.monotonic()
        with pytest.raises(ImportFailed) as err:
            import_model(hub_import(models, url), lambda fraction, message: None)
        took = time.monotonic() - started
    message = str(err.value)
    assert f"the Hugging Face Hub at {url}" in message and "'org/tiny'" in message and says in message, message
    assert "directory or an archive" in message
    assert took < 3 * TIMEOUT_S + 2, f"the import took {took:.1f}s with a {TIMEOUT_S}s limit"
    assert not any(models.iterdir()), "a failed import leaves nothing in the catalogue folder"
