"""Model selection through `serve run`: a validation file or hold-out, the best evaluation kept, early stopping."""

from __future__ import annotations

import pytest
from conftest import TINY_MODEL
from data import sentiment_files, sentiment_rows, write_csv
from helpers import expect_error, new_session


def snapshot(client) -> dict:
    params = client.get_parameters()
    return {"state": params["state"], "config": params["config"], "dataset": params["dataset"]}


def test_a_validation_file_selects_the_model_and_patience_stops_early(server, tmp_path):
    client = new_session(server)
    client.set_parameters(model=TINY_MODEL, epochs=25, batch_size=16, learning_rate=2e-3, early_stopping_patience=2,
                          eval_metrics=["accuracy", "f1"], metric_for_best_model="f1")
    validation = write_csv(tmp_path / "val.csv", ["text", "label"], sentiment_rows(30, seed=9))
    dataset = client.upload_dataset(*sentiment_files(tmp_path), validation)["dataset"]
    assert dataset["validation"]["rows"] == 30
    resolved = client.get_parameters()["resolved"]
    assert (resolved["train_rows"], resolved["validation_rows"], resolved["epochs"]) == (160, 0, 25)
    assert resolved["metric_for_best_model"] == "f1" and "metric_for_best_model" not in resolved["auto"]
    client.preprocess()
    assert client.wait_preprocessed()["preprocess"]["cache"]["rows"] == {"train": 160, "test": 40, "validation": 30}
    client.start_training()
    final = client.wait_trained(poll_s=0.5)
    assert final["state"] == "trained", final
    history = final["history"]
    assert {e["split"] for e in history} == {"validation"}
    assert len(history) < 25, "patience 2 should end the run long before 25 epochs"
    best = max(history, key=lambda e: (e["f1"], -e["step"]))
    after = history[history.index(best) + 1:]
    assert len(after) == 2 and all(e["f1"] <= best["f1"] for e in after)  # two evaluations without improvement
    assert final["metrics"]["split"] == "test" and final["metrics"]["selected"]["step"] == best["step"]


def test_no_validation_split_evaluates_test_and_keeps_the_last_model(server, tmp_path):
    client = new_session(server)
    client.set_parameters(model=TINY_MODEL, epochs=2, batch_size=16, validation_split=0)
    client.upload_dataset(*sentiment_files(tmp_path))
    assert client.get_parameters()["resolved"]["validation_rows"] == 0
    client.preprocess()
    client.wait_preprocessed()
    client.start_training()
    final = client.wait_trained(poll_s=0.5)
    assert [e["split"] for e in final["history"]] == ["test", "test"]
    assert final["metrics"]["epoch"] == 2 and final["metrics"]["accuracy"] == final["history"][-1]["accuracy"]


def test_auto_selects_imbalanced_labels_on_macro_f1_and_get_parameters_says_so(server, tmp_path):
    client = new_session(server)
    client.set_parameters(model=TINY_MODEL)
    rows = sentiment_rows(400, seed=3)
    rare = [r for r in rows if r[1] == "neg"][:350] + [r for r in rows if r[1] == "pos"][:50]  # one row in eight
    train = write_csv(tmp_path / "rare.csv", ["text", "label"], rare)
    test = write_csv(tmp_path / "test.csv", ["text", "label"], rows[:20])
    client.upload_dataset(train, test)
    params = client.get_parameters()
    resolved = params["resolved"]
    assert params["config"]["metric_for_best_model"] == "auto"
    assert resolved["metric_for_best_model"] == "f1_macro" and "metric_for_best_model" in resolved["auto"]
    client.set_parameters(metric_for_best_model="accuracy")
    assert client.get_parameters()["resolved"]["metric_for_best_model"] == "accuracy"
    client.upload_dataset(*sentiment_files(tmp_path))  # about as many of each
    client.set_parameters(metric_for_best_model="auto")
    assert client.get_parameters()["resolved"]["metric_for_best_model"] == "accuracy"


def test_a_validation_label_unseen_in_train_is_refused_and_changes_nothing(server, tmp_path):
    client = new_session(server)
    client.set_parameters(model=TINY_MODEL)
    train, test = sentiment_files(tmp_path)
    client.upload_dataset(train, test)
    before = snapshot(client)
    validation = write_csv(tmp_path / "val.csv", ["text", "label"],
                           [*sentiment_rows(3, seed=5), ("a film beyond words", "meh")])
    err = expect_error(400, client.upload_dataset, train, test, validation)
    assert "validation_file: line 5" in err.body["message"] and "'meh'" in err.body["message"]
    assert snapshot(client) == before


@pytest.mark.parametrize("patch, field", [
    ({"validation_split": 0.7}, "validation_split"),
    ({"metric_for_best_model": "bleu"}, "metric_for_best_model"),
    ({"learning_rate": "fast"}, "learning_rate"),
    ({"early_stopping_patience": 0}, "early_stopping_patience"),
])
def test_bad_selection_settings_are_422_and_change_nothing(server, patch, field):
    client = new_session(server)
    before = snapshot(client)
    err = expect_error(422, client.set_parameters, **patch)
    assert field in str(err.body["detail"])
    assert snapshot(client) == before
