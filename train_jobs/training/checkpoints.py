"""Checkpoints that a run resumes from: the model as a Hugging Face directory, plus the training state.

Every evaluation, every epoch and every `checkpoint_every_steps` steps, rank 0
reports a checkpoint holding the model (what users download), `train_state.pt`
(the optimiser while epochs remain, schedule, RNG, selection and history, and
where in the data the run is) and, when these weights are not the best so far, the best ones beside them.
A checkpoint's score is the selection score when it is the best so far, else
the lowest: Ray Train keeps the best and the latest, so a restarted worker group
resumes from the latest and the model kept stays the best.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import ray.train
import torch
from safetensors.torch import load_file, save_file

from train_jobs.errors import DISK_FULL, CheckpointDidNotFit
from train_jobs.results.archives import BEST_FILE, MARK_FILE, STATE_FILE
from train_jobs.training.selection import BEST, NONE_YET, SCORE
from train_jobs.training.worker import Position, Worker


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def report(w: Worker, metrics: dict, checkpoint: bool, best: bool = False) -> None:
    """Every rank reports; with `checkpoint`, rank 0 attaches the model and the training state (`best`: these
    weights are the best so far; without validation the latest always is)."""
    if w.spec.validation:
        metrics = {**metrics, BEST: w.selection.score()}
    if w.rank != 0 or not checkpoint:
        ray.train.report(metrics)
        return
    best = best or not w.spec.validation
    if best:
        w.checkpointed = True
    score = (w.selection.score() if w.spec.validation else float(w.position.step)) if best else NONE_YET
    config = w.spec.archived_config()
    if w.spec.validation and w.selection.best is not None:
        config["selected"] = w.selection.describe()
    with w.timings.phase("checkpoints"), tempfile.TemporaryDirectory() as d:
        w.core.save_pretrained(d)
        w.tokenizer.save_pretrained(d)
        (Path(d) / "training_config.json").write_text(json.dumps(config, indent=1))
        _save_state(Path(d), w, best)
        (Path(d) / MARK_FILE).write_text(json.dumps({"score": score, "best": best, "step": w.position.step}))
        _persist(w, Path(d), {**metrics, SCORE: score})


HEADROOM = 1 << 20  # besides a checkpoint: Ray Train's own small files, the session record, the run's results


def _persist(w: Worker, d: Path, metrics: dict) -> None:
    """Report the checkpoint in `d`; one that does not fit in the space left under the storage root ends the
    run (CheckpointDidNotFit) instead of filling the disk, checked before Ray Train copies it there."""
    size = sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
    free = shutil.disk_usage(_existing(Path(w.spec.storage_path))).free
    if size + HEADROOM > free:
        raise _did_not_fit(w, size, f"{free / 1e6:.1f} MB free")
    try:
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))
    except OSError as e:  # filled meanwhile, by something else; the job discards the partial copy
        if e.errno not in DISK_FULL:
            raise
        raise _did_not_fit(w, size, "the disk filled up while it was written") from e


def _check_room(w: Worker) -> None:
    params = list(w.core.parameters())  # each shared (tied) weight once, as the checkpoint holds it
    weights = sum(p.numel() * p.element_size() for p in params)
    moments = 2 * sum(p.numel() * p.element_size() for p in params if p.requires_grad)  # AdamW's, in their dtype
    free = shutil.disk_usage(_existing(Path(w.spec.storage_path))).free
    if weights + moments + HEADROOM > free:
        raise _did_not_fit(w, weights + moments, f"{free / 1e6:.1f} MB free", "a checkpoint of this run (at least ")


def _did_not_fit(w: Worker, size: int, why: str, what: str = "") -> CheckpointDidNotFit:
    root = w.spec.storage_root or w.spec.storage_path
    what = what or f"the checkpoint of step {w.position.step} ("
    return CheckpointDidNotFit(f"{what}{size / 1e6:.1f} MB) did not fit in the storage root {root}: no space left "
                               f"({why}); free space there, or move storage_root to a larger disk, then train again")


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _save_state(d: Path, w: Worker, best: bool) -> None:
    if not best and w.best_state is not None:
        save_file({k: v.contiguous() for k, v in w.best_state.items()}, str(d / BEST_FILE))
    state = {"scheduler": w.scheduler.state_dict(), "position": dataclasses.asdict(w.position), "history": w.history,
             "checkpointed": w.checkpointed,
             "selection": {"best": w.selection.best, "since_best": w.selection.since_best},
             "last_eval_step": w.last_eval_step, "rng": _rng_state()}
    # The optimiser's moments are twice the model's size; after the last epoch no step is left to take with them.
    if w.position.epoch <= w.spec.hyper.epochs:
        state["optimizer"] = w.optimizer.state_dict()
    torch.save(state, d / STATE_FILE)


def resume(w: Worker) -> bool:
    """Restore the run from Ray Train's latest checkpoint, if there is one; True when it did.

    First, on rank 0, a run whose checkpoints cannot fit under the storage root ends before it trains: the
    weights and the optimiser's two moments are a lower bound on a checkpoint. Checked at the start of every
    attempt, so Ray Train's retries of a run that met a full disk fail at once instead of training up to the
    same checkpoint again."""
    if w.rank == 0:
        _check_room(w)
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return False
    with checkpoint.as_directory() as d:
        d = Path(d)
        state = torch.load(d / STATE_FILE, weights_only=False)  # our own file, written by _save_state
        weights = load_file(str(d / "model.safetensors"), device=str(w.device))
        unexpected = w.core.load_state_dict(weights, strict=False).unexpected_keys
        assert not unexpected, f"checkpoint weights the model does not have: {unexpected[:5]}"
        best_file = d / BEST_FILE
        w.best_state = load_file(str(best_file)) if best_file.exists() else (
            {k: v.detach().to("cpu", copy=True) for k, v in w.core.state_dict().items()}
            if state["checkpointed"] and w.spec.validation else None)
    if "optimizer" in state:  # absent once training is over: the run resumes at the test
        w.optimizer.load_state_dict(state["optimizer"])
    w.scheduler.load_state_dict(state["scheduler"])
    w.position = Position(**{**state["position"], "restarts": state["position"]["restarts"] + 1})
    w.history, w.checkpointed, w.last_eval_step = state["history"], state["checkpointed"], state["last_eval_step"]
    w.selection.best, w.selection.since_best = state["selection"]["best"], state["selection"]["since_best"]
    _set_rng_state(state["rng"])  # last: nothing after this may draw from the generators
    return True

