"""What one training run costs in CPU, by process: N short runs of the tests' tiny model (tests/tiny_model.py, a
random BERT of hidden size 32) on the tests' sentiment sample through a real server, one after the other. Every
process is sampled every 0.2 s during runs 2..N (the first pays one-time start-up): those a run starts (the
job actor, Ray Train's controller, helper actors and worker, idle workers for Ray Data) are charged their CPU at
their last sample, the server's standing ones (Serve, the session actor, Ray's programs) what they spent in the
window. Per run, with the wall time from training/start to trained and the run's own phases.

This is the floor under the end-to-end suite's time on a small machine: each test that trains pays it.

    .venv/bin/python bench/run_cpu.py [--runs 4]    # results/run_cpu.json
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import threading
import time
from pathlib import Path

import psutil
from _common import temporary_server, write_result
from memory import role

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from data import sentiment_files  # noqa: E402  (the tests' own data and tiny model)
from tiny_model import build_tiny_bert  # noqa: E402

CONFIG = {"model": "tiny-bert", "epochs": 1, "batch_size": 16, "learning_rate": 1e-3}


def sample(seen: dict, standing: dict, stop: threading.Event) -> None:
    """(pid, start time) -> [role, CPU s] for every process but this one, every 0.2 s; `standing` keeps the
    CPU that processes older than the window had at its start. A process keeps the last role it showed (one
    that has ended but is not yet reaped shows no command line)."""
    began = time.time()
    while not stop.is_set():
        for process in psutil.process_iter(["pid", "cmdline", "create_time", "cpu_times"]):
            info = process.info
            if info["pid"] == os.getpid() or info["cpu_times"] is None:
                continue
            key, cpu = (info["pid"], info["create_time"]), sum(info["cpu_times"][:2])
            if key not in seen:
                seen[key] = ["other (not Ray)", cpu]
                if info["create_time"] < began:
                    standing[key] = cpu
            name = role(info["cmdline"] or [])
            if name:  # the latest: a new worker's command line names its raylet until it becomes ray::<what>
                seen[key][0] = name
            seen[key][1] = cpu
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--json")
    args = parser.parse_args()
    seen, standing, stop = {}, {}, threading.Event()
    walls, phases = [], collections.Counter()
    with temporary_server(dashboard=False, progress_every_steps=2) as (server, tmp):
        build_tiny_bert(server.storage_root / "models" / "tiny-bert")
        files = sentiment_files(tmp / "data")
        sampler = threading.Thread(target=sample, args=(seen, standing, stop), daemon=True)
        for n in range(args.runs):
            client = server.client()
            client.start_session(force_restart=True)
            client.set_parameters(**CONFIG)
            client.upload_dataset(*files)
            client.preprocess()
            client.wait_preprocessed()
            if n == 1:
                sampler.start()
            started = time.perf_counter()
            client.start_training()
            final = client.wait_trained(poll_s=0.5)
            assert final["state"] == "trained", final
            if n >= 1:
                walls.append(time.perf_counter() - started)
                for name, phase in (final["training"].get("timings") or {}).get("phases", {}).items():
                    phases[name] += phase["s"]
        stop.set()
        sampler.join()
    runs = len(walls)
    by_role: dict[str, list] = collections.defaultdict(lambda: [0, 0.0])
    for key, (name, cpu) in seen.items():
        started_here = key not in standing
        label = name if started_here else f"{name} (standing)"
        by_role[label][0] += started_here
        by_role[label][1] += cpu - standing.get(key, 0.0)
    per_run = {name: {"processes": round(n / runs, 1), "cpu_s": round(cpu / runs, 2)}
               for name, (n, cpu) in sorted(by_role.items(), key=lambda kv: -kv[1][1]) if cpu / runs >= 0.05}
    result = {"runs_measured": runs, "wall_s": round(sum(walls) / runs, 1),
              "cpu_s": round(sum(v["cpu_s"] for v in per_run.values()), 1),
              "phases_s": {k: round(v / runs, 2) for k, v in phases.items()}, "per_run": per_run}
    for name, v in per_run.items():
        print(f"{v['cpu_s']:6.2f} CPU s  {v['processes']:4.1f} started  {name}")
    print(f"a run: {result['cpu_s']} CPU s in {result['wall_s']} s of wall time ({runs} runs measured)")
    write_result("run_cpu", result, args.json)


if __name__ == "__main__":
    main()
