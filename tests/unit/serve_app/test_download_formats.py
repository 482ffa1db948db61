"""GET /download_model's `format` over the real FastAPI app (no Ray): the route passes the format on and names
the file by it; a format it does not know is FastAPI's 422 before the service is asked anything."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from test_request_log import KEY, KeyOnly

from serve_app import dependencies
from serve_app.api import create_app


class Archives(KeyOnly):
    """Answers model_archive with a small file named by format, and remembers what it was asked."""

    def __init__(self, root):
        super().__init__(root)
        self.root, self.asked = root, []

    async def model_archive(self, key: str, fmt: str = "torch", run_id=None) -> tuple[str, str]:
        await self.authorize(key)
        self.asked.append(fmt)
        path = self.root / f"{fmt}.tar.gz"
        path.write_bytes(fmt.encode())
        return str(path), "model-abcd1234.tar.gz" if fmt == "torch" else f"model-abcd1234-{fmt}.tar.gz"


@pytest.fixture
def served(tmp_path, monkeypatch):
    service = Archives(tmp_path)
    monkeypatch.setattr(dependencies, "_service", service)
    return TestClient(create_app(), raise_server_exceptions=False), service


@pytest.mark.parametrize("query, fmt", [("", "torch"), ("?format=torch", "torch"), ("?format=onnx", "onnx"),
                                        ("?format=onnx-int8", "onnx-int8")])
def test_the_format_reaches_the_service_and_names_the_file(served, query, fmt):
    client, service = served
    response = client.get(f"/download_model/{KEY}{query}")
    assert response.status_code == 200 and response.content == fmt.encode() and service.asked == [fmt]
    assert response.headers["content-type"] == "application/gzip"
    assert response.headers["content-disposition"].endswith(
        '"model-abcd1234.tar.gz"' if fmt == "torch" else f'"model-abcd1234-{fmt}.tar.gz"')


@pytest.mark.parametrize("value", ["onnx_int8", "ONNX", "tflite", ""])
def test_an_unknown_format_is_422_and_asks_the_service_nothing(served, value):
    client, service = served
    response = client.get(f"/download_model/{KEY}", params={"format": value})
    assert response.status_code == 422 and service.asked == []
    body = response.json()
    assert body["detail"][0]["loc"] == ["query", "format"] and "query.format" in body["message"]


def test_the_schema_lists_the_formats(served):
    client, _ = served
    operation = client.get("/openapi.json").json()["paths"]["/download_model/{key}"]["get"]
    [param] = [p for p in operation["parameters"] if p["name"] == "format"]
    schema = client.get("/openapi.json").json()["components"]["schemas"][param["schema"]["$ref"].split("/")[-1]]
    assert schema["enum"] == ["torch", "onnx", "onnx-int8"] and param["schema"].get("default", "torch") == "torch"
    assert {"409", "422"} <= set(operation["responses"])
