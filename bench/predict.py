"""Inference: requests/s and p50/p99 latency of the model deployment (torch and ONNX int8) against a plain
`transformers` pipeline called in a loop, in the same run.

    .venv/bin/python bench/predict.py [--epochs N] [--cpus N] [--requests 400] [--clients 1,8,32]
        [--runtimes torch,onnx-int8] [--max-batch-size 32] [--batch-wait-s 0.01] [--json PATH]
    .venv/bin/python bench/predict.py --baseline-only --model DIR [--requests 400] [--cpus N]

A server (`serve run`, Ray without the dashboard) trains the default model on the bundled BANKING77 sample with
the server's defaults (`--epochs N` shortens it), and the model archive is downloaded. Then, one text per call:

- `pipeline`: `transformers.pipeline("text-classification", model=<downloaded model>)` called in a loop in this
  process, torch threads = `--cpus`, while the server sits idle;
- each runtime in `--runtimes`: `POST /deploy/{key}` with that `runtime`, one replica of `--cpus` CPUs (its torch
  threads too) and `max_batch_size` 32, so the replica batches concurrent calls itself; then 1, 8 and 32 clients
  (threads, one HTTP client each, on 127.0.0.1) share `--requests` calls of `POST /predict/{key}`.

`--cpus` defaults to half the cores (1 on a 2-core machine): the replica gets them, and the rest is left to what
serves and sends its calls (the Serve proxy, the ingress, this script's clients), which share the machine; the
pipeline gets the same threads, so the ratio compares serving with batching against one call at a time, not
thread counts. Labels: the ONNX int8 deployment's against the torch deployment's, and the torch deployment's
against the pipeline's (the same model, so 100%), over the sample's test texts. A barely trained model has close
to uniform probabilities, where int8 flips more labels, so measure the agreement on the default training.

Writes bench/results/predict.json; exits 1 when any call failed (a status other than 200, or no answer). The
ratios against the targets (deployment at 32 clients >= 2x the pipeline; ONNX int8 >= 1.5x torch at 32 clients;
>= 99% label agreement) are reported, not asserted. With `--baseline-only`, only the pipeline runs (no server,
no Ray), on the model folder given, and the result is written only with `--json`.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import platform
import tarfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
from _common import temporary_server, train_through_api, write_result

from training_client.cli import _sample
from training_client.client import auth_headers

# Where a call's CPU goes: the processes that serve it, by Ray's process title (what `ps` shows).
COMPONENTS = {"proxy": "ray::ProxyActor", "ingress": "ServeReplica:training_module:",
              "model replica": "ServeReplica:model-", "session actor": "ray::SessionActor"}
TARGETS = {"torch@32/pipeline": 2.0, "onnx-int8/torch@32": 1.5, "agreement onnx-int8/torch": 0.99}


def read_texts(path: str | Path) -> list[str]:
    with open(path, newline="") as f:
        return [row["text"] for row in csv.DictReader(f)]


def summary(latencies: list[float], wall: float, calls: int) -> dict:
    """Answered calls per second over the wall time of all `calls`, and the answered calls' latency."""
    ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {"rps": round(len(latencies) / wall, 2), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "calls": calls, "errors": calls - len(latencies),
            "wall_s": round(wall, 2)}


# ---- the baseline: one process, one call at a time ------------------------------------------------------------
def pipeline_loop(model_dir: str | Path, texts: list[str], requests: int, cpus: int, warmup: int = 10) -> tuple:
    """`requests` calls of `pipeline(text)` cycling over `texts`. Returns the summary and the label of each of the
    first len(texts) calls (one per text, for the agreement)."""
    import torch
    from transformers import pipeline

    torch.set_num_threads(cpus)
    classify = pipeline("text-classification", model=str(model_dir), device="cpu")
    for text in texts[:warmup]:
        classify(text, truncation=True)
    latencies, labels = [], []
    started = time.perf_counter()
    for i in range(requests):
        call = time.perf_counter()
        answer = classify(texts[i % len(texts)], truncation=True)
        latencies.append(time.perf_counter() - call)
        if i < len(texts):
            labels.append(answer[0]["label"])
    result = summary(latencies, time.perf_counter() - started, requests)
    return {**result, "clients": 1, "torch_threads": torch.get_num_threads()}, labels


# ---- the deployment, through the API -------------------------------------------------------------------------
def cpu_seconds() -> Counter:
    """CPU seconds used so far by each serving component, and by this script (its client threads)."""
    import psutil

    used: Counter = Counter()
    for process in psutil.process_iter(["cmdline", "cpu_times"]):
        command, times = " ".join(process.info["cmdline"] or []), process.info["cpu_times"]
        for name, marker in COMPONENTS.items():
            if times and marker in command:
                used[name] += times.user + times.system
    mine = psutil.Process().cpu_times()
    used["bench clients"] = mine.user + mine.system
    return used


def load(url: str, key: str, texts: list[str], clients: int, requests: int, timeout_s: float = 120,
         floor: bool = False, per_call: int = 1) -> dict:
    """`clients` threads, one HTTP client each, share `requests` calls of `per_call` texts each, back to back.
    With `floor`, the calls are GET /healthcheck instead: what the HTTP path carries with no model behind it."""
    taken = itertools.count()  # next() on a count is atomic under the GIL: each call index is taken once
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: Counter = Counter()
    ready = threading.Barrier(clients + 1, timeout=120)  # broken, not waited on forever, if a client fails

    def client() -> None:
        with httpx.Client(base_url=url, headers=auth_headers(), timeout=timeout_s) as http:
            http.get("/healthcheck")  # the connection is open before the clock starts
            ready.wait()
            while (i := next(taken)) < requests:
                call = time.perf_counter()
                try:
                    status = (http.get("/healthcheck") if floor else
                              http.post(f"/predict/{key}", json={"texts": [texts[(i * per_call + j) % len(texts)]
                                                                       for j in range(per_call)]})).status_code
                except httpx.HTTPError as e:
                    status = type(e).__name__
                took = time.perf_counter() - call
                with lock:
                    statuses[str(status)] += 1
                    if status == 200:
                        latencies.append(took)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    ready.wait()
    started, cpu_before = time.perf_counter(), cpu_seconds()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu_before
    return {**summary(latencies, wall, requests), "clients": clients, "texts_per_call": per_call,
            "texts_per_s": round(len(latencies) * per_call / wall, 1), "statuses": dict(statuses),
            "cpu_ms_per_call": {name: round(cpu[name] * 1000 / requests, 2) for name in [*COMPONENTS, "bench clients"]}}


def predicted_labels(client, texts: list[str], per_call: int) -> list[str]:
    labels = []
    for i in range(0, len(texts), per_call):
        labels += [p["label"] for p in client.predict(texts[i:i + per_call])["predictions"]]
    return labels


def agreement(a: list[str], b: list[str]) -> float:
    n = min(len(a), len(b))
    return round(sum(x == y for x, y in zip(a[:n], b[:n])) / n, 4) if n else float("nan")


def deploy(client, runtime: str, args) -> dict:
    if client.deployment()["deployment"]["state"] != "none":  # one runtime at a time: the last one is removed
        client.undeploy()
    client.deploy(runtime=runtime, num_cpus=args.cpus, max_batch_size=args.max_batch_size,
                  batch_wait_timeout_s=args.batch_wait_s, min_replicas=1, max_replicas=1)
    status = client.wait_deployed(timeout_s=600)["deployment"]
    if status["state"] != "ready":
        raise SystemExit(f"the {runtime} deployment is {status['state']}: {status.get('message')}")
    return status


def measure_deployment(server, client, runtime: str, texts: list[str], args) -> tuple[dict, list[str]]:
    status = deploy(client, runtime, args)
    labels = predicted_labels(client, texts, status["options"]["max_inputs_per_call"])  # warms it up too
    load(server.url, client.key, texts, max(args.clients), args.warmup)  # and at its largest batches
    levels = {}
    top, n = max(args.clients), args.texts_per_call
    # The last level: clients that send their inputs in lists share a call's fixed cost among its texts.
    for name, clients, per_call in [*((str(c), c, 1) for c in args.clients), (f"{top}x{n}", top, n)]:
        levels[name] = row = load(server.url, client.key, texts, clients, args.requests // per_call, per_call=per_call)
        print(f"{runtime:<10} {name:>5} clients {row['rps']:8.1f} requests/s ({row['texts_per_s']:.0f} texts/s)  "
              f"p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  errors {row['errors']}  "
              f"CPU ms per call {row['cpu_ms_per_call']}", flush=True)
    return {"deployment": {k: status.get(k) for k in ("options", "model", "replicas")}, "levels": levels}, labels


def archive_bytes(client, fmt: str | None) -> int | str:
    """The size of GET /download_model/{key} (in `fmt`), or why it could not be had."""
    r = client.http.get(f"/download_model/{client.key}", params={"format": fmt} if fmt else None, timeout=600)
    return len(r.content) if r.status_code == 200 else f"HTTP {r.status_code}: {r.text[:200]}"


# ---- the report ----------------------------------------------------------------------------------------------
def ratios(baseline: dict, runs: dict) -> dict:
    top = str(max(int(c) for run in runs.values() for c in run["levels"] if c.isdigit())) if runs else None
    out = {f"{rt}@{top}/pipeline": runs[rt]["levels"][top]["rps"] / baseline["rps"] for rt in runs}
    lists = {name for run in runs.values() for name in run["levels"] if not name.isdigit()}
    out.update({f"{rt}@{name} texts/s / pipeline": runs[rt]["levels"][name]["texts_per_s"] / baseline["rps"]
                for rt in runs for name in lists})
    if "torch" in runs and "onnx-int8" in runs:
        out[f"onnx-int8/torch@{top}"] = runs["onnx-int8"]["levels"][top]["rps"] / runs["torch"]["levels"][top]["rps"]
    return {k: round(v, 3) for k, v in out.items()}


def print_table(baseline: dict, runs: dict) -> None:
    print(f"\n{'arm':<22}{'clients':>8}{'requests/s':>12}{'texts/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
          f"{'texts/s x pipeline':>20}")
    print(f"{'pipeline loop':<22}{1:>8}{baseline['rps']:>12.1f}{baseline['rps']:>9.1f}{baseline['p50_ms']:>9.1f}"
          f"{baseline['p99_ms']:>9.1f}{baseline['errors']:>8}{1.0:>20.2f}")
    for runtime, run in runs.items():
        for clients, row in run["levels"].items():
            print(f"{runtime + ' deployment':<22}{clients:>8}{row['rps']:>12.1f}{row['texts_per_s']:>9.0f}"
                  f"{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}{row['errors']:>8}"
                  f"{row['texts_per_s'] / baseline['rps']:>20.2f}")


def targets(found: dict) -> dict:
    return {name: {"value": found.get(name), "target": f">= {goal}", "met": found.get(name, -1) >= goal}
            for name, goal in TARGETS.items() if name in found}


def run_baseline_only(args) -> None:
    texts = read_texts(args.test)
    baseline, _ = pipeline_loop(args.model, texts, args.requests, args.cpus)
    print(f"pipeline loop: {baseline['rps']:.1f} calls/s  p50 {baseline['p50_ms']:.1f} ms  "
          f"p99 {baseline['p99_ms']:.1f} ms  ({baseline['torch_threads']} torch threads)")
    if args.json:
        write_result("predict", {"pipeline": baseline, "args": {k: str(v) for k, v in vars(args).items()}}, args.json)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", default=_sample("banking77_train.csv"))
    parser.add_argument("--test", default=_sample("banking77_test.csv"))
    parser.add_argument("--epochs", type=int, help="training epochs (default: the server's, auto)")
    parser.add_argument("--cpus", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                        help="the replica's CPUs and torch threads, and the pipeline's threads")
    parser.add_argument("--requests", type=int, default=400, help="calls per level (and of the pipeline)")
    parser.add_argument("--clients", type=lambda s: [int(c) for c in s.split(",")], default=[1, 8, 32])
    parser.add_argument("--runtimes", type=lambda s: s.split(","), default=["torch", "onnx-int8"])
    parser.add_argument("--texts-per-call", type=int, default=8,
                        help="texts per call in the last level (the most clients, sending lists)")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--batch-wait-s", type=float, default=0.01)
    parser.add_argument("--warmup", type=int, default=64, help="calls at the most clients before the levels")
    parser.add_argument("--baseline-only", action="store_true", help="only the pipeline loop, on --model")
    parser.add_argument("--model", help="with --baseline-only: a model folder (config, weights, tokenizer)")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.baseline_only:
        if not args.model:
            parser.error("--baseline-only needs --model DIR")
        return run_baseline_only(args)

    texts = read_texts(args.test)
    config = {"epochs": args.epochs} if args.epochs else {}
    with temporary_server(dashboard=False) as (server, tmp):
        client = server.client(timeout=300)
        held, final, trained_s = train_through_api(client, Path(args.train), Path(args.test), **config)
        print(f"trained in {trained_s:.0f} s: {final.get('metrics')}", flush=True)
        archive = client.download_model(tmp / "model.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(tmp / "downloaded", filter="data")
        baseline, pipeline_labels = pipeline_loop(tmp / "downloaded" / "model", texts, args.requests, args.cpus)
        print(f"{'pipeline':<10} {1:>3} client  {baseline['rps']:8.1f} calls/s     p50 {baseline['p50_ms']:7.1f} ms  "
              f"p99 {baseline['p99_ms']:7.1f} ms", flush=True)
        floor = load(server.url, client.key, texts, max(args.clients), args.requests, floor=True)
        print(f"{'floor':<10} {max(args.clients):>3} clients {floor['rps']:8.1f} GET /healthcheck/s  "
              f"CPU ms per call {floor['cpu_ms_per_call']}", flush=True)
        runs, labels = {}, {}
        for runtime in args.runtimes:
            runs[runtime], labels[runtime] = measure_deployment(server, client, runtime, texts, args)
        sizes = {"torch": archive.stat().st_size,
                 **{rt: archive_bytes(client, rt) for rt in args.runtimes if rt != "torch"}}

    agreed = {f"{rt}/pipeline": agreement(labels[rt], pipeline_labels) for rt in runs}
    if "torch" in labels:
        agreed.update({f"{rt}/torch": agreement(labels[rt], labels["torch"]) for rt in runs if rt != "torch"})
    found = ratios(baseline, runs)
    errors = floor["errors"] + sum(row["errors"] for run in runs.values() for row in run["levels"].values())
    print_table(baseline, runs)
    print(f"{'HTTP floor (no model)':<22}{max(args.clients):>8}{floor['rps']:>12.1f}{'':>9}{floor['p50_ms']:>9.1f}"
          f"{floor['p99_ms']:>9.1f}{floor['errors']:>8}{floor['rps'] / baseline['rps']:>20.2f}")
    print(f"\nratios: {found}\nlabel agreement: {agreed}\narchive bytes: {sizes}\nfailed calls: {errors}")
    write_result("predict", {
        "args": {k: str(v) for k, v in vars(args).items()}, "pipeline": baseline, "deployments": runs,
        "http_floor": floor,
        "ratios": found, "agreement": agreed,
        "targets": targets({**found, **{f"agreement {k}": v for k, v in agreed.items()}}),
        "errors": errors, "archive_bytes": sizes, "training": {"config": held, "seconds": round(trained_s, 1),
                                                                "metrics": final.get("metrics")},
        "texts": len(texts), "cpus": os.cpu_count(), "machine": platform.platform(), "processor": platform.processor(),
    }, args.json)
    if errors:
        raise SystemExit(f"{errors} calls failed")


if __name__ == "__main__":
    main()
