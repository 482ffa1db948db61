"""Where the "auto" rule comes from: a grid of step floors, learning rates and batch sizes on real datasets.

    python bench/hparam_sweep.py --data ../shared/data --model DIR [--only banking77,sst2]
        [--floors 1000,2000,3000] [--lrs 5e-5,1e-4,2e-4] [--batches 16,32] [--seeds 42]
        [--procs 8] [--out results.jsonl]

Runs without Ray or the server, so that it fits a GPU machine with nothing but torch
and transformers (several runs share the GPU, one process each). Each run follows
the server's recipe (train_jobs/training/loop.py): AdamW, a linear schedule with
10% warm-up, gradient clipping at 1.0, bf16 autocast where the hardware has it,
dynamic padding; 10% of train held out for validation (stratified, seeded, as
train_jobs/data/validation.py), one evaluation per epoch, the best validation
model kept with a patience of 3, the held-out file scored once on it. Epochs come
from the step floor as in train_jobs/training/hyperparams.py (ceil(floor /
steps per epoch), clamped 3..10). It omits group_by_length, which changes speed,
not the model's quality. One JSON line per run; the docs' table
(docs/guides/training-config.md, "Automatic hyper-parameters") is read from them.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import time
from pathlib import Path

# name: (train, held-out, rows (0: all), task)
DATASETS = {
    "sample": ("SAMPLE/banking77_train.csv", "SAMPLE/banking77_test.csv", 0, "classification"),
    "stsb": ("stsb/train.csv", "stsb/dev.csv", 3000, "regression"),
    "sst2": ("sst2/train.csv", "sst2/dev.csv", 4000, "classification"),
    "banking77": ("banking77/train.csv", "banking77/test.csv", 0, "classification"),
}
SAMPLE = Path(__file__).resolve().parents[1] / "training_client" / "sample_data"
PATIENCE, MIN_EPOCHS, MAX_EPOCHS, WARMUP = 3, 3, 10, 0.1


def read(path: Path, rows: int) -> tuple[list[list[str]], list[str]]:
    with open(path, newline="") as f:
        table = list(csv.DictReader(f))
    table = table[:rows] if rows else table
    texts = [[r["text_a"], r["text_b"]] if "text_a" in r else [r["text"]] for r in table]
    return texts, [r.get("label", r.get("score")) for r in table]


def split(job: dict):
    """Train texts and targets, the held-out file's, and the train/validation row indices (seeded, stratified)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    train_path, test_path, rows, task = job["files"]
    texts, labels = read(Path(train_path), rows)
    test_texts, test_labels = read(Path(test_path), 0)
    regression = task == "regression"
    names = sorted(set(labels)) if not regression else []
    y = np.array([float(v) for v in labels] if regression else [names.index(v) for v in labels])
    y_test = np.array([float(v) for v in test_labels] if regression else [names.index(v) for v in test_labels])
    index = np.arange(len(texts))
    held = max(round(0.1 * len(texts)), min(50, len(texts) // 5))
    tr, va = train_test_split(index, test_size=held, random_state=job["seed"], stratify=None if regression else y)
    return texts, y, test_texts, y_test, np.sort(tr), np.sort(va), names


def one_run(job: dict) -> dict:
    import numpy as np
    import torch
    from scipy import stats
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup, set_seed

    started = time.perf_counter()
    torch.set_num_threads(job["threads"])
    regression = job["files"][3] == "regression"
    texts, y, test_texts, y_test, tr, va, names = split(job)
    set_seed(job["seed"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tok = AutoTokenizer.from_pretrained(job["model"])
    head = {"num_labels": 1, "problem_type": "regression"} if regression else {"num_labels": len(names)}
    # .float(): the carried copy of the weights may be stored in fp16; training runs in fp32 (+ bf16 autocast).
    model = AutoModelForSequenceClassification.from_pretrained(job["model"], **head).float().to(device)
    amp = torch.cuda.is_available() and torch.cuda.is_bf16_supported()

    def encode(idx, source):
        cols = list(zip(*[source[i] for i in idx]))
        return tok(*cols, padding=True, truncation=True, max_length=128, return_tensors="pt").to(device)

    per_epoch = math.ceil(len(tr) / job["batch"])
    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(job["floor"] / per_epoch)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=job["lr"], weight_decay=0.0)
    total = per_epoch * epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(WARMUP * total), total)

    def score(idx, source, truth) -> float:
        model.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(idx), 128):
                out.append(model(**encode(idx[i:i + 128], source)).logits.float().cpu())
        model.train()
        logits = torch.cat(out)
        if regression:
            return float(stats.pearsonr(logits.squeeze(-1).numpy(), truth[idx])[0])
        return float((logits.argmax(-1).numpy() == truth[idx]).mean())

    history, best, best_state, since = [], -1.0, None, 0
    rng = np.random.default_rng(job["seed"])
    model.train()
    for _ in range(epochs):
        order = tr[rng.permutation(len(tr))]
        for i in range(0, len(order), job["batch"]):
            idx = order[i:i + job["batch"]]
            target = torch.tensor(y[idx], dtype=torch.float32 if regression else torch.long, device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = model(**encode(idx, texts), labels=target).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        value = score(va, texts, y)
        history.append(round(value, 4))
        if value > best:
            best, since = value, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since += 1
            if since >= PATIENCE:
                break
    model.load_state_dict(best_state)
    test = score(np.arange(len(test_texts)), test_texts, y_test)
    return {**{k: job[k] for k in ("dataset", "floor", "lr", "batch", "seed")}, "epochs": epochs,
            "steps_per_epoch": per_epoch, "ran_epochs": len(history), "best_epoch": history.index(max(history)) + 1,
            "validation": round(best, 4), "held_out": round(test, 4), "history": history,
            "seconds": round(time.perf_counter() - started, 1), "device": str(device)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--model", required=True)
    p.add_argument("--only", default=",".join(DATASETS))
    p.add_argument("--floors", default="1000,2000,3000")
    p.add_argument("--lrs", default="5e-5,1e-4,2e-4")
    p.add_argument("--batches", default="16,32")
    p.add_argument("--seeds", default="42")
    p.add_argument("--procs", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--out", default=str(Path(__file__).with_name("results") / "hparam_sweep.jsonl"))
    args = p.parse_args()

    def files(name):
        train, test, rows, task = DATASETS[name]
        where = lambda f: str(SAMPLE / f[7:]) if f.startswith("SAMPLE/") else str(Path(args.data) / f)  # noqa: E731
        return where(train), where(test), rows, task

    grid = itertools.product(args.only.split(","), args.floors.split(","), args.lrs.split(","),
                             args.batches.split(","), args.seeds.split(","))
    jobs = [{"dataset": d, "files": files(d), "floor": int(f), "lr": float(lr), "batch": int(b), "seed": int(s),
             "model": args.model, "threads": args.threads} for d, f, lr, b, s in grid]
    # Biggest runs first, so the pool does not end on one long run.
    jobs.sort(key=lambda j: (j["dataset"] != "banking77", -j["floor"]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    import multiprocessing as mp

    with open(args.out, "a") as out, mp.get_context("spawn").Pool(args.procs) as pool:
        for result in pool.imap_unordered(one_run, jobs):
            out.write(json.dumps(result) + "\n")
            out.flush()
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
