"""Fine-tune the default model through the API on SST-2 and report dev accuracy.

    .venv/bin/python bench/sst2_accuracy.py [--data ../shared/data/sst2] [--rows 4000] [--epochs 1]

Uploads the first --rows rows of train.csv as train_file and dev.csv as test_file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import write_result
from finetune_eval import finetune

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "sst2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--json")
    args = parser.parse_args()
    data = Path(args.data)
    result = finetune(data / "train.csv", data / "dev.csv", rows=args.rows, epochs=args.epochs,
                      task="sequence_classification", metrics=["accuracy", "f1"], batch_size=args.batch_size,
                      learning_rate=args.learning_rate)
    metrics = result["metrics"]
    print(f"\nSST-2: {args.rows} train rows, {args.epochs} epoch(s), batch {args.batch_size}, "
          f"lr {args.learning_rate}, model {result['model']}")
    print(f"dev accuracy {metrics['accuracy']:.4f}, f1 {metrics['f1']:.4f}; training took "
          f"{result['train_seconds']:.0f} s (start to trained, including worker start-up and evaluation)")
    write_result("sst2_accuracy", result, args.json)


if __name__ == "__main__":
    main()
