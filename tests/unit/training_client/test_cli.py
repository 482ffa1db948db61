"""Unit tests of training_client/cli.py without a server: the version, the $TM_URL fallback, one-line errors with
exit status 1, usage errors with status 2, --key required where a session must exist, and the class it says loads
the trained model."""

from __future__ import annotations

import socket

import pytest

from training_client.cli import main, model_class, version


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on return: nothing listens there


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"training-module {version()}"


def test_the_server_address_falls_back_to_tm_url_and_an_unreachable_one_is_one_line(monkeypatch, capsys):
    url = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("TM_URL", url)
    assert main(["status"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach the server at {url}: ") and err.count("\n") == 1


def test_a_missing_file_is_one_line_with_status_1(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("TM_URL", f"http://127.0.0.1:{closed_port()}")
    assert main(["predict", "--key", "k", "--file", str(tmp_path / "missing.txt")]) == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_import_needs_the_sessions_key(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["import", "bundled", "default"])
    assert exit_.value.code == 2 and "--key" in capsys.readouterr().err


def test_runs_needs_the_sessions_key(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["runs"])
    assert exit_.value.code == 2 and "--key" in capsys.readouterr().err


def test_predict_without_any_text_is_a_usage_error_with_status_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("TM_URL", f"http://127.0.0.1:{closed_port()}")
    (tmp_path / "blank.txt").write_text("\n  \n")
    assert main(["predict", "--key", "k", "--file", str(tmp_path / "blank.txt")]) == 2
    assert capsys.readouterr().err == "error: give texts as arguments or --file\n"


def test_the_class_named_to_load_the_model_is_the_one_training_built_it_with():
    """Training builds token_classification models with AutoModelForTokenClassification and every other task
    (regression included: one output) with AutoModelForSequenceClassification (train_jobs/training/worker.py)."""
    from typing import get_args

    from train_jobs.config import TaskType

    expected = {"sequence_classification": "AutoModelForSequenceClassification",
                "regression": "AutoModelForSequenceClassification",
                "token_classification": "AutoModelForTokenClassification"}
    assert set(get_args(TaskType)) == set(expected)  # a new task type gets its class here too
    assert {task: model_class(task) for task in expected} == expected


def test_a_train_uri_without_a_test_uri_is_a_usage_error_before_any_call(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--url", "http://127.0.0.1:9", "run", "--train-uri", "s3://bucket/train"])
    assert exc.value.code == 2 and "--train-uri and --test-uri go together" in capsys.readouterr().err
