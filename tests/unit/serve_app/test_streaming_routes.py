"""The upload routes' edges over the real FastAPI app (no Ray): the multipart parts stay in the OpenAPI schema, and
a full disk anywhere (here, or in an actor: Ray wraps it) is 507 naming the storage root, any other OSError a 500.

What an upload does through the real service (streaming to staging under the limit, with or without
Content-Length, the key checked before the body is read, a missing file) is tested on a real session actor in
tests/integration/test_service.py; a full storage root through `serve run` in tests/e2e/test_storage_full.py.
"""

from __future__ import annotations

import errno

from fastapi.testclient import TestClient
from ray.exceptions import RayTaskError
from test_request_log import KeyOnly

from serve_app import dependencies
from serve_app.api import create_app
from serve_app.errors import domain_error
from train_jobs.errors import StorageFull


def test_other_os_errors_stay_500(tmp_path):
    err = RayTaskError("f", "tb", OSError(errno.EACCES, "Permission denied"))
    assert not isinstance(domain_error(err, str(tmp_path)), StorageFull)
    full = domain_error(RayTaskError("f", "tb", OSError(errno.ENOSPC, "No space left on device")), "/data")
    assert isinstance(full, StorageFull) and "/data" in full.message


def test_openapi_lists_the_streamed_file_parts_as_binary(tmp_path, monkeypatch):
    monkeypatch.setattr(dependencies, "_service", KeyOnly(tmp_path))  # the settings the token check reads
    schema = TestClient(create_app()).get("/openapi.json").json()
    upload = schema["paths"]["/upload_dataset/{key}"]["post"]["requestBody"]["content"]["multipart/form-data"]
    files, uris = ("train_file", "test_file", "validation_file"), ("train_uri", "test_uri", "validation_uri")
    properties = upload["schema"]["properties"]
    assert set(properties) == {*files, *uris}
    assert "required" not in upload["schema"]  # the files, or their URIs instead
    archive = schema["paths"]["/import_model/{key}"]["post"]["requestBody"]["content"]["multipart/form-data"]
    for part in [*(properties[f] for f in files), archive["schema"]["properties"]["file"]]:
        assert part["type"] == "string" and part["format"] == "binary"
    for field in uris:  # plain text fields
        assert properties[field]["type"] == "string" and "format" not in properties[field]
