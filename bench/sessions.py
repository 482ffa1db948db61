"""Many sessions polling while runs train: p99 of their /status and /monitor calls, and the training's
throughput against the same run with no other session polling (the baseline, in the same server).

    .venv/bin/python bench/sessions.py [--sessions 1,4,16] [--window 30]

One server with max_sessions above the largest N. Session A trains the default model
(all-MiniLM-L6-v2) on the bundled BANKING77 sample for many epochs and session B
queues a second run behind it (the cluster here fits one run: "two runs train" is one
training, one queued). For each N, N more sessions each call GET /status (with their
X-Session-Key) and GET /monitor/{key} once a second for --window seconds, from their
own threads; A's samples/s over the window is read from its /monitor. A window with no
pollers comes before and after each polled one, and each N is compared with the mean of
those two (the run's speed drifts between epochs; neighbours see the same drift). Ray
runs without the dashboard, whose processes preempt the API (bench/status_latency.py
measures both).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import threading
import time

import httpx
import numpy as np
from _common import temporary_server, write_result

from training_client import TrainingModuleClient
from training_client.cli import _sample


def poll(url: str, key: str, stop: threading.Event, latencies: list[float]) -> None:
    with httpx.Client(base_url=url, timeout=30, headers={"X-Session-Key": key}) as http:
        while not stop.is_set():
            tick = time.perf_counter()
            for path in ("/status", f"/monitor/{key}"):
                start = time.perf_counter()
                http.get(path).raise_for_status()
                latencies.append((time.perf_counter() - start) * 1000)
            stop.wait(max(0.0, 1.0 - (time.perf_counter() - tick)))


def samples_per_s(client: TrainingModuleClient, window: float) -> float:
    """The run's mean reported samples/s over `window` seconds (a reading a second)."""
    readings, end = [], time.monotonic() + window
    while time.monotonic() < end:
        live = client.monitor()["training"]["live"] or {}
        if live.get("samples_per_s"):
            readings.append(live["samples_per_s"])
        time.sleep(1)
    return statistics.fmean(readings) if readings else float("nan")


def window(server, pollers: list[TrainingModuleClient], trainer: TrainingModuleClient, seconds: float) -> dict:
    stop, latencies = threading.Event(), []
    threads = [threading.Thread(target=poll, args=(server.url, c.key, stop, latencies), daemon=True) for c in pollers]
    for t in threads:
        t.start()
    rate = samples_per_s(trainer, seconds)
    stop.set()
    for t in threads:
        t.join()
    row = {"sessions_polling": len(pollers), "samples_per_s": round(rate, 2), "calls": len(latencies)}
    if latencies:
        row.update(p50_ms=round(float(np.percentile(latencies, 50)), 2),
                   p99_ms=round(float(np.percentile(latencies, 99)), 2))
    return row


def prepared(server, train: str, test: str) -> TrainingModuleClient:
    client = server.client(timeout=120)
    client.start_session()
    client.set_parameters(epochs=50)  # outlasts every window
    client.upload_dataset(train, test)
    client.preprocess()
    client.wait_preprocessed()
    return client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", default="1,4,16")
    parser.add_argument("--window", type=float, default=30)
    parser.add_argument("--json")
    args = parser.parse_args()
    counts = [int(n) for n in args.sessions.split(",")]
    train, test = _sample("banking77_train.csv"), _sample("banking77_test.csv")
    with temporary_server(dashboard=False, max_sessions=max(counts) + 2) as (server, _):
        trainer, queued = prepared(server, train, test), prepared(server, train, test)
        pollers = []
        for _ in range(max(counts)):
            client = server.client()
            client.start_session()
            pollers.append(client)
        trainer.start_training()
        assert queued.start_training()["state"] == "queued"
        while not (trainer.monitor()["training"]["live"] or {}).get("samples_per_s"):
            time.sleep(0.5)
        time.sleep(20)  # past the first epochs' warm-up
        rows = [window(server, [], trainer, args.window)]
        for n in counts:
            rows += [window(server, pollers[:n], trainer, args.window), window(server, [], trainer, args.window)]
        still = trainer.status()["state"] == "training" and queued.status()["state"] == "queued"
        for client in (trainer, queued):
            client.stop_training()
    for i in range(1, len(rows), 2):  # each polled window against the unpolled ones either side
        alone = statistics.fmean([rows[i - 1]["samples_per_s"], rows[i + 1]["samples_per_s"]])
        rows[i]["throughput_vs_alone"] = round(rows[i]["samples_per_s"] / alone, 3)
    print(f"{'polling':>8}{'samples/s':>11}{'vs alone':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for row in rows:
        print(f"{row['sessions_polling']:>8}{row['samples_per_s']:>11}{row.get('throughput_vs_alone', '-'):>10}"
              f"{row.get('p50_ms', '-'):>9}{row.get('p99_ms', '-'):>9}")
    print(f"one run training and one queued throughout: {still}")
    write_result("sessions", {"rows": rows, "window_s": args.window, "training_throughout": still,
                              "cpus": os.cpu_count(), "machine": platform.platform()}, args.json)


if __name__ == "__main__":
    main()
