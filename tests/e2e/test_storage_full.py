"""A full storage root: 507 naming it, the session unchanged (in memory as on disk), no partial file left.

The server's storage root is a small tmpfs, filled up by the test; mounting one needs root, so elsewhere
these tests are skipped, saying so (the write-first path is unit-tested without a mount in
tests/unit/cluster/test_write_first.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import API_TOKEN, MAX_UPLOAD_MB, TINY_MODEL
from data import sentiment_files
from helpers import expect_error, fill, new_session, prepared_session, small_disk, wait_for

from training_client.local_server import ServerProcess


@pytest.fixture(scope="module")
def full_server(tmp_path_factory):
    from tiny_model import build_tiny_bert

    with small_disk(tmp_path_factory.mktemp("small-disk"), "64m") as root:
        build_tiny_bert(root / "models" / TINY_MODEL)
        os.environ["TM_API_TOKEN"] = API_TOKEN
        srv = ServerProcess(root, tmp_path_factory.mktemp("server-full"), max_upload_mb=MAX_UPLOAD_MB)
        srv.start()
        yield srv
        srv.stop()


def test_a_full_storage_root_is_507_naming_it_and_changes_nothing(full_server, tmp_path):
    root = full_server.storage_root
    client = new_session(full_server)
    client.set_parameters(model=TINY_MODEL, epochs=1)
    client.upload_dataset(*sentiment_files(tmp_path))
    before = client.get_parameters()
    train, test = sentiment_files(tmp_path / "second", 40, 20)
    filler = fill(root)
    try:
        err = expect_error(507, client.set_parameters, epochs=4)
        assert str(root) in err.body["message"] and "free space" in err.body["hint"]
        err = expect_error(507, client.upload_dataset, train, test)
        assert str(root) in err.body["message"]
        assert client.get_parameters() == before
        session_dir = root / "sessions" / before["session_id"]
        assert not list(session_dir.glob(".staging-*")) and len(list(session_dir.glob("dataset-*"))) == 1
    finally:
        filler.unlink()
    assert client.set_parameters(epochs=4)["config"]["epochs"] == 4  # with room again, it goes through
    assert client.upload_dataset(train, test)["dataset"]["train"]["rows"] == 40


def test_a_model_archive_upload_on_a_full_storage_root_is_507_and_leaves_nothing(full_server, tmp_path):
    root = full_server.storage_root
    client = new_session(full_server)
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(os.urandom(512 << 10))  # refused while it streams in, before anything reads it
    before = client.import_status()["import"]
    filler = fill(root)
    try:
        err = expect_error(507, client.import_model, "archive", "my-model", archive=archive)
        assert str(root) in err.body["message"]
        assert not list((root / "models" / ".uploads").glob("*"))
    finally:
        filler.unlink()
    assert client.import_status()["import"] == before


ROOM_LEFT = 4 << 20  # room for the session's records and Ray Train's own files, not for a checkpoint (about 14 MB)


def test_a_checkpoint_that_does_not_fit_fails_the_run_naming_the_root_and_frees_it(full_server, tmp_path):
    root = full_server.storage_root
    client = prepared_session(full_server, tmp_path, sentiment_files(tmp_path), model=TINY_MODEL, epochs=1,
                              batch_size=8)
    filler = fill(root, leave=ROOM_LEFT)
    try:
        client.start_training()
        final = wait_for(lambda: (m := client.monitor())["state"] != "training" and m, 300, "the run to end")
        assert final["state"] == "failed", final
        message = final["error"]["message"]
        # Found at the start of the run (its weights and optimiser state cannot fit), so not trained for nothing.
        assert message.startswith("a checkpoint of this run (at least ") and "MB free)" in message, message
        assert f"MB) did not fit in the storage root {root}: no space left" in message, message
        run_storage = Path(final["training"]["run_storage"])
        assert not list(run_storage.parent.rglob("checkpoint_*")), "the partial checkpoint is freed"
    finally:
        filler.unlink()
