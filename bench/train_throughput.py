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

`--end-to-end` measures whole runs instead: the first `--rows` rows of train, one
epoch (`--epochs`), scored on `--test` (SST-2 dev), `trainer` against `project`:

- `trainer`: tokenise, load the model, `Trainer.train()`, `save_model()` and
  `evaluate()` on the test file, as the example does with `--do_train --do_eval`
  (its imports are done before the clock starts);
- `project`: `training/start` to `trained` with the server's defaults besides
  epochs, batch and length, so validation (10% of train) and best-model
  selection are on; the end is the session's `finished_at`, not the polling.
  Each run's own breakdown (`training.timings`: start-up, first step, steps,
  evaluations, checkpoints, test, archives) is kept beside it.
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
DEFAULT_TEST = DEFAULT_TRAIN.with_name("dev.csv")
DEFAULT_ARMS = "trainer,hand_loop,project"


def read_rows(path: Path, n: int, at_least: int = 0) -> list[dict]:
    with open(path, newline="") as f:
        rows = [r for _, r in zip(range(n), csv.DictReader(f))]
    if len(rows) < (at_least or n):
        raise SystemExit(f"{path} has {len(rows)} rows; --steps x --batch-size needs {n}")
    return rows


def write_rows(rows: list[dict], path: Path) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows({"text": r["text"], "label": r["label"]} for r in rows)
    return path


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


# ---- end to end ----------------------------------------------------------------------------
def run_trainer_end_to_end(rows: list[dict], test: list[dict], args, model_dir: str) -> dict:
    import datasets
    from transformers import AutoTokenizer, Trainer, TrainingArguments

    start = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model_dir)

    def encoded(part: list[dict]):
        ds = datasets.Dataset.from_dict({"text": [r["text"] for r in part], "label": [int(r["label"]) for r in part]})
        return ds.map(lambda b: tok(b["text"], padding="max_length", max_length=args.max_length, truncation=True),
                      batched=True, remove_columns=["text"])

    train_ds, test_ds = encoded(rows), encoded(test)

    def accuracy(p):
        return {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())}

    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(model=_model(model_dir, 2), train_dataset=train_ds, eval_dataset=test_ds,
                          compute_metrics=accuracy,
                          args=TrainingArguments(output_dir=out, per_device_train_batch_size=args.batch_size,
                                                 num_train_epochs=args.epochs, learning_rate=5e-5,
                                                 logging_strategy="no", report_to=[], use_cpu=True, seed=42,
                                                 disable_tqdm=True))
        trainer.train()
        trained = time.perf_counter()
        trainer.save_model()
        metrics = trainer.evaluate()
    end = time.perf_counter()
    return {"seconds": end - start, "train_s": trained - start, "save_and_eval_s": end - trained,
            "test_accuracy": metrics["eval_accuracy"]}


def run_project_end_to_end(client, args) -> dict:
    began = time.time()
    client.start_training()
    info = client.wait_trained(poll_s=0.5)
    if info["state"] != "trained":
        raise SystemExit(f"project run ended {info['state']}: {info.get('error')}")
    t = info["training"]
    timings = t.get("timings") or {}
    return {"seconds": t["finished_at"] - began, "test_accuracy": (info.get("metrics") or {}).get("accuracy"),
            "selected": (info.get("metrics") or {}).get("selected"), "validation": info.get("history"),
            "to_job_s": timings["began_at"] - began if timings.get("began_at") else None,
            "job_s": timings.get("total_s"), "phases": timings.get("phases")}


def end_to_end(args, model_dir: str) -> None:
    rows, test = read_rows(args.train, args.rows), read_rows(args.test, 10**9, at_least=1)
    arms = args.arms.split(",") if args.arms != DEFAULT_ARMS else ["trainer", "project"]
    runs: dict[str, list[dict]] = {arm: [] for arm in arms}
    if "trainer" in arms:  # imports outside the clock: the baseline is its training, not Python's start
        import datasets  # noqa: F401
        from transformers import Trainer  # noqa: F401
    with temporary_server(dashboard=False, **dict(args.server)) as (server, tmp):
        client = None
        if "project" in arms:
            client = server.client(timeout=120)
            client.start_session(force_restart=True)
            client.set_parameters(epochs=args.epochs, batch_size=args.batch_size, max_seq_length=args.max_length,
                                  **args.set)
            client.upload_dataset(write_rows(rows, tmp / "train.csv"), args.test)
            client.preprocess()
            client.wait_preprocessed()
        for repeat in range(args.repeats):
            for arm in arms:
                result = (run_trainer_end_to_end(rows, test, args, model_dir) if arm == "trainer"
                          else run_project_end_to_end(client, args))
                runs[arm].append(result)
                print(f"repeat {repeat + 1} {arm:<8} {result['seconds']:7.1f} s  test accuracy "
                      f"{result['test_accuracy']:.4f}", flush=True)
                if arm == "project":
                    print("   " + "  ".join(f"{k} {v['s']:.1f}" for k, v in (result["phases"] or {}).items()),
                          flush=True)
    medians = {arm: statistics.median(r["seconds"] for r in runs[arm]) for arm in arms}
    ratio = medians["trainer"] / medians["project"] if {"trainer", "project"} <= set(medians) else None
    print(f"\nmedian seconds: {medians}; trainer / project: {ratio and round(ratio, 2)}")
    write_result("train_end_to_end", {
        "args": {k: str(v) for k, v in vars(args).items()}, "median_seconds": medians,
        "ratio_trainer_over_project": ratio, "runs": runs, "cpus": os.cpu_count(),
        "machine": platform.platform(), "processor": platform.processor(),
    }, args.json)


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
    parser.add_argument("--arms", default=DEFAULT_ARMS, help="default: all three; trainer,project end to end")
    parser.add_argument("--end-to-end", action="store_true", help="whole runs, start to trained (see above)")
    parser.add_argument("--rows", type=int, default=2000, help="end to end: train rows")
    parser.add_argument("--epochs", type=int, default=1, help="end to end: epochs")
    parser.add_argument("--test", type=Path, default=DEFAULT_TEST, help="end to end: the test file")
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
    if args.end_to_end:
        return end_to_end(args, model_dir)
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
