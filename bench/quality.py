"""Quality bench: the server's defaults on real datasets, scored on held-out data, with wall time.

    .venv/bin/python bench/quality.py [--data ../shared/data] [--only sample,stsb] [--set FIELD=JSON ...]

One server (serve run on a free port, temporary storage); for each dataset a new
session uploads train (its first N rows where the table says) and the held-out
file, preprocesses and trains with no training settings but the task and its
metrics (plus any --set), then reports the final metrics and the time from
/training/start to trained. Every speed change shows here that it costs no quality.

| name   | data                                   | train rows | scored on   |
|--------|----------------------------------------|------------|-------------|
| sample | the bundled 5-intent BANKING77 sample  | 607        | its test    |
| stsb   | STS-B                                  | 3,000      | dev         |
| sst2   | SST-2                                  | 4,000      | dev         |
| banking77 | BANKING77 (77 intents)              | all 10,003 | test        |
| wnut17 | WNUT-17 (token classification)         | all        | test        |
| sst2-rare | SST-2, one positive row in eight (built here) | 4,000 | dev, one positive in eight |

sst2-rare is not in the default run: it compares model selection on imbalanced labels,

    .venv/bin/python bench/quality.py --only sst2-rare --json bench/results/quality-sst2-rare-auto.json
    .venv/bin/python bench/quality.py --only sst2-rare --set 'metric_for_best_model="accuracy"' \
        --json bench/results/quality-sst2-rare-accuracy.json
"""

from __future__ import annotations

import argparse
import json
import tarfile
from pathlib import Path

from _common import temporary_server, train_through_api, write_result
from finetune_eval import head

SAMPLE = Path(__file__).resolve().parents[1] / "training_client" / "sample_data"
# name: (train, held-out, rows (0: all), task, metrics)
DATASETS = {
    "sample": (SAMPLE / "banking77_train.csv", SAMPLE / "banking77_test.csv", 0, "sequence_classification",
               ["accuracy", "f1_macro"]),
    "stsb": ("stsb/train.csv", "stsb/dev.csv", 3000, "regression", ["pearson", "spearman"]),
    "sst2": ("sst2/train.csv", "sst2/dev.csv", 4000, "sequence_classification", ["accuracy", "f1"]),
    "banking77": ("banking77/train.csv", "banking77/test.csv", 0, "sequence_classification", ["accuracy", "f1_macro"]),
    "wnut17": ("wnut17/train.jsonl", "wnut17/test.jsonl", 0, "token_classification", ["f1", "precision", "recall"]),
    # f1 is the positive label's, the rare one's
    "sst2-rare": ("sst2/train.csv", "sst2/dev.csv", 4000, "sequence_classification", ["accuracy", "f1", "f1_macro"]),
}
DEFAULT_RUN = ("sample", "stsb", "sst2", "banking77", "wnut17")
RARE = {"sst2-rare": ("1", 8)}  # name: (the label made rare, one row in this many)


def rare_label(src: Path, dest: Path, rows: int, label: str, one_in: int) -> Path:
    """`rows` records (0: every record of the other labels) of which one in `one_in` has `label`: the first of
    each kind, in file order."""
    import csv

    with open(src, newline="") as f:
        records = list(csv.DictReader(f))
    others = rows - rows // one_in if rows else sum(r["label"] != label for r in records)
    room = {False: others, True: others // (one_in - 1)}  # how many more of each kind to take
    with open(dest, "w", newline="") as out:
        writer = csv.DictWriter(out, list(records[0]))
        writer.writeheader()
        for r in records:
            rare = r["label"] == label
            if room[rare]:
                room[rare] -= 1
                writer.writerow(r)
    return dest


def score_outside(model_dir: Path, held_out: Path, task: str) -> dict:
    """The downloaded model, loaded with plain `transformers`, scored on the held-out CSV: no server code."""
    import csv

    import numpy as np
    import torch
    from scipy import stats
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = list(csv.DictReader(open(held_out, newline="")))
    texts = [[r["text_a"], r["text_b"]] if "text_a" in r else [r["text"]] for r in rows]
    outputs = []
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            batch = list(zip(*texts[i:i + 64]))
            enc = tokenizer(*batch, padding=True, truncation=True, max_length=128, return_tensors="pt")
            outputs.append(model(**enc).logits)
    logits = torch.cat(outputs)
    if task == "regression":
        return {"pearson": float(stats.pearsonr([float(r["score"]) for r in rows], logits[:, 0].numpy())[0])}
    predicted = [model.config.id2label[int(i)] for i in logits.argmax(-1)]
    return {"accuracy": float(np.mean([p == r["label"] for p, r in zip(predicted, rows)]))}


def every(src: Path, dest: Path, k: int) -> Path:
    """Every k-th record: a subset spread over a file sorted by label (BANKING77's train file is)."""
    import csv

    with open(src, newline="") as f, open(dest, "w", newline="") as out:
        reader, writer = csv.reader(f), csv.writer(out)
        writer.writerow(next(reader))
        writer.writerows(row for i, row in enumerate(reader) if i % k == 0)
    return dest


def run_one(server, tmp: Path, data: Path, name: str, extra: dict, rows: int | None = None,
            outside: bool = False, spread: int = 1) -> dict:
    train, test, default_rows, task, metrics = DATASETS[name]
    rows = default_rows if rows is None else rows
    train, test = data / train, data / test
    client = server.client(timeout=600)
    if name in RARE:
        subset = rare_label(train, tmp / f"{name}-{train.name}", rows, *RARE[name])
        test = rare_label(test, tmp / f"{name}-{test.name}", 0, *RARE[name])
    else:
        subset = head(train, tmp / f"{name}-{train.name}", rows)
    if spread > 1:
        subset = every(subset, tmp / f"{name}-every-{spread}-{train.name}", spread)
    _, final, took = train_through_api(client, subset, test, task_type=task, eval_metrics=metrics, **extra)
    monitor = client.monitor()
    scored = {}
    if outside and task != "token_classification":
        archive = client.download_model(tmp / f"{name}-model.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(tmp / f"{name}-model", filter="data")
        scored = score_outside(tmp / f"{name}-model" / "model", test, task)
    return {"name": name, "rows": rows or "all", "every": spread, "task": task, "metrics": final["metrics"],
            "outside": scored,
            "train_seconds": round(took, 1), "config": client.get_parameters()["config"],
            "hyperparameters": monitor["training"].get("hyperparameters"), "trials": monitor["training"].get("trials"),
            "history": monitor["history"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--only", default=",".join(DEFAULT_RUN), help="comma-separated names from the table")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=JSON",
                        help="a training setting for every run, e.g. --set learning_rate=1e-4")
    parser.add_argument("--rows", type=int, help="train rows for every dataset (0: all), instead of the table's")
    parser.add_argument("--every", type=int, default=1, help="keep every k-th train row (a subset across labels)")
    parser.add_argument("--score-outside", action="store_true",
                        help="also load each downloaded model with plain transformers and score the held-out file")
    parser.add_argument("--json")
    args = parser.parse_args()
    extra = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    results = []
    with temporary_server() as (server, tmp):
        for name in args.only.split(","):
            result = run_one(server, tmp, args.data, name, extra, args.rows, args.score_outside, args.every)
            results.append(result)
            shown = ", ".join(f"{k} {v:.4f}" for k, v in result["metrics"].items() if isinstance(v, float))
            selected = result["metrics"].get("selected")
            chosen = f"; chosen on validation {selected['metric']} {selected['value']:.4f}" if selected else ""
            outside = "".join(f"; outside the server {k} {v:.4f}" for k, v in result["outside"].items())
            print(f"{name:<10} {result['train_seconds']:>7.1f} s  {shown}{chosen}{outside}", flush=True)
    print("\n| dataset | rows | metrics | train s |\n|---|---|---|---|")
    for r in results:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in r["metrics"].items() if isinstance(v, float))
        print(f"| {r['name']} | {r['rows']} | {shown} | {r['train_seconds']:.0f} |")
    write_result("quality", {"settings": extra, "rows": args.rows, "runs": results}, args.json)


if __name__ == "__main__":
    main()
