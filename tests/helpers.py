"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import psutil
import pytest

from training_client import TrainingModuleClient, TrainingModuleError


def new_session(server) -> TrainingModuleClient:
    client = TrainingModuleClient(server.url, timeout=120)
    client.start_session(force_restart=True)
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


def extract(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest


def prepared_session(server, tmp_path, files, **config) -> TrainingModuleClient:
    """A session with config set, dataset uploaded and preprocessing done."""
    client = new_session(server)
    client.set_parameters(**config)
    client.upload_dataset(*files)
    client.preprocess()
    client.wait_preprocessed()
    return client


@contextlib.contextmanager
def small_disk(path: Path, size: str = "4m"):
    """A tmpfs of `size` mounted at `path`, for a real full disk (ENOSPC); unmounted after. Mounting needs
    root (or CAP_SYS_ADMIN): elsewhere the test is skipped, saying so."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"a full disk needs a small tmpfs, and `mount -t tmpfs` is not permitted here "
                    f"({done.stderr.strip() or done.returncode}); run as root to include this test")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


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


def server_processes(server, marker: str) -> list[psutil.Process]:
    """This server's own processes whose command line holds `marker` (its local Ray instance's workers descend
    from `serve run`): a test kills what its server started, never another server's processes on the machine."""
    found = []
    for process in psutil.Process(server.proc.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a process that ended meanwhile
            if process.status() != psutil.STATUS_ZOMBIE and marker in " ".join(process.cmdline()):
                found.append(process)
    return found


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
