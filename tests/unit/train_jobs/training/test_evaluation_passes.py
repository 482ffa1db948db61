"""Unit tests of evaluation's length-sorted passes (train_jobs/training/evaluation.py): each pass holds rows of
similar length, every row is scored once, and the outputs come back in the rows' own order."""

from __future__ import annotations

import numpy as np

from train_jobs.training.evaluation import EVAL_BATCH, in_window_order, length_sorted_passes


def test_passes_group_rows_by_length_and_outputs_return_in_row_order():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, size=3 * EVAL_BATCH + 5)
    input_ids = np.empty(len(lengths), dtype=object)
    input_ids[:] = [np.arange(n) for n in lengths]
    passes = length_sorted_passes(input_ids)

    assert [len(p) for p in passes] == [EVAL_BATCH] * 3 + [5]
    assert sorted(np.concatenate(passes).tolist()) == list(range(len(lengths)))
    widths = [lengths[p].max() for p in passes]
    padded = sum(w * len(p) for w, p in zip(widths, passes))
    in_file_order = sum(lengths[i: i + EVAL_BATCH].max() * len(lengths[i: i + EVAL_BATCH])
                        for i in range(0, len(lengths), EVAL_BATCH))
    assert padded < 0.8 * in_file_order  # what sorting saves: positions computed for padding

    outputs = [np.stack([lengths[p], -lengths[p]], axis=1) for p in passes]  # a 2-column "model output" per row
    assert np.array_equal(in_window_order(outputs, passes), np.stack([lengths, -lengths], axis=1))
