"""Fine-tune the default model through the API on a dataset and report the test metrics.

    .venv/bin/python bench/finetune_eval.py --train ../shared/data/stsb/train.csv --test ../shared/data/stsb/dev.csv \\
        --task regression --rows 3000 --epochs 2 --metrics pearson,spearman,mse

Uploads the first --rows rows of the train file (all when 0) and the whole test file.
"""

from __future__ import annotations

import argparse
import csv
import itertools
from pathlib import Path

from _common import temporary_server, train_through_api, write_result


def head(src: Path, dest: Path, rows: int) -> Path:
    """The header and the first `rows` records (csv-aware, so quoted newlines stay inside their record)."""
    if rows <= 0:
        return src
    with open(src, newline="") as f, open(dest, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerows(itertools.islice(csv.reader(f), rows + 1))
    return dest


def finetune(train: Path, test: Path, *, rows: int, epochs: int, task: str, metrics: list[str], batch_size: int,
             learning_rate: float) -> dict:
    with temporary_server() as (server, tmp):
        config, final, took = train_through_api(
            server.client(timeout=300), head(train, tmp / train.name, rows), test, task_type=task, epochs=epochs,
            batch_size=batch_size, learning_rate=learning_rate, eval_metrics=metrics)
    return {"model": config["model"], "task": task, "rows": rows, "epochs": epochs, "batch_size": batch_size,
            "learning_rate": learning_rate, "metrics": final["metrics"], "train_seconds": round(took, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, type=Path)
    parser.add_argument("--test", required=True, type=Path)
    parser.add_argument("--task", default="sequence_classification")
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--metrics", default="accuracy")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--json")
    args = parser.parse_args()
    result = finetune(args.train, args.test, rows=args.rows, epochs=args.epochs, task=args.task,
                      metrics=args.metrics.split(","), batch_size=args.batch_size, learning_rate=args.learning_rate)
    print(f"\n{args.train} ({args.rows or 'all'} rows), {args.epochs} epoch(s), {args.task}, model {result['model']}")
    print("test metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in result["metrics"].items() if isinstance(v, float)))
    print(f"training took {result['train_seconds']:.0f} s (start to trained, with worker start-up and evaluation)")
    write_result(f"finetune_{args.train.parent.name}", result, args.json)


if __name__ == "__main__":
    main()
