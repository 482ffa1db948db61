"""The session actor killed for good (`ray.kill(..., no_restart=True)`) mid-run, while nothing calls the API: the
ingress's next call creates it again from the session file, and the run, which kept the dead actor's handle, must
find the new one by name: its progress reaches the session again, it obeys a stop, and a run that ended while no
session actor was there is recorded, evaluations and all, once one is back."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import TINY_MODEL
from data import sentiment_files
from helpers import kill_session_actor_for_good, prepared_session, wait_for

from training_client import TrainingModuleClient

ABSENT_S = 20  # no call to the API meanwhile: the run's progress reports meet a dead actor, then none at all
# A run that ended waits for a session actor that is away to report its end to (for longer than it retries other
# errors: tests/unit/cluster/test_progress_sink.py), and its outcome file tells one that comes back later still.


def _live_step(client: TrainingModuleClient) -> int:
    return (client.monitor()["training"]["live"] or {}).get("step", 0)


def test_a_run_reaches_the_session_actor_that_comes_back_and_obeys_a_stop(server, tmp_path):
    client = prepared_session(server, tmp_path, sentiment_files(tmp_path, 400, 40), model=TINY_MODEL, epochs=30,
                              batch_size=8)
    client.start_training()
    wait_for(lambda: _live_step(client) >= 4, 120, "training to report steps")

    kill_session_actor_for_good(server)
    time.sleep(ABSENT_S)
    back = client.monitor()  # the ingress creates the session actor again; it reads the session file
    assert back["state"] == "training", back
    seen = _live_step(client)
    try:  # 120 s: once, on a loaded 2-core machine, 60 s passed with no new step
        wait_for(lambda: _live_step(client) > seen, 120, "the run's progress to reach the new session actor")
    except AssertionError as e:  # what the session holds then: the run's state, its last step and message
        raise AssertionError(f"{e}; the session's training: {client.monitor()['training']}") from None
    wait_for(lambda: client.monitor()["history"], 120, "the run's evaluations to be recorded again")

    asked = time.monotonic()
    client.stop_training()
    final = wait_for(lambda: (m := client.monitor())["state"] != "training" and m, 60, "the run to stop")
    assert final["state"] == "stopped", final
    assert time.monotonic() - asked < 30
    assert final["model_ready"] is True


def test_a_run_that_ends_while_the_session_actor_is_gone_is_recorded_when_it_comes_back(server, tmp_path):
    client = prepared_session(server, tmp_path, sentiment_files(tmp_path), model=TINY_MODEL, epochs=2, batch_size=8)
    client.start_training()
    wait_for(lambda: _live_step(client) >= 1, 120, "training to report a step")
    outcome = Path(client.monitor()["training"]["run_storage"]).parent / "outcome.json"  # cluster/layout.py

    kill_session_actor_for_good(server)
    wait_for(outcome.exists, 300, "the run to end while no session actor is there")
    time.sleep(ABSENT_S)  # nothing calls the API: the run's end has no one to report to

    final = wait_for(lambda: (m := client.monitor())["state"] != "training" and m, 60, "the run's end recorded")
    assert final["state"] == "trained", final
    assert [e["epoch"] for e in final["history"]] == [1, 2], "the evaluations made while it was gone are kept"
    assert final["model_ready"] is True
