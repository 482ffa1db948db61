"""Unit tests of the session state machine (cluster/session_machine.py and its parts: session_core.py,
session_runs.py, session_jobs.py, session_recovery.py), without Ray.

The machine is driven directly; `persist`, `job_alive` and `stop_job` are the test's own
stand-ins for the session actor's disk writes and Ray's actor liveness and kill.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import pytest

from cluster.session_core import SessionCore
from cluster.session_deploy import SessionDeploy
from cluster.session_jobs import SessionJobs
from cluster.session_machine import STEPS, SessionMachine
from cluster.session_record import SessionRecord, State
from cluster.session_recovery import SessionRecovery
from cluster.session_registry import JOB_STEPS, KEYED_STEPS
from cluster.session_runs import SessionRuns
from cluster.settings import Settings
from train_jobs.data.cache import cache_path
from train_jobs.data.dataset import inspect_upload
from train_jobs.errors import InvalidParameters, NotFound, WrongKey, WrongState
from train_jobs.files import atomic_write_json
from train_jobs.specs import ImportSpec, PreprocessSpec, TrainingSpec

TRAIN_CSV = "text,label\nthe film was great,pos\nthe plot was dull,neg\nsuperb acting,pos\n" \
            "a tedious script,neg\na charming cast,pos\nan awful ending,neg\n"
TEST_CSV = "text,label\na brilliant film,pos\na boring plot,neg\nwonderful acting,pos\na clumsy script,neg\n"
OUTCOME_KEYS = ("model_dir", "model_archive", "results_archive")


class Harness:
    """One machine over a storage root, with every persist call, the live job actors and the stopped ones."""

    def __init__(self, root: Path, **settings):
        self.settings = Settings(storage_root=str(root), **settings)
        self.layout = self.settings.layout
        self.saved: list[tuple[Optional[SessionRecord], bool]] = []
        self.alive: set[str] = set()
        self.stopped: list[str] = []
        self.machine = self.new_machine(None)

    def new_machine(self, record: Optional[SessionRecord]) -> SessionMachine:
        return SessionMachine(self.settings, record, persist=self._persist,
                              job_alive=lambda name: name in self.alive, stop_job=self.stopped.append)

    def _persist(self, record: Optional[SessionRecord], wait: bool) -> None:
        self.saved.append((record.model_copy(deep=True) if record else None, wait))

    @property
    def record(self) -> SessionRecord:
        return self.machine.record

    def reloaded(self) -> SessionMachine:
        """A new machine from the last persisted record, read back through JSON as the actor does."""
        last = self.saved[-1][0]
        return self.new_machine(SessionRecord.model_validate_json(last.model_dump_json()) if last else None)

    # ---- getting a session into a state ---------------------------------------------------
    def start(self) -> str:
        return self.machine.start(force=False)["key"]

    def stage(self, key: str, train: str = TRAIN_CSV, test: str = TEST_CSV) -> tuple[Path, dict]:
        target = self.machine.begin_upload(key)
        staging = Path(target["staging"])
        staging.mkdir(parents=True)
        (staging / "train.csv").write_text(train)
        (staging / "test.csv").write_text(test)
        files = {"train": (staging / "train.csv", "train.csv"), "test": (staging / "test.csv", "test.csv")}
        summary = inspect_upload(files, target["task_type"])
        return staging, summary

    def upload(self, key: str) -> dict:
        staging, summary = self.stage(key)
        return self.machine.set_dataset(key, str(staging), summary)

    def with_dataset(self) -> str:
        key = self.start()
        self.upload(key)
        return key

    def preprocessing(self) -> tuple[str, PreprocessSpec]:
        key = self.with_dataset()
        return key, self.machine.begin_preprocess(key)

    def preprocessed(self) -> tuple[str, PreprocessSpec]:
        key, spec = self.preprocessing()
        self.machine.finish_preprocess(spec.job_id, cache_meta(spec), None)
        return key, spec

    def training(self) -> tuple[str, TrainingSpec]:
        key, _ = self.preprocessed()
        return key, self.machine.begin_training(key)

    def trained(self) -> tuple[str, TrainingSpec]:
        key, spec = self.training()
        self.machine.training_progress(spec.run_id, {"step": 1, "total_steps": 2, "progress": 0.5})
        self.machine.finish_training(spec.run_id, outcome(spec))
        return key, spec

    def importing(self) -> tuple[str, ImportSpec]:
        key = self.start()
        return key, self.machine.begin_import(key, "my-model", "hub", "org/my-model")


def cache_meta(spec: PreprocessSpec) -> dict:
    return {"key": "k", "path": str(cache_path(spec)), "rows": {"train": 6, "test": 4}, "max_seq_length": 128,
            "labels": ["neg", "pos"], "text_columns": ["text"], "target": "label", "multi_label": False,
            "reused": False}


def outcome(spec: TrainingSpec, **extra) -> dict:
    return {"model_dir": str(Path(spec.storage_path) / "checkpoint_000001"), "model_archive": spec.model_archive,
            "results_archive": spec.results_archive, "final_metrics": {"accuracy": 0.75}, **extra}


def write_checkpoint(folder: Path, complete: bool = True, score: float | None = None) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    if complete:
        (folder / "model.safetensors").write_bytes(b"weights")
    if score is not None:
        (folder / "checkpoint.json").write_text(json.dumps({"score": score}))
    return folder


def is_under(path, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


@pytest.fixture
def h(tmp_path) -> Harness:
    return Harness(tmp_path)


KEYED_CALLS = {
    "authorize": lambda m, key: m.authorize(key),
    "restart": lambda m, key: m.restart(key),
    "update_config": lambda m, key: m.update_config(key, {"epochs": 1}),
    "begin_upload": lambda m, key: m.begin_upload(key),
    "set_dataset": lambda m, key: m.set_dataset(key, "/nonexistent/staging", {}),
    "begin_preprocess": lambda m, key: m.begin_preprocess(key),
    "begin_training": lambda m, key: m.begin_training(key),
    "request_stop": lambda m, key: m.request_stop(key),
    "monitor": lambda m, key: m.monitor(key),
    "artifacts": lambda m, key: m.artifacts(key),
    "set_artifact": lambda m, key: m.set_artifact(key, "model_archive", "/elsewhere/model.tar.gz"),
    "begin_import": lambda m, key: m.begin_import(key, "my-model", "hub", "org/my-model"),
    "last_import": lambda m, key: m.last_import(key),
}
keyed_calls = pytest.mark.parametrize("call", KEYED_CALLS.values(), ids=KEYED_CALLS.keys())


# --- no session -------------------------------------------------------------------------------------


def test_no_session_status_is_idle(h):
    status = h.machine.status()
    assert status["state"] == "idle"
    assert status["session_active"] is False
    assert status["model_ready"] is False


@keyed_calls
def test_no_session_refuses_keyed_calls(h, call):
    with pytest.raises(WrongState) as exc:
        call(h.machine, "any-key")
    assert exc.value.status_code == 409
    assert exc.value.state == "idle"
    assert "/start_session" in exc.value.hint
    assert h.saved == []


def test_no_session_refuses_get_config(h):
    with pytest.raises(WrongState) as exc:
        h.machine.get_config()
    assert exc.value.state == "idle"


# --- start, restart ------------------------------------------------------------------------------------


def test_start_opens_a_session(h):
    result = h.machine.start(force=False)
    assert result["state"] == "setup"
    assert result["session_active"] is True
    assert result["key"] == h.record.key and len(result["key"]) > 20
    assert h.layout.session_dir(h.record.session_id).is_dir()
    assert len(h.saved) == 1
    saved, wait = h.saved[0]
    assert wait is True
    assert saved.key == result["key"] and saved.state == State.setup


def test_second_start_without_force_is_refused(h):
    key = h.start()
    before, saves = h.record.model_dump(), len(h.saved)
    with pytest.raises(WrongState) as exc:
        h.machine.start(force=False)
    assert exc.value.status_code == 409
    assert exc.value.state == "setup"
    assert "force_restart" in exc.value.hint
    assert h.record.model_dump() == before and h.record.key == key
    assert len(h.saved) == saves


def test_forced_start_wipes_the_session(h):
    old_key, spec = h.training()
    old_dir = h.layout.session_dir(h.record.session_id)
    import_spec = h.machine.begin_import(old_key, "my-model", "hub", "org/my-model")
    saves = len(h.saved)
    result = h.machine.start(force=True)
    assert not old_dir.exists()
    assert spec.run_id in h.stopped and import_spec.job_id in h.stopped
    assert result["key"] != old_key
    assert result["state"] == "setup" and h.record.training.id == ""
    assert h.layout.session_dir(h.record.session_id).is_dir()
    assert [(rec is None, wait) for rec, wait in h.saved[saves:]] == [(True, True), (False, True)]
    with pytest.raises(WrongKey):
        h.machine.authorize(old_key)


def test_forced_start_without_a_session_starts_one(h):
    result = h.machine.start(force=True)
    assert result["state"] == "setup"
    assert h.stopped == []
    assert [rec is None for rec, _ in h.saved] == [False]


def test_restart_wipes_and_starts_anew(h):
    old_key, _ = h.preprocessed()
    old_id = h.record.session_id
    result = h.machine.restart(old_key)
    assert result["key"] != old_key
    assert h.record.session_id != old_id
    assert result["state"] == "setup" and h.record.dataset is None
    assert not h.layout.session_dir(old_id).exists()
    h.machine.authorize(result["key"])


# --- the key -------------------------------------------------------------------------------------------


@keyed_calls
def test_wrong_key_is_refused_and_changes_nothing(h, call):
    h.preprocessed()
    before, saves = h.record.model_dump(), len(h.saved)
    with pytest.raises(WrongKey) as exc:
        call(h.machine, "not-the-key")
    assert exc.value.status_code == 403
    assert h.record.model_dump() == before
    assert len(h.saved) == saves
    assert h.stopped == []


@pytest.mark.parametrize("key", [None, "", 12345, b"bytes"])
def test_a_key_of_another_type_is_refused(h, key):
    h.start()
    with pytest.raises(WrongKey):
        h.machine.authorize(key)


def test_the_right_key_is_accepted(h):
    key = h.start()
    assert h.machine.authorize(key) is None


# --- config ----------------------------------------------------------------------------------------------


def test_get_config_returns_config_and_dataset(h):
    h.with_dataset()
    result = h.machine.get_config()
    assert result["config"]["model"] == "all-MiniLM-L6-v2"
    assert result["dataset"]["labels"] == ["neg", "pos"]
    assert result["state"] == "setup"


def test_update_config_merges_the_patch(h):
    key = h.start()
    saves = len(h.saved)
    result = h.machine.update_config(key, {"epochs": 5, "learning_rate": 1e-4})
    assert result["config"]["epochs"] == 5
    assert result["config"]["learning_rate"] == 1e-4
    assert result["config"]["batch_size"] == "auto"
    assert result["state"] == "setup"
    assert "upload a dataset next" in h.record.message
    assert h.record.config.epochs == 5
    assert len(h.saved) == saves + 1 and h.saved[-1][1] is True
    assert h.saved[-1][0].config.epochs == 5


def test_update_config_with_a_dataset_points_to_preprocess(h):
    key = h.with_dataset()
    h.machine.update_config(key, {"epochs": 2})
    assert "call /preprocess next" in h.record.message


@pytest.mark.parametrize("patch, field", [
    ({"batch_size": 0}, "batch_size"),
    ({"epochs": "many"}, "epochs"),
    ({"learning_rate": 2}, "learning_rate"),
    ({"no_such_field": 1}, "no_such_field"),
])
def test_update_config_refuses_invalid_values(h, patch, field):
    key = h.start()
    before, saves = h.record.model_dump(), len(h.saved)
    with pytest.raises(InvalidParameters) as exc:
        h.machine.update_config(key, patch)
    assert exc.value.status_code == 422
    assert exc.value.detail[0]["loc"] == ["body", field]
    assert exc.value.detail[0]["msg"]
    assert h.record.model_dump() == before and len(h.saved) == saves


def test_update_config_refuses_unknown_eval_metrics(h):
    key = h.start()
    with pytest.raises(InvalidParameters) as exc:
        h.machine.update_config(key, {"eval_metrics": ["mse"]})
    assert exc.value.detail[0]["loc"][0] == "body"
    assert "unknown eval_metrics" in exc.value.message


def test_update_config_refuses_an_unknown_model(h):
    key = h.start()
    before = h.record.model_dump()
    with pytest.raises(InvalidParameters) as exc:
        h.machine.update_config(key, {"model": "no-such-model"})
    assert exc.value.status_code == 422
    assert "unknown model" in exc.value.message
    assert exc.value.detail[0]["loc"] == ["body", "model"]
    assert h.record.model_dump() == before


@pytest.mark.parametrize("cache_dir", ["/somewhere/else", "../outside"])
def test_update_config_refuses_a_cache_dir_outside_the_root(h, cache_dir):
    key = h.start()
    before = h.record.model_dump()
    with pytest.raises(InvalidParameters) as exc:
        h.machine.update_config(key, {"cache_dir": cache_dir})
    assert "outside the storage root" in exc.value.message
    assert exc.value.detail[0]["loc"] == ["body", "cache_dir"]
    assert h.record.model_dump() == before


def test_update_config_accepts_a_cache_dir_inside_the_root(h):
    key = h.start()
    assert h.machine.update_config(key, {"cache_dir": "my-cache"})["config"]["cache_dir"] == "my-cache"


@pytest.mark.parametrize("task_type, metrics", [("regression", ["mse"]), ("token_classification", ["f1"])])
def test_task_type_alone_resets_eval_metrics(h, task_type, metrics):
    key = h.start()
    h.machine.update_config(key, {"eval_metrics": ["f1", "accuracy"]})
    result = h.machine.update_config(key, {"task_type": task_type})
    assert result["config"]["task_type"] == task_type
    assert result["config"]["eval_metrics"] == metrics


def test_the_same_task_type_keeps_eval_metrics(h):
    key = h.start()
    h.machine.update_config(key, {"eval_metrics": ["f1", "accuracy"]})
    result = h.machine.update_config(key, {"task_type": "sequence_classification"})
    assert result["config"]["eval_metrics"] == ["f1", "accuracy"]


def test_task_type_with_eval_metrics_keeps_them(h):
    key = h.start()
    result = h.machine.update_config(key, {"task_type": "regression", "eval_metrics": ["mae", "r2"]})
    assert result["config"]["eval_metrics"] == ["mae", "r2"]


def test_config_change_after_preprocessing_returns_to_setup(h):
    key, _ = h.preprocessed()
    result = h.machine.update_config(key, {"epochs": 1})
    assert result["state"] == "setup"
    assert h.record.preprocess.status == "not_started"
    assert h.record.preprocess.progress == 0.0


def test_config_change_after_training_clears_artifacts(h):
    key, _ = h.trained()
    assert h.machine.status()["model_ready"] is True
    result = h.machine.update_config(key, {"seed": 7})
    assert result["state"] == "setup"
    assert result["model_ready"] is False
    assert h.record.artifacts.model_dump() == dict.fromkeys(("model_dir", *OUTCOME_KEYS[1:], "results_dir"))
    with pytest.raises(NotFound):
        h.machine.artifacts(key)


def test_an_unchanged_config_keeps_the_state(h):
    key, _ = h.preprocessed()
    result = h.machine.update_config(key, {"epochs": "auto", "seed": 42})
    assert result["state"] == "preprocessed"
    assert h.record.preprocess.status == "done"


def test_update_config_clears_a_previous_error(h):
    key, spec = h.preprocessing()
    h.machine.finish_preprocess(spec.job_id, None, "disk full")
    assert h.record.error is not None
    h.machine.update_config(key, {"epochs": 2})
    assert h.record.error is None


@pytest.mark.parametrize("busy", ["preprocessing", "training"])
def test_update_config_refused_while_busy(h, busy):
    key, _ = getattr(h, busy)()
    before, saves = h.record.model_dump(), len(h.saved)
    with pytest.raises(WrongState) as exc:
        h.machine.update_config(key, {"epochs": 1})
    assert exc.value.status_code == 409
    assert exc.value.state == busy
    assert "/training/stop" in exc.value.hint
    assert h.record.model_dump() == before and len(h.saved) == saves


# --- dataset ------------------------------------------------------------------------------------------------


def test_begin_upload_gives_a_staging_path_and_the_task(h):
    key = h.start()
    h.machine.update_config(key, {"task_type": "regression"})
    saves = len(h.saved)
    target = h.machine.begin_upload(key)
    staging = Path(target["staging"])
    assert is_under(staging, h.layout.session_dir(h.record.session_id))
    assert staging.name.startswith(".staging-") and not staging.exists()
    assert target["task_type"] == "regression"
    assert len(h.saved) == saves
    assert h.machine.begin_upload(key)["staging"] != target["staging"]


def test_set_dataset_moves_the_staged_folder_in(h):
    key = h.start()
    staging, summary = h.stage(key)
    result = h.machine.set_dataset(key, str(staging), summary)
    folder = Path(result["dataset"]["dir"])
    assert not staging.exists()
    assert folder.is_dir() and is_under(folder, h.layout.session_dir(h.record.session_id))
    assert result["dataset"]["train"]["path"] == str(folder / "train.csv")
    assert result["dataset"]["test"]["path"] == str(folder / "test.csv")
    assert (folder / "train.csv").read_text() == TRAIN_CSV
    assert result["state"] == "setup"
    assert "6 train rows, 4 test rows, 2 labels" in result["message"]
    assert h.saved[-1][0].dataset.model_dump() == result["dataset"] and h.saved[-1][1] is True


def test_a_second_upload_replaces_the_first(h):
    key, _ = h.preprocessed()
    first = Path(h.record.dataset.dir)
    result = h.upload(key)
    second = Path(result["dataset"]["dir"])
    assert second != first
    assert not first.exists() and second.is_dir()
    assert result["state"] == "setup"
    assert h.record.preprocess.status == "not_started"


def test_an_upload_after_training_clears_the_model(h):
    key, _ = h.trained()
    result = h.upload(key)
    assert result["state"] == "setup" and result["model_ready"] is False
    assert h.record.artifacts.model_dir is None


@pytest.mark.parametrize("busy", ["preprocessing", "training"])
def test_upload_refused_while_busy(h, busy):
    key, _ = getattr(h, busy)()
    with pytest.raises(WrongState) as exc:
        h.machine.begin_upload(key)
    assert exc.value.state == busy


@pytest.mark.parametrize("busy", ["preprocessing", "training"])
def test_set_dataset_refused_while_busy(h, busy):
    key, _ = getattr(h, busy)()
    staging = h.layout.staging_dir(h.record.session_id)
    staging.mkdir()
    summary = h.record.dataset.model_dump()
    before, saves = h.record.model_dump(), len(h.saved)
    with pytest.raises(WrongState) as exc:
        h.machine.set_dataset(key, str(staging), summary)
    assert exc.value.status_code == 409 and exc.value.state == busy
    assert staging.is_dir()
    assert h.record.model_dump() == before and len(h.saved) == saves


# --- preprocessing ---------------------------------------------------------------------------------------------


def test_preprocess_refused_without_a_dataset(h):
    key = h.start()
    with pytest.raises(WrongState) as exc:
        h.machine.begin_preprocess(key)
    assert exc.value.status_code == 409
    assert "no dataset" in exc.value.message
    assert "/upload_dataset" in exc.value.hint
    assert h.record.state == State.setup and h.record.runs == 0


def test_preprocess_refused_for_a_dataset_of_another_task(h):
    key = h.with_dataset()
    h.machine.update_config(key, {"task_type": "regression"})
    with pytest.raises(WrongState) as exc:
        h.machine.begin_preprocess(key)
    assert "sequence_classification" in exc.value.message and "regression" in exc.value.message
    assert "upload the dataset again" in exc.value.hint
    assert h.record.state == State.setup


@pytest.mark.parametrize("busy", ["preprocessing", "training"])
def test_preprocess_refused_while_busy(h, busy):
    key, _ = getattr(h, busy)()
    before = h.record.model_dump()
    with pytest.raises(WrongState) as exc:
        h.machine.begin_preprocess(key)
    assert exc.value.state == busy
    assert h.record.model_dump() == before


def test_begin_preprocess_starts_a_job(h):
    key = h.with_dataset()
    spec = h.machine.begin_preprocess(key)
    assert isinstance(spec, PreprocessSpec)
    assert spec.job_id == h.record.preprocess.id == h.record.preprocess.actor
    assert "preprocess" in spec.job_id
    assert Path(spec.cache_dir) == h.layout.root / "cache"
    assert Path(spec.model_dir, "config.json").is_file()
    assert spec.dataset == h.record.dataset
    assert spec.max_seq_length == 128
    assert h.record.state == State.preprocessing
    assert h.record.preprocess.status == "running"
    assert h.saved[-1][0].state == State.preprocessing and h.saved[-1][1] is True


def test_begin_preprocess_uses_the_configured_cache_dir(h):
    key = h.with_dataset()
    h.machine.update_config(key, {"cache_dir": "my-cache"})
    assert Path(h.machine.begin_preprocess(key).cache_dir) == h.layout.root / "my-cache"


def test_preprocess_progress_is_saved_without_waiting(h):
    _, spec = h.preprocessing()
    h.machine.preprocess_progress(spec.job_id, 0.123456, "tokenising train")
    assert h.record.preprocess.progress == 0.1235
    assert h.record.preprocess.message == "tokenising train"
    saved, wait = h.saved[-1]
    assert wait is False and saved.preprocess.progress == 0.1235


def test_finish_preprocess_success(h):
    _, spec = h.preprocessing()
    meta = cache_meta(spec)
    h.machine.finish_preprocess(spec.job_id, meta, None)
    assert h.record.state == State.preprocessed
    assert h.record.preprocess.status == "done"
    assert h.record.preprocess.progress == 1.0
    assert h.record.preprocess.cache == meta
    assert h.record.preprocess.message == "cache written"
    assert "/training/start" in h.record.message
    assert h.saved[-1][0].state == State.preprocessed and h.saved[-1][1] is True


def test_finish_preprocess_failure(h):
    _, spec = h.preprocessing()
    h.machine.finish_preprocess(spec.job_id, None, "ValueError: bad text")
    status = h.machine.status()
    assert status["state"] == "setup"
    assert status["error"] == {"during": "preprocessing", "message": "ValueError: bad text"}
    assert status["preprocess"]["status"] == "failed"
    assert status["preprocess"]["error"] == "ValueError: bad text"
    assert "preprocessing failed" in status["message"]


def test_stale_preprocess_reports_are_ignored(h):
    key, spec = h.preprocessing()
    h.machine.restart(key)
    key = h.record.key
    h.upload(key)
    current = h.machine.begin_preprocess(key)
    before, saves = h.record.model_dump(), len(h.saved)
    h.machine.preprocess_progress(spec.job_id, 0.9, "old")
    h.machine.finish_preprocess(spec.job_id, cache_meta(spec), None)
    h.machine.finish_preprocess(spec.job_id, None, "old failure")
    assert h.record.model_dump() == before and len(h.saved) == saves
    h.machine.finish_preprocess(current.job_id, cache_meta(current), None)
    h.machine.preprocess_progress(current.job_id, 0.5, "late")
    assert h.record.preprocess.progress == 1.0 and h.record.state == State.preprocessed


def test_preprocess_reports_without_a_session_are_ignored(h):
    h.machine.preprocess_progress("x-preprocess-1", 0.5, "m")
    h.machine.finish_preprocess("x-preprocess-1", {"reused": False}, None)
    assert h.machine.status()["state"] == "idle" and h.saved == []


def test_a_finished_cache_answers_without_a_job(h):
    key, spec = h.preprocessed()
    atomic_write_json(cache_path(spec) / "meta.json", cache_meta(spec))
    assert h.machine.begin_preprocess(key) is None
    p = h.record.preprocess
    assert h.record.state == State.preprocessed
    assert p.id != spec.job_id and p.status == "done"
    assert p.message == "reused cache"
    assert p.cache["reused"] is True and p.cache["rows"] == {"train": 6, "test": 4}
    assert h.saved[-1][0].state == State.preprocessed


def test_overwrite_cache_starts_a_job_despite_a_cache(h):
    key, spec = h.preprocessed()
    atomic_write_json(cache_path(spec) / "meta.json", cache_meta(spec))
    h.machine.update_config(key, {"overwrite_cache": True})
    assert isinstance(h.machine.begin_preprocess(key), PreprocessSpec)
    assert h.record.state == State.preprocessing


@pytest.mark.parametrize("meta", ["{not json", "[1, 2]"])
def test_an_unreadable_cache_meta_starts_a_job(h, meta):
    key, spec = h.preprocessed()
    cache_path(spec).mkdir(parents=True)
    (cache_path(spec) / "meta.json").write_text(meta)
    assert isinstance(h.machine.begin_preprocess(key), PreprocessSpec)
    assert h.record.state == State.preprocessing
    assert h.saved[-1][0].state == State.preprocessing


def test_preprocess_of_a_removed_model_fails_at_once(h):
    key = h.with_dataset()
    model = h.layout.models_dir / "my-model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    h.machine.update_config(key, {"model": "my-model"})
    (model / "config.json").unlink()
    assert h.machine.begin_preprocess(key) is None
    assert h.record.state == State.setup
    assert h.record.preprocess.status == "failed"
    assert "unknown model" in h.record.error["message"]


# --- training ----------------------------------------------------------------------------------------------------


def test_training_refused_from_setup(h):
    key = h.with_dataset()
    with pytest.raises(WrongState) as exc:
        h.machine.begin_training(key)
    assert exc.value.status_code == 409
    assert exc.value.state == "setup"
    assert exc.value.hint == "call /preprocess first"


@pytest.mark.parametrize("busy", ["preprocessing", "training"])
def test_training_refused_while_busy(h, busy):
    key, _ = getattr(h, busy)()
    before = h.record.model_dump()
    with pytest.raises(WrongState) as exc:
        h.machine.begin_training(key)
    assert exc.value.state == busy
    assert "wait for the running job" in exc.value.hint
    assert h.record.model_dump() == before


def test_begin_training_starts_a_run(h):
    key, pre = h.preprocessed()
    spec = h.machine.begin_training(key)
    session_dir = h.layout.session_dir(h.record.session_id)
    run_dir = h.layout.run_dir(h.record.session_id, spec.run_id)
    assert isinstance(spec, TrainingSpec)
    assert spec.run_id == h.record.training.id == h.record.training.actor
    assert spec.run_id != pre.job_id
    for path in (spec.storage_path, spec.results_dir, spec.model_archive, spec.results_archive):
        assert is_under(path, session_dir) and is_under(path, run_dir)
    assert spec.config == h.record.config
    assert spec.cache.model_dump() == h.record.preprocess.cache  # typed in the spec, every key kept
    assert spec.dataset == h.record.dataset
    assert h.record.state == State.training
    assert h.record.training.run_storage == spec.storage_path
    assert h.record.artifacts.results_dir == spec.results_dir
    assert h.saved[-1][0].state == State.training and h.saved[-1][1] is True


def test_begin_training_carries_the_server_settings(tmp_path):
    _, spec = Harness(tmp_path, num_workers=3, progress_every_steps=7, yield_cpu_to_api=False).training()
    assert (spec.default_workers, spec.progress_every_steps, spec.yield_cpu_to_api) == (3, 7, False)


def test_training_refused_when_the_model_was_removed(h):
    key = h.with_dataset()
    model = h.layout.models_dir / "my-model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    h.machine.update_config(key, {"model": "my-model"})
    spec = h.machine.begin_preprocess(key)
    h.machine.finish_preprocess(spec.job_id, cache_meta(spec), None)
    (model / "config.json").unlink()
    before, saves = h.record.model_dump(), len(h.saved)
    with pytest.raises(InvalidParameters) as exc:
        h.machine.begin_training(key)
    assert exc.value.status_code == 422 and "unknown model" in exc.value.message
    assert h.record.model_dump() == before and len(h.saved) == saves


def test_training_progress_updates_the_run(h):
    _, spec = h.training()
    info = {"step": 3, "total_steps": 10, "progress": 0.3, "loss": 0.7}
    assert h.machine.training_progress(spec.run_id, info) is False
    t = h.machine.status()["training"]
    assert t["live"] == info and t["progress"] == 0.3
    assert t["message"] == "training: step 3 of 10"
    assert h.saved[-1][1] is False and h.saved[-1][0].training.live == info


def test_training_progress_asks_to_stop_after_a_stop_request(h):
    key, spec = h.training()
    h.machine.training_progress(spec.run_id, {"step": 1, "total_steps": 4})
    h.machine.request_stop(key)
    assert h.machine.training_progress(spec.run_id, {"step": 2, "total_steps": 4}) is True


def test_a_late_progress_report_after_the_run_ended_asks_to_stop_and_changes_nothing(h):
    key, spec = h.training()
    h.machine.finish_training(spec.run_id, {"model_dir": "/m"})
    before = h.machine.record.model_dump()
    assert h.machine.training_progress(spec.run_id, {"step": 9, "total_steps": 9}) is True
    assert h.machine.record.model_dump() == before


def test_training_progress_of_an_unknown_run_asks_to_stop(h):
    key, spec = h.training()
    h.machine.restart(key)
    assert h.machine.training_progress(spec.run_id, {"step": 1}) is True
    assert h.record.training.live == {}


WAITING = "waiting for resources: needs 2 CPU (1 worker x 2 CPU), the cluster has 0 of 2 CPU free"


def test_a_run_waiting_for_resources_says_so_until_its_first_step(h):
    _, spec = h.training()
    h.machine.training_waiting(spec.run_id, WAITING)
    status = h.machine.status()
    assert status["message"] == WAITING and status["training"]["message"] == WAITING
    assert status["state"] == "training" and h.saved[-1][1] is False
    h.machine.training_progress(spec.run_id, {"step": 1, "total_steps": 4})
    status = h.machine.status()
    assert status["message"] == "training started; follow it with /monitor/{key}"
    assert status["training"]["message"] == "training: step 1 of 4"
    h.machine.training_waiting(spec.run_id, WAITING)  # late: the run has started
    assert h.machine.status()["training"]["message"] == "training: step 1 of 4"


def test_a_wait_report_of_another_run_changes_nothing(h):
    _, spec = h.training()
    before = h.record.model_dump()
    h.machine.training_waiting("other-run", WAITING)
    assert h.record.model_dump() == before


def test_the_wait_limit_comes_from_the_config_else_the_server(tmp_path):
    assert Harness(tmp_path / "a", resource_wait_timeout_s=30).training()[1].resource_wait_timeout_s == 30
    h = Harness(tmp_path / "b")
    key, _ = h.preprocessed()
    h.machine.update_config(key, {"resource_wait_timeout_s": 5})
    spec = h.machine.begin_preprocess(key)
    h.machine.finish_preprocess(spec.job_id, cache_meta(spec), None)
    assert h.machine.begin_training(key).resource_wait_timeout_s == 5
    assert Harness(tmp_path / "c").training()[1].resource_wait_timeout_s == 600


def test_a_run_that_waited_too_long_fails_with_the_message(h):
    _, spec = h.training()
    h.machine.training_waiting(spec.run_id, WAITING)
    error = "the training workers got no resources within 600 s (resource_wait_timeout_s): needs 2 CPU"
    h.machine.finish_training(spec.run_id, {"error": error})
    status = h.machine.status()
    assert status["state"] == "failed" and status["error"] == {"during": "training", "message": error}
    assert status["message"] == f"training failed: {error}"


def test_an_evaluation_is_added_to_the_history(h):
    key, spec = h.training()
    entry = {"epoch": 1, "step": 2, "accuracy": 0.5}
    h.machine.training_progress(spec.run_id, {"step": 2, "total_steps": 4, "phase": "evaluating"}, entry)
    monitor = h.machine.monitor(key)
    assert monitor["history"] == [entry]
    assert monitor["training"]["last_eval"] == entry
    assert monitor["training"]["message"].startswith("evaluating")
    assert monitor["metrics"] is None
    assert h.saved[-1][0].training.history == [entry]


def test_finish_training_with_an_outcome(h):
    key, spec = h.training()
    result = outcome(spec)
    h.machine.finish_training(spec.run_id, result)
    status = h.machine.status()
    assert status["state"] == "trained"
    assert status["model_ready"] is True
    assert status["training"]["status"] == "done" and status["training"]["progress"] == 1.0
    assert {k: getattr(h.record.artifacts, k) for k in OUTCOME_KEYS} == {k: result[k] for k in OUTCOME_KEYS}
    assert h.record.artifacts.results_dir == spec.results_dir
    assert h.machine.monitor(key)["metrics"] == {"accuracy": 0.75}
    assert "/download_model" in status["message"]
    assert h.saved[-1][0].state == State.trained and h.saved[-1][1] is True


def test_finish_training_with_an_error(h):
    _, spec = h.training()
    h.machine.finish_training(spec.run_id, {"error": "RuntimeError: out of memory"})
    status = h.machine.status()
    assert status["state"] == "failed"
    assert status["model_ready"] is False
    assert status["error"] == {"during": "training", "message": "RuntimeError: out of memory"}
    assert status["training"]["status"] == "failed"
    assert "training failed" in status["message"]


def test_finish_training_after_a_stop_request(h):
    key, spec = h.training()
    h.machine.training_progress(spec.run_id, {"step": 1, "total_steps": 4})
    h.machine.request_stop(key)
    h.machine.finish_training(spec.run_id, outcome(spec))
    status = h.machine.status()
    assert status["state"] == "stopped"
    assert status["training"]["status"] == "stopped"
    assert status["model_ready"] is True
    assert "last checkpoint" in status["message"]


def test_a_stale_finish_is_ignored(h):
    key, old = h.trained()
    spec = h.machine.begin_training(key)
    before, saves = h.record.model_dump(), len(h.saved)
    h.machine.finish_training(old.run_id, {"error": "late"})
    h.machine.finish_training("someone-else-train-9", outcome(spec))
    assert h.record.model_dump() == before and len(h.saved) == saves
    h.machine.finish_training(spec.run_id, outcome(spec))
    h.machine.finish_training(spec.run_id, {"error": "twice"})
    assert h.record.state == State.trained and h.record.error is None


@pytest.mark.parametrize("ending, state", [
    (lambda spec: outcome(spec), State.trained),
    (lambda spec: {"error": "boom"}, State.failed),
    (None, State.stopped),
])
def test_training_starts_again_after_a_run_ends(h, ending, state):
    key, first = h.training()
    if ending is None:
        h.machine.request_stop(key)
    else:
        h.machine.finish_training(first.run_id, ending(first))
    assert h.record.state == state
    second = h.machine.begin_training(key)
    assert second.run_id != first.run_id
    assert h.record.state == State.training
    assert h.record.error is None
    assert h.record.training.stop_requested is False and h.record.training.history == []


def test_preprocess_again_after_training(h):
    key, _ = h.trained()
    assert isinstance(h.machine.begin_preprocess(key), PreprocessSpec)
    assert h.record.state == State.preprocessing
    assert h.record.artifacts.model_dir is None


# --- stopping -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("builder, state", [
    ("start", "setup"), ("preprocessing", "preprocessing"), ("preprocessed", "preprocessed"), ("trained", "trained"),
])
def test_stop_refused_when_not_training(h, builder, state):
    result = getattr(h, builder)()
    key = result if isinstance(result, str) else result[0]
    with pytest.raises(WrongState) as exc:
        h.machine.request_stop(key)
    assert exc.value.status_code == 409
    assert exc.value.state == state
    assert "no training run" in exc.value.hint
    assert h.stopped == []


def test_stop_before_the_first_report_ends_the_run_at_once(h):
    key, spec = h.training()
    status = h.machine.request_stop(key)
    assert h.stopped == [spec.run_id]
    assert status["state"] == "stopped"
    assert status["training"]["status"] == "stopped"
    assert status["model_ready"] is False
    assert h.record.artifacts.model_dir is None
    assert "before its first step" in status["message"]
    assert h.saved[-1][0].state == State.stopped and h.saved[-1][1] is True


def test_stop_after_progress_only_asks(h):
    key, spec = h.training()
    h.machine.training_progress(spec.run_id, {"step": 1, "total_steps": 4})
    status = h.machine.request_stop(key)
    assert h.stopped == []
    assert status["state"] == "training"
    assert status["training"]["stop_requested"] is True
    assert "stop requested" in status["message"]
    assert h.saved[-1][0].training.stop_requested is True


# --- artifacts ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", ["start", "with_dataset", "preprocessed"])
def test_artifacts_not_found_before_a_model(h, builder):
    result = getattr(h, builder)()
    key = result if isinstance(result, str) else result[0]
    with pytest.raises(NotFound) as exc:
        h.machine.artifacts(key)
    assert exc.value.status_code == 404
    assert "/training/start" in exc.value.hint


def test_artifacts_not_found_after_a_failed_run(h):
    key, spec = h.training()
    h.machine.finish_training(spec.run_id, {"error": "boom"})
    with pytest.raises(NotFound):
        h.machine.artifacts(key)


@pytest.mark.parametrize("busy", ["preprocessing", "training"])
def test_artifacts_refused_while_busy(h, busy):
    key, _ = h.trained()
    if busy == "preprocessing":
        h.machine.begin_preprocess(key)
    else:
        h.machine.begin_training(key)
    with pytest.raises(WrongState) as exc:
        h.machine.artifacts(key)
    assert exc.value.status_code == 409 and exc.value.state == busy


def test_artifacts_after_training(h):
    key, spec = h.trained()
    art = h.machine.artifacts(key)
    assert art["session_id"] == h.record.session_id
    assert art["model_dir"] == outcome(spec)["model_dir"]
    assert art["model_archive"] == spec.model_archive
    assert art["results_archive"] == spec.results_archive
    assert art["results_dir"] == spec.results_dir
    assert is_under(art["model_archive_dest"], h.layout.run_dir(h.record.session_id, spec.run_id))
    assert art["model_archive_dest"].endswith(".tar.gz")


def test_set_artifact_records_a_path(h):
    key, _ = h.trained()
    h.machine.set_artifact(key, "model_archive", "/built/model.tar.gz")
    assert h.machine.artifacts(key)["model_archive"] == "/built/model.tar.gz"
    assert h.saved[-1][0].artifacts.model_archive == "/built/model.tar.gz"


# --- model imports -----------------------------------------------------------------------------------------------------


def test_begin_import_starts_a_job(h):
    key, spec = h.importing()
    assert isinstance(spec, ImportSpec)
    assert (spec.name, spec.model_type, spec.model_name) == ("my-model", "hub", "org/my-model")
    assert Path(spec.models_dir) == h.layout.models_dir
    assert spec.archive_path is None
    status = h.machine.status()["import"]
    assert status["status"] == "running" and status["id"] == spec.job_id == status["actor"]
    assert h.record.state == State.setup
    assert h.saved[-1][0].imports.status == "running"
    assert h.machine.last_import(key) is None


def test_a_second_import_while_one_runs_is_refused(h):
    key, spec = h.importing()
    before, saves = h.record.model_dump(), len(h.saved)
    with pytest.raises(WrongState) as exc:
        h.machine.begin_import(key, "other", "hub", "org/other")
    assert exc.value.status_code == 409
    assert "my-model" in exc.value.message
    assert h.record.model_dump() == before and len(h.saved) == saves


def test_import_progress(h):
    _, spec = h.importing()
    h.machine.import_progress(spec.job_id, 0.55556, "downloading")
    status = h.machine.status()["import"]
    assert status["progress"] == 0.5556 and status["message"] == "downloading"
    assert h.saved[-1][1] is False


def test_finish_import_success(h):
    key, spec = h.importing()
    entry = {"name": "my-model", "path": str(h.layout.models_dir / "my-model")}
    h.machine.finish_import(spec.job_id, entry, None)
    status = h.machine.status()["import"]
    assert status["status"] == "done" and status["progress"] == 1.0 and status["entry"] == entry
    assert "imported my-model" in h.record.message
    assert h.machine.last_import(key) == "my-model"
    assert h.saved[-1][0].imports.status == "done"


def test_finish_import_failure(h):
    key, spec = h.importing()
    h.machine.finish_import(spec.job_id, None, "no such repo")
    status = h.machine.status()["import"]
    assert status["status"] == "failed" and status["error"] == "no such repo"
    assert "import failed" in h.record.message
    assert h.machine.last_import(key) is None
    assert isinstance(h.machine.begin_import(key, "again", "hub", "org/again"), ImportSpec)


def test_stale_import_reports_are_ignored(h):
    key, old = h.importing()
    h.machine.finish_import(old.job_id, None, "failed")
    current = h.machine.begin_import(key, "second", "hub", "org/second")
    before, saves = h.record.model_dump(), len(h.saved)
    h.machine.import_progress(old.job_id, 0.9, "old")
    h.machine.finish_import(old.job_id, {"name": "my-model"}, None)
    assert h.record.model_dump() == before and len(h.saved) == saves
    h.machine.finish_import(current.job_id, {"name": "second"}, None)
    h.machine.import_progress(current.job_id, 0.1, "late")
    h.machine.finish_import(current.job_id, None, "late failure")
    assert h.record.imports.status == "done" and h.record.imports.progress == 1.0
    assert h.machine.last_import(key) == "second"


def test_an_import_runs_beside_training(h):
    key, _ = h.training()
    assert isinstance(h.machine.begin_import(key, "my-model", "hub", "org/my-model"), ImportSpec)
    assert h.record.state == State.training


# --- jobs that could not be launched -----------------------------------------------------------------------------------


def test_abort_a_preprocess_job(h):
    _, spec = h.preprocessing()
    h.machine.abort_job(spec.job_id, "could not start")
    assert h.record.state == State.setup
    assert h.record.error == {"during": "preprocessing", "message": "could not start"}


def test_abort_a_training_job(h):
    _, spec = h.training()
    h.machine.abort_job(spec.run_id, "could not start")
    assert h.record.state == State.failed
    assert h.record.error == {"during": "training", "message": "could not start"}


def test_abort_an_import_job(h):
    key, spec = h.importing()
    h.machine.abort_job(spec.job_id, "could not start")
    assert h.record.imports.status == "failed" and h.record.imports.error == "could not start"
    assert h.record.state == State.setup


def test_abort_an_unknown_job_changes_nothing(h):
    h.training()
    before, saves = h.record.model_dump(), len(h.saved)
    h.machine.abort_job("no-such-job", "could not start")
    assert h.record.model_dump() == before and len(h.saved) == saves


# --- crash recovery ------------------------------------------------------------------------------------------------------


def test_recovery_of_an_interrupted_preprocess(h):
    h.preprocessing()
    machine = h.reloaded()
    machine.recover_interrupted_jobs()
    r = machine.record
    assert r.state == State.setup
    assert r.preprocess.status == "failed"
    assert r.error["during"] == "preprocessing"
    assert "call /preprocess again" in r.error["message"]
    assert "call /preprocess again" in machine.status()["message"]
    assert h.saved[-1][0].state == State.setup


def test_recovery_of_an_interrupted_import(h):
    h.importing()
    machine = h.reloaded()
    machine.recover_interrupted_jobs()
    assert machine.record.imports.status == "failed"
    assert "interrupted" in machine.record.imports.error
    assert machine.record.state == State.setup
    assert h.saved[-1][0].imports.status == "failed"


def test_recovery_without_resume_offers_the_best_checkpoint_and_can_resume_later(h):
    key = h.with_dataset()
    h.machine.update_config(key, {"resume_on_restart": False})
    pre = h.machine.begin_preprocess(key)
    h.machine.finish_preprocess(pre.job_id, cache_meta(pre), None)
    spec = h.machine.begin_training(key)
    storage = Path(spec.storage_path)
    best = write_checkpoint(storage / "checkpoint_000001", score=0.9)
    write_checkpoint(storage / "checkpoint_000002", score=-1e30)  # the latest: a resume point, not better
    write_checkpoint(storage / "checkpoint_000003", complete=False)
    machine = h.reloaded()
    assert machine.recover_interrupted_jobs() == []
    status = machine.status()
    assert status["state"] == "stopped" and status["training"]["status"] == "stopped"
    assert machine.record.artifacts.model_dir == str(best)
    assert status["model_ready"] is True and status["training"]["resumable"] is True
    assert "checkpoint is available" in status["message"] and "resume=true" in status["message"]
    assert h.saved[-1][0].state == State.stopped
    again = machine.begin_training(key, resume=True)
    assert again == spec and machine.record.state == State.training
    assert machine.record.training.restarts == 1 and machine.record.training.id == spec.run_id


def test_recovery_resumes_a_cut_off_run_by_itself(h):
    key, spec = h.training()
    write_checkpoint(Path(spec.storage_path) / "checkpoint_000001", score=0.5)
    machine = h.reloaded()
    assert machine.recover_interrupted_jobs() == [spec]  # the actor launches it again
    assert machine.record.state == State.training and machine.record.training.restarts == 1
    assert "restart resumed" in machine.record.message


def test_recovery_records_a_run_that_ended_while_the_session_was_away(h):
    key, spec = h.training()
    atomic_write_json(Path(spec.outcome_file), outcome(spec))
    machine = h.reloaded()
    assert machine.recover_interrupted_jobs() == []
    assert machine.record.state == State.trained and machine.status()["model_ready"] is True


def test_resume_is_refused_without_a_resumable_run(h):
    key, spec = h.trained()
    with pytest.raises(WrongState) as err:
        h.machine.begin_training(key, resume=True)
    assert err.value.status_code == 409 and "resume" in err.value.hint


def test_recovery_of_an_interrupted_run_without_a_checkpoint(h):
    _, spec = h.training()
    write_checkpoint(Path(spec.storage_path) / "checkpoint_000001", complete=False)
    machine = h.reloaded()
    machine.recover_interrupted_jobs()
    assert machine.record.state == State.stopped
    assert machine.record.artifacts.model_dir is None
    assert machine.status()["model_ready"] is False
    assert "/training/start" in machine.record.message


@pytest.mark.parametrize("busy", ["preprocessing", "training", "importing"])
def test_recovery_leaves_live_jobs_alone(h, busy):
    _, spec = getattr(h, busy)()
    h.alive.add(spec.run_id if isinstance(spec, TrainingSpec) else spec.job_id)
    machine = h.reloaded()
    before, saves = machine.record.model_dump(), len(h.saved)
    machine.recover_interrupted_jobs()
    assert machine.record.model_dump() == before and len(h.saved) == saves


@pytest.mark.parametrize("builder", ["start", "preprocessed", "trained"])
def test_recovery_of_a_settled_session_changes_nothing(h, builder):
    getattr(h, builder)()
    machine = h.reloaded()
    before, saves = machine.record.model_dump(), len(h.saved)
    machine.recover_interrupted_jobs()
    assert machine.record.model_dump() == before and len(h.saved) == saves


def test_recovery_without_a_session(h):
    h.machine.recover_interrupted_jobs()
    assert h.saved == [] and h.machine.status()["state"] == "idle"


# --- persistence --------------------------------------------------------------------------------------------------------


def test_a_persisted_record_restores_the_same_status(h):
    key, spec = h.training()
    h.machine.training_progress(spec.run_id, {"step": 2, "total_steps": 4, "progress": 0.5},
                                {"epoch": 1, "accuracy": 0.5})
    h.machine.begin_import(key, "my-model", "hub", "org/my-model")
    machine = h.reloaded()
    assert machine.status() == h.machine.status()
    assert machine.record.model_dump() == h.record.model_dump()
    assert machine.monitor(key) == h.machine.monitor(key)


def test_a_resumed_run_replaces_the_evaluations_it_redoes(h):
    key, spec = h.training()
    for step in (10, 20, 30):
        h.machine.training_progress(spec.run_id, {"step": step, "total_steps": 90}, {"epoch": step // 10, "step": step})
    h.machine.training_progress(spec.run_id, {"step": 20, "total_steps": 90}, {"epoch": 2, "step": 20, "again": 1})
    assert h.machine.monitor(key)["history"] == [{"epoch": 1, "step": 10}, {"epoch": 2, "step": 20, "again": 1}]


def test_a_runs_own_history_replaces_what_reached_the_session(h):
    """Evaluations pushed while no session actor was there are lost to it; the run's outcome carries them all."""
    key, spec = h.training()
    first = {"epoch": 1, "step": 5, "split": "validation", "accuracy": 0.5}
    h.machine.training_progress(spec.run_id, {"step": 5, "total_steps": 10}, first)
    every = [first, {"epoch": 2, "step": 10, "split": "validation", "accuracy": 0.75}]
    h.machine.finish_training(spec.run_id, {**outcome(spec), "history": every})
    assert h.machine.monitor(key)["history"] == every
    assert h.reloaded().monitor(key)["history"] == every


# --- the machine's parts -----------------------------------------------------------------------------------------


def test_the_machine_answers_every_step_the_registry_and_the_actor_call():
    called = (*KEYED_STEPS, *JOB_STEPS, "status", "start", "wipe", "get_config", "begin_training", "start_queued",
              "recorded_deployment", "recover_interrupted_jobs")
    assert [name for name in called if not callable(getattr(SessionMachine, name, None))] == []
    names = [name for _, names in STEPS.values() for name in names]
    assert len(names) == len(set(names))  # each step has one owner


def test_the_parts_are_composed_not_inherited(h):
    for part, (cls, _) in STEPS.items():
        assert cls.__bases__ == (object,), f"{cls.__name__} inherits {cls.__bases__}"
        assert getattr(h.machine, part).core is h.machine.core  # one record, changed by every part


def test_each_part_works_on_a_bare_core(h):
    """Without the facade: the parts built on a core alone take a session from upload to deployment and recovery."""
    key = h.with_dataset()
    core = SessionCore(h.settings, h.record, h._persist, lambda name: name in h.alive, h.stopped.append)
    runs = SessionRuns(core)
    jobs, deploy, recovery = SessionJobs(core, runs), SessionDeploy(core), SessionRecovery(core, runs)
    pre = jobs.begin_preprocess(key)
    jobs.finish_preprocess(pre.job_id, cache_meta(pre), None)
    spec = runs.begin_training(key)
    assert core.record.state == State.training and h.saved[-1][0].state == State.training
    assert recovery.recover_interrupted_jobs() == [] and core.record.state == State.stopped  # its actor is gone
    runs.delete_run(key, spec.run_id)
    assert deploy.deployment(key) is None and [run["run_id"] for run in runs.list_runs(key)["runs"]] == []


def test_preprocessing_counts_rows_and_bytes_with_an_eta_until_done(h):
    key, spec = h.preprocessing()
    p = h.record.preprocess
    size = len(TRAIN_CSV) + len(TEST_CSV)
    assert (p.rows_done, p.rows_total, p.bytes_done, p.bytes_total, p.eta_s) == (0, 10, 0, size, None)
    counts = {"rows_done": 6, "rows_total": 10, "bytes_done": len(TRAIN_CSV), "bytes_total": size, "eta_s": 1.5}
    h.machine.preprocess_progress(spec.job_id, 0.6, "tokenising test (0 of 4 rows)", counts)
    assert h.reloaded().record.preprocess.model_dump(include=set(counts)) == counts
    h.machine.preprocess_progress("preprocess-old", 0.9, "a stale job", dict(counts, rows_done=9))
    assert h.record.preprocess.rows_done == 6
    h.machine.finish_preprocess(spec.job_id, cache_meta(spec), None)
    p = h.record.preprocess
    assert (p.rows_done, p.bytes_done, p.eta_s, p.progress) == (10, size, 0.0, 1.0)
