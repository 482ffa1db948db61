"""The client's model download and deployment with a format or runtime, against an httpx mock (no server): what
is sent, the longer wait an export gets, and the CLI's choices."""

from __future__ import annotations

import json

import httpx
import pytest

from training_client.cli import main
from training_client.client import TrainingModuleClient


@pytest.fixture
def sent():
    """A client whose requests are recorded (with their read timeout) and answered by a stand-in server."""
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append((request, request.extensions["timeout"]["read"]))
        if request.url.path.startswith("/download_model/"):
            return httpx.Response(200, content=b"archive")
        return httpx.Response(200, json={"deployment": {"state": "deploying"}})

    client = TrainingModuleClient("http://server", key="k", timeout=60)
    client.http = httpx.Client(base_url="http://server", timeout=60, transport=httpx.MockTransport(answer))
    return client, calls


def test_the_torch_download_is_unchanged(sent, tmp_path):
    client, calls = sent
    assert client.download_model(tmp_path / "m.tar.gz").read_bytes() == b"archive"
    [(request, read)] = calls
    assert str(request.url) == "http://server/download_model/k" and read == 60


@pytest.mark.parametrize("fmt", ["onnx", "onnx-int8"])
def test_an_export_download_names_its_format_and_waits_for_the_build(sent, tmp_path, fmt):
    client, calls = sent
    client.download_model(tmp_path / "m.tar.gz", fmt)
    [(request, read)] = calls
    assert request.url.params["format"] == fmt and read == 900


def test_deploying_an_onnx_runtime_sends_it_and_waits_for_the_export(sent):
    client, calls = sent
    client.deploy(runtime="onnx-int8", num_cpus=1)
    client.deploy(max_batch_size=4)
    (onnx, onnx_read), (torch, torch_read) = calls
    assert json.loads(onnx.content) == {"runtime": "onnx-int8", "num_cpus": 1} and onnx_read == 900
    assert json.loads(torch.content) == {"max_batch_size": 4} and torch_read == 60


@pytest.mark.parametrize("argv", [["download", "--key", "k", "--format", "tflite"],
                                  ["deploy", "--key", "k", "--runtime", "onnx_int8"]])
def test_the_cli_offers_only_the_known_formats(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
