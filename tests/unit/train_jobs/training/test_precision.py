"""Unit test of the autocast choice in train_jobs/train_loop.py: bf16 only where asked or native."""

from __future__ import annotations

import torch

from train_jobs.training.precision import autocast_dtype, cpu_has_native_bf16


def test_precision_choice():
    cpu = torch.device("cpu")
    assert autocast_dtype("fp32", cpu) is None and autocast_dtype("bf16", cpu) is torch.bfloat16
    assert autocast_dtype("auto", cpu) is (torch.bfloat16 if cpu_has_native_bf16() else None)
