"""Export a trained model directory for CPU inference: model.onnx (fp32 or int8, onnx_files.py) with the
tokenizer and configs beside it, kept only once its predictions agree with the torch model's (agreement.py).

Plain functions, no Ray: the cluster runs them in a task. The check's figures are written to
export_check.json in the export, so they travel in its archive.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import torch

from train_jobs.errors import WrongState
from train_jobs.files import atomic_write_json, read_json, remove_tree, swap_directory
from train_jobs.inference.agreement import bar_of, compare, passes, refusal
from train_jobs.inference.formats import CHECK_FILE, EXPORT_FORMATS, ONNX_FILE
from train_jobs.inference.onnx_files import QUANTISERS, write_onnx
from train_jobs.inference.predict import Predictor
from train_jobs.models.lookup import TOKENIZER_FILES
from train_jobs.results.archives import write_tar_gz
from train_jobs.specs import DatasetSpec

log = logging.getLogger(__name__)

# Beside model.onnx, so the directory is self-contained: labels and task (config.json), max_seq_length,
# threshold and text columns (training_config.json), and the tokenizer.
COPIED = ("config.json", "training_config.json", *TOKENIZER_FILES)
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "config.json")
CHECK_ROWS = 1000  # inputs the check compares at most: seconds for a MiniLM on one core
INT8_METHODS = ("dynamic", "weight-only")  # the fastest first; the second when the first misses the bar


def source_of(model_dir: Path) -> dict:
    """What identifies the trained model an export was made from: its directory and weights (size, mtime), so a
    run resumed in the same directory makes the export stale."""
    files = {name: [(model_dir / name).stat().st_size, (model_dir / name).stat().st_mtime_ns]
             for name in WEIGHT_FILES if (model_dir / name).is_file()}
    return {"model_dir": str(model_dir), "files": files}


def is_current(model_dir: Path, export_dir: Path) -> bool:
    """The export in `export_dir` exists, passed its check, and was made from the model now in `model_dir`."""
    check = read_json(export_dir / CHECK_FILE)
    return bool(check) and (export_dir / ONNX_FILE).is_file() and check.get("source") == source_of(model_dir)


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "transformers", "onnx", "onnxscript", "onnxruntime")}


def export_model(model_dir: Path, dest: Path, fmt: str, dataset: Optional[DatasetSpec], max_rows: int = CHECK_ROWS,
                 bars: Optional[dict] = None, int8_methods: Sequence[str] = INT8_METHODS) -> dict:
    """Build the `fmt` export of `model_dir` at `dest` (replacing what is there) and return its check; an export
    that misses its bar raises WrongState and keeps nothing. `dataset` is the session's upload summary: the check
    runs on its test rows (validation or train rows when the test file is gone)."""
    from train_jobs.data.samples import held_out_inputs

    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; one of {EXPORT_FORMATS}")
    rows = held_out_inputs(dataset, max_rows)
    if rows is None:
        raise WrongState("no dataset rows to check the export on: the session's dataset files are gone",
                         hint="download the torch model (format=torch), or upload the dataset and train again")
    tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        check = _build(model_dir, tmp, fmt, rows, bars, int8_methods)
        swap_directory(tmp, dest)
    finally:
        remove_tree(tmp)
    return check


def _build(model_dir: Path, out: Path, fmt: str, rows: tuple, bars: Optional[dict], methods: Sequence[str]) -> dict:
    started = time.monotonic()
    split, kind, items = rows
    out.mkdir(parents=True)
    for name in COPIED:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, out / name)
    reference = Predictor(model_dir, device="cpu")
    fp32 = out / (ONNX_FILE if fmt == "onnx" else "model-fp32.onnx")
    try:
        opset = write_onnx(reference, fp32)
    except Exception as e:
        log.exception("ONNX export of %s failed", model_dir)
        raise export_failure(e) from None
    atomic_write_json(out / CHECK_FILE, {"format": fmt})  # the runtime the candidate reports while checked
    figure, bar = bar_of(fmt, reference.task, bars)
    tried = []
    for method in methods if fmt == "onnx-int8" else [None]:
        quantisation = QUANTISERS[method](fp32, out / ONNX_FILE) if method else None
        figures = compare(reference, Predictor(out, threads=torch.get_num_threads()), kind, items)
        tried.append({**(quantisation or {}), **figures})
        if passes(figure, figures.get(figure), bar):
            break
    else:
        raise refusal(fmt, figure, [t.get(figure) for t in tried], bar, split)
    if fp32.name != ONNX_FILE:
        fp32.unlink()
    check = {"format": fmt, "task": reference.task, "input": kind, "split": split, **figures,
             "bar": {"figure": figure, "value": bar}, "passed": True, "quantisation": quantisation,
             "rejected": tried[:-1], "exporter": "torch.onnx.export(dynamo=True)", "opset": opset,
             "versions": versions(), "source": source_of(model_dir), "seconds": round(time.monotonic() - started, 1)}
    atomic_write_json(out / CHECK_FILE, check)
    return check


def export_failure(exc: Exception) -> Exception:
    """What a failed write_onnx raises: the machine's own failure as itself (a full disk is an OSError the server
    answers 507, out of memory a MemoryError), anything else a refusal (409) that the model cannot be exported (an
    architecture torch.export cannot trace). Rebuilt from plain types, not chained: the exporter wraps errors in its
    own, which need not pickle on their way out of the Ray task."""
    cause: Optional[BaseException] = exc
    while cause is not None:
        if isinstance(cause, OSError):
            return OSError(cause.errno, cause.strerror or str(cause), cause.filename)
        if isinstance(cause, MemoryError):
            return MemoryError(f"out of memory while exporting to ONNX: {cause}")
        cause = cause.__cause__ or cause.__context__
    return WrongState(f"this model could not be exported to ONNX: {type(exc).__name__}: {str(exc)[:300]}",
                      hint="download the torch model (format=torch) or deploy with runtime torch")


def ensure_export(model_dir: Path, export_dir: Path, fmt: str, dataset: Optional[DatasetSpec],
                  archive: Optional[Path] = None) -> Path:
    """The current `fmt` export of `model_dir` (built when missing or stale) or, given `archive`, its tar.gz
    (built when missing or older than the export). Returns the one asked for."""
    if not is_current(model_dir, export_dir):
        export_model(model_dir, export_dir, fmt, dataset)
    if archive is None:
        return export_dir
    if not archive.is_file() or archive.stat().st_mtime_ns < (export_dir / CHECK_FILE).stat().st_mtime_ns:
        write_tar_gz(export_dir, archive, f"model-{fmt}")
    return archive
