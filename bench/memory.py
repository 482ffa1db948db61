"""Peak memory (RSS) of the server's processes and the training worker during a real fine-tune.

    .venv/bin/python bench/memory.py [--train ../shared/data/sst2/train.csv] [--rows 4000] [--epochs 1]

Starts a server (`serve run`, Ray without the dashboard), trains the bundled
MiniLM on the first `rows` rows (batch 32, max length 128, the server's
defaults otherwise) and samples every process of that Ray instance with psutil
four times a second, grouped by role (the Ray actor class, or the program).
The training worker's own peak (`getrusage`, which sampling cannot miss) comes
from `/monitor` as `peak_rss_mb`.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil
from _common import temporary_server, write_result

SST2 = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "sst2"
RAY_PROGRAMS = ("raylet", "gcs_server", "serve run", "ray start", "plasma", "dashboard", "log_monitor", "monitor.py")


def role(cmdline: list[str]) -> str | None:
    """`ray::TrainingJob.run` -> TrainingJob; Ray's own programs by name; None for unrelated processes."""
    line = " ".join(cmdline)
    if line.startswith("ray::"):
        return line[5:].split()[0].split(".")[0].split(":")[0]
    return next((p for p in RAY_PROGRAMS if p in line), None)


def sample(peaks: dict[str, float], stop: threading.Event, own_pids: set[int]) -> None:
    while not stop.is_set():
        for proc in psutil.process_iter(["pid", "cmdline", "memory_info"]):
            info = proc.info
            name = role(info["cmdline"] or []) if info["pid"] not in own_pids else None
            if name and info["memory_info"]:
                peaks[name] = max(peaks[name], info["memory_info"].rss / 2**20)
        time.sleep(0.25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=SST2 / "train.csv")
    parser.add_argument("--test", type=Path, default=SST2 / "dev.csv")
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args()
    peaks: dict[str, float] = defaultdict(float)
    stop = threading.Event()
    with temporary_server(dashboard=False) as (server, tmp):
        train = tmp / "train.csv"
        with open(args.train, newline="") as src, open(train, "w", newline="") as dst:
            reader, writer = csv.reader(src), csv.writer(dst)
            writer.writerows(row for _, row in zip(range(args.rows + 1), reader))
        sampler = threading.Thread(target=sample, args=(peaks, stop, {os.getpid()}), daemon=True)
        sampler.start()
        client = server.client(timeout=300)
        client.start_session(force_restart=True)
        client.set_parameters(epochs=args.epochs)
        client.upload_dataset(train, args.test)
        client.preprocess()
        client.wait_preprocessed()
        client.start_training()
        final = client.wait_trained(poll_s=1.0)
        stop.set()
        sampler.join()
    if final["state"] != "trained":
        raise SystemExit(f"training ended {final['state']}: {final.get('error')}")
    worker_peak = final["training"]["live"].get("peak_rss_mb")
    print(f"{'process (role)':<28}{'peak RSS MiB':>14}")
    for name, mib in sorted(peaks.items(), key=lambda kv: -kv[1]):
        print(f"{name:<28}{mib:>14.0f}")
    print(f"\ntraining worker peak (getrusage, rank 0): {worker_peak} MiB; accuracy {final['metrics'].get('accuracy')}")
    write_result("memory", {"peak_rss_mib": dict(peaks), "train_worker_peak_rss_mib": worker_peak,
                            "metrics": final["metrics"], "args": {k: str(v) for k, v in vars(args).items()},
                            "machine": platform.platform(), "cpus": os.cpu_count()}, args.json)


if __name__ == "__main__":
    main()
