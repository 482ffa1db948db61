"""Multi-label sequence classification end to end through `serve run`: a sigmoid head and a threshold."""

from __future__ import annotations

import csv

import numpy as np
import torch
from conftest import TINY_MODEL
from data import multilabel_files
from helpers import expect_error, extract, new_session
from test_serving import deploy_and_predict
from transformers import AutoModelForSequenceClassification, AutoTokenizer

METRICS = ["accuracy", "f1", "f1_macro", "f1_micro", "f1_weighted", "precision", "recall",
           "matthews_correlation", "roc_auc"]
LABELS = ["acting", "music", "plot"]


def train(client, files, **config):
    client.set_parameters(model=TINY_MODEL, batch_size=16, learning_rate=1e-3, **config)
    uploaded = client.upload_dataset(*files)["dataset"]
    client.preprocess()
    client.wait_preprocessed()
    client.start_training()
    return uploaded, client.wait_trained(poll_s=0.5)


def test_label_lists_train_a_sigmoid_head_that_reloads(server, tmp_path):
    client = new_session(server)
    uploaded, final = train(client, multilabel_files(tmp_path, "jsonl"), epochs=3, eval_metrics=METRICS,
                            multi_label_threshold=0.4)
    assert uploaded["multi_label"] and uploaded["labels"] == LABELS
    assert uploaded["train"]["rows_without_labels"] > 0
    assert final["state"] == "trained", final
    assert set(METRICS) <= set(final["metrics"]) and all(0 <= final["metrics"][m] <= 1 for m in METRICS[:-2])
    assert final["metrics"]["f1"] > 0.5, final["metrics"]  # the aspects are named in the text: easy to learn

    model_dir = extract(client.download_model(tmp_path / "model.tar.gz"), tmp_path / "m") / "model"
    results = extract(client.download_results(tmp_path / "results.tar.gz"), tmp_path / "r") / "results"
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    assert model.config.problem_type == "multi_label_classification"
    assert [model.config.id2label[i] for i in range(3)] == LABELS

    rows = list(csv.DictReader(open(results / "predictions.csv")))
    assert list(rows[0]) == ["text", "label", "prediction", *(f"prob_{label}" for label in LABELS)]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with torch.no_grad():
        probs = torch.sigmoid(model(**tokenizer([r["text"] for r in rows], padding=True,
                                                return_tensors="pt")).logits).numpy()
    np.testing.assert_allclose(probs, [[float(r[f"prob_{x}"]) for x in LABELS] for r in rows], atol=1e-4)
    for r, p in zip(rows, probs):  # the threshold from the config decides each label
        assert r["prediction"] == "|".join(label for label, q in zip(LABELS, p) if q >= 0.4)
    exact = np.mean([r["label"] == r["prediction"] for r in rows])
    assert abs(exact - final["metrics"]["accuracy"]) < 1e-9

    confusion = list(csv.DictReader(open(results / "confusion_matrix.csv")))
    assert [c["label"] for c in confusion] == LABELS
    for c, label in zip(confusion, LABELS):
        positives = sum(label in r["label"].split("|") for r in rows)
        assert int(c["true_positive"]) + int(c["false_negative"]) == positives
    assert (results / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "multi-label" in (results / "summary.md").read_text()

    # Served, it gives the labels over the run's threshold (test_serving.py's other tasks, served where trained).
    out = deploy_and_predict(client, texts=["the cast were superb", "the soundtrack was loud"])
    got = out["predictions"][0]
    assert out["task"] == "multi_label"
    assert set(got["labels"]) <= set(LABELS) and all(v >= 0.4 for v in got["probabilities"].values())


def test_flag_columns_train_too(server, tmp_path):
    client = new_session(server)
    uploaded, final = train(client, multilabel_files(tmp_path, "flags", 96, 24), epochs=1)
    assert uploaded["target"] == ["label_acting", "label_music", "label_plot"] and uploaded["labels"] == LABELS
    assert final["state"] == "trained" and "accuracy" in final["metrics"], final


def test_bad_multi_label_input_is_refused_and_changes_nothing(server, tmp_path):
    client = new_session(server)
    client.set_parameters(model=TINY_MODEL)
    train_file, test_file = multilabel_files(tmp_path, "csv", 40, 10)
    before = client.upload_dataset(train_file, test_file)["dataset"]
    assert before["target"] == "labels" and before["multi_label"]

    broken = tmp_path / "broken.csv"
    broken.write_text("text,label_a,label_b\nfine,1,0\nodd,0,2\n")
    err = expect_error(400, client.upload_dataset, broken, broken)
    assert "line 3, column 3 (label_b): '2' is not 0 or 1" in err.body["message"]
    unseen = tmp_path / "unseen.csv"
    unseen.write_text("text,labels\nthe cast were great,acting|costumes\n")
    err = expect_error(400, client.upload_dataset, train_file, unseen)
    assert "'costumes' does not occur in train_file" in err.body["message"]
    err = expect_error(422, client.set_parameters, multi_label_threshold=1.5)
    assert "multi_label_threshold" in str(err.body["detail"])

    status = client.get_parameters()
    assert status["state"] == "setup" and status["config"]["multi_label_threshold"] == 0.5
    assert status["dataset"]["train"]["rows"] == 40 and status["dataset"]["target"] == "labels"  # the first upload
