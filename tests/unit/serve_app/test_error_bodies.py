"""Unit tests of serve_app/errors.py over the real FastAPI app (no Ray): FastAPI's own 422 carries the `message`
every error body has, in one sentence naming where each problem is; a lost model replica is a 503 with
`Retry-After`."""

from __future__ import annotations

from fastapi.testclient import TestClient
from ray.exceptions import ActorDiedError
from test_request_log import KEY, KeyOnly, client  # noqa: F401  (the fixture)

from cluster.serving import RETRY_AFTER_S, replica_answer
from serve_app import dependencies
from serve_app.api import create_app


def test_a_body_that_fails_validation_is_422_with_detail_and_a_message(client):  # noqa: F811
    response = client.post(f"/parameters/{KEY}", json={"epochs": "many", "seed": -1})
    assert response.status_code == 422
    body = response.json()
    assert {e["loc"][1] for e in body["detail"]} >= {"epochs", "seed"}
    assert "body.epochs" in body["message"] and "body.seed: " in body["message"]


class LostReplica(KeyOnly):
    """Predicts as the service does, through `replica_answer`, with a replica that dies before it answers."""

    async def predict(self, key: str, kind: str, items: list) -> dict:
        async def died():
            raise ActorDiedError()

        return {"task": "single_label", "predictions": await replica_answer(died())}


def test_a_lost_model_replica_is_503_with_retry_after_and_a_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(dependencies, "_service", LostReplica(tmp_path))
    response = TestClient(create_app(), raise_server_exceptions=False).post(f"/predict/{KEY}",
                                                                            json={"texts": ["the film was great"]})
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == str(RETRY_AFTER_S)
    body = response.json()
    assert "replica" in body["message"] and "GET /deploy/{key}" in body["hint"]


def test_a_body_that_is_not_utf8_is_a_declared_422_with_a_message(client):  # noqa: F811
    for path in (f"/predict/{KEY}", f"/deploy/{KEY}", f"/parameters/{KEY}"):
        response = client.post(path, content=b'{"texts": ["caf\xe9"]}', headers={"Content-Type": "application/json"})
        assert response.status_code == 422, (path, response.text)
        body = response.json()
        assert body["detail"][0]["type"] == "json_invalid" and "UTF-8" in body["message"], body
        template = path.replace(KEY, "{key}")
        assert "422" in create_app().openapi()["paths"][template]["post"]["responses"]


def test_a_405_names_every_method_of_the_path_and_says_so(client):  # noqa: F811
    response = client.put(f"/deploy/{KEY}")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST", "DELETE"}
    assert response.json()["message"] == "PUT is not a method of /deploy/{key}; it takes GET, POST, DELETE"
    assert KEY not in response.text


def test_every_route_that_reads_a_session_key_declares_its_403():
    """A wrong key is 403 on every route that takes one (the path's {key} or X-Session-Key); the schema must say
    so, or schema-driven clients (and the fuzz test) meet an undocumented status."""
    paths = create_app().openapi()["paths"]
    keyed = [(path, method) for path, methods in paths.items() for method, op in methods.items()
             if {(p["in"], p["name"]) for p in op.get("parameters", [])} & {("path", "key"), ("header", "X-Session-Key")}]
    assert len(keyed) > 10 and ("/status", "get") in keyed
    assert [route for route in keyed if "403" not in paths[route[0]][route[1]]["responses"]] == []
