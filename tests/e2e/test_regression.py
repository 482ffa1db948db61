"""Regression (a float `score`, single texts or pairs) end to end through `serve run`."""

from __future__ import annotations

import csv

import numpy as np
import torch
from conftest import TINY_MODEL
from data import score_files, sentiment_files
from helpers import expect_error, extract, new_session
from test_serving import deploy_and_predict
from transformers import AutoModelForSequenceClassification, AutoTokenizer

METRICS = ["mse", "rmse", "mae", "r2", "pearson", "spearman"]


def test_regression_on_pairs_trains_and_reloads(server, tmp_path):
    client = new_session(server)
    config = client.set_parameters(model=TINY_MODEL, task_type="regression", epochs=2, batch_size=16,
                                   learning_rate=1e-3)["config"]
    assert config["eval_metrics"] == ["mse"]  # the task's default, not classification's
    client.set_parameters(eval_metrics=METRICS)
    uploaded = client.upload_dataset(*score_files(tmp_path))["dataset"]
    assert uploaded["task_type"] == "regression" and uploaded["pair"] and uploaded["labels"] == []
    assert 0 <= uploaded["train"]["score"]["min"] < uploaded["train"]["score"]["max"] <= 5
    client.preprocess()
    client.wait_preprocessed()
    client.start_training()
    final = client.wait_trained(poll_s=0.5)
    assert final["state"] == "trained", final
    assert set(METRICS) <= set(final["metrics"])
    assert abs(final["metrics"]["rmse"] ** 2 - final["metrics"]["mse"]) < 1e-9

    model_dir = extract(client.download_model(tmp_path / "model.tar.gz"), tmp_path / "m") / "model"
    results_dir = extract(client.download_results(tmp_path / "results.tar.gz"), tmp_path / "r") / "results"
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    assert model.config.problem_type == "regression" and model.config.num_labels == 1
    rows = list(csv.DictReader(open(results_dir / "predictions.csv")))
    assert list(rows[0]) == ["text_a", "text_b", "score", "prediction"] and len(rows) == 40
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with torch.no_grad():
        out = model(**tokenizer([r["text_a"] for r in rows], [r["text_b"] for r in rows], padding=True,
                                return_tensors="pt")).logits[:, 0].numpy()
    np.testing.assert_allclose(out, [float(r["prediction"]) for r in rows], atol=1e-4)
    mse = np.mean([(float(r["score"]) - float(r["prediction"])) ** 2 for r in rows])
    assert abs(mse - final["metrics"]["mse"]) < 1e-4
    assert (results_dir / "curves.png").is_file() and not (results_dir / "confusion_matrix.png").exists()

    # Served, it scores pairs and refuses single texts (test_serving.py's other tasks, served where trained).
    out = deploy_and_predict(client, pairs=[["the film was great", "the plot was great"]])
    assert out["task"] == "regression" and isinstance(out["predictions"][0]["score"], float)
    assert expect_error(422, client.predict, ["a text"]).body["detail"][0]["loc"] == ["body", "texts"]


def test_regression_refuses_a_non_numeric_score_and_classification_metrics(server, tmp_path):
    client = new_session(server)
    client.set_parameters(model=TINY_MODEL, task_type="regression")
    err = expect_error(422, client.set_parameters, eval_metrics=["accuracy"])
    assert "pearson" in str(err.body["detail"])
    train, test = score_files(tmp_path, 20, 10)
    bad = tmp_path / "bad.csv"
    bad.write_text("text_a,text_b,score\nfine,good,4.5\nodd,pair,high\n")
    err = expect_error(400, client.upload_dataset, bad, test)
    assert "line 3" in err.body["message"] and "column 3 (score)" in err.body["message"]
    # A classification file does not fit regression: it has no score column.
    err = expect_error(400, client.upload_dataset, *sentiment_files(tmp_path, 20, 10))
    assert "score" in err.body["message"]


def test_changing_task_type_after_upload_asks_for_a_new_upload(server, tmp_path):
    client = new_session(server)
    client.set_parameters(model=TINY_MODEL)
    client.upload_dataset(*sentiment_files(tmp_path, 20, 10))
    client.set_parameters(task_type="regression")
    err = expect_error(409, client.preprocess)
    assert "upload_dataset" in err.body["hint"]
