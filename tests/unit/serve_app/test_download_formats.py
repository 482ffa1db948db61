"""GET /download_model's `format` over the real FastAPI app (no Ray): a format it does not know is FastAPI's 422
before the service is asked anything (this service answers only the key check: any call past it would be a 500),
and the schema lists the formats. The archive each format gives, and the name the server gives it, are tested
through `serve run` in tests/e2e/test_serving.py."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from test_request_log import KEY, KeyOnly

from serve_app import dependencies
from serve_app.api import create_app


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setattr(dependencies, "_service", KeyOnly(tmp_path))
    return TestClient(create_app(), raise_server_exceptions=False)


@pytest.mark.parametrize("value", ["onnx_int8", "ONNX", "tflite", ""])
def test_an_unknown_format_is_422_and_asks_the_service_nothing(client, value):
    response = client.get(f"/download_model/{KEY}", params={"format": value})
    assert response.status_code == 422
    body = response.json()
    assert body["detail"][0]["loc"] == ["query", "format"] and "query.format" in body["message"]


def test_the_schema_lists_the_formats(client):
    operation = client.get("/openapi.json").json()["paths"]["/download_model/{key}"]["get"]
    [param] = [p for p in operation["parameters"] if p["name"] == "format"]
    schema = client.get("/openapi.json").json()["components"]["schemas"][param["schema"]["$ref"].split("/")[-1]]
    assert schema["enum"] == ["torch", "onnx", "onnx-int8"] and param["schema"].get("default", "torch") == "torch"
    assert {"409", "422"} <= set(operation["responses"])
