"""Unit tests of the model deployment's transitions (cluster/session_deploy.py) on the plain state machine, without
Ray: which states may deploy, what is recorded, refusals with their hint, write-first, what a restarted server reads
back, and the steps that take the deployment down (a new run, a resume, a new preprocessing, force_restart).

The Serve application itself (start, remove, the replicas) is the service's part: tests/e2e/test_serving.py.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from test_session_machine import Harness, cache_meta, outcome
from test_write_first import FullDisk

from cluster.session_deploy import NO_DEPLOYMENT_HINT, app_name
from cluster.session_record import DeployOptions, State
from train_jobs.errors import WrongKey, WrongState

CUSTOM = {"max_batch_size": 32, "batch_wait_timeout_s": 0.05, "min_replicas": 0, "max_replicas": 3, "num_cpus": 1.5,
          "use_gpu": False, "max_inputs_per_call": 8, "max_text_chars": 500}


@pytest.fixture
def h(tmp_path) -> Harness:
    return Harness(tmp_path)


# ---- getting a session into each state ---------------------------------------------------------------------


def failed(h: Harness) -> str:
    key, spec = h.training()
    h.machine.finish_training(spec.run_id, {"error": "boom"})
    return key


def failed_with_a_checkpoint(h: Harness) -> str:
    """A run that failed after it saved a checkpoint: the model folder is on record, but the run failed."""
    key, spec = h.training()
    h.machine.finish_training(spec.run_id, outcome(spec, error="boom"))
    assert h.record.artifacts.model_dir
    return key


def resuming(h: Harness) -> str:
    """A stopped run going on: its checkpoint is still on record while it trains."""
    key = stopped_with_a_checkpoint(h)
    h.machine.begin_training(key, resume=True)
    assert h.record.artifacts.model_dir
    return key


def trained_without_a_model(h: Harness) -> str:
    """A run that ended without a model folder (its outcome named none)."""
    key, spec = h.training()
    h.machine.finish_training(spec.run_id, {})
    return key


def stopped_before_a_checkpoint(h: Harness) -> str:
    key, _ = h.training()
    h.machine.request_stop(key)  # before the first report: no model saved
    return key


def stopped_with_a_checkpoint(h: Harness) -> str:
    key, spec = h.training()
    h.machine.training_progress(spec.run_id, {"step": 1, "total_steps": 4, "progress": 0.25})
    h.machine.request_stop(key)
    h.machine.finish_training(spec.run_id, outcome(spec, resumable=True))
    return key


NOT_DEPLOYABLE = {
    "setup": (lambda h: h.with_dataset(), State.setup),
    "preprocessing": (lambda h: h.preprocessing()[0], State.preprocessing),
    "preprocessed": (lambda h: h.preprocessed()[0], State.preprocessed),
    "training": (lambda h: h.training()[0], State.training),
    "failed": (failed, State.failed),
    "failed-with-a-checkpoint": (failed_with_a_checkpoint, State.failed),
    "training-resumed-with-a-checkpoint": (resuming, State.training),
    "trained-without-a-model": (trained_without_a_model, State.trained),
    "stopped-without-a-checkpoint": (stopped_before_a_checkpoint, State.stopped),
}
DEPLOYABLE = {
    "trained": lambda h: h.trained()[0],
    "stopped-with-a-checkpoint": stopped_with_a_checkpoint,
}


def deployed(h: Harness, **options) -> str:
    key, _ = h.trained()
    h.machine.begin_deploy(key, options)
    return key


# ---- begin_deploy: when it is allowed ------------------------------------------------------------------------


@pytest.mark.parametrize("build, state", NOT_DEPLOYABLE.values(), ids=NOT_DEPLOYABLE.keys())
def test_deploy_is_refused_without_a_trained_model(h, build, state):
    key = build(h)
    assert h.record.state == state
    before, saves = h.record.model_dump(), len(h.saved)
    with pytest.raises(WrongState) as exc:
        h.machine.begin_deploy(key, {})
    assert exc.value.status_code == 409 and exc.value.state == state.value
    assert state.value in exc.value.message
    expected = "/training/stop" if state == State.training else "/training/start"
    assert expected in exc.value.hint, exc.value.hint
    assert h.record.model_dump() == before and len(h.saved) == saves  # nothing recorded, nothing written


@pytest.mark.parametrize("build", DEPLOYABLE.values(), ids=DEPLOYABLE.keys())
def test_deploy_records_the_model_of_a_trained_or_stopped_run(h, build):
    key = build(h)
    r = h.record
    assert r.artifacts.model_dir
    info = h.machine.begin_deploy(key, {})
    assert info["app"] == app_name(r.session_id) == f"model-{r.session_id[:8]}"
    assert info["model_dir"] == r.artifacts.model_dir and info["run_id"] == r.training.id
    assert r.deployment is not None and r.deployment.model_dump() == info
    assert "GET /deploy/{key}" in r.message
    saved, wait = h.saved[-1]
    assert wait is True and saved.deployment.model_dump() == info  # on disk before the service starts the app
    assert r.state in (State.trained, State.stopped)  # deploying changes the deployment only, not the state


def test_deploy_without_a_session_is_refused(h):
    with pytest.raises(WrongState) as exc:
        h.machine.begin_deploy("any-key", {})
    assert exc.value.state == "idle" and "/start_session" in exc.value.hint
    assert h.saved == []


@pytest.mark.parametrize("call", [
    lambda m, key: m.begin_deploy(key, {}),
    lambda m, key: m.deployment(key),
    lambda m, key: m.end_deploy(key),
], ids=["begin_deploy", "deployment", "end_deploy"])
def test_the_deploy_calls_refuse_a_wrong_key_and_change_nothing(h, call):
    key = deployed(h)
    before, saves = h.record.model_dump(), len(h.saved)
    with pytest.raises(WrongKey):
        call(h.machine, key + "x")
    assert h.record.model_dump() == before and len(h.saved) == saves


# ---- the options ---------------------------------------------------------------------------------------------


def test_no_options_records_the_defaults(h):
    key, _ = h.trained()
    info = h.machine.begin_deploy(key, {})
    assert info["options"] == DeployOptions().model_dump()
    assert info["options"]["max_batch_size"] == 16 and info["options"]["num_cpus"] == 0.5


def test_given_options_are_recorded_and_the_rest_default(h):
    key, _ = h.trained()
    info = h.machine.begin_deploy(key, {"max_batch_size": 32, "max_replicas": 2})
    assert info["options"] == {**DeployOptions().model_dump(), "max_batch_size": 32, "max_replicas": 2}


def test_every_option_is_recorded(h):
    key, _ = h.trained()
    assert h.machine.begin_deploy(key, CUSTOM)["options"] == {**DeployOptions().model_dump(), **CUSTOM}


@pytest.mark.parametrize("options", [{"min_replicas": 3, "max_replicas": 2}, {"max_batch_size": 0},
                                     {"no_such_option": 1}])
def test_invalid_options_are_refused_and_record_nothing(h, options):
    key, _ = h.trained()
    before, saves = h.record.model_dump(), len(h.saved)
    with pytest.raises(ValidationError):
        h.machine.begin_deploy(key, options)
    assert h.record.model_dump() == before and len(h.saved) == saves


def test_a_second_deploy_replaces_the_first(h):
    key = deployed(h, max_batch_size=4)
    first = h.machine.deployment(key)
    second = h.machine.begin_deploy(key, {"max_batch_size": 8})
    assert second["app"] == first["app"]  # the same Serve application, updated in place
    assert second["options"]["max_batch_size"] == 8 and second["deployed_at"] >= first["deployed_at"]
    assert h.machine.deployment(key) == second


# ---- deployment, end_deploy ----------------------------------------------------------------------------------


def test_deployment_is_none_before_a_deploy(h):
    key, _ = h.trained()
    assert h.machine.deployment(key) is None


def test_a_required_deployment_is_refused_with_the_hint_when_there_is_none(h):
    key, _ = h.trained()
    with pytest.raises(WrongState) as exc:
        h.machine.deployment(key, required=True)
    assert exc.value.status_code == 409 and exc.value.state == "trained"
    assert exc.value.hint == NO_DEPLOYMENT_HINT and "POST /deploy/{key}" in exc.value.hint


def test_a_required_deployment_is_answered_when_there_is_one(h):
    key = deployed(h, max_batch_size=4)
    info = h.machine.deployment(key, required=True)
    assert info == h.record.deployment.model_dump() and info["options"]["max_batch_size"] == 4


def test_end_deploy_without_a_deployment_is_refused(h):
    key, _ = h.trained()
    before, saves = h.record.model_dump(), len(h.saved)
    with pytest.raises(WrongState) as exc:
        h.machine.end_deploy(key)
    assert exc.value.status_code == 409 and exc.value.hint == NO_DEPLOYMENT_HINT
    assert h.record.model_dump() == before and len(h.saved) == saves


def test_end_deploy_returns_the_old_record_and_clears_it(h):
    key = deployed(h, max_batch_size=4)
    before = h.record.deployment.model_dump()
    old = h.machine.end_deploy(key)
    assert old == before  # what the service needs to remove the app
    assert h.record.deployment is None and h.machine.deployment(key) is None
    assert h.record.message == "model deployment removed"
    saved, wait = h.saved[-1]
    assert wait is True and saved.deployment is None
    assert h.record.state == State.trained and h.record.artifacts.model_dir  # the model itself stays
    with pytest.raises(WrongState):
        h.machine.end_deploy(key)  # and a second removal has nothing to remove


# ---- write first ---------------------------------------------------------------------------------------------


def test_a_deploy_that_cannot_be_written_records_nothing(tmp_path):
    h = FullDisk(tmp_path)
    key, _ = h.trained()
    before = h.record.model_dump()
    h.fails(lambda: h.machine.begin_deploy(key, {"max_batch_size": 32}))
    assert h.record.model_dump() == before and h.record.deployment is None
    assert h.machine.deployment(key) is None
    assert h.machine.begin_deploy(key, {"max_batch_size": 32})["options"]["max_batch_size"] == 32  # room again


def test_a_redeploy_that_cannot_be_written_keeps_the_deployment_there(tmp_path):
    h = FullDisk(tmp_path)
    key, _ = h.trained()
    first = h.machine.begin_deploy(key, {"max_batch_size": 4})
    h.fails(lambda: h.machine.begin_deploy(key, {"max_batch_size": 64}))
    assert h.machine.deployment(key) == first


def test_a_removal_that_cannot_be_written_keeps_the_deployment(tmp_path):
    h = FullDisk(tmp_path)
    key, _ = h.trained()
    info = h.machine.begin_deploy(key, {})
    before = h.record.model_dump()
    h.fails(lambda: h.machine.end_deploy(key))
    assert h.record.model_dump() == before and h.machine.deployment(key) == info
    assert h.machine.end_deploy(key) == info and h.record.deployment is None


# ---- a restarted server --------------------------------------------------------------------------------------


def test_a_restarted_server_reads_the_deployment_back(h):
    key = deployed(h, **CUSTOM)
    info = h.machine.deployment(key)
    machine = h.reloaded()  # through JSON, as the session actor reads its file
    assert machine.recorded_deployment() == info  # options and deployed_at too
    assert machine.deployment(key, required=True) == info


def test_nothing_to_bring_back_without_a_deployment(h):
    h.trained()
    assert h.reloaded().recorded_deployment() is None


def test_nothing_to_bring_back_without_a_session(h):
    assert h.machine.recorded_deployment() is None


def test_a_removed_deployment_is_not_brought_back(h):
    key = deployed(h)
    h.machine.end_deploy(key)
    assert h.reloaded().recorded_deployment() is None


# ---- steps that take the deployment down ---------------------------------------------------------------------
# "A new training run or force_restart takes the old deployment down first": the session drops the record in the
# same step (written first), and the service removes the Serve app after that step, before it launches the job
# (cluster/service.py, _dropping_model).


def test_a_new_run_takes_the_deployment_down(h):
    key = deployed(h)
    spec = h.machine.begin_training(key)
    assert h.record.deployment is None and h.saved[-1][0].deployment is None
    assert h.machine.recorded_deployment() is None and h.reloaded().recorded_deployment() is None
    with pytest.raises(WrongState) as exc:
        h.machine.deployment(key, required=True)  # /predict: 409 with the hint, not the old model
    assert exc.value.state == "training"
    h.machine.training_progress(spec.run_id, {"step": 1, "total_steps": 2, "progress": 0.5})
    h.machine.finish_training(spec.run_id, outcome(spec))
    assert h.machine.deployment(key) is None  # the new model is not deployed by itself


def test_resuming_a_stopped_run_takes_its_checkpoints_deployment_down(h):
    key = stopped_with_a_checkpoint(h)
    h.machine.begin_deploy(key, {})
    h.machine.begin_training(key, resume=True)
    assert h.record.state == State.training and h.record.deployment is None


def test_a_refused_new_run_keeps_the_deployment(h):
    key = deployed(h)
    info = h.machine.deployment(key)
    with pytest.raises(WrongState):
        h.machine.begin_training(key, resume=True)  # a finished run has nothing to resume
    assert h.machine.deployment(key) == info


def test_a_new_run_that_cannot_be_written_keeps_the_deployment(tmp_path):
    h = FullDisk(tmp_path)
    key = deployed(h)
    info = h.machine.deployment(key)
    h.fails(lambda: h.machine.begin_training(key))
    assert h.record.state == State.trained and h.machine.deployment(key) == info


def test_force_restart_takes_the_deployment_down(h):
    key = deployed(h)
    old = h.record.session_id
    new_key = h.machine.start(force=True)["key"]
    assert h.record.session_id != old and h.record.deployment is None
    assert h.machine.deployment(new_key) is None and h.reloaded().recorded_deployment() is None
    with pytest.raises(WrongKey):
        h.machine.deployment(key)  # the old session, and its deployment, are gone


def test_restart_from_a_keyed_route_takes_the_deployment_down(h):
    key = deployed(h)
    new_key = h.machine.restart(key)["key"]
    assert h.machine.deployment(new_key) is None and h.reloaded().recorded_deployment() is None


def test_a_new_preprocessing_takes_the_deployment_down(h):
    key = deployed(h)
    spec = h.machine.begin_preprocess(key)
    assert h.record.deployment is None and h.reloaded().recorded_deployment() is None
    if spec is not None:  # a job (not a cache hit): it ends preprocessed, still without a deployment
        h.machine.finish_preprocess(spec.job_id, cache_meta(spec), None)
    assert h.record.state == State.preprocessed and h.machine.deployment(key) is None


def test_a_config_change_takes_the_deployment_down(h):
    key = deployed(h)
    h.machine.update_config(key, {"epochs": 7})
    assert h.record.state == State.setup and h.machine.deployment(key) is None


def test_an_unchanged_config_keeps_the_deployment(h):
    key = deployed(h)
    info = h.machine.deployment(key)
    h.machine.update_config(key, {"epochs": h.record.config.epochs})
    assert h.machine.deployment(key) == info


def test_a_new_dataset_takes_the_deployment_down(h):
    key = deployed(h)
    h.upload(key)
    assert h.record.state == State.setup and h.machine.deployment(key) is None
