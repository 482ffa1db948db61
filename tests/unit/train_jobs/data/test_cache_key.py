"""Unit tests of train_jobs/data/cache.py's key over the typed dataset spec: the same files and settings give the key
they gave when the spec was a dict, so no cache on disk is rebuilt and reproduced runs read the same cache."""

from __future__ import annotations

import pytest
from data import UPLOADS, dict_cache_key, uploaded_summary

from train_jobs.data.cache import cache_key
from train_jobs.models.lookup import bundled_model_dir
from train_jobs.specs import DatasetSpec, PreprocessSpec

# The keys of data.UPLOADS (without, with a validation file) with the bundled model and max_seq_length 128, as
# the dict-based code gave them: a change to the key shows here, not as every cache on disk built again.
PINNED = {
    "sequence_classification": ("ab673df14261ac7f229e7d85", "a644cfda83efcb3678493403"),
    "regression": ("6cceaa0c964fbb0bdea92bad", "f56247288f49fb1ed9126c50"),
    "multi_label": ("6a7e506bd1be127595a8c2d5", "9e26a6620ea4a032ba17508a"),
    "token_classification": ("8e167e9a413cb2ce3143e3b5", "95970ba62f36b7a8fce287f7"),
}


def spec(dataset, max_seq_length: int = 128) -> PreprocessSpec:
    return PreprocessSpec(job_id="j", dataset=dataset, model_dir=str(bundled_model_dir()),
                          max_seq_length=max_seq_length, cache_dir="/unused")


@pytest.mark.parametrize("kind", list(UPLOADS))
@pytest.mark.parametrize("validation", [False, True])
def test_the_typed_spec_keys_the_cache_as_the_dict_did(tmp_path, kind, validation):
    summary = uploaded_summary(tmp_path, kind, validation)
    typed = DatasetSpec(**summary)
    assert typed.model_dump() == summary  # every key kept, none added
    expected = dict_cache_key(summary, bundled_model_dir(), 128)
    assert cache_key(spec(typed)) == cache_key(spec(summary)) == expected == PINNED[kind][validation]
    assert cache_key(spec(typed, 64)) == dict_cache_key(summary, bundled_model_dir(), 64) != expected


def test_a_summary_from_before_task_type_and_target_keys_as_it_did(tmp_path):
    summary = uploaded_summary(tmp_path, "sequence_classification")
    del summary["task_type"], summary["target"]
    typed = DatasetSpec(**summary)
    assert typed.task_type == "sequence_classification" and typed.target is None
    assert typed.model_dump() == summary  # the defaults it fills in are not written back
    assert cache_key(spec(typed)) == dict_cache_key(summary, bundled_model_dir(), 128)


def test_keys_the_spec_does_not_name_are_kept_and_leave_the_key_alone(tmp_path):
    summary = uploaded_summary(tmp_path, "sequence_classification")
    added = {**summary, "train": {**summary["train"], "checked_by": "a later server"}, "added_later": 1}
    typed = DatasetSpec(**added)
    assert typed.model_dump() == added and typed.train.model_extra["checked_by"] == "a later server"
    assert cache_key(spec(typed)) == dict_cache_key(summary, bundled_model_dir(), 128)
