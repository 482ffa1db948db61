"""The whole flow through `serve run` over HTTP, with a tiny model the tests build."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
import torch
from conftest import TINY_MODEL
from data import sentiment_files
from helpers import extract, new_session
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

METRICS = ["accuracy", "f1", "f1_macro", "precision", "recall", "matthews_correlation", "roc_auc"]


@pytest.fixture(scope="module")
def trained(server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("flow")
    client = new_session(server)
    config = client.set_parameters(model=TINY_MODEL, epochs=2, batch_size=16, learning_rate=1e-3,
                                   eval_metrics=METRICS, init_eval=True, precision="fp32")["config"]
    assert config["epochs"] == 2 and config["seed"] == 42  # merged over the defaults
    uploaded = client.upload_dataset(*sentiment_files(tmp))
    client.preprocess()
    preprocessed = client.wait_preprocessed()
    client.start_training()
    seen_live = []
    final = client.wait_trained(poll_s=0.05, on_update=lambda m: seen_live.append(m["training"]["live"]))
    return client, tmp, uploaded, preprocessed, final, seen_live


def test_upload_summarises_the_dataset(trained):
    _, _, uploaded, _, _, _ = trained
    dataset = uploaded["dataset"]
    assert dataset["labels"] == ["neg", "pos"]
    assert dataset["train"]["rows"] == 160 and dataset["test"]["rows"] == 40
    assert sum(dataset["train"]["label_counts"].values()) == 160
    assert uploaded["state"] == "setup"


def test_preprocessing_writes_a_cache_and_reuses_it(trained, server):
    client, tmp, _, preprocessed, _, _ = trained
    cache = preprocessed["preprocess"]["cache"]
    assert preprocessed["state"] == "preprocessed" and cache["rows"] == {"train": 160, "test": 40}
    assert cache["reused"] is False and str(server.storage_root) in cache["path"]
    # Progress in rows and bytes (the upload files), with the ETA at 0 once done.
    size = (tmp / "train.csv").stat().st_size + (tmp / "test.csv").stat().st_size
    done = {k: preprocessed["preprocess"][k] for k in ("rows_done", "rows_total", "bytes_done", "bytes_total", "eta_s")}
    assert done == {"rows_done": 200, "rows_total": 200, "bytes_done": size, "bytes_total": size, "eta_s": 0.0}


def test_training_reports_live_progress_and_history(trained):
    _, _, _, _, final, seen_live = trained
    assert final["state"] == "trained", final
    assert final["model_ready"] is True
    live = [x for x in seen_live if x.get("phase") == "training"]
    assert live, "monitor never showed a live training step"
    for field in ("epoch", "step", "total_steps", "progress", "loss", "learning_rate", "samples_per_s",
                  "elapsed_s", "eta_s"):
        assert field in live[-1]
    assert live[-1]["total_steps"] == 2 * 8  # 160 rows less 32 held out for validation / batch 16, 2 epochs
    epochs = [entry["epoch"] for entry in final["history"]]
    assert epochs == [0, 1, 2]  # init_eval, then every epoch
    assert {entry["split"] for entry in final["history"]} == {"validation"}
    assert set(METRICS) <= set(final["metrics"]) and final["metrics"]["split"] == "test"
    hp = final["training"]["hyperparameters"]
    assert (hp["train_rows"], hp["validation_rows"], hp["epochs"], hp["warmup_ratio"]) == (128, 32, 2, 0.1)
    assert hp["metric_for_best_model"] == "accuracy" and "metric_for_best_model" in hp["auto"]  # balanced labels


def test_the_model_kept_is_the_best_on_validation_and_test_scores_it_once(trained):
    client, tmp, _, _, final, _ = trained
    history = final["history"]
    best = max(history, key=lambda e: (e["accuracy"], -e["step"]))  # the first of the best
    selected = final["metrics"]["selected"]
    assert (selected["metric"], selected["split"], selected["step"]) == ("accuracy", "validation", best["step"])
    assert selected["value"] == best["accuracy"]
    model_dir = extract(client.download_model(tmp / "best.tar.gz"), tmp / "best") / "model"
    archived = json.loads((model_dir / "training_config.json").read_text())
    assert archived["selected"] == selected
    assert archived["hyperparameters"]["learning_rate"] == 1e-3 and "warmup_ratio" in archived["hyperparameters"]["auto"]


def test_downloaded_model_reloads_and_predicts_as_results_say(trained):
    client, tmp, _, _, final, _ = trained
    model_dir = extract(client.download_model(tmp / "model.tar.gz"), tmp / "m") / "model"
    results_dir = extract(client.download_results(tmp / "results.tar.gz"), tmp / "r") / "results"

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert model.config.id2label == {0: "neg", 1: "pos"}
    assert json.loads((model_dir / "training_config.json").read_text())["labels"] == ["neg", "pos"]

    rows = list(csv.DictReader(open(results_dir / "predictions.csv")))
    assert len(rows) == 40
    with torch.no_grad():
        logits = model(**tokenizer([r["text"] for r in rows], padding=True, return_tensors="pt")).logits
    probs = torch.softmax(logits, -1).numpy()
    expected = np.array([[float(r["prob_neg"]), float(r["prob_pos"])] for r in rows])
    np.testing.assert_allclose(probs, expected, atol=1e-4)
    assert [model.config.id2label[i] for i in probs.argmax(1)] == [r["prediction"] for r in rows]

    accuracy = np.mean([r["prediction"] == r["label"] for r in rows])
    assert final["metrics"]["accuracy"] == pytest.approx(accuracy)
    for name in ("history.json", "history.csv", "final_metrics.json", "per_class_report.json", "config.json",
                 "dataset.json", "confusion_matrix.csv", "summary.md"):
        assert (results_dir / name).is_file(), name
    for png in ("curves.png", "confusion_matrix.png"):
        assert (results_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    matrix = list(csv.reader(open(results_dir / "confusion_matrix.csv")))
    assert matrix[0][1:] == ["neg", "pos"]
    assert sum(int(v) for row in matrix[1:] for v in row[1:]) == 40
    correct = sum(int(matrix[i + 1][i + 1]) for i in range(2))
    assert correct == sum(r["prediction"] == r["label"] for r in rows)
    summary = (results_dir / "summary.md").read_text()
    assert "accuracy" in summary and "| neg |" in summary


def test_the_run_says_where_its_time_went(trained):
    client, tmp, _, _, final, _ = trained
    timings = final["training"]["timings"]
    phases = timings["phases"]
    assert list(phases) == ["datasets", "workers_start", "setup", "first_step", "steps", "evaluations",
                            "checkpoints", "test", "workers_stop", "model_archive", "results"]
    assert phases["steps"]["n"] == 2 * 8 - 1 and phases["evaluations"]["n"] == 3  # init_eval, then every epoch
    assert all(p["s"] >= 0 for p in phases.values())
    assert sum(p["s"] for p in phases.values()) <= timings["total_s"] + 0.01
    assert final["training"]["started_at"] <= timings["began_at"] <= final["training"]["finished_at"]
    results_dir = extract(client.download_results(tmp / "timed.tar.gz"), tmp / "timed") / "results"
    archived = json.loads((results_dir / "timings.json").read_text())
    assert set(archived["phases"]) == set(phases) - {"results"}  # written before its own archive


def test_the_servers_output_holds_no_ray_data_progress_bars(trained, server):
    """Ray Data's bars are off in the jobs: the workers' bars were drawn in `serve run`'s output, a bar per dataset
    per run, never closed, until the output was mostly bars."""
    log = server.log_path.read_text(errors="replace")
    assert "Started training worker group" in log  # the output of this server's runs is here
    # A bar's rate and elapsed time ("36.0 row [00:22, 1.58 row/s]"), and the cursor-up that redraws the bars
    # above it; Ray Data's one line per dataset execution ("Dataset ... execution finished") stays.
    assert not re.search(r" row \[\d+:\d\d, ", log) and "\x1b[A" not in log


def test_same_seed_same_data_gives_the_same_weights(trained):
    client, tmp, _, _, final, _ = trained
    first = extract(client.download_model(tmp / "first.tar.gz"), tmp / "first") / "model"
    client.start_training()  # a second run on the same cache
    again = client.wait_trained(poll_s=0.5)
    assert again["state"] == "trained"
    assert again["history"] == final["history"] and again["metrics"] == final["metrics"]
    second = extract(client.download_model(tmp / "second.tar.gz"), tmp / "second") / "model"
    a, b = (load_file(d / "model.safetensors") for d in (first, second))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
