"""Unit tests of train_jobs/batching.py: length-grouped batches keep every row once and stay shuffled."""

from __future__ import annotations

import numpy as np

from train_jobs.training.batching import length_grouped


def windows(lengths: list[int], size: int):
    """Numpy windows as Ray's iter_batches yields them: ragged input_ids (object array), ids as labels."""
    for start in range(0, len(lengths), size):
        part = lengths[start: start + size]
        ids = np.empty(len(part), dtype=object)
        ids[:] = [np.ones(n, dtype=np.int32) for n in part]
        yield {"input_ids": ids, "labels": np.arange(start, start + len(part))}


LENGTHS = list(np.random.default_rng(0).integers(3, 120, size=1000))


def test_every_row_once_and_labels_stay_with_their_rows():
    batches = list(length_grouped(windows(LENGTHS, 400), batch_size=32, seed=1))
    labels = np.concatenate([b["labels"] for b in batches])
    assert sorted(labels) == list(range(1000))
    for b in batches:
        assert [len(s) for s in b["input_ids"]] == [LENGTHS[i] for i in b["labels"]]


def test_batches_are_cut_per_window_with_at_most_one_short_batch_each():
    sizes = [len(b["labels"]) for b in length_grouped(windows(LENGTHS, 400), batch_size=32, seed=1)]
    assert sizes.count(32) == 12 + 12 + 6 and sorted(sizes)[:3] == [8, 16, 16]  # 400 = 12*32+16; 200 = 6*32+8


def test_padding_is_far_below_random_batches():
    def padded(batches):
        return sum(len(b["input_ids"]) * max(len(s) for s in b["input_ids"]) for b in batches)

    grouped = list(length_grouped(windows(LENGTHS, 1000), batch_size=32, seed=1))
    random_cut = [{"input_ids": w["input_ids"][i: i + 32]} for w in windows(LENGTHS, 1000) for i in range(0, 1000, 32)]
    assert padded(grouped) < 0.6 * padded(random_cut)


def test_batch_order_is_random_and_seeded():
    def first_labels(seed):
        return [int(b["labels"][0]) for b in length_grouped(windows(LENGTHS, 1000), batch_size=32, seed=seed)]

    order = first_labels(1)
    lengths_in_order = [LENGTHS[i] for i in order]
    assert lengths_in_order != sorted(lengths_in_order)  # not shortest first
    assert first_labels(1) == order and first_labels(2) != order

