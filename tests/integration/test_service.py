"""The service layer against a real session actor on a real local Ray (started here, 2 CPUs, no `serve run`):
TrainingService's one-second memory of keys, and the real FastAPI app over the real service (httpx's ASGI
transport, in the test's event loop) for uploads, /healthcheck and POST /deploy's resource check.

Each test gets its own storage root, so its own session actor (the actor is named: one per Ray; a test's is killed
after it, by its handle).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import ray
from helpers import Pipe, fill, small_disk, wait_for

from cluster.layout import Layout
from cluster.service import RECENT_S, TrainingService
from cluster.session_record import SessionRecord, State
from cluster.settings import NAMESPACE, SESSION_ACTOR_NAME, Settings
from serve_app import dependencies
from serve_app.api import create_app
from train_jobs.errors import WrongKey

CPUS = 2
BOUNDARY = "tm-integration"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
TRAIN = b"text,label\n" + b"good film,pos\nbad film,neg\n" * 20
TEST = b"text,label\ngreat film,pos\nawful film,neg\n"


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(address="local", num_cpus=CPUS, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def make_service(tmp_path):
    """make(root=..., clock=..., **settings): a TrainingService on a session actor of its own."""
    made: list[TrainingService] = []

    def make(root: Path | None = None, clock=None, **settings) -> TrainingService:
        config = Settings(storage_root=str(root or tmp_path / "root"), api_token=None, **settings)
        service = TrainingService(config, **({"clock": clock} if clock else {}))
        made.append(service)
        return service

    yield make
    for service in made:
        ray.kill(service.session.handle, no_restart=True)
    wait_for(lambda: not _actor_named(), 60, "the session actor to be gone")


def _actor_named() -> bool:
    try:
        ray.get_actor(SESSION_ACTOR_NAME, namespace=NAMESPACE)
        return True
    except ValueError:
        return False


def app_client(service: TrainingService) -> httpx.AsyncClient:
    """The real app over `service`, called in this event loop (a request body streams as the app reads it)."""
    dependencies._service = service
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()), base_url="http://service.test",
                             timeout=120)


def head(field: str) -> bytes:
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{field.removesuffix("_file")}.csv"\r\nContent-Type: text/csv\r\n\r\n').encode()


def form(**files: bytes) -> bytes:
    return b"".join(head(field) + data + b"\r\n" for field, data in files.items()) + f"--{BOUNDARY}--\r\n".encode()


async def chunked(body: bytes, size: int = 4096):
    """The body in pieces, without Content-Length: as a chunked request arrives."""
    for i in range(0, len(body), size):
        yield body[i:i + size]


def session_dir(service: TrainingService, status: dict) -> Path:
    return Layout(service.settings.root).session_dir(status["session_id"])


# ---- TrainingService: the one-second memory of keys ------------------------------------------------------------


def test_an_authorisation_is_kept_for_recent_s_then_the_actor_is_asked_again(make_service):
    now = [0.0]
    service = make_service(clock=lambda: now[0])

    async def run():
        key = (await service.start_session(force=True))["key"]
        await service.authorize(key)  # the actor says yes: kept
        # A change this ingress does not see (another ingress replica's): a new session, a new key.
        other = (await service.session.call(lambda s: s.start.remote(True)))["key"]
        await service.authorize(key)  # kept: the actor is not asked within RECENT_S
        now[0] += RECENT_S
        with pytest.raises(WrongKey):  # past it, the actor is asked and says no
            await service.authorize(key)
        await service.authorize(other)

    asyncio.run(run())


def test_a_wrong_key_is_never_kept(make_service):
    service = make_service(clock=lambda: 0.0)  # nothing kept would ever age

    async def run():
        await service.start_session(force=True)
        for _ in range(2):
            with pytest.raises(WrongKey):
                await service.authorize("not-the-key")
        assert "not-the-key" not in service._authorized

    asyncio.run(run())


def test_a_change_through_this_ingress_forgets_what_was_kept_at_once(make_service):
    service = make_service(clock=lambda: 0.0)

    async def run():
        key = (await service.start_session(force=True))["key"]
        await service.authorize(key)
        new = (await service.start_session(force=True))["key"]  # through this ingress: nothing kept survives it
        with pytest.raises(WrongKey):
            await service.authorize(key)
        await service.authorize(new)

    asyncio.run(run())


def test_an_answer_that_raced_a_change_is_used_once_not_kept(make_service):
    """The actor authorises the key; before its answer is back, a change through this ingress ends (and forgets
    what was kept): that answer serves the call that asked, and is not kept after the change."""
    service = make_service(clock=lambda: 0.0)

    async def run():
        key = (await service.start_session(force=True))["key"]

        async def ask_then_change():
            answer = await service._authorize_now(key)
            await service.start_session(force=True)  # the key is no longer the session's
            return answer

        assert await service._recalled(service._authorized, key, ask_then_change) is True
        with pytest.raises(WrongKey):
            await service.authorize(key)

    asyncio.run(run())


# ---- uploads through the real app and service --------------------------------------------------------------


def test_an_upload_streams_through_the_service_and_becomes_the_dataset(make_service):
    service = make_service(max_upload_mb=1)

    async def run():
        async with app_client(service) as http:
            status = (await http.get("/start_session", params={"force_restart": 1})).json()
            key = status["key"]
            wrong = await http.post("/upload_dataset/not-the-key", content=chunked(form(train_file=TRAIN)),
                                    headers=MULTIPART)
            assert wrong.status_code == 403
            missing = await http.post(f"/upload_dataset/{key}", content=chunked(form(train_file=TRAIN)),
                                      headers=MULTIPART)
            assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "test_file"]
            for over in (True, False):  # 1.5 MiB in one file: 413 with or without Content-Length
                body = form(test_file=TEST, train_file=TRAIN + b"x,pos\n" * (1 << 18))
                refused = await http.post(f"/upload_dataset/{key}", content=chunked(body) if over else body,
                                          headers=MULTIPART)
                assert refused.status_code == 413, refused.text
                assert "train_file" in refused.json()["message"] and "max_upload_mb" in refused.json()["message"]
            assert (await http.get("/parameters")).json().get("dataset") is None  # nothing of them was kept

            done = await http.post(f"/upload_dataset/{key}", content=chunked(form(train_file=TRAIN, test_file=TEST)),
                                   headers=MULTIPART)
            assert done.status_code == 200, done.text
            dataset = done.json()["dataset"]
            assert (dataset["train"]["rows"], dataset["test"]["rows"]) == (40, 2)
            assert sorted(dataset["labels"]) == ["neg", "pos"]
            assert Path(dataset["train"]["path"]).read_bytes() == TRAIN
            assert Path(dataset["test"]["path"]).read_bytes() == TEST
            assert [p.name for p in session_dir(service, status).glob(".staging-*")] == []

    asyncio.run(run())


def test_a_light_request_is_answered_while_an_upload_write_stalls(make_service):
    """The upload's train file is a FIFO nobody reads yet, so its write stalls as on slow shared storage: /status
    on the same replica (event loop) is answered meanwhile. The body then ends without its closing boundary, so
    the upload is refused (400) once the storage has taken its bytes, and leaves nothing."""
    service = make_service(max_upload_mb=8)
    data = b"x" * (4 * 1024 * 1024)  # far more than a pipe holds (64 KiB)
    pipes: list[Pipe] = []

    async def run():
        async with app_client(service) as http:
            status = (await http.get("/start_session", params={"force_restart": 1})).json()

            async def body():
                [staging] = session_dir(service, status).glob(".staging-*")  # made before the body is read
                pipes.append(Pipe(staging / "train.csv").__enter__())
                yield head("train_file")
                for i in range(0, len(data), 1 << 16):
                    yield data[i:i + (1 << 16)]

            upload = asyncio.create_task(http.post(f"/upload_dataset/{status['key']}", content=body(),
                                                   headers=MULTIPART))
            await wait_until(lambda: pipes or upload.done())
            await pipes[0].stalled(upload)
            light = await http.get("/status")
            assert light.status_code == 200 and not upload.done() and not pipes[0].rescued, \
                "the light request waited for the upload's write"
            pipes[0].drain()
            refused = await upload
            assert refused.status_code == 400 and "closing boundary" in refused.json()["message"]
            assert [p.name for p in session_dir(service, status).glob(".staging-*")] == []

    try:
        asyncio.run(run())
    finally:
        for pipe in pipes:
            pipe.__exit__(None, None, None)
    assert pipes[0].read == data  # the stalled write went on, whole, once the storage took it


async def wait_until(condition, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


# ---- /healthcheck -------------------------------------------------------------------------------------------


def test_a_working_server_is_healthy_and_says_what_it_checked(make_service):
    service = make_service()

    async def run():
        async with app_client(service) as http:
            response = await http.get("/healthcheck")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["healthy"] is True and body["state"] == "idle"
        assert set(body["checks"]) == {"session_actor", "recovery", "storage"}
        assert all(check["ok"] for check in body["checks"].values()), body

    asyncio.run(run())


def test_an_unreachable_session_actor_is_503_naming_it(make_service, tmp_path):
    """The storage root is under a file: the session actor dies in its constructor, each time it is made."""
    (tmp_path / "a-file").write_text("not a folder")
    service = make_service(root=tmp_path / "a-file" / "root")

    async def run():
        async with app_client(service) as http:
            response = await http.get("/healthcheck")
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["healthy"] is False and "session actor cannot be reached" in body["message"]
        assert body["checks"]["session_actor"]["ok"] is False and body["checks"]["storage"]["ok"] is False

    asyncio.run(run())


def test_a_recovery_that_failed_is_503_until_it_is_done(make_service, tmp_path):
    """A run cut off by a restart, on a full storage root: the session actor starts, but cannot record the run's
    end. Unhealthy, saying so, until space is freed; then the recovery is done and the server healthy."""
    with small_disk(tmp_path / "disk", "4m") as root:
        record = SessionRecord(session_id="0" * 32, key="k" * 43, state=State.training)
        Layout(root).legacy_state_file.write_text(record.model_dump_json())  # moved to its own file on start
        filler = fill(root)
        service = make_service(root=root)

        async def health(http) -> tuple[int, dict]:
            response = await http.get("/healthcheck")
            return response.status_code, response.json()

        async def run():
            async with app_client(service) as http:
                code, body = await health(http)
                assert code == 503 and body["healthy"] is False, body
                assert body["checks"]["session_actor"]["ok"] and not body["checks"]["recovery"]["ok"]
                assert not body["checks"]["storage"]["ok"] and str(root) in body["checks"]["storage"]["message"]
                assert body["state"] == "training"  # the record as it is on disk
                filler.unlink()
                code, body = await health(http)
                assert code == 200 and body["healthy"] is True and body["state"] == "stopped", body

        asyncio.run(run())


# ---- POST /deploy/{key}: what the cluster can never run ----------------------------------------------------------


@pytest.mark.parametrize("options, says", [
    ({"num_cpus": 16}, f"1 model replica of 16 CPUs needs 16 CPUs; the Ray cluster has {CPUS}"),
    ({"num_cpus": 1, "min_replicas": 3, "max_replicas": 3}, f"3 model replicas of 1 CPUs need 3 CPUs; the Ray "
                                                             f"cluster has {CPUS}"),
    ({"use_gpu": True}, f"use_gpu is true but the Ray cluster has no GPU (it has {CPUS} CPUs)"),
])
def test_a_deployment_the_cluster_cannot_run_is_refused_up_front(make_service, options, says):
    service = make_service()

    async def run():
        async with app_client(service) as http:
            key = (await http.get("/start_session", params={"force_restart": 1})).json()["key"]
            response = await http.post(f"/deploy/{key}", json=options)
            assert response.status_code == 409 and says in response.json()["message"], response.text
            assert (await http.get(f"/deploy/{key}")).json()["deployment"]["state"] == "none"

    asyncio.run(run())
