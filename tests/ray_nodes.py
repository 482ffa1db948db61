"""A Ray cluster of several nodes on this machine, for the multi-node tests.

Each node is a `ray start --block` with its own CPUs and temp dir, so the test
can kill one node (every process of it at once, as when a machine dies) and
start it again, and stop the whole cluster without `ray stop`, which would end
every Ray instance of this user on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from training_client.local_server import free_port

RAY = Path(sys.executable).with_name("ray")
# A worker node (and `serve run`) joins with the cluster's token only when token auth is asked for by name; the head
# turns it on by itself when ~/.ray/auth_token exists. A real cluster sets it on every node too.
AUTH = {"RAY_AUTH_MODE": "token"}


class LocalNodes:
    def __init__(self):
        # Short: Ray's unix socket paths under it must fit in 107 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="tm-nodes-"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: dict[str, subprocess.Popen] = {}
        self.starts = 0
        # RAY_ADDRESS: Ray's own processes that look for "the" local cluster (Ray Train's placement group cleaner,
        # the state API) find this one, not another Ray instance on the machine.
        self.env = {**os.environ, **AUTH, "RAY_ADDRESS": self.address}

    def start_head(self, num_cpus: int = 1) -> LocalNodes:
        # A killed node is declared dead after about 3 s rather than Ray's default of 15 s or more (5 failed health
        # checks 3 s apart), which is what holds a restarted worker group back: its placement group waits for the
        # failed group's to be removed, and that waits for the node to be declared dead.
        health = {"health_check_period_ms": 1000, "health_check_timeout_ms": 1000, "health_check_failure_threshold": 3}
        self._start("head", ["--head", f"--port={self.port}", "--include-dashboard=false",
                             f"--ray-client-server-port={free_port()}", f"--dashboard-port={free_port()}",
                             f"--system-config={json.dumps(health)}"], num_cpus)
        return self

    def add_node(self, name: str, num_cpus: int = 1) -> None:
        self._start(name, [f"--address={self.address}"], num_cpus)

    def _start(self, name: str, args: list[str], num_cpus: int, timeout: float = 90) -> None:
        self.starts += 1  # a fresh temp dir each time: a node started again must not replay the old one's logs
        log_path = self.root / f"{name}-{self.starts}.log"
        log = open(log_path, "ab")
        self.nodes[name] = proc = subprocess.Popen(
            # Free ports where Ray's default is fixed: two nodes (and other Ray instances) share this machine.
            [str(RAY), "start", "--block", *args, f"--dashboard-agent-listen-port={free_port()}",
             f"--num-cpus={num_cpus}", "--num-gpus=0", "--disable-usage-stats",
             f"--temp-dir={self.root / f'{name}-{self.starts}'}", f"--object-store-memory={256 << 20}"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while b"Ray runtime started" not in log_path.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray node {name} did not start; {log_path} ends:\n"
                                   f"{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)

    def processes(self, name: str) -> list[psutil.Process]:
        """The node's processes: `ray start`, its raylet and the raylet's workers (which descend from it)."""
        try:
            root = psutil.Process(self.nodes[name].pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def train_workers(self, name: str) -> list[psutil.Process]:
        found = []
        for p in self.processes(name):
            try:
                if "RayTrainWorker" in " ".join(p.cmdline()):
                    found.append(p)
            except psutil.Error:
                pass
        return found

    def kill_node(self, name: str) -> None:
        """SIGKILL every process of the node at once: no goodbye to the cluster, as a machine that dies."""
        for p in self.processes(name):
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        self.nodes.pop(name).wait()

    def shutdown(self) -> None:
        """Worker nodes first, then the head (a node that outlived its head would wait for it)."""
        for name in [n for n in self.nodes if n != "head"] + ["head"] * ("head" in self.nodes):
            self.kill_node(name)
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def head_and_second(cpus_each: int = 1) -> Iterator[LocalNodes]:
    """A cluster of two nodes, "head" and "second", shut down on leaving."""
    cluster = LocalNodes()
    try:
        cluster.start_head(num_cpus=cpus_each)
        cluster.add_node("second", num_cpus=cpus_each)
        yield cluster
    finally:
        cluster.shutdown()
