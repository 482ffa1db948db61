"""Unit tests of the server's sessions (cluster/session_registry.py) and their files (session_actor.py's
SessionFile and read_records), without Ray: several sessions, each found by its key or its jobs' ids."""

from __future__ import annotations

import json
import threading

import pytest
from test_session_machine import Harness, cache_meta, outcome

from cluster.session_actor import SessionFile, read_records
from cluster.session_machine import SessionMachine
from cluster.session_record import SessionRecord, State
from cluster.session_registry import QueueFull, SessionRegistry
from train_jobs.errors import WrongKey, WrongState
from train_jobs.specs import TrainingSpec


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def registry(tmp_path, clock=None, records=(), resources=None, **settings) -> tuple[SessionRegistry, Harness]:
    h = Harness(tmp_path, **settings)
    return SessionRegistry(h.settings, list(records), h.new_machine, resources=lambda: resources or {},
                           **({"clock": clock} if clock else {})), h


def upload(h: Harness, sessions: SessionRegistry, key: str) -> None:
    h.machine = sessions.keyed(key)  # the harness's upload steps, on this session's machine
    h.upload(key)


def test_one_session_by_default_as_the_reference_has_it(tmp_path):
    sessions, _ = registry(tmp_path)
    key = sessions.start(force=False)["key"]
    with pytest.raises(WrongState, match="already active"):
        sessions.start(force=False)
    new = sessions.start(force=True)["key"]  # unkeyed force wipes the one session
    assert new != key and len(sessions.live()) == 1
    with pytest.raises(WrongKey):
        sessions.keyed(key)


def test_several_sessions_up_to_the_limit_each_with_its_own_key(tmp_path):
    sessions, _ = registry(tmp_path, max_sessions=3)
    keys = [sessions.start(force=False)["key"] for _ in range(3)]
    with pytest.raises(WrongState, match="limit of 3 sessions .max_sessions.") as refused:
        sessions.start(force=False)
    assert refused.value.status_code == 409 and len(sessions.live()) == 3  # nothing half-made
    ids = {sessions.keyed(k).record.session_id for k in keys}
    assert len(ids) == 3
    with pytest.raises(WrongKey):
        sessions.keyed("x" * 43)


def test_a_forced_restart_wipes_only_the_session_whose_key_comes_with_it(tmp_path):
    sessions, h = registry(tmp_path, max_sessions=3)
    a, b = (sessions.start(force=False)["key"] for _ in range(2))
    upload(h, sessions, b)
    with pytest.raises(WrongState, match="wipes only the session whose key") as refused:
        sessions.start(force=True)
    assert "X-Session-Key" in refused.value.hint
    a_id = sessions.keyed(a).record.session_id
    new = sessions.start(force=True, key=a)["key"]
    assert sessions.keyed(new).record.session_id != a_id
    assert not h.layout.session_dir(a_id).exists()
    assert sessions.keyed(b).record.dataset is not None  # the other session is untouched
    with pytest.raises(WrongKey):
        sessions.keyed(a)


def test_unkeyed_status_is_the_only_sessions_or_a_summary_without_keys(tmp_path):
    sessions, h = registry(tmp_path, max_sessions=2)
    assert sessions.status()["state"] == "idle"
    a = sessions.start(force=False)["key"]
    assert sessions.status()["session_id"] == sessions.keyed(a).record.session_id
    b = sessions.start(force=False)["key"]
    upload(h, sessions, b)
    summary = sessions.status()
    assert summary["state"] == "sessions" and summary["sessions"] == {
        "count": 2, "max_sessions": 2, "by_state": {"setup": 2}, "queued": 0, "cluster": {}}
    assert a not in json.dumps(summary) and b not in json.dumps(summary) and "config" not in summary
    assert sessions.status(b)["session_id"] == sessions.keyed(b).record.session_id
    with pytest.raises(WrongState, match="which one's parameters") as refused:
        sessions.get_config()
    assert "X-Session-Key" in refused.value.hint
    assert sessions.get_config(b)["dataset"] is not None and sessions.get_config(a)["dataset"] is None
    listed = sessions.list_sessions()
    assert [s["session_id"] for s in listed] == [sessions.keyed(k).record.session_id for k in (a, b)]
    assert a not in json.dumps(listed)


def test_each_jobs_reports_reach_its_own_session(tmp_path):
    sessions, h = registry(tmp_path, max_sessions=2)
    a, b = (sessions.start(force=False)["key"] for _ in range(2))
    for key in (a, b):
        upload(h, sessions, key)
    spec_a = sessions.keyed(a).begin_preprocess(a)
    spec_b = sessions.keyed(b).begin_preprocess(b)
    sessions.by_job(spec_b.job_id).finish_preprocess(spec_b.job_id, cache_meta(spec_b), None)
    assert sessions.keyed(b).record.state == State.preprocessed
    assert sessions.keyed(a).record.state == State.preprocessing  # a's job is still running
    assert sessions.by_job(spec_a.job_id) is sessions.keyed(a)
    sessions.start(force=True, key=a)
    assert sessions.by_job(spec_a.job_id) is None  # the wiped session's late report finds no one


def test_idle_sessions_past_their_ttl_go_with_their_files(tmp_path):
    clock = Clock()
    sessions, h = registry(tmp_path, clock=clock, max_sessions=3, session_ttl_hours=1)
    old, busy, recent = (sessions.start(force=False)["key"] for _ in range(3))
    for m in sessions.live():
        m.record.created_at = m.record.touched_at = clock.now
    upload(h, sessions, busy)
    sessions.keyed(busy).begin_preprocess(busy)  # busy sessions are never removed
    clock.now += 1800
    sessions.keyed(recent)  # a keyed call keeps it
    clock.now += 1900
    old_id = sessions.live()[0].record.session_id
    assert sessions.expire() == [old_id]
    assert not h.layout.session_dir(old_id).exists() and len(sessions.live()) == 2
    with pytest.raises(WrongKey):
        sessions.keyed(old)


def test_no_ttl_keeps_every_session(tmp_path):
    clock = Clock()
    sessions, _ = registry(tmp_path, clock=clock, max_sessions=2)
    sessions.start(force=False)
    clock.now += 10 * 365 * 86400
    assert sessions.expire() == [] and len(sessions.live()) == 1


def test_every_session_comes_back_from_its_own_file(tmp_path):
    h = Harness(tmp_path, max_sessions=2)

    def machine(record):
        persist = SessionFile(h.layout, lambda: None, record.session_id if record else None)
        return SessionMachine(h.settings, record, persist, lambda _: False, lambda _: None)

    sessions = SessionRegistry(h.settings, [], machine)
    a, b = (sessions.start(force=False)["key"] for _ in range(2))
    ids = {sessions.keyed(k).record.session_id for k in (a, b)}
    assert {p.stem for p in h.layout.state_files()} == ids
    back = SessionRegistry(h.settings, read_records(h.layout), machine)
    assert {back.keyed(k).record.session_id for k in (a, b)} == ids
    writers = threading.active_count()
    back.start(force=True, key=a)  # the wiped session's file goes, the new one's comes
    assert threading.active_count() <= writers + 1  # and its writer's thread ends
    assert len(h.layout.state_files()) == 2 and sessions.keyed(b).record.session_id in {
        p.stem for p in h.layout.state_files()}


def test_the_one_session_of_an_older_server_moves_to_its_own_file(tmp_path):
    h = Harness(tmp_path)
    record = SessionRecord(session_id="a" * 32, key="k" * 43, state=State.setup)
    h.layout.legacy_state_file.write_text(record.model_dump_json())
    [back] = read_records(h.layout)
    assert back.key == record.key and not h.layout.legacy_state_file.exists()
    assert [p.stem for p in h.layout.state_files()] == ["a" * 32]


TWO_CPUS = {"CPU": 2.0}


def preprocessed(h: Harness, sessions: SessionRegistry, n: int) -> list[str]:
    keys = [sessions.start(force=False)["key"] for _ in range(n)]
    for key in keys:
        upload(h, sessions, key)
        spec = sessions.keyed(key).begin_preprocess(key)
        sessions.by_job(spec.job_id).finish_preprocess(spec.job_id, cache_meta(spec), None)
    return keys


def finish(sessions: SessionRegistry, key: str) -> None:
    run_id = sessions.keyed(key).record.training.id
    sessions.by_job(run_id).finish_training(run_id, outcome_of(sessions, key))


def outcome_of(sessions: SessionRegistry, key: str) -> dict:
    return outcome(TrainingSpec(**sessions.keyed(key).record.training.spec))


def test_runs_queue_in_order_when_the_cluster_fits_one(tmp_path):
    sessions, h = registry(tmp_path, resources=TWO_CPUS, max_sessions=3)
    a, b, c = preprocessed(h, sessions, 3)
    assert sessions.begin_training(a) is not None  # alone on the cluster: it starts
    assert sessions.begin_training(b) is None and sessions.begin_training(c) is None
    assert [sessions.keyed(k).status()["state"] for k in (a, b, c)] == ["training", "queued", "queued"]
    assert [sessions.keyed(k).status()["training"]["queue_position"] for k in (b, c)] == [1, 2]
    assert sessions.admit() == []  # a still holds both CPUs
    finish(sessions, a)
    queued_at = sessions.keyed(b).list_runs(b)["runs"][0]["started_at"]
    clock_before = sessions.keyed(a).record.training.finished_at
    [started] = sessions.admit()
    run = sessions.keyed(b).list_runs(b)["runs"][0]
    assert run["started_at"] >= clock_before >= queued_at  # a queued run starts when its turn comes
    assert started.run_id == sessions.keyed(b).record.training.id and sessions.keyed(b).record.state == State.training
    assert sessions.keyed(c).status()["training"]["queue_position"] == 1
    assert [e["message"] for e in sessions.keyed(b).get_run(b, started.run_id)["events"]][:3] == [
        "training started", "queued", "started from the queue"]
    summary = sessions.summary()["sessions"]
    assert summary["by_state"] == {"trained": 1, "training": 1, "queued": 1} and summary["queued"] == 1


def test_a_queued_run_waits_behind_the_first_in_line(tmp_path):
    """FIFO: a later run that would fit does not overtake; the queue's order survives a restart."""
    sessions, h = registry(tmp_path, resources=TWO_CPUS, max_sessions=3)
    a, b, c = preprocessed(h, sessions, 3)
    sessions.begin_training(a)
    sessions.begin_training(b)
    sessions.begin_training(c)
    records = [m.record.model_copy(deep=True) for m in reversed(sessions.live())]
    back = SessionRegistry(h.settings, records, h.new_machine, resources=lambda: TWO_CPUS)
    assert [m.record.training.queue_position for m in back.queue()] == [1, 2]
    assert [m.record.session_id for m in back.queue()] == [sessions.keyed(k).record.session_id for k in (b, c)]


def test_stopping_a_queued_run_takes_it_out_of_the_queue(tmp_path):
    sessions, h = registry(tmp_path, resources=TWO_CPUS, max_sessions=3)
    a, b, c = preprocessed(h, sessions, 3)
    for key in (a, b, c):
        sessions.begin_training(key)
    status = sessions.keyed(b).request_stop(b)
    assert status["state"] == "stopped" and status["training"]["status"] == "stopped"
    assert not sessions.keyed(b).record.training.resumable and sessions.keyed(b).record.artifacts.model_dir is None
    sessions.admit()
    assert [m.record.session_id for m in sessions.queue()] == [sessions.keyed(c).record.session_id]
    assert sessions.keyed(c).status()["training"]["queue_position"] == 1
    assert sessions.begin_training(b) is None  # it may queue again, behind c
    assert sessions.keyed(b).status()["training"]["queue_position"] == 2


def test_a_full_queue_is_429_and_changes_nothing(tmp_path):
    sessions, h = registry(tmp_path, resources=TWO_CPUS, max_sessions=3, max_queue=1)
    a, b, c = preprocessed(h, sessions, 3)
    sessions.begin_training(a)
    sessions.begin_training(b)
    with pytest.raises(QueueFull, match="max_queue") as refused:
        sessions.begin_training(c)
    assert refused.value.status_code == 429 and refused.value.headers["Retry-After"]
    assert sessions.keyed(c).record.state == State.preprocessed and sessions.keyed(c).record.run_history == []


def test_wiping_a_session_with_a_queued_run_frees_its_place(tmp_path):
    sessions, h = registry(tmp_path, resources=TWO_CPUS, max_sessions=3)
    a, b, c = preprocessed(h, sessions, 3)
    for key in (a, b, c):
        sessions.begin_training(key)
    sessions.start(force=True, key=b)
    sessions.admit()
    assert sessions.keyed(c).status()["training"]["queue_position"] == 1
