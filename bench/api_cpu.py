"""Where the CPU of API calls goes: N sessions poll GET /status and GET /monitor/{key} once a second (as in
sessions.py, no training), and every process's CPU seconds are read before and after a polled window and an
idle one of the same length. The difference, per call and per role (memory.py's roles: Serve's ProxyActor,
the ingress ServeReplica, the SessionActor, Ray's own programs; and the pollers in this process), is what one
call costs, and its sum over a second is the share of the machine the pollers take from training.

    .venv/bin/python bench/api_cpu.py [--sessions 16] [--window 20]    # results/api_cpu.json
"""

from __future__ import annotations

import argparse
import collections
import os
import threading
import time

import psutil
from _common import temporary_server, write_result
from memory import role
from sessions import poll


def role_of(process: psutil.Process) -> str:
    """memory.py's role (ProxyActor, ServeReplica, SessionActor, raylet, ...); this process is the pollers."""
    if process.pid == os.getpid():
        return "pollers (this process)"
    return role(process.cmdline()) or "other (not Ray)"


def cpu_by_process() -> dict[int, tuple[str, float]]:
    seen = {}
    for process in psutil.process_iter():
        try:
            seen[process.pid] = (role_of(process), sum(process.cpu_times()[:2]))
        except psutil.Error:  # ended meanwhile, or not ours to read
            pass
    return seen


def window(url: str, keys: list[str], seconds: float) -> tuple[dict[str, float], int]:
    """CPU seconds by role over `seconds` while `keys` poll (none: idle), and the calls made."""
    stop, latencies = threading.Event(), []
    threads = [threading.Thread(target=poll, args=(url, key, stop, latencies), daemon=True) for key in keys]
    before = cpu_by_process()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    spent = collections.Counter()
    for pid, (name, cpu) in cpu_by_process().items():
        spent[name] += cpu - before.get(pid, (name, 0.0))[1]
    return dict(spent), len(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--window", type=float, default=20)
    parser.add_argument("--json")
    args = parser.parse_args()
    with temporary_server(dashboard=False, max_sessions=args.sessions) as (server, _):
        clients = [server.client() for _ in range(args.sessions)]
        for client in clients:
            client.start_session()
        time.sleep(5)  # the sessions' first saves
        idle, _ = window(server.url, [], args.window)
        polled, calls = window(server.url, [c.key for c in clients], args.window)
    extra = {name: polled.get(name, 0.0) - idle.get(name, 0.0) for name in set(idle) | set(polled)}
    per_call_ms = {name: round(1000 * s / calls, 2) for name, s in sorted(extra.items(), key=lambda kv: -kv[1])}
    cores = psutil.cpu_count()
    result = {"sessions": args.sessions, "window_s": args.window, "calls": calls, "cores": cores,
              "idle_cpu_s": {k: round(v, 2) for k, v in idle.items()}, "cpu_ms_per_call": per_call_ms,
              "share_of_machine": round(sum(extra.values()) / args.window / cores, 3)}
    for name, ms in per_call_ms.items():
        print(f"{ms:7.2f} ms  {name}")
    print(f"{calls} calls in {args.window:.0f} s take {result['share_of_machine']:.1%} of {cores} cores")
    write_result("api_cpu", result, args.json)


if __name__ == "__main__":
    main()
