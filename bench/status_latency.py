"""Latency of GET /status and /monitor, idle and while a training run saturates the CPUs.

    .venv/bin/python bench/status_latency.py [--calls 200] [--train FILE --test FILE]

Trains the default model (all-MiniLM-L6-v2) on the bundled BANKING77 sample.
Also reports the time from `training/start` to the first reported step.
Runs twice: as `serve run` starts Ray (dashboard on), and on a Ray head started
without the dashboard (`ray start --head --include-dashboard=false`), whose
processes otherwise compete with the API at a higher CPU priority than Ray workers.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import httpx
import numpy as np
from _common import temporary_server, write_result

from training_client.cli import _sample


def measure(http: httpx.Client, path: str, calls: int) -> dict:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        http.get(path).raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 2), "p99_ms": round(float(np.percentile(times, 99)), 2),
            "max_ms": round(max(times), 2), "calls": calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--train", default=_sample("banking77_train.csv"))
    parser.add_argument("--test", default=_sample("banking77_test.csv"))
    parser.add_argument("--json")
    args = parser.parse_args()
    results = {}
    for dashboard in (True, False):
        results["dashboard on" if dashboard else "dashboard off"] = run_once(args, dashboard)
    for mode, result in results.items():
        print(f"\n{mode}:")
        print(f"{'endpoint':<20}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
        for name, row in result["rows"].items():
            print(f"{name:<20}{row['p50_ms']:>10}{row['p99_ms']:>10}{row['max_ms']:>10}")
        print(f"training/start to first reported step: {result['first_step_s']:.1f} s; 1-min load average "
              f"{result['load_avg']:.2f} on {os.cpu_count()} CPUs; training throughout: {result['training_throughout']}")
    write_result("status_latency", {"modes": results, "cpus": os.cpu_count(), "machine": platform.platform()},
                 args.json)


def run_once(args: argparse.Namespace, dashboard: bool) -> dict:
    with temporary_server(dashboard=dashboard) as (server, _):
        client = server.client(timeout=120)
        client.start_session(force_restart=True)
        client.set_parameters(epochs=20)  # long enough to outlast the measurement
        client.upload_dataset(args.train, args.test)
        client.preprocess()
        client.wait_preprocessed()
        http = httpx.Client(base_url=server.url, timeout=30)
        rows = {"idle /status": measure(http, "/status", args.calls),
                "idle /monitor": measure(http, f"/monitor/{client.key}", args.calls)}

        started = time.perf_counter()
        client.start_training()
        while not (client.monitor()["training"]["live"] or {}).get("step"):
            time.sleep(0.05)
        first_step_s = time.perf_counter() - started
        time.sleep(3)  # let the workers reach full speed
        load = os.getloadavg()[0]
        for round_ in (1, 2, 3):  # three windows of --calls each: one window can miss or hit a burst
            rows[f"training /status #{round_}"] = measure(http, "/status", args.calls)
        rows["training /monitor"] = measure(http, f"/monitor/{client.key}", args.calls)
        still_training = client.status()["state"] == "training"
        client.stop_training()
        client.wait_trained()

    return {"rows": rows, "first_step_s": round(first_step_s, 2), "load_avg": round(load, 2),
            "training_throughout": still_training}


if __name__ == "__main__":
    main()
