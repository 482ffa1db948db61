"""Unit tests of serve_app/errors.py over the real FastAPI app (no Ray): FastAPI's own 422 carries the `message`
every error body has, in one sentence naming where each problem is."""

from __future__ import annotations

from test_request_log import KEY, client  # noqa: F401  (the fixture)


def test_a_body_that_fails_validation_is_422_with_detail_and_a_message(client):  # noqa: F811
    response = client.post(f"/parameters/{KEY}", json={"epochs": "many", "seed": -1})
    assert response.status_code == 422
    body = response.json()
    assert {e["loc"][1] for e in body["detail"]} >= {"epochs", "seed"}
    assert "body.epochs" in body["message"] and "body.seed: " in body["message"]
