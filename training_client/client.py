"""A thin httpx client over the training module's REST API, one method per route."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
FINAL_STATES = ("trained", "stopped", "failed")


class TrainingModuleError(Exception):
    def __init__(self, status_code: int, body: Any):
        self.status_code, self.body = status_code, body
        detail = body.get("message") or body.get("detail") if isinstance(body, dict) else body
        hint = body.get("hint") if isinstance(body, dict) else None
        super().__init__(f"HTTP {status_code}: {detail}" + (f" ({hint})" if hint else ""))


def auth_headers(token: Optional[str] = None) -> dict[str, str]:
    """The header that carries the server's API token (`token`, default $TM_API_TOKEN); none without one."""
    token = token or os.environ.get("TM_API_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


class TrainingModuleClient:
    def __init__(self, base_url: str = DEFAULT_URL, key: Optional[str] = None, timeout: float = 60.0,
                 token: Optional[str] = None):
        """`token`: the server's API token, when it has one; default $TM_API_TOKEN."""
        self.key = key
        self.http = httpx.Client(base_url=base_url, timeout=timeout, headers=auth_headers(token))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> TrainingModuleClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, method: str, path: str, named: bool = True, **kwargs) -> dict:
        """One call; once the client has a key, the X-Session-Key header names its session to the unkeyed routes
        (/status, /parameters, ...) of a server holding several (`named=False` leaves it out)."""
        if named and self.key:
            kwargs["headers"] = {"X-Session-Key": self.key, **kwargs.get("headers", {})}
        response = self.http.request(method, path, **kwargs)
        if response.is_error:
            try:
                body = response.json()
            except ValueError:
                body = response.text
            raise TrainingModuleError(response.status_code, body)
        return response.json()

    def _key(self) -> str:
        if not self.key:
            raise ValueError("no session key: call start_session() or pass key=")
        return self.key

    # ---- session and config -------------------------------------------------------
    def start_session(self, force_restart: bool = False) -> dict:
        """A new session (its key is kept); `force_restart` wipes this client's session first (the header names it;
        without a key, the server's only session)."""
        status = self._request("GET", "/start_session", named=force_restart,
                               params={"force_restart": int(force_restart)})
        self.key = status["key"]
        return status

    def set_parameters(self, **config: Any) -> dict:
        return self._request("POST", f"/parameters/{self._key()}", json=config)

    def get_parameters(self) -> dict:
        return self._request("GET", "/parameters")

    def status(self) -> dict:
        return self._request("GET", "/status")

    def sessions(self) -> dict:
        """Every session on the server (id, state, times; no keys): the server's API token is what it needs."""
        return self._request("GET", "/sessions", named=False)

    def healthcheck(self) -> dict:
        return self._request("GET", "/healthcheck")

    # ---- data and work ------------------------------------------------------------
    def upload_dataset(self, train_file: str | Path, test_file: str | Path,
                       validation_file: str | Path | None = None) -> dict:
        paths = {"train_file": train_file, "test_file": test_file, "validation_file": validation_file}
        with contextlib.ExitStack() as stack:
            files = {field: (Path(path).name, stack.enter_context(open(path, "rb")))
                     for field, path in paths.items() if path is not None}
            return self._request("POST", f"/upload_dataset/{self._key()}", files=files)

    def upload_dataset_uris(self, train_uri: str, test_uri: str, validation_uri: str | None = None) -> dict:
        """The dataset by URI (s3://, gs://, hf://datasets/..., file:// under the server's data_roots): the server
        reads it where it is, with its own credentials."""
        uris = {"train_uri": train_uri, "test_uri": test_uri, "validation_uri": validation_uri}
        # (None, value): a plain multipart field, as curl -F sends it
        fields = {field: (None, uri) for field, uri in uris.items() if uri is not None}
        return self._request("POST", f"/upload_dataset/{self._key()}", files=fields)

    def preprocess(self) -> dict:
        return self._request("POST", f"/preprocess/{self._key()}")

    def preprocess_status(self) -> dict:
        return self._request("GET", "/preprocess_status")

    def start_training(self, resume: bool = False, run_id: Optional[str] = None) -> dict:
        """A new run; with `resume`, the stopped run (the latest; `run_id` names it) goes on from its latest
        checkpoint."""
        params = {"resume": "true", **({"run_id": run_id} if run_id else {})} if resume else None
        return self._request("POST", f"/training/start/{self._key()}", params=params)

    # ---- run history --------------------------------------------------------------
    def runs(self) -> list[dict]:
        """The session's training runs, newest first (id, state, start, end, the selected metric)."""
        return self._request("GET", f"/runs/{self._key()}")["runs"]

    def run(self, run_id: str) -> dict:
        """One run: config, hyper-parameters, evaluations, test metrics, artifacts and events."""
        return self._request("GET", f"/runs/{self._key()}/{run_id}")

    def delete_run(self, run_id: str) -> dict:
        return self._request("DELETE", f"/runs/{self._key()}/{run_id}")

    def stop_training(self, force_restart: bool = False) -> dict:
        status = self._request("POST", f"/training/stop/{self._key()}",
                               params={"force_restart": int(force_restart)})
        self.key = status.get("key", self.key)
        return status

    def monitor(self) -> dict:
        return self._request("GET", f"/monitor/{self._key()}")

    def model_ready(self) -> dict:
        return self._request("GET", f"/model_ready/{self._key()}")

    # ---- models -------------------------------------------------------------------
    def import_model(self, model_type: str, model_name: str, archive: str | Path | None = None) -> dict:
        """Start an import: model_type hub | directory | archive (send `archive`) | bundled."""
        params = {"model_type": model_type, "model_name": model_name}
        if archive is None:
            return self._request("POST", f"/import_model/{self._key()}", params=params)
        with open(archive, "rb") as f:
            return self._request("POST", f"/import_model/{self._key()}", params=params,
                                 files={"file": (Path(archive).name, f)})

    def import_status(self) -> dict:
        return self._request("GET", "/import_status")

    def models(self) -> list[dict]:
        """The catalogue of imported models."""
        return self.import_status()["models"]

    def wait_imported(self, poll_s: float = 0.5) -> dict:
        while (status := self.import_status())["import"]["status"] == "running":
            time.sleep(poll_s)
        return status

    def imported_model_location(self, model_name: Optional[str] = None) -> dict:
        params = {"on_disk": True, **({"model_name": model_name} if model_name else {})}
        return self._request("GET", f"/get_imported_model/{self._key()}", params=params)

    def download_imported_model(self, dest: str | Path, model_name: Optional[str] = None,
                                tokenizer: bool = False) -> Path:
        query = f"tokenizer={str(tokenizer).lower()}" + (f"&model_name={model_name}" if model_name else "")
        return self._download(f"/get_imported_model/{self._key()}?{query}", dest)

    # ---- serving the trained model ------------------------------------------------
    def deploy(self, run_id: Optional[str] = None, **options: Any) -> dict:
        """Serve the trained model, or run `run_id`'s (options: max_batch_size, batch_wait_timeout_s, min_replicas,
        max_replicas, num_cpus, use_gpu, max_inputs_per_call, max_text_chars, runtime: torch | onnx | onnx-int8).
        An ONNX runtime builds the export first: the call can take minutes for a large model."""
        slow = {"timeout": self._waiting(900)} if options.get("runtime", "torch") != "torch" else {}
        return self._request("POST", f"/deploy/{self._key()}", json=options or None, **slow,
                             **({"params": {"run_id": run_id}} if run_id else {}))

    def deployment(self) -> dict:
        return self._request("GET", f"/deploy/{self._key()}")

    def undeploy(self) -> dict:
        return self._request("DELETE", f"/deploy/{self._key()}")

    def wait_deployed(self, timeout_s: float = 300, poll_s: float = 0.5) -> dict:
        deadline = time.monotonic() + timeout_s
        while (status := self.deployment())["deployment"]["state"] in ("deploying", "absent"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the model deployment is still {status['deployment']['state']}")
            time.sleep(poll_s)
        return status

    def predict(self, texts: Optional[list] = None, *, pairs: Optional[list] = None,
                tokens: Optional[list] = None) -> dict:
        """One result per input: texts, pairs (pair tasks) or tokens (words per sentence, token classification)."""
        body = {k: v for k, v in {"texts": texts, "pairs": pairs, "tokens": tokens}.items() if v is not None}
        return self._request("POST", f"/predict/{self._key()}", json=body)

    # ---- waiting ------------------------------------------------------------------
    def wait_healthy(self, timeout_s: float = 180) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self.healthcheck()
                return True
            except (httpx.HTTPError, TrainingModuleError):
                time.sleep(1)
        return False

    def wait_preprocessed(self, poll_s: float = 0.5, on_update: Optional[Callable[[dict], None]] = None) -> dict:
        while True:
            status = self.preprocess_status()
            if on_update:
                on_update(status)
            if status["state"] != "preprocessing":
                if status["state"] != "preprocessed":
                    raise RuntimeError(f"preprocessing failed: {status.get('error') or status['message']}")
                return status
            time.sleep(poll_s)

    def wait_trained(self, poll_s: float = 1.0, on_update: Optional[Callable[[dict], None]] = None) -> dict:
        while True:
            info = self.monitor()
            if on_update:
                on_update(info)
            if info["state"] in FINAL_STATES:
                return info
            time.sleep(poll_s)

    # ---- downloads ----------------------------------------------------------------
    def _download(self, path: str, dest: str | Path, **options: Any) -> Path:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self.http.stream("GET", path, **options) as response:
            if response.is_error:
                response.read()
                raise TrainingModuleError(response.status_code, response.json())
            with open(dest, "wb") as f:
                for chunk in response.iter_bytes(1 << 20):
                    f.write(chunk)
        return dest

    def download_model(self, dest: str | Path, format: str = "torch", timeout_s: float = 900,
                       run_id: Optional[str] = None) -> Path:
        """Save the model archive (the session's model, or run `run_id`'s): a tar.gz of the Hugging Face model
        directory (format torch), or of its ONNX export for onnxruntime (onnx, onnx-int8), which the server builds
        and checks on the first request: `timeout_s` leaves it the time."""
        path = f"/download_model/{self._key()}"
        params = {"run_id": run_id} if run_id else {}
        if format == "torch":
            return self._download(path, dest, params=params)
        return self._download(path, dest, params={**params, "format": format}, timeout=self._waiting(timeout_s))

    def _waiting(self, read_s: float) -> httpx.Timeout:
        """The client's timeouts, but `read_s` for an answer the server first builds (an export)."""
        return httpx.Timeout(self.http.timeout.connect, read=read_s, write=self.http.timeout.write,
                             pool=self.http.timeout.pool)

    def download_results(self, dest: str | Path, run_id: Optional[str] = None) -> Path:
        return self._download(f"/download_results/{self._key()}", dest, params={"run_id": run_id} if run_id else {})
