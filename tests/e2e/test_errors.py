"""Bad input and calls in the wrong state: clear errors, and the session left exactly as it was."""

from __future__ import annotations

import time

import httpx
import pytest
from conftest import MAX_UPLOAD_MB, TINY_MODEL
from data import sentiment_files, write_csv
from helpers import expect_error, new_session

from training_client import TrainingModuleClient, TrainingModuleError


@pytest.fixture()
def client(server, tmp_path):
    client = new_session(server)
    client.set_parameters(model=TINY_MODEL, epochs=1)
    client.upload_dataset(*sentiment_files(tmp_path))
    return client


def snapshot(client: TrainingModuleClient) -> dict:
    params = client.get_parameters()
    return {"state": params["state"], "config": params["config"], "dataset": params["dataset"],
            "session_id": params["session_id"]}


def test_wrong_key_is_refused_and_changes_nothing(client, tmp_path):
    before = snapshot(client)
    wrong = TrainingModuleClient(client.http.base_url, key=client.key[:-1] + ("x" if client.key[-1] != "x" else "y"))
    train, test = sentiment_files(tmp_path / "other", 20, 10)
    for call, args in [(wrong.set_parameters, {"epochs": 9}), (wrong.upload_dataset, (train, test)),
                       (wrong.preprocess, ()), (wrong.start_training, ()), (wrong.stop_training, ()),
                       (wrong.monitor, ()), (wrong.model_ready, ()), (wrong.download_model, (tmp_path / "m",)),
                       (wrong.download_results, (tmp_path / "r",))]:
        time.sleep(0.3)  # under the limit on wrong keys per second (the next test passes it)
        if isinstance(args, dict):
            expect_error(403, call, **args)
        else:
            expect_error(403, call, *args)
    time.sleep(0.3)
    expect_error(403, wrong.stop_training, force_restart=True)
    assert snapshot(client) == before


def test_guessing_keys_or_tokens_is_slowed_to_a_few_a_second(client, server):
    time.sleep(1.1)  # a clean second
    wrong = TrainingModuleClient(server.url, key="not-the-key")
    codes = [_status(wrong.monitor) for _ in range(8)]
    assert codes[:5] == [403] * 5 and 429 in codes[5:], codes
    time.sleep(1.1)
    assert _status(client.monitor) == 200  # the right key, a second later
    no_token = TrainingModuleClient(server.url, key=client.key, token="wrong-token-0123456789")
    assert _status(no_token.monitor) == 401
    time.sleep(1.1)


def test_with_an_api_token_every_route_but_healthcheck_needs_it(server, client):
    anonymous = httpx.Client(base_url=server.url)
    response = anonymous.get("/status")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["message"]
    assert anonymous.post(f"/parameters/{client.key}", json={"epochs": 2}).status_code == 401
    assert anonymous.get("/healthcheck").status_code == 200
    assert client.status()["session_active"] is True  # the test clients send $TM_API_TOKEN
    time.sleep(1.1)


def _status(call) -> int:
    try:
        call()
        return 200
    except TrainingModuleError as e:
        return e.status_code


def test_calls_in_the_wrong_state_say_what_to_call_first(server, tmp_path):
    client = new_session(server)
    err = expect_error(409, client.preprocess)
    assert "upload_dataset" in err.body["hint"]
    err = expect_error(409, client.start_training)
    assert "/preprocess" in err.body["hint"] and err.body["state"] == "setup"
    expect_error(409, client.stop_training)
    expect_error(404, client.download_model, tmp_path / "m.tar.gz")
    expect_error(404, client.download_results, tmp_path / "r.tar.gz")
    assert client.model_ready()["model_ready"] is False


@pytest.mark.parametrize("patch, field", [
    ({"epochs": 0}, "epochs"),
    ({"batch_size": "big"}, "batch_size"),
    ({"learning_rate": -1}, "learning_rate"),
    ({"no_such_field": 1}, "no_such_field"),
    ({"eval_metrics": ["accuracy", "bleu"]}, "eval_metrics"),
    ({"model": "no-such-model"}, "model"),
    ({"cache_dir": "../outside"}, "cache_dir"),
    ({"cache_dir": "/tmp"}, "cache_dir"),
])
def test_invalid_parameters_are_422_and_change_nothing(client, patch, field):
    before = snapshot(client)
    err = expect_error(422, client.set_parameters, **patch)
    detail = err.body["detail"]
    assert isinstance(detail, list) and detail
    assert any(field in map(str, d["loc"]) for d in detail) or field in str(detail), detail
    assert snapshot(client) == before


def test_unknown_model_and_metric_errors_list_the_choices(client):
    err = expect_error(422, client.set_parameters, model="no-such-model")
    assert TINY_MODEL in err.body["message"] and "all-MiniLM-L6-v2" in err.body["message"]
    err = expect_error(422, client.set_parameters, eval_metrics=["bleu"])
    assert "f1_macro" in str(err.body["detail"])


def test_cache_dir_inside_the_root_is_accepted(client):
    assert client.set_parameters(cache_dir="my_cache")["config"]["cache_dir"] == "my_cache"


@pytest.mark.parametrize("name, content, expected", [
    ("empty", b"", ["train_file", "empty"]),
    ("missing_label", b"text,label\ngood film,pos\nbad film,\n", ["train_file", "line 3", "column 2", "label"]),
    ("bad_encoding", b"text,label\ngood film,pos\nbad \xff\xfe film,neg\n", ["train_file", "line 3", "UTF-8"]),
    ("no_label_column", b"text,category\ngood,pos\n", ["train_file", "line 1", "label"]),
    ("field_count", b"text,label\ngood,pos\nbad,neg,extra\n", ["train_file", "line 3", "fields"]),
])
def test_bad_train_files_are_400_with_line_and_column_and_change_nothing(client, tmp_path, name, content,
                                                                         expected):
    before = snapshot(client)
    bad = tmp_path / f"{name}.csv"
    bad.write_bytes(content)
    _, test = sentiment_files(tmp_path / "ok", 20, 10)
    err = expect_error(400, client.upload_dataset, bad, test)
    for fragment in expected:
        assert fragment in err.body["message"], (fragment, err.body)
    assert snapshot(client) == before


def test_test_label_unseen_in_train_is_refused(client, tmp_path):
    before = snapshot(client)
    train, _ = sentiment_files(tmp_path, 20, 10)
    test = write_csv(tmp_path / "t.csv", ["text", "label"], [("fine", "pos"), ("odd one", "neutral")])
    err = expect_error(400, client.upload_dataset, train, test)
    assert "test_file" in err.body["message"] and "line 3" in err.body["message"] and "neutral" in err.body["message"]
    assert snapshot(client) == before


def test_upload_over_the_size_limit_is_413_and_changes_nothing(client, tmp_path):
    before = snapshot(client)
    train = write_csv(tmp_path / "huge.csv", ["text", "label"],
                      [("word " * 200, "pos" if i % 2 else "neg") for i in range(MAX_UPLOAD_MB * 1100)])
    _, test = sentiment_files(tmp_path / "ok", 20, 10)
    err = expect_error(413, client.upload_dataset, train, test)
    assert "limit" in err.body["message"]
    assert snapshot(client) == before


def test_a_chunked_upload_over_the_limit_is_stopped_at_the_limit_with_413(server, client, tmp_path):
    """No Content-Length to refuse it by: the stream is counted as it is written, and stopped past the limit
    (the proxy then drains the rest of the request without passing it on)."""
    before = snapshot(client)

    def body():
        boundary = b"--chunked-boundary"
        _, test = sentiment_files(tmp_path / "ok", 20, 10)
        yield boundary + b'\r\nContent-Disposition: form-data; name="test_file"; filename="test.csv"\r\n\r\n'
        yield test.read_bytes() + b"\r\n" + boundary
        yield b'\r\nContent-Disposition: form-data; name="train_file"; filename="train.csv"\r\n\r\ntext,label\n'
        for _ in range(MAX_UPLOAD_MB * 64 * 8):  # 8 times the limit, in 16 KiB chunks
            yield b"word " * 3276 + b",pos\n"

    response = client.http.post(f"/upload_dataset/{client.key}", content=body(),
                                headers={"Content-Type": "multipart/form-data; boundary=chunked-boundary"})
    assert response.status_code == 413, response.text
    assert "train_file" in response.json()["message"] and "max_upload_mb" in response.json()["message"]
    session_dir = server.storage_root / "sessions" / before["session_id"]
    assert not list(session_dir.glob(".staging-*"))
    assert snapshot(client) == before


def test_second_session_is_409_and_force_restart_wipes_the_old_one(server, client):
    err = expect_error(409, TrainingModuleClient(server.url).start_session)
    assert "force_restart" in err.body["hint"]
    old_key = client.key
    old_dir = server.storage_root / "sessions" / client.get_parameters()["session_id"]
    assert old_dir.is_dir()
    fresh = TrainingModuleClient(server.url)
    status = fresh.start_session(force_restart=True)
    assert status["key"] != old_key and status["state"] == "setup"
    assert not old_dir.exists()
    expect_error(403, client.monitor)
    assert fresh.get_parameters()["dataset"] is None
