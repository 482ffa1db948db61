"""Preprocessing throughput: the Ray Data cache build against one process calling the fast tokenizer.

    .venv/bin/python bench/preprocess_throughput.py [--train ../shared/data/sst2/train.csv]
        [--test ../shared/data/sst2/dev.csv] [--repeats 3] [--max-length 128]

Both do the same work on the same files: read the CSV, tokenise with the
bundled model's fast tokenizer (truncation, no padding), map labels to ids and
write Parquet. Alternating, `repeats` times:

- `single_process`: `csv` + the tokenizer in batches of 1,000 + pyarrow, in this process.
- `ray_data`: `ray.init()` (Ray start-up included) and the server's own
  `build_cache` (Ray Data `read_csv`, `map_batches`, `write_parquet`), then a
  second `build_cache` on the same Ray (warm workers, reported apart) and `ray.shutdown()`.

Then the cost of a cache hit: `build_cache` again on a running Ray with the same
files and settings, and `/preprocess` through a real server twice (the second
call reuses the cache the first wrote).

Cold start (what `/preprocess` costs on a running server), alternating, `repeats` times on one running Ray:

- `plain_cold`: the plain loop above in a fresh Python process (start-up and imports included).
- `job_cold`: `build_cache` in a fresh actor, as the preprocessing job runs it (actor start and imports
  included): in its own process up to `preprocess_in_process_rows` rows (the bundled sample), else Ray Data.
- `job_cold_ray_data`: the same with every upload sent to Ray Data (`preprocess_in_process_rows=0`).

Each job arm gets a Ray started for it (not timed), where its first job is cold; a second job on the same Ray
(`..._warm`) shows a server that preprocessed before (Ray's pooled workers have the tokenizer imported).

`--check-model` also trains the bundled model for one epoch (seed 42) through two real servers, one building
the cache in process and one on Ray Data, and compares their test metrics and weights.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from _common import temporary_server, train_through_api, write_result

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "sst2"


def single_process(train: Path, test: Path, out: Path, model_dir: str, max_length: int) -> int:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, use_fast=True)
    rows = 0
    for split, path in (("train", train), ("test", test)):
        with open(path, newline="") as f:
            records = list(csv.DictReader(f))
        labels = sorted({r["label"] for r in records})
        label2id = {label: i for i, label in enumerate(labels)}
        writer = None
        for i in range(0, len(records), 1000):
            part = records[i: i + 1000]
            enc = tok([r["text"] for r in part], truncation=True, max_length=max_length,
                      return_attention_mask=False)
            table = pa.table({"input_ids": pa.array(enc["input_ids"], type=pa.list_(pa.int32())),
                              "labels": pa.array([label2id[r["label"]] for r in part], type=pa.int64())})
            writer = writer or pq.ParquetWriter(out / f"{split}.parquet", table.schema)
            writer.write_table(table)
        writer.close()
        rows += len(records)
    return rows


def cache_spec(train: Path, test: Path, cache_dir: Path, model_dir: str, max_length: int, overwrite: bool,
               in_process_rows: int | None = 0):
    """The preprocessing job's own spec for these files, as the server builds it (on Ray Data by default)."""
    from train_jobs.data.dataset import inspect_upload
    from train_jobs.specs import PreprocessSpec

    summary = inspect_upload({"train": (train, train.name), "test": (test, test.name)}, "sequence_classification")
    return PreprocessSpec(job_id="bench", dataset=summary, model_dir=model_dir, max_seq_length=max_length,
                          cache_dir=str(cache_dir), overwrite_cache=overwrite, in_process_rows=in_process_rows)


def ray_data(spec) -> dict:
    """Seconds for `ray.init`, the first build (worker processes start and import), a second build (warm)."""
    import ray

    from train_jobs.data.preprocess import build_cache

    marks = [time.perf_counter()]
    ray.init(include_dashboard=False, log_to_driver=False)
    try:
        for _ in range(2):
            marks.append(time.perf_counter())
            meta = build_cache(spec, lambda *_: None)
        marks.append(time.perf_counter())
    finally:
        ray.shutdown()
    return {"rows": sum(meta["rows"].values()), "init_s": marks[1] - marks[0], "first_build_s": marks[2] - marks[1],
            "warm_build_s": marks[3] - marks[2]}


def cache_hit_in_process(spec) -> float:
    import ray

    from train_jobs.data.preprocess import build_cache

    ray.init(include_dashboard=False, log_to_driver=False)
    try:
        start = time.perf_counter()
        meta = build_cache(spec.model_copy(update={"overwrite_cache": False}), lambda *_: None)
        assert meta["reused"], meta
        return time.perf_counter() - start
    finally:
        ray.shutdown()


def through_the_api(train: Path, test: Path) -> dict:
    out = {}
    with temporary_server(dashboard=False) as (server, _):
        client = server.client(timeout=300)
        client.start_session(force_restart=True)
        client.upload_dataset(train, test)
        for name in ("api_cold_s", "api_cache_hit_s"):
            start = time.perf_counter()
            client.preprocess()
            done = client.wait_preprocessed(poll_s=0.05)
            out[name] = time.perf_counter() - start
            assert done["preprocess"]["cache"]["reused"] == (name == "api_cache_hit_s"), done["preprocess"]
    return out


def plain_cold(train: Path, test: Path, out: Path, model_dir: str, max_length: int) -> float:
    """Seconds for the plain loop in a fresh Python process, start-up and imports included."""
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--plain-loop-into", str(out), "--train", str(train), "--test",
                    str(test), "--max-length", str(max_length), "--model-dir", model_dir], check=True)
    return time.perf_counter() - start


def job_cold(spec) -> tuple[float, str]:
    """Seconds for `build_cache` in a fresh actor on the running Ray (as the preprocessing job runs it), and the
    path it took."""
    import ray

    @ray.remote(num_cpus=0, max_restarts=0)
    class Job:
        def run(self, spec) -> str:
            from train_jobs.data.preprocess import build_cache

            messages = []
            build_cache(spec, lambda _f, message, _c: messages.append(message))
            return messages[-1]

    start = time.perf_counter()
    job = Job.remote()
    message = ray.get(job.run.remote(spec))
    took = time.perf_counter() - start
    ray.kill(job)
    return took, message


def cold_start(args, model_dir: str, tmp: Path) -> dict:
    """The cold-start arms, alternating; each job arm on a Ray started for it (not timed): its first job there is
    cold (`job_cold`, `job_cold_ray_data`), a second one after it finds Ray's workers warm (`..._warm`)."""
    import ray

    specs = {name: cache_spec(args.train, args.test, tmp / name, model_dir, args.max_length, True, rows)
             for name, rows in (("job_cold", None), ("job_cold_ray_data", 0))}
    runs: dict[str, list[float]] = {k: [] for k in ("plain_cold", *specs, *(f"{name}_warm" for name in specs))}
    paths = {}
    for repeat in range(args.repeats):
        out = tmp / f"plain-{repeat}"
        out.mkdir()
        runs["plain_cold"].append(plain_cold(args.train, args.test, out, model_dir, args.max_length))
        for name, spec in specs.items():
            ray.init(include_dashboard=False, log_to_driver=False)
            try:
                took, paths[name] = job_cold(spec)
                runs[name].append(took)
                runs[f"{name}_warm"].append(job_cold(spec)[0])
            finally:
                ray.shutdown()
        print(f"cold repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in runs.items()), flush=True)
    medians = {k: statistics.median(v) for k, v in runs.items()}
    return {"cold_median_s": medians, "cold_runs_s": runs, "cold_paths": paths,
            "cold_ratios_to_plain_cold": {k: medians["plain_cold"] / v for k, v in medians.items()}}


def weights_sha(client, tmp: Path, name: str) -> str:
    archive = client.download_model(tmp / f"{name}.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp / name, filter="data")
    return hashlib.sha256((tmp / name / "model" / "model.safetensors").read_bytes()).hexdigest()


def check_model(train: Path, test: Path, tmp: Path) -> dict:
    """One epoch, seed 42, through a server that tokenises in process and one that uses Ray Data: the same model?"""
    out = {}
    for name, rows in (("in_process", None), ("ray_data", 0)):
        with temporary_server(dashboard=False, **({} if rows is None else {"preprocess_in_process_rows": rows})) as (
                server, _):
            client = server.client(timeout=300)
            _, final, _ = train_through_api(client, train, test, epochs=1, seed=42)
            message = client.preprocess_status()["preprocess"]["message"]
            out[name] = {"metrics": final["metrics"], "history": final["history"],
                         "weights_sha256": weights_sha(client, tmp, name), "preprocess_message": message}
        print(f"model check {name}: {out[name]['metrics']}", flush=True)
    out["same_metrics"] = out["in_process"]["metrics"] == out["ray_data"]["metrics"]
    out["same_history"] = out["in_process"]["history"] == out["ray_data"]["history"]
    out["same_weights"] = out["in_process"]["weights_sha256"] == out["ray_data"]["weights_sha256"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=SHARED / "train.csv")
    parser.add_argument("--test", type=Path, default=SHARED / "dev.csv")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--json")
    parser.add_argument("--check-model", action="store_true", help="also train through both paths and compare")
    parser.add_argument("--plain-loop-into", type=Path, help=argparse.SUPPRESS)  # plain_cold's own process
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_loop_into:
        single_process(args.train, args.test, args.plain_loop_into, args.model_dir, args.max_length)
        return
    from train_jobs.models.lookup import bundled_model_dir

    model_dir = str(bundled_model_dir())
    times: dict[str, list[float]] = {"single_process": [], "ray_data": []}
    parts: list[dict] = []
    rows = 0
    with tempfile.TemporaryDirectory(prefix="tm-prep-") as tmp:
        spec = cache_spec(args.train, args.test, Path(tmp) / "cache", model_dir, args.max_length, overwrite=True)
        for repeat in range(args.repeats):
            for arm in times:
                out = Path(tmp) / f"{arm}-{repeat}"
                out.mkdir()
                if arm == "single_process":
                    start = time.perf_counter()
                    rows = single_process(args.train, args.test, out, model_dir, args.max_length)
                    times[arm].append(time.perf_counter() - start)
                else:  # the figure: Ray start-up and the first build, as a fresh server meets them
                    parts.append(ray_data(spec))
                    times[arm].append(parts[-1]["init_s"] + parts[-1]["first_build_s"])
                print(f"repeat {repeat + 1} {arm:<15}{times[arm][-1]:7.2f} s  {rows / times[arm][-1]:9.0f} rows/s"
                      + ("  (ray.init {init_s:.2f} s, first build {first_build_s:.2f} s, warm build "
                         "{warm_build_s:.2f} s)".format(**parts[-1]) if arm == "ray_data" else ""), flush=True)
        hit = cache_hit_in_process(spec)
        cold = cold_start(args, model_dir, Path(tmp))
        model = check_model(args.train, args.test, Path(tmp)) if args.check_model else None
    api = through_the_api(args.train, args.test)
    medians = {arm: statistics.median(t) for arm, t in times.items()}
    rates = {arm: rows / t for arm, t in medians.items()}
    print(f"\n{'arm':<16}{'median s':>10}{'rows/s':>10}")
    for arm in times:
        print(f"{arm:<16}{medians[arm]:>10.2f}{rates[arm]:>10.0f}")
    warm = statistics.median(p["warm_build_s"] for p in parts)
    init = statistics.median(p["init_s"] for p in parts)
    print(f"ray_data / single_process: {rates['ray_data'] / rates['single_process']:.2f}x ({rows} rows, Ray start-up "
          f"included); on a running Ray with warm workers {medians['single_process'] / warm:.2f}x "
          f"({warm:.2f} s); ray.init alone {init:.2f} s")
    print(f"cache hit: build_cache {hit:.3f} s; /preprocess through the API: cold {api['api_cold_s']:.1f} s, "
          f"cache hit {api['api_cache_hit_s']:.2f} s")
    print(f"cold start ({rows} rows), median s and ratio to the plain loop in a fresh process; the job's path: "
          f"{cold['cold_paths']['job_cold']}")
    for arm, took in cold["cold_median_s"].items():
        print(f"  {arm:<24}{took:6.2f} s  {cold['cold_ratios_to_plain_cold'][arm]:5.2f}x")
    if model:
        print(f"model check: same metrics {model['same_metrics']}, same history {model['same_history']}, "
              f"same weights {model['same_weights']}")
    write_result("preprocess_throughput", {
        "rows": rows, "median_s": medians, "rows_per_s": rates,
        "ratio_ray_data_to_single_process": rates["ray_data"] / rates["single_process"],
        "warm_build_median_s": warm, "ratio_warm": medians["single_process"] / warm, "ray_init_median_s": init,
        "cache_hit_build_cache_s": hit, **api, **cold, "model_check": model,
        "runs_s": times, "ray_data_parts": parts, "cpus": os.cpu_count(),
        "machine": platform.platform(), "args": {k: str(v) for k, v in vars(args).items()},
    }, args.json)


if __name__ == "__main__":
    main()
