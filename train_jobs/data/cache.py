"""The preprocessing cache's key and lookup: light enough for the session actor to answer a cache hit itself."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

from train_jobs.files import read_json
from train_jobs.models.lookup import tokenizer_fingerprint
from train_jobs.specs import PreprocessSpec

CACHE_VERSION = 2  # 2: rows in upload order (caches of version 1 may hold them in any order)


def cache_key(spec: PreprocessSpec) -> str:
    """Same files, tokenizer, length, columns, labels and task: same cache."""
    parts = {
        "version": CACHE_VERSION,
        "files": [split.sha256 for split in spec.dataset.splits.values()],
        "tokenizer": tokenizer_fingerprint(Path(spec.model_dir)),
        "max_seq_length": spec.max_seq_length,
        "text_columns": spec.dataset.train.text_columns,
        # A dataset by URI's labels come from the whole source at preprocessing, which its identity covers.
        "labels": None if spec.dataset.by_uri else spec.dataset.labels,
        "task_type": spec.dataset.task_type,
        "target": spec.dataset.target,
    }  # these parts, as they were when the dataset was a dict: a new field must not change a cache's key
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def cache_path(spec: PreprocessSpec) -> Path:
    return Path(spec.cache_dir) / cache_key(spec)


def reusable_cache(spec: PreprocessSpec) -> Optional[dict]:
    """The finished cache for `spec` (its meta, marked reused), unless missing, unreadable or `overwrite_cache`."""
    if spec.overwrite_cache:
        return None
    try:
        meta = read_json(cache_path(spec) / "meta.json")
    except ValueError:  # a torn or foreign meta.json: build the cache again
        return None
    return {**meta, "reused": True} if isinstance(meta, dict) else None
