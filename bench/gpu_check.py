"""GPU check of the training path: Ray Data preprocessing and a Ray Train run with use_gpu.

    python bench/gpu_check.py --tokenizer DIR [--rows 20000] [--epochs 1] [--out result.json]

Self-contained for a GPU machine with no network: it starts a local Ray, builds a
randomly initialised BERT the size of all-MiniLM-L6-v2 (hidden 384, 6 layers) with
the tokenizer in DIR, writes synthetic labelled data, and drives the server's own
service layer (cluster/service.py) as the routes do (no HTTP: FastAPI is not needed there). It
reports the device the workers used, the precision (bf16 autocast where the GPU
supports it), samples/s, tokens/s and the model FLOP utilisation: training FLOPs
per token (6 x non-embedding parameters + 12 x layers x hidden x sequence for
attention) x tokens/s over the GPU's dense peak for that precision.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import ray

from cluster.service import TrainingService
from cluster.settings import Settings
from cluster.uploads import UploadStream

WORDS = {"pos": ["great", "superb", "moving", "brilliant"], "neg": ["awful", "dull", "tedious", "clumsy"]}


def write_data(path: Path, rows: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write("text,label\n")
        for _ in range(rows):
            label = rng.choice(["pos", "neg"])
            filler = " ".join(rng.choice(["the", "film", "plot", "was", "and", "it", "felt"]) for _ in range(20))
            f.write(f"{filler} {rng.choice(WORDS[label])} {filler},{label}\n")


# Dense peak TFLOP/s by GPU name: bf16 tensor cores, and fp32 without TF32 (what fp32 autocast-off runs).
PEAK_TFLOPS = {"H200": (989, 67), "H100": (989, 67), "A100": (312, 19.5), "L40S": (362, 91.6), "L4": (121, 30.3),
               "A10": (125, 31.2)}


def peak_tflops(precision: str) -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    peaks = next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
    return None if peaks is None else peaks[0 if precision == "bf16" else 1]


def flops_per_token(config, seq_len: float) -> float:
    hidden, layers = config.hidden_size, config.num_hidden_layers
    per_layer = 4 * hidden * hidden + 2 * hidden * config.intermediate_size  # attention projections + MLP
    return 6 * layers * per_layer + 12 * layers * hidden * seq_len


def build_model(dest: Path, tokenizer_dir: Path):
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=384, num_hidden_layers=6,
                        num_attention_heads=12, intermediate_size=1536)
    BertModel(config).save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return config


BOUNDARY = "gpu-check-boundary"


def file_form(**files: Path) -> UploadStream:
    """Local files as the multipart body the service streams to disk, sent in chunks as a client sends them."""
    async def chunks():
        for field, path in files.items():
            yield (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="{path.name}"'
                   '\r\n\r\n').encode()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk
            yield b"\r\n"
        yield f"--{BOUNDARY}--\r\n".encode()
    return UploadStream(f"multipart/form-data; boundary={BOUNDARY}", chunks())


async def wait(service: TrainingService, state: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await service.status()
        if status["state"] != state:
            return status
        await asyncio.sleep(0.5)
    raise TimeoutError(f"still {state} after {timeout}s")


async def drive(service: TrainingService, args, data: Path) -> tuple[dict, list, dict]:
    """The server's use cases in order, as the routes call them: session, config, upload, preprocess, train."""
    key = (await service.start_session(True))["key"]
    await service.update_parameters(key, {"model": "minilm-size-bert", "epochs": args.epochs,
                                          "batch_size": args.batch_size, "eval_metrics": ["accuracy", "f1"]})
    await service.upload_dataset(key, file_form(train_file=data / "train.csv", test_file=data / "test.csv"))
    timings = {}
    start = time.perf_counter()
    await service.preprocess(key)
    status = await wait(service, "preprocessing", 600)
    timings["preprocess_s"] = round(time.perf_counter() - start, 1)
    assert status["state"] == "preprocessed", status

    start = time.perf_counter()
    await service.start_training(key)
    windows = []
    while (status := await service.status())["state"] == "training":
        live = status["training"]["live"]
        if live.get("phase") == "training" and live.get("samples_per_s") and live not in windows:
            windows.append(live)
        await asyncio.sleep(0.5)
    timings["train_s"] = round(time.perf_counter() - start, 1)
    return status, windows, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokenizer", required=True, help="folder with tokenizer.json (e.g. the bundled model's)")
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="tm-gpu-"))
    settings = Settings(storage_root=str(root), max_upload_mb=4096)
    model_config = build_model(settings.layout.models_dir / "minilm-size-bert", Path(args.tokenizer))
    data = root / "data"
    data.mkdir()
    write_data(data / "train.csv", args.rows, 1)
    write_data(data / "test.csv", 2000, 2)
    ray.init()
    print("cluster resources:", ray.cluster_resources())
    status, windows, timings = asyncio.run(drive(TrainingService(settings), args, data))
    live = status["training"]["live"]
    def median(key):
        return (sorted(w[key] for w in windows)[len(windows) // 2] if windows else None)
    samples_s, tokens_s = median("samples_per_s"), median("tokens_per_s")
    peak = peak_tflops(live.get("precision", "fp32"))
    mfu = (flops_per_token(model_config, tokens_s / samples_s) * tokens_s / (peak * 1e12)
           if peak and tokens_s and samples_s else None)
    result = {"state": status["state"], "error": status["error"], "device": live.get("device"),
              "precision": live.get("precision"), "workers": live.get("workers"), "timings": timings,
              "median_samples_per_s": samples_s, "median_tokens_per_s": tokens_s,
              "peak_tflops": peak, "model_flop_utilisation": round(mfu, 4) if mfu else None,
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
