"""Unit tests of cluster/session_record.py's typed dataset: a session file written while the dataset was a plain dict
loads, trains on, keys the same cache and is written back unchanged."""

from __future__ import annotations

import json

from data import dict_cache_key, uploaded_summary

from cluster.session_actor import read_records
from cluster.settings import Settings
from train_jobs.config import TrainingConfigParams
from train_jobs.data.cache import cache_key
from train_jobs.models.lookup import bundled_model_dir
from train_jobs.specs import DatasetSpec, PreprocessSpec, TrainingSpec
from train_jobs.training.hyperparams import plan


def old_record(tmp_path, dataset: dict) -> dict:
    """A trained session as the dict-based code wrote it: the dataset in the record and in its run's spec."""
    config = TrainingConfigParams()
    cache = {"key": "k", "path": str(tmp_path / "cache" / "k"), "rows": {"train": 3, "test": 2},
             "max_seq_length": 128, "labels": ["neg", "pos"], "text_columns": ["text"], "target": "label",
             "multi_label": False, "reused": False}
    run = str(tmp_path / "run")
    spec = {"run_id": "s1-train-2", "config": config.model_dump(), "dataset": dataset, "cache": cache,
            "hyper": plan(config, DatasetSpec(**dataset), bundled_model_dir()).model_dump(),
            "model_dir": str(bundled_model_dir()), "storage_path": run, "results_dir": run + "/results",
            "model_archive": run + "/model.tar.gz", "results_archive": run + "/results.tar.gz"}
    return {"session_id": "s1", "key": "k" * 43, "state": "trained", "config": config.model_dump(), "dataset": dataset,
            "preprocess": {"id": "s1-preprocess-1", "status": "done", "cache": cache},
            "training": {"id": "s1-train-2", "status": "done", "spec": spec}}


def test_a_session_file_from_the_dict_dataset_loads_typed_and_writes_back_unchanged(tmp_path):
    dataset = uploaded_summary(tmp_path / "dataset-1", "sequence_classification", validation=True)
    layout = Settings(storage_root=str(tmp_path / "root")).layout
    layout.state_file("s1").parent.mkdir(parents=True, exist_ok=True)
    layout.state_file("s1").write_text(json.dumps(old_record(tmp_path, dataset), indent=1))
    [record] = read_records(layout)
    assert isinstance(record.dataset, DatasetSpec)
    assert record.dataset.validation.rows == 2 and record.dataset.labels == ["neg", "pos"]
    assert json.loads(record.model_dump_json())["dataset"] == dataset  # no key added, none lost
    run = TrainingSpec(**record.training.spec)  # a restart resumes the run from its spec
    assert run.dataset == record.dataset and run.labels == ["neg", "pos"] and run.dataset.model_dump() == dataset
    preprocess = PreprocessSpec(job_id="j", dataset=record.dataset, model_dir=str(bundled_model_dir()),
                                max_seq_length=128, cache_dir=str(tmp_path / "cache"))
    assert cache_key(preprocess) == dict_cache_key(dataset, bundled_model_dir(), 128)  # its cache is found, not rebuilt
