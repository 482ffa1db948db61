"""Bad input and calls in the wrong state: clear errors, and the session left exactly as it was."""

from __future__ import annotations

import httpx
import pytest
from conftest import MAX_UPLOAD_MB, TINY_MODEL
from data import sentiment_files, write_csv
from helpers import client_from, expect_error, new_session, own_address

from training_client import TrainingModuleClient, TrainingModuleError
from training_client.client import auth_headers


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


def test_wrong_key_is_refused_and_changes_nothing(client, server, tmp_path):
    before = snapshot(client)
    key = client.key[:-1] + ("x" if client.key[-1] != "x" else "y")
    train, test = sentiment_files(tmp_path / "other", 20, 10)
    for call, args in [("set_parameters", {"epochs": 9}), ("upload_dataset", (train, test)),
                       ("preprocess", ()), ("start_training", ()), ("stop_training", ()),
                       ("monitor", ()), ("model_ready", ()), ("download_model", (tmp_path / "m",)),
                       ("download_results", (tmp_path / "r",)), ("stop_training", {"force_restart": True})]:
        wrong = client_from(own_address(), server, key=key)  # each from its own address: under the brake's limit
        if isinstance(args, dict):
            expect_error(403, getattr(wrong, call), **args)
        else:
            expect_error(403, getattr(wrong, call), *args)
    assert snapshot(client) == before


def test_guessing_keys_or_tokens_is_slowed_to_a_few_a_second(client, server):
    wrong = client_from(own_address(), server, key="not-the-key")
    codes = [_status(wrong.monitor) for _ in range(8)]
    assert codes[:5] == [403] * 5 and set(codes[5:]) == {429}, codes
    no_token = client_from(own_address(), server, key=client.key, token="wrong-token-0123456789")
    codes = [_status(no_token.monitor) for _ in range(8)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes


def test_the_right_key_and_token_pass_while_wrong_guesses_from_the_same_address_are_braked(client, server):
    """Behind one proxy or NAT, one client's burst of wrong keys must not lock the others out."""
    address = own_address()
    guesser = client_from(address, server, key="not-the-key")
    owner = client_from(address, server, key=client.key)
    assert 429 in [_status(guesser.monitor) for _ in range(8)]
    assert _status(owner.monitor) == 200  # at once, not a second later
    assert _status(guesser.monitor) == 429  # still within the braked second
    wrong_token = client_from(address, server, key=client.key, token="wrong-token-0123456789")
    assert _status(wrong_token.monitor) == 429  # a wrong token is a guess like a wrong key


def test_a_new_x_forwarded_for_with_each_guess_is_braked_all_the_same(client, server):
    """Serve's proxy believes X-Forwarded-For from 127.0.0.1; the server, with no trusted_proxies, does not: the
    guesses count against the connection, whatever client each claims to be for."""
    local = httpx.Client(base_url=server.url, headers=auth_headers())  # from 127.0.0.1
    codes = [local.get("/monitor/not-the-key", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
             for i in range(10)]
    # 127.0.0.1 is every default client's address: a guess of another test's may still be counted there.
    assert set(codes[:5]) <= {403, 429} and codes[5:] == [429] * 5, codes
    assert local.get(f"/monitor/{client.key}", headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 200


def test_with_an_api_token_every_route_but_healthcheck_needs_it(server, client):
    anonymous = httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address=own_address()))
    response = anonymous.get("/status")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["message"]
    assert anonymous.post(f"/parameters/{client.key}", json={"epochs": 2}).status_code == 401
    assert anonymous.get("/healthcheck").status_code == 200
    assert client.status()["session_active"] is True  # the test clients send $TM_API_TOKEN


def test_the_api_description_needs_the_token_too(server):
    anonymous = httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address=own_address()))
    authorised = httpx.Client(base_url=server.url, headers=auth_headers())
    for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"):
        response = anonymous.get(path)
        assert response.status_code == 401 and "Authorization: Bearer" in response.json()["message"], path
        assert authorised.get(path).status_code == 200, path
    assert "/predict/{key}" in authorised.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("method, path", [("POST", "/predict/{key}"), ("POST", "/deploy/{key}"),
                                          ("POST", "/parameters/{key}")])
def test_a_body_that_is_not_utf8_json_is_a_declared_422_with_a_message(client, server, method, path):
    http = httpx.Client(base_url=server.url, headers=auth_headers())
    before = snapshot(client)
    response = http.request(method, path.format(key=client.key), content=b'{"texts": ["caf\xe9"], "epochs": 2}',
                            headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["detail"][0]["type"] == "json_invalid" and "UTF-8" in body["message"], body
    declared = http.get("/openapi.json").json()["paths"][path][method.lower()]["responses"]
    assert "422" in declared
    assert snapshot(client) == before


def test_a_405_names_every_method_of_the_path(client, server):
    http = httpx.Client(base_url=server.url, headers=auth_headers())
    paths = http.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        declared = {method.upper() for method in operations}
        unused = next(m for m in ("PUT", "PATCH", "DELETE", "POST", "GET") if m not in declared)
        response = http.request(unused, path.format(key=client.key, run_id="no-such-run"))
        assert response.status_code == 405, (path, unused, response.text)
        assert set(response.headers["allow"].split(", ")) == declared, (path, response.headers["allow"])
        assert response.json()["message"].startswith(f"{unused} is not a method of {path}"), response.json()


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
    expect_error(403, client_from(own_address(), server, key=old_key).monitor)
    assert fresh.get_parameters()["dataset"] is None
