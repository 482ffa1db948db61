"""Training throughput: the server's Ray Train path against the two scripts a user would write instead.

    .venv/bin/python bench/train_throughput.py [--train ../shared/data/sst2/train.csv] [--steps 60]
        [--warmup 10] [--repeats 3] [--batch-size 32] [--max-length 128]

All three train the bundled all-MiniLM-L6-v2 for a fixed number of steps on the
same first `steps x batch` rows of SST-2 train, alternating, `repeats` times:

- `trainer`: Hugging Face `Trainer` the way its text-classification example runs
  by default (every row padded to `max_length`).
- `hand_loop`: a minimal PyTorch loop (AdamW, linear schedule, grad clipping),
  dynamic padding (`DataCollatorWithPadding`), torch threads = all cores.
- `project`: a real server (`serve run`, Ray started without the dashboard):
  upload, preprocess to the Ray Data cache, `training/start`; the rate comes
  from the steps and elapsed times the run reports to `/monitor`.

The figure is steady-state samples/s between step `warmup` and the last step.
Start-up is reported apart: `to_step5_s`, wall time from the start of the arm
(for the project, `training/start`) until step 5 is done, when the server
first reports progress.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from _common import temporary_server, write_result

HERE = Path(__file__).resolve().parent
DEFAULT_TRAIN = HERE.parent.parent / "shared" / "data" / "sst2" / "train.csv"


def read_rows(path: Path, n: int) -> list[dict]:
    with open(path, newline="") as f:
        rows = [r for _, r in zip(range(n), csv.DictReader(f))]
    if len(rows) < n:
        raise SystemExit(f"{path} has {len(rows)} rows; --steps x --batch-size needs {n}")
    return rows


FIRST_REPORT = 5  # the server's default progress_every_steps


def summary(marks: list[tuple[int, float]], start: float, args) -> dict:
    steps, times = [s for s, _ in marks], [t for _, t in marks]
    return {"samples_per_s": steady_rate(times, steps, args.warmup, args.batch_size),
            "to_step5_s": times[steps.index(FIRST_REPORT)] - start}


def steady_rate(times: list[float], steps: list[int], warmup: int, batch: int) -> float:
    """Samples/s between the first step >= warmup and the last step."""
    first = next(i for i, s in enumerate(steps) if s >= warmup)
    return (steps[-1] - steps[first]) * batch / (times[-1] - times[first])


# ---- baselines, in this process ---------------------------------------------------------
def _model(model_dir: str, labels: int):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=labels)


def run_trainer(rows: list[dict], args, model_dir: str) -> dict:
    import datasets
    from transformers import AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    start = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model_dir)
    ds = datasets.Dataset.from_dict({"text": [r["text"] for r in rows], "label": [int(r["label"]) for r in rows]})
    # The example's default: pad_to_max_length=True, max_seq_length=128.
    ds = ds.map(lambda b: tok(b["text"], padding="max_length", max_length=args.max_length, truncation=True),
                batched=True, remove_columns=["text"])
    marks: list[tuple[int, float]] = []

    class Clock(TrainerCallback):
        def on_step_end(self, _args, state, control, **kw):
            marks.append((state.global_step, time.perf_counter()))

    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(model=_model(model_dir, 2), train_dataset=ds, callbacks=[Clock()],
                          args=TrainingArguments(output_dir=out, per_device_train_batch_size=args.batch_size,
                                                 max_steps=args.steps, learning_rate=5e-5, save_strategy="no",
                                                 logging_strategy="no", report_to=[], use_cpu=True, seed=42,
                                                 disable_tqdm=True))
        trainer.train()
    return summary(marks, start, args)


def run_hand_loop(rows: list[dict], args, model_dir: str) -> dict:
    import torch
    from transformers import AutoTokenizer, DataCollatorWithPadding, get_linear_schedule_with_warmup

    start = time.perf_counter()
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(42)
    tok = AutoTokenizer.from_pretrained(model_dir)
    enc = tok([r["text"] for r in rows], truncation=True, max_length=args.max_length)
    examples = [{"input_ids": ids, "attention_mask": m, "labels": int(r["label"])}
                for ids, m, r in zip(enc["input_ids"], enc["attention_mask"], rows)]
    loader = torch.utils.data.DataLoader(examples, batch_size=args.batch_size, shuffle=True,
                                         collate_fn=DataCollatorWithPadding(tok))
    model = _model(model_dir, 2).train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    sched = get_linear_schedule_with_warmup(opt, 0, args.steps)
    marks = []
    for step, batch in enumerate(loader, 1):
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss.item()  # the loss a loop logs
        marks.append((step, time.perf_counter()))
    return summary(marks, start, args)


# ---- the project, through the API ---------------------------------------------------------
def prepare_session(server, rows: list[dict], folder: Path, args) -> object:
    train, test = folder / "train.csv", folder / "test.csv"
    for path, part in ((train, rows), (test, rows[:64])):
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows({"text": r["text"], "label": r["label"]} for r in part)
    client = server.client(timeout=120)
    client.start_session(force_restart=True)
    client.set_parameters(epochs=1, batch_size=args.batch_size, max_seq_length=args.max_length, **args.set)
    client.upload_dataset(train, test)
    client.preprocess()
    client.wait_preprocessed()
    return client


def run_project(client, args) -> dict:
    """Steps and their elapsed times as the run reports them; wall clock here only for the start-up."""
    start = time.perf_counter()
    client.start_training()
    reported: dict[int, float] = {}
    first_report = None
    while True:
        info = client.monitor()
        live = info["training"].get("live") or {}
        if live.get("phase") == "training" and live.get("step"):
            reported.setdefault(live["step"], live["elapsed_s"])
            if first_report is None and live["step"] == FIRST_REPORT:
                first_report = time.perf_counter() - start
        if info["state"] in ("trained", "stopped", "failed"):
            break
        time.sleep(1.0)  # light polling: every call costs the CPUs the run is measured on
    if info["state"] != "trained":
        raise SystemExit(f"project run ended {info['state']}: {info.get('error')}")
    steps = sorted(reported)
    live = info["training"]["live"]
    return {"samples_per_s": steady_rate([reported[s] for s in steps], steps, args.warmup, args.batch_size),
            "to_step5_s": first_report, "device": live.get("device"), "peak_rss_mb": live.get("peak_rss_mb")}


def setting(text: str) -> tuple[str, object]:
    field, _, value = text.partition("=")
    return field, json.loads(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=DEFAULT_TRAIN)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--arms", default="trainer,hand_loop,project")
    parser.add_argument("--set", type=setting, action="append", default=[], metavar="FIELD=JSON",
                        help="a training config field for the project, e.g. precision='\"fp32\"' or "
                             "group_by_length=false (repeatable)")
    parser.add_argument("--server", type=setting, action="append", default=[], metavar="FIELD=JSON",
                        help="a server setting, e.g. yield_cpu_to_api=false (repeatable)")
    parser.add_argument("--json")
    args = parser.parse_args()
    args.set = dict(args.set)
    from train_jobs.models.lookup import bundled_model_dir

    model_dir = str(bundled_model_dir())
    rows = read_rows(args.train, args.steps * args.batch_size)
    arms = args.arms.split(",")
    runs: dict[str, list[dict]] = {arm: [] for arm in arms}
    with temporary_server(dashboard=False, **dict(args.server)) as (server, tmp):
        client = prepare_session(server, rows, tmp, args) if "project" in arms else None
        for repeat in range(args.repeats):
            for arm in arms:
                result = {"trainer": lambda: run_trainer(rows, args, model_dir),
                          "hand_loop": lambda: run_hand_loop(rows, args, model_dir),
                          "project": lambda: run_project(client, args)}[arm]()
                runs[arm].append(result)
                print(f"repeat {repeat + 1} {arm:<10} {result['samples_per_s']:8.1f} samples/s  "
                      f"to step 5 {result['to_step5_s'] or float('nan'):.1f} s", flush=True)
    medians = {arm: statistics.median(r["samples_per_s"] for r in runs[arm]) for arm in arms}
    print(f"\n{'arm':<12}{'median samples/s':>18}{'project / arm':>15}")
    for arm in arms:
        ratio = medians["project"] / medians[arm] if "project" in medians else float("nan")
        print(f"{arm:<12}{medians[arm]:>18.1f}{ratio:>15.2f}")
    write_result("train_throughput", {
        "args": {k: str(v) for k, v in vars(args).items()}, "median_samples_per_s": medians,
        "ratios": {f"project/{arm}": medians["project"] / medians[arm] for arm in arms if "project" in medians},
        "runs": runs, "cpus": os.cpu_count(), "machine": platform.platform(), "processor": platform.processor(),
    }, args.json)


if __name__ == "__main__":
    main()
