"""Shared fixtures: one real server (serve run over HTTP) for the end-to-end tests under tests/e2e/.

Tests under tests/integration/ start a local Ray of their own (no server); both are marked e2e, as both start Ray.
Tests under tests/unit/ start no Ray and no server; `-m "not e2e"` runs only them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from s3_store import CREDENTIALS as S3_CREDENTIALS

from training_client.local_server import ServerProcess

TINY_MODEL = "tiny-bert"
MAX_UPLOAD_MB = 1
# The end-to-end server runs with an API token (from the environment, as `serve run` users set it); every client
# the tests make reads it from there too.
API_TOKEN = "e2e-token-0123456789abcdef"
# Serve's own shutdown on Ctrl-C takes about 50 s on 2 cores, most of it after the state that matters is on disk
# (write-first), and every server the suite stops (restarts, its own servers, the end) waited for it: the tests'
# servers get 10 s, then their process group is killed, as the fault tests kill processes anyway.
os.environ.setdefault("TM_STOP_GRACE_S", "10")
# Datasets by s3:// URI: the server reads them from the S3 server the `s3_store` fixture starts, with the dummy
# credentials it finds in its environment (the standard AWS chain).
# Datasets by URI are checked at upload on this many rows of a split: fewer than test_datasets_by_uri's train rows,
# so their labels come from the pass over the whole at preprocessing, as a large source's do.
URI_SAMPLE_ROWS = 100
for _name, _value in S3_CREDENTIALS.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(scope="session")
def storage_root(tmp_path_factory) -> Path:
    from tiny_model import build_tiny_bert  # torch and transformers: only when a test needs the server

    root = tmp_path_factory.mktemp("storage")
    build_tiny_bert(root / "models" / TINY_MODEL)
    return root


@pytest.fixture(scope="session")
def server(storage_root, tmp_path_factory, s3_store):
    os.environ["TM_API_TOKEN"] = API_TOKEN
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # the tracking test logs to an MLflow file store
    srv = ServerProcess(storage_root, tmp_path_factory.mktemp("server"), max_upload_mb=MAX_UPLOAD_MB,
                        progress_every_steps=2, s3_endpoint_url=s3_store, uri_timeout_s=5,
                        uri_sample_rows=URI_SAMPLE_ROWS)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def nodes():
    """A Ray cluster of two 1-CPU nodes on this machine (ray_nodes.py), one per module of the multinode tests."""
    from ray_nodes import head_and_second

    with head_and_second() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def s3_store() -> str:
    """The endpoint of a real S3-compatible server on 127.0.0.1 (moto's), the one the server reads s3:// from
    (started first: the server's settings name it)."""
    from s3_store import s3_server

    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def shared_sessions(server):
    """Trained sessions kept across modules (helpers.SharedSessions): train once, reuse while still the server's."""
    from helpers import SharedSessions

    return SharedSessions(server)


@pytest.fixture(scope="module")
def trained_sentiment(server, shared_sessions, tmp_path_factory):
    """(client, folder): a session trained on the sentiment sample in `folder` (train.csv, test.csv; the tiny
    model, 1 epoch), with no deployment. Shared by every module that asks while no test replaced or changed it."""
    from data import sentiment_files
    from helpers import trained_session

    def build():
        folder = tmp_path_factory.mktemp("sentiment")
        return trained_session(server, sentiment_files(folder)), folder

    return shared_sessions.get("sentiment", build)


# Fixtures whose trained session is shared across modules: the tests that use one run one after the other (where
# the first of them stood), so that no other test replaces the session between them and it is trained once.
SHARED_SESSION_FIXTURES = ("trained_sentiment",)


def _run_sharers_together(items: list) -> list:
    for name in SHARED_SESSION_FIXTURES:
        users = [item for item in items if name in getattr(item, "fixturenames", ())]
        if len(users) > 1:
            rest = [item for item in items if name not in getattr(item, "fixturenames", ())]
            at = items.index(users[0])  # no user stands before the first one
            items = rest[:at] + users + rest[at:]
    return items


def pytest_collection_modifyitems(config, items):
    items[:] = _run_sharers_together(items)
    starts_ray = (Path(__file__).parent / "e2e", Path(__file__).parent / "integration")
    # The multi-node test takes minutes more than the suite's budget on 2 cores: it runs when asked for by name.
    multinode = "multinode" in (config.option.markexpr or "")
    for item in items:
        if any(folder in Path(item.path).parents for folder in starts_ray):
            item.add_marker(pytest.mark.e2e)
        if item.get_closest_marker("multinode") and not multinode:
            item.add_marker(pytest.mark.skip(reason="a two-node Ray cluster, minutes long: run it with -m multinode"))
