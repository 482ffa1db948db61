"""Serving the trained model through `serve run`: deploy, predict per task, bad inputs, undeploy, restart, and
the ONNX exports (download formats, the onnx-int8 runtime)."""

from __future__ import annotations

import csv
import json
import os

import pytest
import torch
from data import ner_files
from helpers import expect_error, extract, new_session, trained_session, wait_for
from test_prometheus import metrics_port, samples, value
from transformers import AutoModelForSequenceClassification, AutoTokenizer

SMALL = {"min_replicas": 1, "max_replicas": 1, "num_cpus": 0.25, "max_inputs_per_call": 50, "max_text_chars": 300}


@pytest.fixture(scope="module")
def single(trained_sentiment):
    """(client, folder): the shared sentiment session (conftest.py), trained once for this module and the next."""
    return trained_sentiment


def deployed(client) -> dict:
    """The session's deployment, ready (deployed here when an earlier test has not)."""
    if client.deployment()["deployment"]["state"] == "none":
        client.deploy(**SMALL)
    return client.wait_deployed()["deployment"]


def deploy_and_predict(client, **body) -> dict:
    """Deploy the session's model (SMALL) and answer one /predict call with `body`."""
    client.deploy(**SMALL)
    assert client.wait_deployed()["deployment"]["state"] == "ready"
    out = client.predict(**body)
    assert len(out["predictions"]) == len(next(iter(body.values())))
    return out


# Multi-label and regression models are served by the tests that train them (test_multilabel.py,
# test_regression.py), so that each task trains once.
def test_other_tasks_predict_their_own_results(server, tmp_path):
    client = trained_session(server, ner_files(tmp_path, 48, 8), task_type="token_classification")
    out = deploy_and_predict(client, tokens=[["Alice", "Smith", "flew", "to", "Paris"]])
    got = out["predictions"][0]
    assert out["task"] == "token_classification"
    assert got["tokens"] == ["Alice", "Smith", "flew", "to", "Paris"] and len(got["tags"]) == 5 and all(got["tags"])
    assert expect_error(422, client.predict, ["a text"]).body["detail"][0]["loc"] == ["body", "texts"]
    # a new session (force_restart) takes the last deployment down
    assert new_session(server).deployment()["deployment"]["state"] == "none"


def test_predict_without_a_deployment_is_409_with_a_hint(single):
    client, _ = single
    err = expect_error(409, client.predict, ["the film was great"])
    assert "/deploy/" in err.body["hint"]
    assert client.deployment()["deployment"]["state"] == "none"


def test_deployed_model_agrees_with_the_downloaded_model(single):
    client, tmp = single
    client.deploy(**SMALL, max_batch_size=8)
    status = client.wait_deployed()["deployment"]
    assert status["state"] == "ready" and status["replicas"].get("running") == 1, status
    assert status["options"]["max_batch_size"] == 8 and status["model_dir"]
    assert status["model"]["task"] == "single_label" and status["model"]["labels"] == ["neg", "pos"]

    texts = [row["text"] for row in csv.DictReader(open(tmp / "test.csv"))]
    served = client.predict(texts)
    assert served["task"] == "single_label" and len(served["predictions"]) == len(texts)

    model_dir = extract(client.download_model(tmp / "model.tar.gz"), tmp / "m") / "model"
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with torch.no_grad():
        logits = model(**tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")).logits
    expected = [model.config.id2label[int(i)] for i in logits.argmax(-1)]
    assert [p["label"] for p in served["predictions"]] == expected  # 100% agreement
    probs = torch.softmax(logits, -1)
    for p, q in zip(served["predictions"], probs):
        assert [p["probabilities"][model.config.id2label[i]] for i in range(2)] == pytest.approx(q.tolist(), abs=1e-4)


@pytest.mark.parametrize("options, says", [
    ({"num_cpus": 64, "min_replicas": 64, "max_replicas": 64}, "64 model replicas of 64 CPUs need 4096 CPUs"),
    pytest.param({"use_gpu": True}, "use_gpu is true but the Ray cluster has no GPU",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")),
])
def test_a_deployment_the_cluster_cannot_run_is_409_and_the_one_in_place_stays(single, options, says):
    client, _ = single
    before = deployed(client)
    err = expect_error(409, client.deploy, **{**SMALL, **options})
    assert says in err.body["message"] and "the Ray cluster has" in err.body["message"], err.body
    assert "num_cpus" in err.body["hint"]
    after = client.deployment()["deployment"]
    assert after["state"] == "ready" and (after["deployed_at"], after["options"]) == \
        (before["deployed_at"], before["options"])
    assert len(client.predict(["still served"])["predictions"]) == 1


@pytest.mark.parametrize("body, loc", [
    ({"texts": []}, ["body", "texts"]),
    ({"texts": ["ok"] * 51}, ["body", "texts"]),
    ({"texts": ["ok", 7]}, ["body", "texts", 1]),
    ({"texts": ["ok", "ok", "y" * 301]}, ["body", "texts", 2]),
    ({"tokens": [["a", "b"]]}, ["body", "tokens"]),
    ({}, ["body"]),
])
def test_bad_inputs_are_422_with_the_position(single, body, loc):
    client, _ = single
    err = expect_error(422, client._request, "POST", f"/predict/{client.key}", json=body)
    assert err.body["detail"][0]["loc"][:len(loc)] == loc, err.body


def test_concurrent_calls_are_answered_each_in_order(single):
    from concurrent.futures import ThreadPoolExecutor

    client, _ = single
    texts = [f"the film was {w}" for w in ("great", "awful", "superb", "dull", "moving", "boring")]
    alone = [client.predict([t])["predictions"][0]["label"] for t in texts]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda t: client.predict([t, t])["predictions"], texts))
    assert [[r["label"] for r in rows] for rows in together] == [[a, a] for a in alone]


def test_predict_latency_reaches_prometheus(single, server):
    client, _ = single
    deployed(client)
    client.predict(["the film was great"])
    port = metrics_port(server)
    # Both histograms are observed in the same call, but Ray's agent may export them in different reports.
    wait_for(lambda: all(value(lines, name) for lines in [samples(port)]
                         for name in ("tm_predict_latency_seconds_count", "tm_predict_inputs_count")),
             90, "the predict latency and inputs histograms on Ray's metrics endpoint", poll=2)


def test_cli_deploys_and_prints_a_table(single, server, tmp_path, capsys):
    from training_client.cli import main

    client, _ = single
    base = ["--url", server.url]
    assert main([*base, "deploy", "--key", client.key, "--set", "max_batch_size=4"]) == 0
    lines = tmp_path / "texts.txt"
    lines.write_text("the plot was dull\n\n")
    assert main([*base, "predict", "--key", client.key, "the film was great", "--file", str(lines)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("  the ")]
    assert len(rows) == 2 and all(("neg" in r) != ("pos" in r) for r in rows), out


def test_restarted_server_brings_the_deployment_back(single, server):
    client, _ = single
    deployed(client)
    before = client.predict(["the film was great"])["predictions"]
    server.stop(timeout=120)  # Serve's whole shutdown: no Ray process left for the next serve run to join
    server.start()
    status = client.wait_deployed()["deployment"]
    assert status["state"] == "ready", status
    assert client.predict(["the film was great"])["predictions"] == before


def test_undeploy_then_predict_is_409(single):
    client, _ = single
    deployed(client)
    assert client.undeploy()["deployment"]["state"] == "none"
    expect_error(409, client.predict, ["the film was great"])
    expect_error(409, client.undeploy)


def torch_labels(client, tmp, texts: list[str]) -> list[str]:
    """The downloaded torch model's labels for `texts`, computed here."""
    model_dir = extract(client.download_model(tmp / "torch.tar.gz"), tmp / "torch") / "model"
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with torch.no_grad():
        logits = model(**tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")).logits
    return [model.config.id2label[int(i)] for i in logits.argmax(-1)]


def test_onnx_int8_download_holds_a_checked_model_onnxruntime_runs(single):
    import onnxruntime as ort

    client, tmp = single
    archive = client.download_model(tmp / "int8.tar.gz", "onnx-int8")
    folder = extract(archive, tmp / "int8") / "model-onnx-int8"
    assert {"model.onnx", "tokenizer.json", "config.json", "training_config.json", "export_check.json"} <= \
        set(os.listdir(folder))
    check = json.loads((folder / "export_check.json").read_text())
    assert check["format"] == "onnx-int8" and check["passed"] and check["agreement"] >= 0.99, check
    assert check["split"] == "test" and check["rows"] == 40 and check["bar"] == {"figure": "agreement", "value": 0.99}
    texts = [row["text"] for row in csv.DictReader(open(tmp / "test.csv"))]
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    encoded = AutoTokenizer.from_pretrained(folder)(texts, padding=True, truncation=True, max_length=128,
                                                    return_tensors="np")
    logits = session.run(None, {i.name: encoded[i.name].astype("int64") for i in session.get_inputs()})[0]
    assert logits.shape == (40, 2)
    assert client.download_model(tmp / "again.tar.gz", "onnx-int8").read_bytes() == archive.read_bytes()  # reused


@pytest.mark.parametrize("fmt, suffix", [("torch", ""), ("onnx-int8", "-onnx-int8")])
def test_a_download_is_named_by_its_session_and_format(single, fmt, suffix):
    """What the server names the file (Content-Disposition), not what a test built: `model-<session>[-<format>]`."""
    client, _ = single
    session = client.status()["session_id"]
    response = client.http.get(f"/download_model/{client.key}", params={"format": fmt}, timeout=900)
    assert response.status_code == 200 and response.headers["content-type"] == "application/gzip"
    assert response.headers["content-disposition"].endswith(f'filename="model-{session[:8]}{suffix}.tar.gz"')
    assert response.content[:2] == b"\x1f\x8b"  # gzip


def test_an_unknown_download_format_is_422_and_changes_nothing(single):
    client, tmp = single
    before = client.model_ready()
    err = expect_error(422, client._download, f"/download_model/{client.key}?format=tflite", tmp / "x.tar.gz")
    assert err.body["detail"][0]["loc"] == ["query", "format"]
    assert client.model_ready() == before and not (tmp / "x.tar.gz").exists()


def test_an_onnx_int8_deployment_agrees_with_the_torch_model(single):
    client, tmp = single
    texts = [row["text"] for row in csv.DictReader(open(tmp / "test.csv"))]
    expected = torch_labels(client, tmp, texts)
    client.deploy(**SMALL, runtime="onnx-int8")
    status = client.wait_deployed()["deployment"]
    assert status["state"] == "ready", status
    assert status["options"]["runtime"] == "onnx-int8" and status["model"]["runtime"] == "onnx-int8"
    assert status["model_dir"].endswith("onnx-int8") and status["model"]["device"] == "cpu"
    served = [p["label"] for p in client.predict(texts)["predictions"]]
    agreement = sum(a == b for a, b in zip(served, expected)) / len(texts)
    assert agreement >= 0.99, (agreement, served, expected)
