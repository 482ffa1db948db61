"""The per-worker training loop that Ray Train's TorchTrainer runs.

Follows Hugging Face's text-classification example (AdamW, linear schedule,
grad clipping at 1.0) but reads the tokenised Ray Data cache and pads per batch.
With validation data, every evaluation scores it; the best model is kept, patience
may stop the run early, and the test split is scored once, at the end, on the
best model. Without validation, evaluations score test and the last epoch's
model is kept. A restarted worker group resumes from the latest checkpoint
(checkpoints.py) and goes on exactly as an uninterrupted run would.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import ray.train
import torch
import torch.distributed as dist

from train_jobs.files import atomic_write_json
from train_jobs.specs import TrainingSpec
from train_jobs.training.batching import epoch_batches
from train_jobs.training.checkpoints import report, resume
from train_jobs.training.collate import model_inputs
from train_jobs.training.precision import autocast
from train_jobs.training.priority import lower_priority
from train_jobs.training.timings import Timings
from train_jobs.training.worker import Worker, setup

MAX_GRAD_NORM = 1.0


def evaluate(w: Worker, dataset, split: str, epoch: int, step: int, final: bool,
             epoch_loss: Optional[float]) -> dict:
    """Rank 0 scores `dataset` and returns the entry (writing the result files when `final`); others get {}."""
    if w.rank != 0:
        return {}
    # Imported at the first evaluation, not at start: scikit-learn and SciPy take about a
    # second to import, in this worker and in every process that unpickles this function.
    from train_jobs.training.evaluation import evaluate_sequences, evaluate_tokens, write_final_results

    tokens = w.spec.config.task_type == "token_classification"
    evaluate_split = evaluate_tokens if tokens else evaluate_sequences
    # fp32, not autocast: metrics and predictions are those of the saved model as users will load it.
    metrics, predictions = evaluate_split(w.core, dataset, w.collate, w.device, w.spec, keep_predictions=final)
    entry = {"epoch": epoch, "step": step, "split": split, "train_loss": epoch_loss, **metrics}
    if final:
        write_final_results(Path(w.spec.results_dir), w.spec, predictions)
    return entry


def agree(w: Worker, flag: bool) -> bool:
    """Rank 0's decision, for every rank: all of them leave the loop or save at the same step."""
    if w.world > 1:
        t = torch.tensor([int(flag)], device=w.device if w.device.type == "cuda" else "cpu")
        dist.broadcast(t, src=0)
        flag = bool(t.item())
    return flag


def stop_requested(w: Worker, step: int, epoch: int) -> bool:
    """Push progress (rank 0) and agree on the session's stop flag across ranks."""
    return agree(w, w.reporter.push(epoch=epoch, step=step, lr=w.scheduler.get_last_lr()[0]) if w.rank == 0 else False)


def evaluation_point(w: Worker, epoch: int, step: int, epoch_loss: Optional[float]) -> bool:
    """Evaluate, keep the model when it is the best so far, report; True when patience ran out."""
    # Without validation, the last epoch's evaluation scores test for the results, and that model is kept.
    final = not w.spec.validation and epoch == w.spec.hyper.epochs and epoch_loss is not None
    if step == w.last_eval_step and not final:  # an eval_steps evaluation just ran at this step
        return False
    w.last_eval_step = step
    split = "validation" if w.spec.validation else "test"
    with w.timings.phase("evaluations"):
        entry = evaluate(w, w.eval_ds, split, epoch, step, final, epoch_loss)
    improved = agree(w, w.rank == 0 and (w.selection.update(entry) if w.spec.validation else step > 0))
    if w.rank == 0:
        w.history.append(entry)
        atomic_write_json(Path(w.spec.results_dir) / "history.json", w.history)
        if final:
            atomic_write_json(Path(w.spec.results_dir) / "final_metrics.json", entry)
        w.reporter.push(epoch=epoch, step=step, lr=w.scheduler.get_last_lr()[0], phase="evaluating",
                        evaluation=entry)
    if improved and w.rank == 0 and w.spec.validation:
        w.best_state = {k: v.detach().to("cpu", copy=True) for k, v in w.core.state_dict().items()}
    metrics = {"epoch": epoch, "step": step, **{k: v for k, v in entry.items() if isinstance(v, (int, float))}}
    # Every evaluation leaves a checkpoint to resume from (step 0: nothing trained yet, nothing to resume).
    report(w, metrics, checkpoint=improved or step > 0, best=improved)
    return agree(w, w.rank == 0 and w.selection.exhausted)


def train_epoch(w: Worker, shard, shuffle_buffer: int) -> str:
    """The rest of epoch `w.position.epoch` (a resumed run skips the batches it already took); returns why it
    ended: "done", "stopped" by the user, or "patience" run out at a mid-epoch evaluation."""
    cfg, hp, pos = w.spec.config, w.spec.hyper, w.position
    loss_sum = torch.tensor(pos.loss_sum, device=w.device)
    batches = epoch_batches(shard, batch_size=max(1, hp.batch_size // w.world), seed=cfg.seed + pos.epoch,
                            shuffle_buffer=shuffle_buffer, group_by_length=cfg.group_by_length, collate=w.collate)
    tick = time.perf_counter()  # a step's time includes fetching its batch
    for i, batch in enumerate(batches):
        if i < pos.in_epoch:  # taken before the restart: the same batches come in the same order
            continue
        with autocast(w.amp, w.device):
            out = w.model(**model_inputs(batch, w.device), labels=batch["labels"].to(w.device))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(w.model.parameters(), MAX_GRAD_NORM)
        w.optimizer.step()
        w.scheduler.step()
        w.optimizer.zero_grad(set_to_none=True)
        loss = out.loss.detach()  # no .item() here: on a GPU that would wait for every step
        loss_sum = loss_sum + loss
        pos.step, pos.in_epoch, pos.loss_n = pos.step + 1, pos.in_epoch + 1, pos.loss_n + 1
        if w.reporter:
            w.reporter.add_step(loss, batch["input_ids"].numel())
        # Step 1 too, so the first step shows at once; then every N steps, off the hot path.
        stop = (pos.step == 1 or pos.step % w.spec.progress_every_steps == 0) and stop_requested(w, pos.step,
                                                                                                 pos.epoch)
        # The first step of this process apart: it also starts the data pipeline.
        w.timings.add("steps" if "first_step" in w.timings.phases else "first_step", time.perf_counter() - tick)
        if stop:
            pos.loss_sum = loss_sum.item()
            return "stopped"
        if _every(cfg.eval_steps, pos.step) or _every(cfg.checkpoint_every_steps, pos.step):
            pos.loss_sum = loss_sum.item()  # a checkpoint here carries the epoch's loss so far
            if _every(cfg.eval_steps, pos.step) and evaluation_point(w, pos.epoch, pos.step, None):
                return "patience"
            if not _every(cfg.eval_steps, pos.step):
                report(w, {"epoch": pos.epoch, "step": pos.step}, checkpoint=True)
        tick = time.perf_counter()
    pos.loss_sum = loss_sum.item()
    return "done"


def _every(n: Optional[int], step: int) -> bool:
    return bool(n) and step % n == 0


def test_selected_model(w: Worker, epoch: int, step: int) -> None:
    """The test split, scored once on the best validation model: final_metrics.json and the predictions."""
    if w.rank == 0:
        started = time.perf_counter()
        if w.best_state is not None:
            w.core.load_state_dict(w.best_state)
        w.reporter.push(epoch=epoch, step=step, lr=w.scheduler.get_last_lr()[0], phase="testing")
        best = w.selection.best or {"epoch": epoch, "step": step}
        entry = evaluate(w, ray.train.get_dataset_shard("test"), "test", best["epoch"], best["step"], True, None)
        entry["selected"] = w.selection.describe() if w.selection.best else None
        atomic_write_json(Path(w.spec.results_dir) / "final_metrics.json", entry)
        w.timings.add("test", time.perf_counter() - started)
    report(w, {"epoch": epoch, "step": step}, checkpoint=not agree(w, w.checkpointed), best=True)


def train_loop_per_worker(loop: dict) -> None:
    timings = Timings()
    timings.mark("loop_started")
    spec = TrainingSpec(**loop["spec"])
    lower_priority(spec.yield_cpu_to_api)
    torch.set_num_threads(loop["torch_threads"])
    with timings.phase("setup"):
        w = setup(loop)
        w.timings = timings
        resumed = resume(w)
    _train(w, spec, resumed, loop["shuffle_buffer"])
    if w.rank == 0:  # the job adds what surrounds the loop (run.py)
        timings.mark("loop_ended")
        timings.write(Path(spec.results_dir))


def _train(w: Worker, spec: TrainingSpec, resumed: bool, shuffle_buffer: int) -> None:
    cfg, pos = spec.config, w.position
    train_shard = ray.train.get_dataset_shard("train")
    if resumed:
        if w.reporter:
            w.reporter.resumed(pos.restarts, pos.step)
    elif cfg.init_eval:
        evaluation_point(w, 0, 0, None)

    w.model.train()
    epoch = pos.epoch
    while pos.epoch <= spec.hyper.epochs:
        epoch = pos.epoch
        ended = train_epoch(w, train_shard, shuffle_buffer)
        if ended == "stopped":  # a checkpoint to resume from; the model offered stays the best so far, or,
            # without validation (or none yet), the weights so far
            keep_best = spec.validation and agree(w, w.checkpointed)
            report(w, {"epoch": epoch, "step": pos.step, "stopped": 1}, checkpoint=True, best=not keep_best)
            return
        if ended == "patience":
            break
        epoch_loss = pos.loss_sum / max(pos.loss_n, 1)
        pos.epoch, pos.in_epoch, pos.loss_sum, pos.loss_n = epoch + 1, 0, 0.0, 0  # what a checkpoint here resumes
        if epoch == spec.hyper.epochs or epoch % cfg.epochs_per_test_run == 0:
            if evaluation_point(w, epoch, pos.step, epoch_loss):
                break
        else:
            report(w, {"epoch": epoch, "step": pos.step}, checkpoint=True)
    if spec.validation:
        test_selected_model(w, epoch, pos.step)
