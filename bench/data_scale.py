"""Preprocessing and one training epoch at growing data sizes, from a `file://` Parquet folder: rows/s and the
peak memory of every process.

    .venv/bin/python bench/data_scale.py [--sizes 10000,100000,1000000] [--train-sizes ...]
        [--data training_client/sample_data/banking77_train.csv] [--shards 8] [--batch-size 256] [--set k=v]

For each size, a synthetic train split of that many rows (the rows of `--data` repeated, each text varied by a
number so no two repeats tokenise alike) is written as `--shards` Parquet shards under the server's data root,
with a test split of 2,000 rows. One real server (`serve run`, no dashboard, the tiny BERT of tests/tiny_model.py
as `tiny-bert`) then, per size, in a new session: takes the folder by `train_uri=file://...`, preprocesses it
(timed from /preprocess to preprocessed: listing, the labels' pass over the whole, tokenising, writing the cache)
and, for the sizes in `--train-sizes`, trains one epoch (validation_split 0.1, batch `--batch-size`, max length
64). Training rows/s counts the rows trained on over the steps' own seconds (the run's timings: first step and
steps), and over the wall time from /training/start to trained.

Every process of the Ray instance is sampled with psutil every 0.2 s during each phase, grouped by role (the Ray
actor or task name, Ray's own programs by name): the peak RSS of each role, and its peak private memory (RSS
less shared pages: plasma's shared memory, mapped by every worker that reads the object store, inflates RSS).

Targets (issue 19, item 2): preprocessing rows/s at the largest size no lower than at the one before it; the
peak RSS of any process less than 2x from the one to the other. Results go to bench/results/data_scale.json
(or `--json`). The server's code is the one on PYTHONPATH, so a run with another checkout's code compares it.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from _common import write_result
from memory import role

from training_client.local_server import ServerProcess

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "training_client" / "sample_data" / "banking77_train.csv"
TEST_ROWS = 2000


class Sampler:
    """Peak RSS and private memory per role over the Ray instance's processes, between start() and stop()."""

    def __init__(self, every_s: float = 0.2):
        self.every_s, self.own = every_s, {os.getpid()}
        self.rss: dict[str, float] = defaultdict(float)
        self.private: dict[str, float] = defaultdict(float)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for proc in psutil.process_iter(["pid", "cmdline", "memory_info"]):
                info = proc.info
                name = role(info["cmdline"] or []) if info["pid"] not in self.own else None
                mem = info["memory_info"]
                if name and mem:
                    self.rss[name] = max(self.rss[name], mem.rss / 2**20)
                    self.private[name] = max(self.private[name], (mem.rss - mem.shared) / 2**20)
            self._stop.wait(self.every_s)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def result(self) -> dict:
        return {name: {"rss_mib": round(self.rss[name]), "private_mib": round(self.private[name])}
                for name in sorted(self.rss, key=lambda n: -self.rss[n])}


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{"text": r["text"], "label": r["label"]} for r in csv.DictReader(f)]


def write_folder(rows: list[dict], n: int, folder: Path, shards: int) -> None:
    """`n` rows cycled from `rows`, the k-th repeat's texts ending in " k", as `shards` Parquet files."""
    per = -(-n // shards)
    for s in range(shards):
        idx = range(s * per, min(n, (s + 1) * per))
        if not idx:
            break
        texts = [rows[i % len(rows)]["text"] + (f" {i // len(rows)}" if i >= len(rows) else "") for i in idx]
        labels = [rows[i % len(rows)]["label"] for i in idx]
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"text": texts, "label": labels}), folder / f"part-{s:05d}.parquet")


def steps_seconds(timings: dict | None) -> float | None:
    phases = (timings or {}).get("phases") or {}
    if "steps" not in phases:
        return None
    return phases["steps"]["s"] + phases.get("first_step", {}).get("s", 0.0)


def one_size(client, folder: Path, n: int, train: bool, args) -> dict:
    client.start_session(force_restart=True)
    client.set_parameters(model="tiny-bert", epochs=1, batch_size=args.batch_size, max_seq_length=64,
                          learning_rate=1e-3, validation_split=0.1, **dict(args.set))
    client.upload_dataset_uris(f"file://{folder}/train", f"file://{folder}/test")
    out: dict = {"rows": n}
    with Sampler() as mem:
        started = time.perf_counter()
        client.preprocess()
        client.wait_preprocessed(poll_s=0.2)
        took = time.perf_counter() - started
    out["preprocess"] = {"s": round(took, 2), "rows_per_s": round(n / took), "peak_mib": mem.result()}
    print(f"{n:>9} rows: preprocessing {took:.1f} s, {n / took:,.0f} rows/s", flush=True)
    if not train:
        return out
    with Sampler() as mem:
        started = time.perf_counter()
        client.start_training()
        final = client.wait_trained(poll_s=1.0)
        took = time.perf_counter() - started
    if final["state"] != "trained":
        raise SystemExit(f"training at {n} rows ended {final['state']}: {final.get('error')}")
    newest = client.runs()[0]
    run = client.run(newest.get("run_id") or newest.get("id"))
    timings = run.get("timings")
    trained = (run.get("hyperparameters") or {}).get("train_rows") or n - round(0.1 * n)
    steps_s = steps_seconds(timings)
    out["train"] = {"wall_s": round(took, 2), "train_rows": trained, "rows_per_s_wall": round(trained / took),
                    "rows_per_s_steps": round(trained / steps_s) if steps_s else None, "timings": timings,
                    "metrics": final.get("metrics"), "peak_mib": mem.result()}
    print(f"{n:>9} rows: one epoch {took:.1f} s wall, {trained / took:,.0f} rows/s wall"
          + (f", {trained / steps_s:,.0f} rows/s in steps" if steps_s else ""), flush=True)
    return out


def compare(results: list[dict]) -> dict:
    """The targets between the two largest sizes: preprocessing rows/s no lower, every role's peak RSS < 2x."""
    if len(results) < 2:
        return {}
    a, b = results[-2], results[-1]
    verdict = {"sizes": [a["rows"], b["rows"]],
               "preprocess_rows_per_s_ratio": round(b["preprocess"]["rows_per_s"] / a["preprocess"]["rows_per_s"], 2)}
    growth = {}
    for phase in ("preprocess", "train"):
        if phase in a and phase in b:
            small = a[phase]["peak_mib"]
            growth[phase] = {name: round(v["rss_mib"] / small[name]["rss_mib"], 2)
                             for name, v in b[phase]["peak_mib"].items() if small.get(name, {}).get("rss_mib")}
    verdict["peak_rss_growth"] = growth  # by role: a pooled worker changes roles, so this is a guide only
    # The target: the largest process's peak. Roles are names, and one pooled worker is named after the task it
    # runs when sampled (a read at 100k, a read holding a whole source shard at 1M): not one process growing.
    largest = {phase: round(max(v["rss_mib"] for v in b[phase]["peak_mib"].values())
                            / max(v["rss_mib"] for v in a[phase]["peak_mib"].values()), 2)
               for phase in growth}
    verdict["largest_process_growth"] = largest
    worst = max(largest.values(), default=0.0)
    verdict["met"] = {"preprocess_rows_per_s": verdict["preprocess_rows_per_s_ratio"] >= 1.0,
                      "peak_rss_under_2x": worst < 2.0, "worst_rss_growth": worst}
    return verdict


def setting(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    return key, int(value) if value.lstrip("-").isdigit() else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--train-sizes", default=None, help="sizes that also train one epoch (default: all)")
    parser.add_argument("--data", type=Path, default=SAMPLE, help="a CSV with text and label columns")
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--set", type=setting, action="append", default=[], help="a training config field k=v")
    parser.add_argument("--server", type=setting, action="append", default=[], help="a server setting k=v")
    parser.add_argument("--json")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    train_sizes = set(sizes) if args.train_sizes is None else {int(s) for s in args.train_sizes.split(",") if s}
    rows = read_rows(args.data)
    sys.path.insert(0, str(REPO / "tests"))
    from tiny_model import build_tiny_bert

    results = []
    with tempfile.TemporaryDirectory(prefix="tm-bench-") as tmp:
        root, logs = Path(tmp) / "storage", Path(tmp) / "logs"
        logs.mkdir()
        build_tiny_bert(root / "models" / "tiny-bert")
        with ServerProcess(root, logs, dashboard=False, **dict(args.server)) as server:
            client = server.client(timeout=600)
            for n in sizes:
                folder = root / "data" / f"rows-{n}"
                write_folder(rows, n, folder / "train", args.shards)
                write_folder(rows[::-1], TEST_ROWS, folder / "test", 1)
                results.append(one_size(client, folder, n, n in train_sizes, args))
    verdict = compare(results)
    print(verdict)
    write_result("data_scale", {"results": results, "targets": verdict, "code": os.environ.get("PYTHONPATH", ""),
                                "args": {k: str(v) for k, v in vars(args).items()},
                                "machine": platform.platform(), "cpus": os.cpu_count()}, args.json)


if __name__ == "__main__":
    main()
