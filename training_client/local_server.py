"""Run the server (`serve run` on a generated Serve config file) in a subprocess.

For tests, benchmarks and scripts that need a real server on a free local port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from training_client.client import TrainingModuleClient
from training_client.ray_token import create_private_token

SERVE = Path(sys.executable).with_name("serve")
RAY = Path(sys.executable).with_name("ray")
# The client alone (`pip install training-module[client]`) has no Ray, so no `serve`, and no PyYAML.
NO_SERVER = "this needs the server installed: pip install 'training-module[server]'"


def _yaml():
    try:
        import yaml
    except ImportError as e:
        raise RuntimeError(f"ServerProcess writes a Serve config file; {NO_SERVER}") from e
    return yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`serve run` in a subprocess. By default Serve starts its own local Ray instance, as for a user
    who types `serve run`; with `dashboard=False` a Ray head without the dashboard is started first
    (`ray start --head --include-dashboard=false`) and `ray stop` ends it; with `ray_address`, Serve joins
    that running cluster (several nodes, say) and leaves it running when stopped; `env` adds to the
    environment of `serve run` (RAY_AUTH_MODE=token to join a cluster with token auth, say). `stop_grace_s`
    (default $TM_STOP_GRACE_S, else 60) is how long `stop` lets Ctrl-C take before it kills the process group."""

    def __init__(self, storage_root: Path, log_dir: Path, dashboard: bool = True, host: str = "127.0.0.1",
                 ray_address: str | None = None, env: dict | None = None, stop_grace_s: float | None = None,
                 **args):
        self.storage_root = storage_root
        self.stop_grace_s = float(os.environ.get("TM_STOP_GRACE_S", 60)) if stop_grace_s is None else stop_grace_s
        self.dashboard = dashboard
        self.ray_address, self.env = ray_address, env or {}
        self.ray_port = None if dashboard or ray_address else free_port()
        self.port = free_port()
        # Every interface includes loopback; the server refuses any host beyond loopback without an API token.
        self.url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{self.port}"
        self.config = log_dir / "serve_config.yaml"
        self.config.write_text(_yaml().safe_dump({
            "proxy_location": "HeadOnly",
            "http_options": {"host": host, "port": self.port},
            "applications": [{"name": "training_module", "import_path": "serve_app:app", "route_prefix": "/",
                              "args": {"storage_root": str(storage_root), **args}}],
        }))
        self.log_path = log_dir / "serve.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> ServerProcess:
        if not SERVE.exists():
            raise RuntimeError(f"{SERVE} not found; {NO_SERVER}")
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env.update(RAY_DEDUP_LOGS="0", **self.env)
        log = open(self.log_path, "ab")
        command = [str(SERVE), "run", str(self.config)]
        if not self.ray_address and not self.ray_port:
            create_private_token(env)  # before Serve's new Ray instance writes its token world-readable
            # A Ray instance of its own: with no address, ray.init joins any Ray instance it finds on the machine
            # (another server's, or what a killed one left behind) and this server would run its jobs there.
            command += ["--address", "local"]
        if self.ray_address:
            command += ["--address", self.ray_address]
        elif self.ray_port:
            subprocess.run([str(RAY), "start", "--head", "--include-dashboard=false", "--disable-usage-stats",
                            f"--port={self.ray_port}"], env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
            command += ["--address", "auto"]  # the head just started on this machine
        self.proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"serve run exited with {self.proc.returncode}; {self.log_path} ends:\n{tail}")
            refused = self._refusal()
            if refused:  # `serve run` on a config file keeps running when the app fails to deploy
                self.stop()
                raise RuntimeError(f"the server refused to start: {refused}")
            try:
                if httpx.get(f"{self.url}/healthcheck", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise RuntimeError(f"server not healthy after {timeout}s; see {self.log_path}")

    def _refusal(self) -> str | None:
        """The server's own refusal to start (an unsafe host, see serve_app/bind.py), once the log shows it."""
        marker = "UnsafeBind: "
        text = self.log_path.read_text(errors="replace")
        return next((line.split(marker, 1)[1] for line in text.splitlines() if marker in line), None)

    def client(self, **kwargs) -> TrainingModuleClient:
        return TrainingModuleClient(self.url, **kwargs)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, timeout: float | None = None) -> None:
        """Ctrl-C, as a user would: Serve shuts down and the local Ray instance with it; past `timeout` (default
        stop_grace_s) the process group (serve run, the local Ray instance and its workers) is killed."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(self.stop_grace_s if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.ray_port:  # note: `ray stop` ends every Ray instance of this user on the machine
            subprocess.run([str(RAY), "stop", "--force"], capture_output=True)
        # Ray worker processes of the local instance end with their raylet; give them a moment.
        time.sleep(2)
