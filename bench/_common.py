"""Shared by the bench scripts: a server on a temporary storage root, and result output."""

from __future__ import annotations

import json
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from training_client.local_server import ServerProcess


@contextmanager
def temporary_server(dashboard: bool = True, **args):
    with tempfile.TemporaryDirectory(prefix="tm-bench-") as tmp:
        root, logs = Path(tmp) / "storage", Path(tmp) / "logs"
        logs.mkdir()
        with ServerProcess(root, logs, dashboard=dashboard, **args) as server:
            yield server, Path(tmp)


def train_through_api(client, train: Path, test: Path, **config) -> tuple[dict, dict, float]:
    """A fresh session: set `config`, upload, preprocess, train. Returns the config as the server holds it, the
    final /monitor reply and the seconds from training/start to trained."""
    client.start_session(force_restart=True)
    held = client.set_parameters(**config)["config"]
    client.upload_dataset(train, test)
    client.preprocess()
    client.wait_preprocessed()
    started = time.perf_counter()
    client.start_training()
    final = client.wait_trained(poll_s=2)
    took = time.perf_counter() - started
    assert final["state"] == "trained", final
    return held, final, took


RESULTS = Path(__file__).with_name("results")


def write_result(name: str, result: dict, out: str | None) -> None:
    """Write `result` to `out`, by default bench/results/<name>.json."""
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {path}")
