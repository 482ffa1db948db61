"""Unit tests of train_jobs/specs.py's typed cache meta: a spec written by earlier code still loads, whole."""

from __future__ import annotations

import json

from train_jobs.specs import CacheMeta

META = {"key": "k", "path": "/data/cache/k", "rows": {"train": 6, "test": 4, "validation": 2}, "max_seq_length": 128,
        "labels": ["neg", "pos"], "text_columns": ["text"], "target": "label", "multi_label": False, "reused": True}


def test_a_cache_meta_as_build_cache_writes_it_reads_typed_and_dumps_unchanged():
    meta = CacheMeta(**json.loads(json.dumps(META)))
    assert meta.path == "/data/cache/k" and meta.rows["validation"] == 2 and meta.text_columns == ["text"]
    assert meta.model_dump() == META  # `reused`, which the meta does not name, is kept


def test_a_cache_meta_with_keys_it_does_not_name_or_without_optional_ones_still_loads():
    meta = CacheMeta(rows={"train": 607}, text_columns=["a", "b"], target=["score_a", "score_b"], added_later=1)
    assert meta.labels == [] and meta.multi_label is False and meta.model_dump()["added_later"] == 1
