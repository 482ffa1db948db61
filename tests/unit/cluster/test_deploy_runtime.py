"""The deployment's `runtime` option: its validation, and what the session records for an ONNX runtime (the
export's folder, per run) without Ray."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from test_session_machine import Harness

from cluster.session_record import DeployOptions
from train_jobs.errors import WrongState


@pytest.fixture
def h(tmp_path) -> Harness:
    return Harness(tmp_path)


@pytest.mark.parametrize("runtime", ["torch", "onnx", "onnx-int8"])
def test_each_runtime_is_accepted(runtime):
    assert DeployOptions(runtime=runtime).runtime == runtime


def test_the_runtime_defaults_to_torch_and_a_record_without_one_reads_as_torch():
    assert DeployOptions().runtime == "torch"
    assert DeployOptions(**{"max_batch_size": 8}).model_dump()["runtime"] == "torch"


@pytest.mark.parametrize("runtime", ["ONNX", "onnx_int8", "tensorrt", "", None, 8])
def test_an_unknown_runtime_is_refused(runtime):
    with pytest.raises(ValidationError) as e:
        DeployOptions(runtime=runtime)
    assert e.value.errors()[0]["loc"] == ("runtime",)


def test_an_onnx_runtime_refuses_a_gpu_but_not_the_default():
    with pytest.raises(ValidationError, match="runs on CPU"):
        DeployOptions(runtime="onnx-int8", use_gpu=True)
    assert DeployOptions(runtime="onnx", use_gpu=False).use_gpu is False
    assert DeployOptions(runtime="torch", use_gpu=True).use_gpu is True


def test_an_onnx_deployment_serves_the_runs_export(h):
    key, spec = h.trained()
    source = h.machine.deploy_source(key, "onnx-int8")
    run_dir = h.layout.run_dir(h.record.session_id, spec.run_id)
    assert source["model_dir"] == h.record.artifacts.model_dir and source["dataset"].test.rows == 4
    assert Path(source["export_dir"]) == run_dir / "exports" / "onnx-int8"
    info = h.machine.begin_deploy(key, {"runtime": "onnx-int8"}, source["model_dir"])
    assert info["model_dir"] == source["export_dir"] and info["options"]["runtime"] == "onnx-int8"
    assert h.reloaded().deployment(key)["options"]["runtime"] == "onnx-int8"  # recorded: a restart brings it back


def test_an_export_of_a_model_since_replaced_is_not_deployed(h):
    key, _ = h.trained()
    torch_info = h.machine.begin_deploy(key, {})
    assert torch_info["model_dir"] == h.record.artifacts.model_dir and torch_info["options"]["runtime"] == "torch"
    with pytest.raises(WrongState, match="changed while its export was built"):
        h.machine.begin_deploy(key, {"runtime": "onnx"}, "/an/older/checkpoint")
    assert h.machine.deployment(key) == torch_info  # unchanged


def test_downloads_know_each_exports_folder_and_archive_per_run(h):
    key, spec = h.trained()
    art = h.machine.artifacts(key)
    run_dir = h.layout.run_dir(h.record.session_id, spec.run_id)
    assert art["exports"] == {"onnx": {"dir": str(run_dir / "exports" / "onnx"),
                                       "archive": str(run_dir / "model-onnx.tar.gz")},
                              "onnx-int8": {"dir": str(run_dir / "exports" / "onnx-int8"),
                                            "archive": str(run_dir / "model-onnx-int8.tar.gz")}}
    assert art["model_archive_dest"] == str(run_dir / "model.tar.gz") and art["dataset"] == h.record.dataset
    h.machine.begin_training(key)  # a new run: its exports go elsewhere, so the last run's are never served
    h.machine.finish_training(h.record.training.id, {"model_dir": str(run_dir / "new")})
    assert h.machine.artifacts(key)["exports"]["onnx"]["dir"] != art["exports"]["onnx"]["dir"]
