"""GPU check of the training path: Ray Data preprocessing and a Ray Train run with use_gpu.

    python bench/gpu_check.py --tokenizer DIR [--rows 20000] [--epochs 1] [--out result.json]

Self-contained for a GPU machine with no network: it starts a local Ray, builds a
randomly initialised BERT the size of all-MiniLM-L6-v2 (hidden 384, 6 layers) with
the tokenizer in DIR, writes synthetic labelled data, and drives the same session
actor and job actors the server uses (no HTTP: FastAPI is not needed there). It
reports the device the workers used, samples/s and the time per phase.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import ray

from cluster.session_actor import session_actor_handle
from cluster.settings import Settings
from train_jobs.dataset_files import summarise_dataset
from train_jobs.jobs import PreprocessJob, TrainingJob, launch

WORDS = {"pos": ["great", "superb", "moving", "brilliant"], "neg": ["awful", "dull", "tedious", "clumsy"]}


def write_data(path: Path, rows: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write("text,label\n")
        for _ in range(rows):
            label = rng.choice(["pos", "neg"])
            filler = " ".join(rng.choice(["the", "film", "plot", "was", "and", "it", "felt"]) for _ in range(20))
            f.write(f"{filler} {rng.choice(WORDS[label])} {filler},{label}\n")


def build_model(dest: Path, tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=384, num_hidden_layers=6,
                        num_attention_heads=12, intermediate_size=1536)
    BertModel(config).save_pretrained(dest)
    tokenizer.save_pretrained(dest)


def wait(actor, state: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = ray.get(actor.status.remote())
        if status["state"] != state:
            return status
        time.sleep(0.5)
    raise TimeoutError(f"still {state} after {timeout}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokenizer", required=True, help="folder with tokenizer.json (e.g. the bundled model's)")
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="tm-gpu-"))
    settings = Settings(storage_root=str(root))
    build_model(settings.models_dir / "minilm-size-bert", Path(args.tokenizer))
    ray.init()
    print("cluster resources:", ray.cluster_resources())
    session = session_actor_handle(settings)
    key = ray.get(session.start.remote(True))["key"]
    ray.get(session.update_config.remote(key, {"model": "minilm-size-bert", "epochs": args.epochs,
                                                "batch_size": args.batch_size, "eval_metrics": ["accuracy", "f1"]}))
    staging = Path(ray.get(session.session_dir.remote(key))) / ".staging"
    staging.mkdir(parents=True)
    write_data(staging / "train.csv", args.rows, 1)
    write_data(staging / "test.csv", 2000, 2)
    summary = summarise_dataset(staging / "train.csv", staging / "test.csv")
    for split in ("train", "test"):
        path = staging / f"{split}.csv"
        summary[split].update(path=str(path), sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    ray.get(session.set_dataset.remote(key, str(staging), summary))

    timings = {}
    start = time.perf_counter()
    spec = ray.get(session.begin_preprocess.remote(key))
    launch(PreprocessJob, spec["job_id"], spec)
    status = wait(session, "preprocessing", 600)
    timings["preprocess_s"] = round(time.perf_counter() - start, 1)
    assert status["state"] == "preprocessed", status

    start = time.perf_counter()
    spec = ray.get(session.begin_training.remote(key))
    launch(TrainingJob, spec["run_id"], spec)
    samples_per_s = []
    while (status := ray.get(session.status.remote()))["state"] == "training":
        live = status["training"]["live"]
        if live.get("phase") == "training" and live.get("samples_per_s"):
            samples_per_s.append(live["samples_per_s"])
        time.sleep(0.5)
    timings["train_s"] = round(time.perf_counter() - start, 1)
    result = {"state": status["state"], "error": status["error"], "device": status["training"]["live"].get("device"),
              "workers": status["training"]["live"].get("workers"), "timings": timings,
              "median_samples_per_s": sorted(samples_per_s)[len(samples_per_s) // 2] if samples_per_s else None,
              "final_metrics": status["training"]["final_metrics"], "model_ready": status["model_ready"],
              "rows": args.rows, "epochs": args.epochs, "batch_size": args.batch_size}
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    ray.shutdown()
    shutil.rmtree(root, ignore_errors=True)
    assert status["state"] == "trained", status


if __name__ == "__main__":
    main()
