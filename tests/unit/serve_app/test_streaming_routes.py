"""The upload routes over the real FastAPI app (Starlette's TestClient, no Ray): bodies stream to disk under the
limit whether or not they carry a Content-Length, the multipart parts stay in the OpenAPI schema, and a full disk
anywhere in a route (here, or in an actor) is 507 naming the storage root.

The session actor is replaced by `StagingOnly`, which stages uploads as the real service does (save_parts into a
staging folder) and has no session behind it.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from ray.exceptions import RayTaskError

from cluster.settings import Settings
from cluster.uploads import save_parts, staged_name
from serve_app import dependencies
from serve_app.api import create_app
from serve_app.errors import domain_error
from train_jobs.errors import StorageFull, WrongKey
from train_jobs.files import remove_tree

KEY = "the-key"


class StagingOnly:
    def __init__(self, root: Path):
        self.settings = Settings(storage_root=str(root), max_upload_mb=1, api_token=None)
        self.staging = self.settings.root / ".staging"

    async def authorize(self, key: str) -> None:
        if key != KEY:
            raise WrongKey("wrong session key")

    async def upload_dataset(self, key: str, body) -> dict:
        self.staging.mkdir(parents=True)
        try:
            dest = {f: (lambda name, f=f: self.staging / staged_name(f, name)) for f in ("train_file", "test_file")}
            saved = await save_parts(body, dest, self.settings.max_upload_bytes, required=("train_file", "test_file"))
            sizes = {field: path.stat().st_size for field, (path, _) in saved.items()}
            return {"state": "setup", "session_active": True, "message": "staged", "model_ready": False,
                    "dataset": sizes}
        finally:
            remove_tree(self.staging)

    async def update_parameters(self, key: str, patch: dict) -> dict:
        # What the session actor's write raises on a full disk, as it arrives in the replica: wrapped by Ray.
        cause = OSError(errno.ENOSPC, "No space left on device", str(self.settings.root / "session.json"))
        raise RayTaskError("update_config", "Traceback: ...", cause).as_instanceof_cause()


@pytest.fixture
def app(tmp_path, monkeypatch):
    service = StagingOnly(tmp_path / "root")
    monkeypatch.setattr(dependencies, "_service", service)
    return TestClient(create_app(), raise_server_exceptions=False), service


def multipart(train: bytes, boundary: str = "b0undary") -> tuple[list[bytes], dict]:
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="%s"; filename="%s.csv"\r\n\r\n'
    chunks = [(head % ("test_file", "test")).encode(), b"text,label\na,b\r\n",
              (head % ("train_file", "train")).encode(), *[train[i:i + 65536] for i in range(0, len(train), 65536)],
              f"\r\n--{boundary}--\r\n".encode()]
    return chunks, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_an_upload_streams_to_its_files(app):
    client, service = app
    chunks, headers = multipart(b"text,label\n" + b"good,pos\n" * 1000)
    response = client.post(f"/upload_dataset/{KEY}", content=iter(chunks), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["dataset"] == {"train_file": 11 + 9 * 1000, "test_file": 14}


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_an_upload_over_the_limit_is_413_with_or_without_content_length(app, chunked):
    client, service = app
    chunks, headers = multipart(b"x" * (3 << 19))  # 1.5 MiB, under the Content-Length guard of 3 files
    response = client.post(f"/upload_dataset/{KEY}", content=iter(chunks) if chunked else b"".join(chunks),
                           headers=headers)
    assert response.status_code == 413
    assert "train_file" in response.json()["message"] and "max_upload_mb" in response.json()["message"]
    assert not service.staging.exists()


def test_a_wrong_key_is_refused_before_the_body_is_read(app):
    client, service = app
    read = []

    def chunks():
        read.append(1)
        yield b"never read"
    response = client.post("/upload_dataset/not-the-key", content=chunks(), headers=multipart(b"")[1])
    assert response.status_code == 403 and not service.staging.exists() and read == []


def test_a_missing_file_is_422_in_fastapis_shape(app):
    client, _ = app
    body = b'--b\r\nContent-Disposition: form-data; name="train_file"; filename="t.csv"\r\n\r\nx\r\n--b--\r\n'
    response = client.post(f"/upload_dataset/{KEY}", content=body,
                           headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "test_file"]


def test_a_full_disk_in_an_actor_is_507_naming_the_storage_root(app):
    client, service = app
    response = client.post(f"/parameters/{KEY}", json={"epochs": 4})
    assert response.status_code == 507
    body = response.json()
    assert str(service.settings.root) in body["message"] and "session.json" in body["message"]
    assert "free space" in body["hint"]


def test_other_os_errors_stay_500(tmp_path):
    err = RayTaskError("f", "tb", OSError(errno.EACCES, "Permission denied"))
    assert not isinstance(domain_error(err, str(tmp_path)), StorageFull)
    full = domain_error(RayTaskError("f", "tb", OSError(errno.ENOSPC, "No space left on device")), "/data")
    assert isinstance(full, StorageFull) and "/data" in full.message


def test_openapi_lists_the_streamed_file_parts_as_binary(app):
    client, _ = app
    schema = client.get("/openapi.json").json()
    upload = schema["paths"]["/upload_dataset/{key}"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert set(upload["schema"]["properties"]) == {"train_file", "test_file", "validation_file"}
    assert upload["schema"]["required"] == ["train_file", "test_file"]
    archive = schema["paths"]["/import_model/{key}"]["post"]["requestBody"]["content"]["multipart/form-data"]
    for part in [*upload["schema"]["properties"].values(), archive["schema"]["properties"]["file"]]:
        assert part["type"] == "string" and part["format"] == "binary"
