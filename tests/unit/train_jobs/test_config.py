"""Unit tests of the training config (train_jobs/config.py, serve_app/schemas.py) and cluster/storage.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from serve_app.schemas import TrainingConfigUpdate
from train_jobs.config import TrainingConfigParams
from train_jobs.files import atomic_write_bytes, atomic_write_json, is_inside, read_json
from train_jobs.training.metrics import CLASSIFICATION_METRICS

DEFAULTS = {
    "model": "all-MiniLM-L6-v2",
    "task_type": "sequence_classification",
    "batch_size": "auto",
    "epochs": "auto",
    "eval_metrics": ["accuracy"],
    "epochs_per_test_run": 1,
    "learning_rate": "auto",
    "warmup_ratio": "auto",
    "early_stopping_patience": "auto",
    "validation_split": 0.1,
    "metric_for_best_model": "auto",
    "eval_steps": None,
    "seed": 42,
    "init_eval": False,
    "cache_dir": None,
    "overwrite_cache": False,
    "group_by_length": True,
    "precision": "auto",
    "multi_label_threshold": 0.5,
    "resource_wait_timeout_s": None,
    "placement_strategy": "PACK",
}


# --- TrainingConfigParams --------------------------------------------------------------------------


@pytest.mark.parametrize("field, value", DEFAULTS.items())
def test_defaults(field, value):
    assert getattr(TrainingConfigParams(), field) == value


def test_default_metrics_list_not_shared():
    a, b = TrainingConfigParams(), TrainingConfigParams()
    a.eval_metrics.append("f1")
    assert b.eval_metrics == ["accuracy"]


def test_all_fields_round_trip():
    cfg = TrainingConfigParams(epochs=5, batch_size=8, eval_metrics=["f1", "roc_auc"], learning_rate=1e-3)
    assert TrainingConfigParams(**cfg.model_dump()) == cfg


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bogus": 1},
        {"epochs": 0},
        {"epochs": -1},
        {"batch_size": 0},
        {"learning_rate": 0},
        {"epochs_per_test_run": 0},
        {"task_type": "question_answering"},
        {"eval_metrics": []},
        {"precision": "fp16"},
        {"multi_label_threshold": 0},
        {"multi_label_threshold": 1},
        {"learning_rate": "fast"},
        {"epochs": "auto-ish"},
        {"validation_split": -0.1},
        {"validation_split": 0.6},
        {"metric_for_best_model": "bleu"},
        {"task_type": "regression", "metric_for_best_model": "accuracy"},
        {"early_stopping_patience": 0},
        {"eval_steps": 0},
        {"seed": -1},
        {"seed": 2**40},
        {"placement_strategy": "spread"},
    ],
    ids=str,
)
def test_refused(kwargs):
    with pytest.raises(ValidationError):
        TrainingConfigParams(**kwargs)


def test_unknown_field_names_the_field():
    with pytest.raises(ValidationError) as info:
        TrainingConfigParams(epoch=2)
    errors = info.value.errors()
    assert errors[0]["loc"] == ("epoch",)
    assert errors[0]["type"] == "extra_forbidden"


def test_unknown_metric_lists_valid_names():
    with pytest.raises(ValidationError) as info:
        TrainingConfigParams(eval_metrics=["accuracy", "bleu"])
    msg = str(info.value)
    assert "bleu" in msg
    for name in CLASSIFICATION_METRICS:
        assert repr(name) in msg


@pytest.mark.parametrize("metrics", [[name] for name in sorted(CLASSIFICATION_METRICS)] + [sorted(CLASSIFICATION_METRICS)])
def test_known_metrics_accepted(metrics):
    assert TrainingConfigParams(eval_metrics=metrics).eval_metrics == metrics


@pytest.mark.parametrize("value", ["auto", None, "f1_macro", "accuracy", "roc_auc"])
def test_metric_for_best_model_takes_auto_null_or_a_metric_of_the_task(value):
    assert TrainingConfigParams(metric_for_best_model=value).metric_for_best_model == value


def test_an_unknown_metric_for_best_model_names_auto_among_the_choices():
    with pytest.raises(ValidationError) as info:
        TrainingConfigParams(metric_for_best_model="bleu")
    assert "'bleu'" in str(info.value) and '"auto"' in str(info.value) and "'f1_macro'" in str(info.value)


# --- TrainingConfigUpdate --------------------------------------------------------------------------


def test_update_dumps_only_what_was_set():
    assert TrainingConfigUpdate(epochs=2).model_dump(exclude_unset=True) == {"epochs": 2}
    assert TrainingConfigUpdate().model_dump(exclude_unset=True) == {}


def test_update_has_every_field_optional():
    assert set(TrainingConfigUpdate.model_fields) == set(TrainingConfigParams.model_fields)
    assert all(v is None for v in TrainingConfigUpdate().model_dump().values())


@pytest.mark.parametrize(
    "kwargs",
    [{"epochs": 0}, {"batch_size": 0}, {"learning_rate": -1.0}, {"bogus": 1}, {"task_type": "ner"}],
    ids=str,
)
def test_update_keeps_constraints(kwargs):
    with pytest.raises(ValidationError):
        TrainingConfigUpdate(**kwargs)


def test_update_merges_into_a_valid_config():
    patch = TrainingConfigUpdate(epochs=7, eval_metrics=["f1"]).model_dump(exclude_unset=True)
    cfg = TrainingConfigParams(**{**TrainingConfigParams().model_dump(), **patch})
    assert cfg.epochs == 7
    assert cfg.eval_metrics == ["f1"]
    assert cfg.batch_size == "auto"


# --- cluster/storage.py ----------------------------------------------------------------------------


def test_atomic_write_json_round_trip(tmp_path):
    obj = {"a": 1, "b": [1.5, None, True], "c": {"d": "é"}, "path": Path("/x/y")}
    target = tmp_path / "sub" / "state.json"
    atomic_write_json(target, obj)
    assert read_json(target) == {**obj, "path": "/x/y"}  # non-JSON values go through str()
    atomic_write_json(target, [1, 2])  # overwrite
    assert read_json(target) == [1, 2]
    assert os.listdir(target.parent) == ["state.json"]  # no temp files left behind


def test_atomic_write_failure_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "state.json"
    atomic_write_json(target, {"v": 1})
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # fails inside the write
    assert read_json(target) == {"v": 1}
    assert os.listdir(tmp_path) == ["state.json"]


def test_read_json_default_when_missing(tmp_path):
    assert read_json(tmp_path / "nope.json") is None
    assert read_json(tmp_path / "nope.json", default={"x": 1}) == {"x": 1}


def test_is_inside(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    assert is_inside(root / "sub" / "file", root)
    assert is_inside(root / "sub" / ".." / "file", root)
    assert not is_inside(root / ".." / "x", root)
    assert not is_inside(root / "sub" / ".." / ".." / "outside", root)
    assert not is_inside(tmp_path / "rootless", root)  # a sibling sharing the prefix


def test_is_inside_resolves_symlinks(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (root / "inside_dir").mkdir()
    (root / "escape").symlink_to(tmp_path / "outside")
    (root / "ok").symlink_to(root / "inside_dir")
    assert not is_inside(root / "escape", root)
    assert not is_inside(root / "escape" / "file.txt", root)
    assert is_inside(root / "ok" / "file.txt", root)


def test_max_positions_reads_the_model_and_tokenizer_limits(tmp_path):
    from train_jobs.files import atomic_write_json
    from train_jobs.models.lookup import bundled_model_dir, max_positions

    assert max_positions(bundled_model_dir()) == 512
    atomic_write_json(tmp_path / "config.json", {"max_position_embeddings": 514})
    atomic_write_json(tmp_path / "tokenizer_config.json", {"model_max_length": 1000000000000000019884624838656})
    assert max_positions(tmp_path) == 514
    atomic_write_json(tmp_path / "tokenizer_config.json", {"model_max_length": 512})
    assert max_positions(tmp_path) == 512
    assert max_positions(tmp_path / "missing") is None
