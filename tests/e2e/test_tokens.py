"""Token classification (JSONL and CoNLL uploads, BIO tags) end to end through `serve run`."""

from __future__ import annotations

import json

from conftest import TINY_MODEL
from data import ner_files
from helpers import expect_error, extract, new_session
from transformers import AutoModelForTokenClassification


def test_token_classification_trains_and_reports_entities(server, tmp_path):
    client = new_session(server)
    config = client.set_parameters(model=TINY_MODEL, task_type="token_classification", epochs=2, batch_size=16,
                                   learning_rate=5e-3)["config"]
    assert config["eval_metrics"] == ["f1"]
    client.set_parameters(eval_metrics=["precision", "recall", "f1", "accuracy"])
    dataset = client.upload_dataset(*ner_files(tmp_path))["dataset"]
    assert dataset["labels"] == ["O", "B-location", "I-location", "B-person", "I-person"]
    assert dataset["train"]["format"] == "jsonl" and dataset["test"]["format"] == "conll"
    assert dataset["test"]["rows"] == 30
    client.preprocess()
    client.wait_preprocessed()
    client.start_training()
    final = client.wait_trained(poll_s=0.5)
    assert final["state"] == "trained", final
    assert {"precision", "recall", "f1", "accuracy"} <= set(final["metrics"])

    model_dir = extract(client.download_model(tmp_path / "model.tar.gz"), tmp_path / "m") / "model"
    model = AutoModelForTokenClassification.from_pretrained(model_dir)
    assert model.config.id2label[3] == "B-person"
    results = extract(client.download_results(tmp_path / "results.tar.gz"), tmp_path / "r") / "results"
    rows = [json.loads(line) for line in (results / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 30 and all(len(r["tokens"]) == len(r["tags"]) == len(r["predicted"]) for r in rows)
    accuracy = sum(t == p for r in rows for t, p in zip(r["tags"], r["predicted"])) / sum(len(r["tags"]) for r in rows)
    assert abs(accuracy - final["metrics"]["accuracy"]) < 1e-9
    report = json.loads((results / "per_class_report.json").read_text())
    assert {"person", "location"} <= set(report)


def test_bad_token_files_say_where(server, tmp_path):
    client = new_session(server)
    client.set_parameters(model=TINY_MODEL, task_type="token_classification")
    train, test = ner_files(tmp_path, 10, 5)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"tokens": ["a", "b"], "tags": ["O", "O"]}\n{"tokens": ["a", "b"], "tags": ["O"]}\n')
    err = expect_error(400, client.upload_dataset, bad, test)
    assert "train_file: line 2" in err.body["message"] and "2 tokens but 1 tags" in err.body["message"]
    conll = tmp_path / "bad.conll"
    conll.write_text("Alice\tB-person\nflew\n")
    err = expect_error(400, client.upload_dataset, train, conll)
    assert "test_file: line 2, column 2" in err.body["message"]
    unseen = tmp_path / "unseen.conll"
    unseen.write_text("Alice\tB-person\n\nAcme\tB-corporation\n")
    err = expect_error(400, client.upload_dataset, train, unseen)
    assert "line 3" in err.body["message"] and "B-corporation" in err.body["message"]
