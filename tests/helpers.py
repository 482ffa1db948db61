"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import itertools
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import termios
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from training_client import TrainingModuleClient, TrainingModuleError


def new_session(server) -> TrainingModuleClient:
    client = TrainingModuleClient(server.url, timeout=120)
    client.start_session(force_restart=True)
    return client


def new_sessions(server, count: int) -> list[TrainingModuleClient]:
    """`count` new sessions side by side (a server whose max_sessions is at least `count`), one client each."""
    clients = [TrainingModuleClient(server.url, timeout=120) for _ in range(count)]
    for client in clients:
        client.start_session()
    return clients


@contextlib.contextmanager
def own_server(tmp_path_factory, name: str, **settings):
    """A server of the module's own (not the shared one: its sessions and session files are its own), over a storage
    root with the tiny model; `settings` as ServerProcess takes them (max_sessions, ray_address, env...)."""
    from conftest import TINY_MODEL
    from tiny_model import build_tiny_bert

    from training_client.local_server import ServerProcess

    root = tmp_path_factory.mktemp(f"storage-{name}")
    build_tiny_bert(root / "models" / TINY_MODEL)
    with ServerProcess(root, tmp_path_factory.mktemp(f"server-{name}"), **settings) as server:
        yield server


_loopback_hosts = itertools.count()


def own_address() -> str:
    """A loopback address no other client of this test run connects from (127.0.2.1, 127.0.2.2, ...). The server's
    brake on wrong keys and tokens counts per connection address, so a test that sends wrong ones from its own
    address neither waits for another test's count to clear nor leaves one behind. Linux answers on all of
    127.0.0.0/8; Serve's proxy takes X-Forwarded-For from 127.0.0.1 only, so these addresses are never rewritten."""
    n = next(_loopback_hosts)
    return f"127.0.{2 + n // 254}.{1 + n % 254}"


def client_from(address: str, server, **kwargs) -> TrainingModuleClient:
    """A TrainingModuleClient (key=, token= as usual) whose connections come from `address`."""
    client = TrainingModuleClient(server.url, **kwargs)
    headers, timeout = client.http.headers, client.http.timeout
    client.http.close()
    client.http = httpx.Client(base_url=server.url, headers=headers, timeout=timeout,
                               transport=httpx.HTTPTransport(local_address=address))
    return client


def expect_error(status_code: int, call, *args, **kwargs) -> TrainingModuleError:
    try:
        call(*args, **kwargs)
    except TrainingModuleError as e:
        assert e.status_code == status_code, e
        return e
    raise AssertionError(f"expected HTTP {status_code}")


def wait_for(predicate, timeout: float, what: str, poll: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def checkpoint_kept(client: TrainingModuleClient) -> bool:
    """Whether the session's run has a checkpoint on disk that a restart resumes from. A run reports an evaluation
    before Ray Train has written its checkpoint: a crash between the two finds nothing to resume."""
    from train_jobs.results.archives import kept_checkpoint

    storage = client.monitor()["training"].get("run_storage")
    return bool(storage and kept_checkpoint(Path(storage)))


def extract(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest


def ready_sessions(clients: list[TrainingModuleClient], files, config: dict) -> list[TrainingModuleClient]:
    """Each client's session with `config` set, `files` uploaded and preprocessing done. Every preprocessing is
    started before the first is waited for, so the sessions' preprocessing runs side by side."""
    for client in clients:
        client.set_parameters(**config)
        client.upload_dataset(*files)
        client.preprocess()
    for client in clients:
        client.wait_preprocessed()
    return clients


def prepared_session(server, tmp_path, files, **config) -> TrainingModuleClient:
    """A session with config set, dataset uploaded and preprocessing done."""
    return ready_sessions([new_session(server)], files, config)[0]


def trained_session(server, files, **config) -> TrainingModuleClient:
    """A new session trained on `files`: the tiny model, 1 epoch, batch 16, unless `config` says otherwise."""
    from conftest import TINY_MODEL

    config = {"model": TINY_MODEL, "epochs": 1, "batch_size": 16, "learning_rate": 1e-3, **config}
    client = ready_sessions([new_session(server)], files, config)[0]
    client.start_training()
    assert client.wait_trained(poll_s=0.5)["state"] == "trained"
    return client


class SharedSessions:
    """Trained sessions shared by the tests of several modules, so that each is trained once, not once per module.

    The server holds one session at a time: a kept session is handed out again only while it is still the
    server's session and still trained (no test since started another, changed its config or dataset, or began
    a new run); otherwise it is built again. It is handed out with no deployment (one left by the last user is
    taken down, and its replica processes waited out), so each user starts from the same state. Users may
    deploy, predict and download; a test that changes the session ends the sharing, which only costs the next
    user a new training.
    """

    def __init__(self, server):
        self.server = server
        self._kept: dict[str, tuple] = {}  # name -> (session_id, what build returned)

    def _current(self) -> tuple:
        """(session_id, state) of the server's session; () when it has none."""
        with self.server.client() as client:
            try:
                params = client.get_parameters()
            except TrainingModuleError:
                return ()
        return params.get("session_id"), params.get("state")

    def get(self, name: str, build):
        """What `build()` returned for `name` (a client first, then anything else), built again if it was lost."""
        kept = self._kept.get(name)
        if not kept or self._current() != (kept[0], "trained"):
            built = build()
            client = built[0] if isinstance(built, tuple) else built
            kept = self._kept[name] = (client.get_parameters()["session_id"], built)
        client = kept[1][0] if isinstance(kept[1], tuple) else kept[1]
        if client.deployment()["deployment"]["state"] != "none":
            client.undeploy()
        wait_for(lambda: not server_processes(self.server, "ServeReplica:model-"), 60, "the model replicas to end")
        return kept[1]


@contextlib.contextmanager
def small_disk(path: Path, size: str = "4m"):
    """A tmpfs of `size` at `path`, for a real full disk (ENOSPC); gone after. Mounted at `path` where mounting is
    permitted (root, CAP_SYS_ADMIN); elsewhere in a user and mount namespace of its own (unprivileged user
    namespaces, as rootless containers use), held by a sleeping process and reached through its /proc/PID/root:
    then the path yielded is that one. Skipped, naming both refusals, where neither is permitted."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                          text=True)
    if done.returncode == 0:
        try:
            yield path
        finally:
            subprocess.run(["umount", "-l", str(path)], check=False)
        return
    refused = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[0]
    with _namespaced_tmpfs(path, size, refused) as seen:
        yield seen


@contextlib.contextmanager
def _namespaced_tmpfs(path: Path, size: str, refused: str):
    holder = 'mount -t tmpfs -o size="$1" tmpfs "$2" && echo mounted && exec sleep infinity'
    try:
        proc = subprocess.Popen(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", holder, "sh", size,
                                 str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError as e:  # no util-linux
        proc, why = None, str(e)
    try:
        if proc is None or proc.stdout.readline().strip() != "mounted":
            why = (proc.communicate(timeout=10)[1].strip().splitlines() or ["no mount"])[0] if proc else why
            pytest.skip(f"a full disk needs a small tmpfs: `mount -t tmpfs` is not permitted here ({refused}), nor is "
                        f"one in an unprivileged user namespace (`unshare --user --mount`: {why}); run as root, or "
                        f"allow user namespaces (sysctl user.max_user_namespaces > 0), to include this test")
        yield Path(f"/proc/{proc.pid}/root") / path.relative_to(path.anchor)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()  # the namespace, and its tmpfs, end with their last process
            proc.wait()


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill the filesystem at `disk` with one file until at most `leave` bytes are free; remove it to undo."""
    filler = disk / "filler"
    with open(filler, "ab", buffering=0) as f:
        try:
            while (free := shutil.disk_usage(disk).free) > leave:
                f.write(b"\0" * min(1 << 20, free - leave))
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    return filler


def driver_on_server_ray(server) -> tuple[str, dict]:
    """The GCS address of this server's own Ray instance, and the environment a driver process needs to join it:
    no RAY_ADDRESS of ours, and Ray's token authentication when `serve run` turned it on (the token is in ~/.ray)."""
    for process in psutil.Process(server.proc.pid).children(recursive=True):
        for arg in process.cmdline():
            if arg.startswith("--gcs-address="):
                raylet_env = process.environ()
                env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
                if "RAY_AUTH_MODE" in raylet_env:
                    env["RAY_AUTH_MODE"] = raylet_env["RAY_AUTH_MODE"]
                return arg.split("=", 1)[1], env
    raise AssertionError("no raylet under the server process")


class Pipe:
    """A FIFO standing in for a file on slow storage: its writer stalls once the pipe's buffer (64 KiB) is full,
    until `drain()` reads it all (in a thread). If the test never drains it (the code under test blocked the event
    loop, so the test cannot go on either), a rescue drains it after `rescue_s` and `rescued` says so: the test
    fails instead of hanging."""

    def __init__(self, path: Path, rescue_s: float = 60):
        self.path = path
        os.mkfifo(path)
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a writer may open it now; nothing is read yet
        self.read = b""
        self.rescued = False
        self._once = threading.Lock()
        self._reader: threading.Thread | None = None
        self._rescue = threading.Timer(rescue_s, self._drain, kwargs={"rescue": True})

    def __enter__(self) -> Pipe:
        self._rescue.start()
        return self

    def __exit__(self, *exc) -> None:
        self._rescue.cancel()
        self.drain()
        self._reader.join(60)

    def buffered(self) -> int:
        return struct.unpack("i", fcntl.ioctl(self._fd, termios.FIONREAD, b"\0\0\0\0"))[0]

    async def stalled(self, writer: asyncio.Future) -> None:
        """Return once the writer has filled the pipe (it now waits for a reader), or has ended, or was rescued."""
        while self.buffered() < 4096 and not writer.done() and not self.rescued:
            await asyncio.sleep(0.01)

    def drain(self) -> None:
        """Read everything the writer sends, until it closes the file, in a thread."""
        if self._reader is None:
            self._reader = threading.Thread(target=self._drain, daemon=True)
            self._reader.start()

    def _drain(self, rescue: bool = False) -> None:
        if not self._once.acquire(blocking=False):
            return
        self.rescued = rescue
        os.set_blocking(self._fd, True)
        chunks = []
        while chunk := os.read(self._fd, 1 << 16):
            chunks.append(chunk)
        os.close(self._fd)
        self.read = b"".join(chunks)


def server_processes(server, marker: str) -> list[psutil.Process]:
    """This server's own processes whose command line holds `marker` (its local Ray instance's workers descend
    from `serve run`): a test kills what its server started, never another server's processes on the machine."""
    found = []
    for process in psutil.Process(server.proc.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a process that ended meanwhile
            if process.status() != psutil.STATUS_ZOMBIE and marker in " ".join(process.cmdline()):
                found.append(process)
    return found


def crash_and_restart(server) -> None:
    """SIGKILL `serve run` and every process it started, its local Ray instance's included (GCS, raylet, workers,
    job actors), as a machine that loses power, then start the server again. Ray goes away at once, mid-step: a
    graceful stop takes about 50 s here, long enough for a short run to end first. Ray's processes do not all stay
    in serve run's process group, so the whole tree is found first; none is left for the next serve run to join."""
    root = psutil.Process(server.proc.pid)
    tree = [root, *root.children(recursive=True)]
    for process in tree:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(tree, timeout=60)
    server.proc.wait(60)
    server.start()


def kill_session_actor(server) -> int:
    """SIGKILL this server's session actor process, as a crash would (Ray restarts the actor); returns its PID."""
    [actor] = wait_for(lambda: server_processes(server, "ray::SessionActor"), 30, "the session actor's process")
    actor.kill()
    actor.wait(30)
    return actor.pid


KILL_FOR_GOOD = """
import sys, ray
ray.init(address=sys.argv[1], log_to_driver=False)
ray.kill(ray.get_actor(sys.argv[2], namespace=sys.argv[3]), no_restart=True)
"""


def kill_session_actor_for_good(server) -> None:
    """`ray.kill(..., no_restart=True)` on this server's session actor, from a driver on the server's Ray: it is
    gone until the ingress's next call creates it again."""
    from cluster.settings import NAMESPACE, SESSION_ACTOR_NAME

    address, env = driver_on_server_ray(server)
    subprocess.run([sys.executable, "-c", KILL_FOR_GOOD, address, SESSION_ACTOR_NAME, NAMESPACE], env=env,
                   check=True, timeout=120)
