"""Downloadable archives: the model directory and the results folder."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Optional

from train_jobs.files import atomic_path, atomic_write_csv, atomic_write_json, read_json
from train_jobs.models.lookup import TOKENIZER_FILES

# A checkpoint's files that are not the model: what a run resumes from (training/checkpoints.py writes them).
STATE_FILE = "train_state.pt"
BEST_FILE = "best_model.safetensors"  # the best weights, when the checkpoint's own are not
MARK_FILE = "checkpoint.json"  # score, epoch and step: which checkpoint a restart offers
RESUME_FILES = (STATE_FILE, BEST_FILE, MARK_FILE)


def kept_checkpoint(run_storage: Path) -> Optional[Path]:
    """The checkpoint of a run whose model is the one to offer: the highest score (the best on validation),
    the newest among equals; only checkpoints holding a complete model count."""
    found = sorted(p for p in run_storage.glob("checkpoint_*") if (p / "config.json").is_file()
                   and (p / "model.safetensors").is_file())
    if not found:
        return None
    return max(enumerate(found), key=lambda item: ((read_json(item[1] / MARK_FILE) or {}).get("score", 0.0),
                                                   item[0]))[1]


# Trained weights barely compress (MiniLM: 91.6 MB, 84.0 MB at gzip level 1) and compressing them took 3-7 s of
# every run on 2 cores: a model archive stores them in the gzip stream, uncompressed, still a .tar.gz for any tool.
STORED = 0


def write_tar_gz(src_dir: Path, dest: Path, arcname: str, keep=lambda path: True, compresslevel: int = 1) -> Path:
    """Archive a folder (the files `keep` accepts) as tar.gz at `compresslevel` (0: stored, 1: fast)."""
    with atomic_path(dest) as tmp, tarfile.open(tmp, "w:gz", compresslevel=compresslevel) as tar:
        tar.add(src_dir, arcname=arcname, filter=lambda info: info if keep(info.name) else None)
    return dest


def write_history_csv(results_dir: Path) -> None:
    history = read_json(results_dir / "history.json", [])
    if not history:
        return
    fields = sorted({k for entry in history for k in entry}, key=lambda k: (k not in ("epoch", "step"), k))
    atomic_write_csv(results_dir / "history.csv", fields, ([entry.get(k) for k in fields] for entry in history))


def build_results(results_dir: Path, config: dict, dataset: dict, dest: Path, stopped: bool = False) -> Path:
    """Add the config, dataset summary, plots and summary.md to the results folder and archive it."""
    from train_jobs.results.report import write_report  # matplotlib: only where results are built

    results_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(results_dir / "config.json", config)
    atomic_write_json(results_dir / "dataset.json", dataset)
    write_history_csv(results_dir)
    write_report(results_dir, config, dataset, stopped)
    return write_tar_gz(results_dir, dest, "results")


def build_model_archive(model_dir: Path, dest: Path) -> Path:
    """The model as `from_pretrained` loads it; the training state a resume needs stays out."""
    return write_tar_gz(model_dir, dest, "model", keep=lambda name: Path(name).name not in RESUME_FILES,
                        compresslevel=STORED)


def build_catalogue_archive(model_dir: Path, dest: Path, tokenizer: bool) -> Path:
    """An imported model as tar.gz: weights, config and catalogue entry, plus the tokenizer when asked."""
    return write_tar_gz(model_dir, dest, model_dir.name,
                        keep=lambda name: tokenizer or Path(name).name not in TOKENIZER_FILES)
