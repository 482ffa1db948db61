"""Unit tests of the session's run history (cluster/run_history.py through the state machine), without Ray."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_session_machine import Harness, outcome

from cluster.session_record import State
from train_jobs.errors import InvalidParameters, NotFound, StorageFull, WrongState


@pytest.fixture
def h(tmp_path) -> Harness:
    return Harness(tmp_path)


def evaluate(h: Harness, run_id: str, step: int, accuracy: float) -> None:
    h.machine.training_progress(run_id, {"step": step, "total_steps": 4, "progress": step / 4},
                                {"step": step, "epoch": 1, "split": "validation", "accuracy": accuracy})


def train_again(h: Harness, key: str, accuracy: float = 0.5):
    spec = h.machine.begin_training(key)
    evaluate(h, spec.run_id, 2, accuracy)
    h.machine.finish_training(spec.run_id, outcome(spec))
    return spec


def test_a_run_is_listed_from_its_start(h):
    key, spec = h.training()
    runs = h.machine.list_runs(key)["runs"]
    assert [r["run_id"] for r in runs] == [spec.run_id]
    assert runs[0]["state"] == "running" and runs[0]["finished_at"] is None and runs[0]["started_at"]
    assert h.saved[-1][0].run_history[0].run_id == spec.run_id  # on disk with the step that began it


def test_two_runs_are_kept_newest_first_with_their_own_files(h):
    key, first = h.trained()
    second = train_again(h, key, accuracy=0.9)
    runs = h.machine.list_runs(key)["runs"]
    assert [r["run_id"] for r in runs] == [second.run_id, first.run_id]
    assert [r["state"] for r in runs] == ["done", "done"]
    old = h.machine.artifacts(key, first.run_id)
    assert old["run_id"] == first.run_id and old["model_dir"] == outcome(first)["model_dir"]
    assert old["model_archive_dest"] != h.machine.artifacts(key)["model_archive_dest"]
    assert h.machine.artifacts(key)["model_dir"] == outcome(second)["model_dir"]  # the default: the latest


def test_a_run_shows_its_config_metrics_and_events(h):
    key, spec = h.training()
    evaluate(h, spec.run_id, 2, 0.6)
    evaluate(h, spec.run_id, 4, 0.8)
    live = h.machine.get_run(key, spec.run_id)
    assert live["status"] == "running" and len(live["history"]) == 2 and live["live"]["step"] == 4
    h.machine.finish_training(spec.run_id, {**outcome(spec), "timings": {"steps_s": 1.5}})
    run = h.machine.get_run(key, spec.run_id)
    assert run["config"] == h.record.config.model_dump()
    assert run["hyperparameters"] == h.record.training.hyperparameters
    assert run["final_metrics"] == {"accuracy": 0.75}
    assert run["selected"] == {"metric": "accuracy", "value": 0.8, "split": "validation"}
    assert run["artifacts"]["model_dir"] == outcome(spec)["model_dir"]
    assert run["timings"] == {"steps_s": 1.5}  # where the run's time went, kept with it
    kinds = [e["kind"] for e in run["events"]]
    assert kinds == ["state", "evaluation", "evaluation", "state"]
    assert run["events"][-1]["data"] == {"status": "done"}
    assert all(e["at"] >= run["started_at"] for e in run["events"])


def test_a_failed_run_has_an_error_event(h):
    key, spec = h.training()
    h.machine.finish_training(spec.run_id, {"error": "out of memory"})
    run = h.machine.get_run(key, spec.run_id)
    assert run["status"] == "failed" and run["error"] == "out of memory"
    assert [(e["kind"], e["message"]) for e in run["events"]][-2] == ("error", "out of memory")


def test_a_stop_and_a_resume_are_events(h):
    key, spec = h.training()
    h.machine.training_progress(spec.run_id, {"step": 1, "total_steps": 4})
    h.machine.request_stop(key)
    h.machine.finish_training(spec.run_id, outcome(spec, resumable=True))
    h.machine.begin_training(key, resume=True, run_id=spec.run_id)
    run = h.machine.get_run(key, spec.run_id)
    assert [e["kind"] for e in run["events"]] == ["state", "state", "state", "restart"]
    assert run["restarts"] == 1 and run["status"] == "running"


def test_unknown_run_ids_are_404(h):
    key, spec = h.trained()
    for call in (lambda: h.machine.get_run(key, "nope"), lambda: h.machine.artifacts(key, "nope"),
                 lambda: h.machine.delete_run(key, "nope"), lambda: h.machine.begin_training(key, True, "nope")):
        with pytest.raises(NotFound, match="no run 'nope' in this session"):
            call()


def test_another_sessions_run_is_404_not_403(h):
    key, spec = h.trained()
    new_key = h.machine.restart(key)["key"]
    with pytest.raises(NotFound):
        h.machine.get_run(new_key, spec.run_id)


def test_only_the_latest_run_resumes(h):
    key, first = h.trained()
    train_again(h, key)
    with pytest.raises(WrongState, match="only the session's latest run"):
        h.machine.begin_training(key, resume=True, run_id=first.run_id)
    with pytest.raises(InvalidParameters, match="resume=true"):
        h.machine.begin_training(key, resume=False, run_id=first.run_id)


def test_the_running_run_has_no_download(h):
    key, spec = h.training()
    with pytest.raises(WrongState, match="still running"):
        h.machine.artifacts(key, spec.run_id)


def test_a_new_dataset_keeps_the_past_runs_models(h):
    key, spec = h.trained()
    h.upload(key)
    with pytest.raises(NotFound):
        h.machine.artifacts(key)  # the session's model is gone with its data, as the reference says
    assert h.machine.artifacts(key, spec.run_id)["model_dir"] == outcome(spec)["model_dir"]


def test_set_artifact_of_an_old_run_leaves_the_latest_alone(h):
    key, first = h.trained()
    second = train_again(h, key)
    h.machine.set_artifact(key, "model_archive", "/built/first.tar.gz", first.run_id)
    assert h.machine.artifacts(key, first.run_id)["model_archive"] == "/built/first.tar.gz"
    assert h.machine.artifacts(key)["model_archive"] == second.model_archive
    h.machine.set_artifact(key, "model_archive", "/built/latest.tar.gz")
    assert h.machine.artifacts(key)["model_archive"] == "/built/latest.tar.gz"
    assert h.machine.artifacts(key, second.run_id)["model_archive"] == "/built/latest.tar.gz"


def test_delete_frees_an_old_runs_files_and_keeps_the_latest(h):
    key, first = h.trained()
    second = train_again(h, key)
    sid = h.record.session_id
    for spec in (first, second):
        Path(spec.results_dir).mkdir(parents=True, exist_ok=True)
    reply = h.machine.delete_run(key, first.run_id)
    assert reply["deleted"] == first.run_id
    assert not h.layout.run_dir(sid, first.run_id).exists()
    assert h.layout.run_dir(sid, second.run_id).exists()
    assert [r["run_id"] for r in h.machine.list_runs(key)["runs"]] == [second.run_id]
    assert h.record.state == State.trained and h.machine.artifacts(key)["model_dir"]


def test_deleting_the_latest_run_takes_the_sessions_model(h):
    key, spec = h.trained()
    h.machine.delete_run(key, spec.run_id)
    assert h.record.state == State.preprocessed and not h.record.model_ready
    h.machine.begin_training(key)  # the cache is still there: train again


def test_delete_is_refused_while_running_or_deployed(h):
    key, spec = h.training()
    with pytest.raises(WrongState, match="is running"):
        h.machine.delete_run(key, spec.run_id)
    h.machine.finish_training(spec.run_id, outcome(spec))
    h.machine.begin_deploy(key, {})
    with pytest.raises(WrongState, match="deployed"):
        h.machine.delete_run(key, spec.run_id)
    assert h.machine.list_runs(key)["runs"][0]["deployed"] is True


def test_an_old_run_deploys_by_id(h):
    key, first = h.trained()
    train_again(h, key)
    info = h.machine.begin_deploy(key, {}, None, first.run_id)
    assert info["run_id"] == first.run_id and info["model_dir"] == outcome(first)["model_dir"]


def test_the_history_survives_a_reload(h):
    key, first = h.trained()
    second = train_again(h, key)
    h.machine = h.reloaded()
    assert [r["run_id"] for r in h.machine.list_runs(key)["runs"]] == [second.run_id, first.run_id]
    assert len(h.machine.get_run(key, first.run_id)["events"]) >= 2


def test_a_run_cut_off_by_a_restart_records_it(h):
    key, spec = h.training()
    h.machine = h.reloaded()  # the run's actor is not alive: no checkpoint, so it is stopped
    h.machine.recover_interrupted_jobs()
    run = h.machine.get_run(key, spec.run_id)
    assert run["status"] == "stopped" and "cut off by a restart" in run["events"][-1]["message"]


# ---- the per-session storage quota ----------------------------------------------------------------------------


def fill_run(h: Harness, run_id: str, kib: int) -> None:
    folder = h.layout.run_dir(h.record.session_id, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "weights.bin").write_bytes(b"w" * kib * 1024)


def test_a_session_over_its_quota_is_told_which_runs_to_delete(tmp_path):
    h = Harness(tmp_path, max_session_storage_mb=0.1)  # 100 KiB
    key, first = h.trained()
    fill_run(h, first.run_id, 120)
    before = h.record.model_copy(deep=True)
    for call in (lambda: h.machine.begin_training(key), lambda: h.machine.begin_upload(key)):
        with pytest.raises(StorageFull, match=r"of its 0.1 MB quota \(max_session_storage_mb\)") as e:
            call()
        assert f"{first.run_id} (0.1 MB)" in e.value.hint and "DELETE /runs/{key}/{run_id}" in e.value.hint
    assert h.record == before  # refused: nothing changed
    h.machine.delete_run(key, first.run_id)
    h.machine.begin_training(key)  # room again


def test_under_the_quota_runs_start(tmp_path):
    h = Harness(tmp_path, max_session_storage_mb=1)
    key, first = h.trained()
    fill_run(h, first.run_id, 100)
    h.machine.begin_training(key)
