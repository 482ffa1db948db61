"""Importing base models into the catalogue under `<storage_root>/models/`.

Each source is fetched or copied into a staging folder, checked (a fast tokenizer,
an architecture with a sequence classification head), described, and only then
renamed into the catalogue, so a failed import leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import time
import uuid
import zipfile
from pathlib import Path, PurePosixPath
from typing import Optional, get_args

from train_jobs.errors import InvalidParameters
from train_jobs.files import atomic_write_json, is_inside, read_json, swap_directory, update_hash
from train_jobs.models.hub import limit_hub_requests, transport_failure
from train_jobs.models.lookup import MODEL_NAME, TOKENIZER_FILES, parameter_count
from train_jobs.specs import ArchiveLimits, ImportSpec, ModelSource, OnProgress

SOURCES = get_args(ModelSource)
METADATA = "catalogue.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# Files a Hugging Face model directory needs; others (e.g. sentence-transformers' pooling) are left out.
MODEL_PATTERNS = ("config.json", "*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", *TOKENIZER_FILES)
HUB_TIMEOUT_S = 10.0  # each request to the Hub: connect, read (server setting hub_timeout_s)


class ImportFailed(Exception):
    """An import that cannot succeed; the message says what to fix."""


def catalogue_name(model_type: str, model_name: str) -> str:
    """The name a model is known by once imported (`org/model` becomes `org--model`)."""
    if model_type not in SOURCES:
        raise InvalidParameters(f"unknown model_type {model_type!r}; choose from {list(SOURCES)}", field="model_type")
    if model_type == "bundled":
        from train_jobs.config import DEFAULT_MODEL

        return DEFAULT_MODEL
    name = model_name.strip().rstrip("/")
    name = name.replace("/", "--") if model_type == "hub" else PurePosixPath(name).name
    for suffix in (".tar.gz", ".tgz", ".zip"):
        if model_type == "archive" and name.endswith(suffix):
            name = name[: -len(suffix)]
    if not MODEL_NAME.match(name):
        raise InvalidParameters(f"model_name {model_name!r} gives no usable catalogue name; use letters, digits, "
                                "'.', '_' and '-'", field="model_name")
    return name


def check_directory_source(path: str, allowed_roots: list[str]) -> Path:
    """The directory to import, refused unless it (symlinks resolved) lies under an allowed root."""
    resolved = Path(path).expanduser().resolve()
    if not any(is_inside(resolved, Path(root)) for root in allowed_roots):
        raise InvalidParameters(f"{path!r} is outside the directories models may be imported from "
                                f"({', '.join(allowed_roots) or 'none configured'})", field="model_name")
    if not (resolved / "config.json").is_file():
        raise InvalidParameters(f"{path!r} is not a model directory (no config.json)", field="model_name")
    return resolved


def _copy_model_files(src: Path, dest: Path, root: Optional[Path] = None) -> None:
    """Copy the model's files; any file that resolves outside `root` (a symlink out) is refused."""
    dest.mkdir(parents=True, exist_ok=True)
    for pattern in MODEL_PATTERNS:
        for f in src.glob(pattern):
            if root is not None and not is_inside(f, root):
                raise ImportFailed(f"{f.name} links outside the allowed directory {root}; copy the file in instead")
            if f.is_file():
                shutil.copy2(f.resolve(), dest / f.name)


def _transformer_dir(folder: Path) -> Path:
    """A sentence-transformers layout imports as its underlying transformer (modules.json says where)."""
    modules = read_json(folder / "modules.json")
    for module in modules or []:
        if module.get("type", "").endswith("Transformer"):
            return folder / module.get("path", "")
    return folder


def _safe_members(names: list[str]) -> None:
    for name in names:
        p = PurePosixPath(name)
        if p.is_absolute() or ".." in p.parts or name.startswith(("/", "\\")):
            raise ImportFailed(f"the archive entry {name!r} points outside the archive; refused")


def check_archive_size(sizes: list[int], archive: Path, limits: ArchiveLimits) -> None:
    """Refuse an archive whose entries, unpacked size or compression ratio pass the limits, before a byte of it
    is written (a zip bomb)."""
    total, packed = sum(sizes), max(archive.stat().st_size, 1)
    if len(sizes) > limits.max_entries:
        raise ImportFailed(f"the archive holds {len(sizes)} entries; at most {limits.max_entries} are allowed "
                           "(server setting max_archive_entries)")
    if total > limits.max_unpacked_bytes:
        raise ImportFailed(f"the archive unpacks to {total >> 20} MiB; at most {limits.max_unpacked_bytes >> 20} MiB "
                           "is allowed (server setting max_model_unpacked_mb)")
    if total > limits.max_ratio * packed and total > 1 << 20:
        raise ImportFailed(f"the archive unpacks to {total // packed}x its size; at most {limits.max_ratio}x is "
                           "allowed (server setting max_archive_ratio): model weights barely compress")


def extract_archive(archive: Path, dest: Path, limits: ArchiveLimits) -> Path:
    """Unpack a tar.gz or zip after checking its size and that no entry escapes `dest`; returns the model
    folder inside."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                _safe_members(zf.namelist())
                check_archive_size([i.file_size for i in zf.infolist()], archive, limits)
                zf.extractall(dest)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tar:
                members = tar.getmembers()  # reads the headers only: nothing is written yet
                _safe_members([m.name for m in members])
                check_archive_size([m.size for m in members], archive, limits)
                tar.extractall(dest, filter="data")  # also refuses links out and special files
        else:
            raise ImportFailed("the upload is not a tar.gz or zip archive")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise ImportFailed(f"the archive is corrupt or truncated: {e}") from None
    configs = sorted(dest.rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise ImportFailed("the archive holds no config.json; archive a Hugging Face model directory")
    return configs[0].parent


def download_from_hub(repo_id: str, dest: Path, endpoint: Optional[str] = None, timeout_s: float = HUB_TIMEOUT_S) -> Path:
    """Real download with huggingface_hub, each request limited to `timeout_s`: no network, or a Hub that does not
    answer, fails within about that time, never hangs. `endpoint` defaults to HF_ENDPOINT or huggingface.co."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

    hub = f"the Hugging Face Hub at {endpoint or constants.ENDPOINT}"
    instead = "without network, import from a directory or an archive instead"
    limit_hub_requests(timeout_s)
    try:
        return Path(snapshot_download(repo_id, local_dir=dest, allow_patterns=list(MODEL_PATTERNS),
                                      endpoint=endpoint, etag_timeout=timeout_s))
    except OfflineModeIsEnabled:
        raise ImportFailed("the Hugging Face Hub is disabled here (HF_HUB_OFFLINE); import from a directory "
                           "or an archive instead") from None
    except RepositoryNotFoundError:
        raise ImportFailed(f"no model {repo_id!r} on {hub} (or it is private)") from None
    except Exception as e:  # httpx2 transport errors escape snapshot_download unwrapped
        what = transport_failure(e, timeout_s)
        if what is None and not isinstance(e, (HfHubHTTPError, OSError, ValueError)):
            raise
        what = what or f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        raise ImportFailed(f"cannot download {repo_id!r} from {hub}: {what}; {instead}") from None


def describe(folder: Path) -> dict:
    """Check the model can be fine-tuned here and describe it for the catalogue."""
    from transformers import AutoConfig, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

    try:
        config = AutoConfig.from_pretrained(folder)
    except Exception as e:  # transformers raises several types for a bad config
        raise ImportFailed(f"config.json cannot be read: {e}") from None
    head = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES.get(config.model_type)
    if head is None:
        raise ImportFailed(f"architecture {config.model_type!r} has no sequence classification head in transformers")
    if not any((folder / w).is_file() for w in WEIGHT_FILES) and not list(folder.glob("*.safetensors")):
        raise ImportFailed("no weights (model.safetensors or pytorch_model.bin) in the model directory")
    tokenizer = None
    # transformers 5 builds an empty tokenizer from config.json alone, so look for the files first.
    if any((folder / f).is_file() for f in TOKENIZER_FILES):
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, use_fast=True)
        except Exception:
            tokenizer = None
    if tokenizer is None or not tokenizer.is_fast or not tokenizer.vocab_size:
        raise ImportFailed("no fast tokenizer (tokenizer.json, or vocab files it can be built from) in the model "
                           "directory; add the tokenizer files")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != METADATA)
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(folder)).encode())
        update_hash(digest, f)
    return {
        "architecture": (config.architectures or [config.model_type])[0],
        "model_type": config.model_type,
        "classification_head": head,
        "parameters": parameter_count(folder),
        "tokenizer": type(tokenizer).__name__,
        "vocab_size": tokenizer.vocab_size,
        "size_bytes": sum(f.stat().st_size for f in files),
        "sha256": digest.hexdigest(),
        "files": [str(f.relative_to(folder)) for f in files],
    }


def import_model(spec: ImportSpec, on_progress: OnProgress) -> dict:
    """Run one import: fetch into staging, check, describe, then rename into the catalogue."""
    models_dir = Path(spec.models_dir)
    staging = models_dir / f".import-{uuid.uuid4().hex[:8]}"
    started = time.time()
    try:
        on_progress(0.1, f"fetching from {spec.model_type}")
        source = spec.model_type
        fetched = staging / "fetched"
        if source == "hub":
            src = download_from_hub(spec.model_name, fetched, spec.hub_endpoint, spec.hub_timeout_s)
        elif source == "archive":
            src = extract_archive(Path(spec.archive_path), fetched, spec.limits)
        elif source == "directory":
            src = Path(spec.model_name)
        else:
            from train_jobs.models.lookup import bundled_model_dir

            src = bundled_model_dir()
        root = Path(spec.model_name).resolve() if source == "directory" else None
        model = staging / "model"
        _copy_model_files(_transformer_dir(src), model, root)
        on_progress(0.6, "checking the model and tokenizer")
        info = describe(model)
        entry = {"name": spec.name, "source": {"model_type": source, "model_name": spec.model_name},
                 **info, "imported_at": started, "import_seconds": round(time.time() - started, 2)}
        atomic_write_json(model / METADATA, entry)
        final = swap_directory(model, models_dir / spec.name)  # a re-import replaces the entry as a whole
        on_progress(1.0, f"imported {spec.name}")
        return {**entry, "path": str(final)}
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if spec.archive_path:
            Path(spec.archive_path).unlink(missing_ok=True)


def catalogue(models_dir: Path) -> list[dict]:
    """Every imported model's entry (models placed by hand have a minimal one)."""
    entries = []
    if models_dir.is_dir():
        for d in sorted(models_dir.iterdir()):
            if d.name.startswith(".") or not (d / "config.json").is_file():
                continue
            entry = read_json(d / METADATA) or {"source": "placed by hand"}
            entries.append({"name": d.name, "path": str(d), **entry})
    return entries
