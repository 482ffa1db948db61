"""Unit tests of the training state a checkpoint holds (train_jobs/training/checkpoints.py): the optimiser's
moments (twice the model's size) only while epochs remain to train with them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import get_linear_schedule_with_warmup

from train_jobs.results.archives import STATE_FILE
from train_jobs.training.checkpoints import _save_state
from train_jobs.training.selection import Selection
from train_jobs.training.worker import Position


def worker(epochs: int, position: Position) -> SimpleNamespace:
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.ones(1, 4)).sum().backward()
    optimizer.step()
    return SimpleNamespace(best_state=None, optimizer=optimizer, position=position, history=[], checkpointed=True,
                           scheduler=get_linear_schedule_with_warmup(optimizer, 0, 10), last_eval_step=3,
                           selection=Selection("accuracy", False, None), spec=SimpleNamespace(
                               hyper=SimpleNamespace(epochs=epochs)))


@pytest.mark.parametrize("next_epoch, optimiser_kept", [(2, True), (3, True), (4, False)])
def test_the_optimiser_is_saved_only_while_epochs_remain(tmp_path, next_epoch, optimiser_kept):
    _save_state(tmp_path, worker(3, Position(epoch=next_epoch, step=3)), best=True)
    state = torch.load(tmp_path / STATE_FILE, weights_only=False)
    assert ("optimizer" in state) is optimiser_kept
    assert state["position"]["epoch"] == next_epoch and "scheduler" in state and "rng" in state
