"""Fine-tune the default model through the API on SST-2 and report dev accuracy.

    .venv/bin/python bench/sst2_accuracy.py [--data ../shared/data/sst2] [--rows 4000] [--epochs 1]

Uploads the first --rows rows of train.csv as train_file and dev.csv as test_file.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from _common import temporary_server, write_result

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

    with temporary_server() as (server, tmp):
        train = tmp / "train.csv"
        with open(Path(args.data) / "train.csv") as src, open(train, "w") as dst:
            dst.writelines(itertools.islice(src, args.rows + 1))  # header + rows (no quoted newlines in SST-2)
        client = server.client(timeout=120)
        client.start_session(force_restart=True)
        config = client.set_parameters(epochs=args.epochs, batch_size=args.batch_size,
                                       learning_rate=args.learning_rate, eval_metrics=["accuracy", "f1"])["config"]
        client.upload_dataset(train, Path(args.data) / "dev.csv")
        client.preprocess()
        client.wait_preprocessed()
        started = time.perf_counter()
        client.start_training()
        final = client.wait_trained(poll_s=2)
        took = time.perf_counter() - started
    assert final["state"] == "trained", final
    metrics = final["metrics"]
    print(f"\nSST-2: {args.rows} train rows, {args.epochs} epoch(s), batch {args.batch_size}, "
          f"lr {args.learning_rate}, model {config['model']}")
    print(f"dev accuracy {metrics['accuracy']:.4f}, f1 {metrics['f1']:.4f}; training took {took:.0f} s "
          "(start to trained, including worker start-up and evaluation)")
    write_result("sst2_accuracy", {"args": vars(args), "metrics": metrics, "train_seconds": round(took, 1)},
                 args.json)


if __name__ == "__main__":
    main()
