"""Killing the model's replica mid-load: Serve starts a new one, calls resume within seconds of it being back, and
no call returns a 5xx once it is back; and a model the session no longer has is not left
serving.

What a client sees in the gap (Serve 2.60's router, read in ray/serve/_private/router.py):
- a call not yet handed to a replica waits: the router retries a send that meets the dead replica and, with no
  replica running, queues the call until the new one is up (there is no max_queued_requests), so it is answered
  200, late by the gap: the controller's health check (every 10 s) noticing the death, then the new replica's
  process start, imports and model load;
- a call the replica had already taken (in its batch when it was killed) fails: the ingress gets Ray's
  ActorDiedError, which it answers 503 with `Retry-After` and a hint (cluster/serving.py, `replica_answer`), not a
  500. Inference changes nothing, so the client may repeat it.
So the only non-200 answers allowed are 503s with `Retry-After`, and only for calls in flight at the kill (or sent
in the moment the process took to die).

The replica is found as the Ray Train workers are in test_resume.py: a process under the server whose title
Ray set to the actor's class, `ray::ServeReplica:<app>:model`. It is killed with SIGKILL, as a lost process (an OOM
kill) would be, rather than through Ray.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass

import httpx
import psutil
import pytest
from helpers import wait_for
from test_serving import SMALL

from training_client.client import auth_headers

LOADERS = 3  # threads calling /predict back to back
PAUSE_S = 0.05  # between one thread's calls: load, without starving the 2 cores the new replica starts on
BEFORE_KILL = 20  # answers before the kill
BACK_WITHIN_S = 120  # kill to the new replica running: the controller noticing, process start, imports, model load
RESUME_WITHIN_S = 5  # the new replica running to the first answer of a call made after the kill
AFTER_BACK_CALLS = 30  # answers to calls made once the replica is back (every thread, some rounds each)
CALL_TIMEOUT_S = 180  # a call waits out the gap rather than time out
DYING_S = 1.0  # a call sent as the signal lands may still be taken by the replica


@dataclass
class Call:
    started: float
    ended: float
    status: int  # 0: no HTTP answer (a timeout, a dropped connection)
    retry_after: str | None = None


class Load:
    """Threads calling /predict back to back, each with its own HTTP client; every call's times and status."""

    def __init__(self, server, key: str):
        self.url, self.key = server.url, key
        self.headers = auth_headers()
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(LOADERS)]

    def _run(self, i: int) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=CALL_TIMEOUT_S) as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                started = time.monotonic()
                try:
                    r = http.post(f"/predict/{self.key}", json={"texts": [f"the film was great, call {i}.{n}"]})
                    call = Call(started, time.monotonic(), r.status_code, r.headers.get("retry-after"))
                except httpx.HTTPError:
                    call = Call(started, time.monotonic(), 0)
                with self.lock:
                    self.calls.append(call)
                time.sleep(PAUSE_S)

    def answered(self, status: int = 200, after: float = 0.0) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.status == status and c.started >= after]

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(CALL_TIMEOUT_S + 10)


def replica_pids(server, app: str) -> set[int]:
    marker = f"ServeReplica:{app}:"
    pids = set()
    for process in psutil.Process(server.proc.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a process that ended meanwhile
            if marker in " ".join(process.cmdline()):
                pids.add(process.pid)
    return pids


@pytest.fixture(scope="module")
def trained(trained_sentiment):
    """The shared sentiment session (conftest.py; test_serving.py's too), with no deployment: the config-change
    test, last, ends it."""
    return trained_sentiment[0]


def test_a_killed_replica_is_replaced_and_calls_resume_without_5xx(server, trained):
    client = trained
    client.deploy(**SMALL)  # one replica (min = max = 1): nothing else can answer while it is gone
    ready = client.wait_deployed()["deployment"]
    assert ready["state"] == "ready" and ready["replicas"].get("running") == 1, ready
    app = ready["app"]
    [old] = wait_for(lambda: replica_pids(server, app), 30, "the model replica's process")
    try:
        with Load(server, client.key) as load:
            wait_for(lambda: len(load.answered()) >= BEFORE_KILL, 120, f"{BEFORE_KILL} answers before the kill")
            killed_at = time.monotonic()
            os.kill(old, signal.SIGKILL)

            def back() -> bool:  # a new replica process, and Serve reporting one replica running
                if not replica_pids(server, app) - {old}:
                    return False
                d = client.deployment()["deployment"]
                return d["state"] == "ready" and d["replicas"].get("running") == 1

            wait_for(back, BACK_WITHIN_S, "a new replica running after the kill", poll=0.25)
            back_at = time.monotonic()
            wait_for(lambda: len([c for c in load.calls if c.started >= back_at]) >= AFTER_BACK_CALLS, 120,
                     f"{AFTER_BACK_CALLS} calls made after the replica was back to end")
        calls = sorted(load.calls, key=lambda c: c.started)
        assert client.predict(["the film was great"])["predictions"][0]["label"] in ("neg", "pos")
    finally:
        with contextlib.suppress(Exception):
            client.undeploy()  # frees the replica's CPU for the next tests

    gap = f"replica back {back_at - killed_at:.1f} s after the kill"
    after_kill = [c for c in calls if c.started >= killed_at and c.status == 200]
    assert after_kill, f"no call made after the kill was answered; {gap}"
    resumed_at = min(c.ended for c in after_kill)
    assert resumed_at <= back_at + RESUME_WITHIN_S, \
        f"first answer {resumed_at - back_at:.1f} s after the replica was back ({gap})"
    late = [c for c in calls if c.started >= back_at and c.status != 200]
    assert not late, f"{len(late)} calls made after the replica was back failed: {sorted({c.status for c in late})}"
    assert len([c for c in calls if c.started >= back_at]) >= AFTER_BACK_CALLS, "too few calls after it was back"
    failed = [c for c in calls if c.status != 200]
    # In the gap: only the calls the replica had taken may fail, and then as 503 with Retry-After, never a 500.
    assert all(c.status == 503 and c.retry_after for c in failed), \
        [(round(c.started - killed_at, 2), c.status, c.retry_after) for c in failed]
    assert all(c.started <= killed_at + DYING_S for c in failed), "a call made after the kill failed, not waited"


def test_a_config_change_takes_the_model_app_down(server, trained):
    """A new config ends the session's model (the record drops its deployment), so its replica must go too: left
    running it would hold its CPUs with no route left to remove it."""
    client = trained
    client.deploy(**SMALL)
    app = client.wait_deployed()["deployment"]["app"]
    wait_for(lambda: replica_pids(server, app), 30, "the model replica's process")
    client.set_parameters(epochs=2)
    assert client.deployment()["deployment"]["state"] == "none"
    wait_for(lambda: not replica_pids(server, app), 60, "the model replica gone after the config change")
