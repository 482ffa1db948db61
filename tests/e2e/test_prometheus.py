"""The server's metrics reach Ray's Prometheus export: a scrape of the node's metrics endpoint, after a real
training run, shows the session state and the run's progress gauges."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
from helpers import driver_on_server_ray, wait_for

# Prints the metrics export port of the server's (single) node.
PORT = """
import sys, json, ray
ray.init(address=sys.argv[1], log_to_driver=False)
print(json.dumps([n["MetricsExportPort"] for n in ray.nodes() if n["Alive"]]))
"""


def metrics_port(server) -> int:
    address, env = driver_on_server_ray(server)
    out = subprocess.run([sys.executable, "-c", PORT, address], capture_output=True, text=True, env=env, timeout=120,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])[0]


def samples(port: int) -> list[str]:
    """Our metrics' sample lines (Ray prefixes custom metrics with `ray_`)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return [line for line in text.splitlines() if line.startswith("ray_tm_")]


def value(lines: list[str], name: str, tag: str = "") -> float | None:
    """The value of `name`'s sample (the one carrying `tag`, e.g. 'state="trained"'), or None."""
    return next((float(line.rsplit(" ", 1)[1]) for line in lines
                 if line.split("{")[0] == f"ray_{name}" and tag in line), None)


def test_session_state_and_training_progress_are_exported_to_prometheus(server, trained_sentiment):
    # The shared sentiment session (conftest.py): trained just before this test or by the one that shares it last.
    port = metrics_port(server)
    # Ray's agent exports what the actor set at its next report (every few seconds).
    lines = wait_for(lambda: (lambda got: got if value(got, "tm_session_state", 'state="trained"') == 1.0 else None)(
        samples(port)), 90, "the trained state among the server's gauges on Ray's metrics endpoint", poll=2)
    assert value(lines, "tm_session_state", 'state="training"') == 0.0
    assert value(lines, "tm_training_step") > 0 and value(lines, "tm_preprocess_progress") == 1.0
    assert value(lines, "tm_preprocess_rows_done") == value(lines, "tm_preprocess_rows_total") > 0
    assert value(lines, "tm_preprocess_bytes_done") == value(lines, "tm_preprocess_bytes_total") > 0
    assert value(lines, "tm_preprocess_eta_seconds") == 0.0
    # Rates are the latest progress window's: 0 once the run's steps are done, as /monitor says.
    assert value(lines, "tm_training_loss") is not None and value(lines, "tm_training_samples_per_second") is not None
