"""Unit tests of train_jobs/collate.py: dynamic padding of Ray Data numpy batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from train_jobs.training.collate import pad_batch


def ragged(*seqs, dtype=np.int64) -> np.ndarray:
    """What Ray Data yields for a variable-length column: a 1-D object array of int arrays."""
    out = np.empty(len(seqs), dtype=object)
    for i, s in enumerate(seqs):
        out[i] = np.asarray(s, dtype=dtype)
    return out


def batch(**extra):
    return {
        "input_ids": ragged([101, 7, 102], [101, 5, 6, 8, 102], [101, 102]),
        "labels": np.array([1, 0, 2]),
        **extra,
    }


@pytest.mark.parametrize("pad", [0, 1, 99])
def test_pads_to_longest_with_pad_id(pad):
    out = pad_batch(batch(), pad_token_id=pad)
    assert out["input_ids"].shape == (3, 5)
    assert out["input_ids"].dtype == torch.int64
    assert out["input_ids"].tolist() == [
        [101, 7, 102, pad, pad],
        [101, 5, 6, 8, 102],
        [101, 102, pad, pad, pad],
    ]


def test_default_pad_id_is_zero():
    assert pad_batch(batch())["input_ids"][2].tolist() == [101, 102, 0, 0, 0]


def test_attention_mask_ones_then_zeros():
    mask = pad_batch(batch(), pad_token_id=7)["attention_mask"]
    assert mask.dtype == torch.int64
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]


def test_labels_int64_tensor():
    out = pad_batch({"input_ids": ragged([1], [2, 3]), "labels": np.array([3, 1], dtype=np.int32)})
    assert isinstance(out["labels"], torch.Tensor)
    assert out["labels"].dtype == torch.int64
    assert out["labels"].tolist() == [3, 1]


def test_token_type_ids_padded_when_present():
    types = ragged([0, 0, 0], [0, 0, 1, 1, 1], [0, 1])
    out = pad_batch(batch(token_type_ids=types), pad_token_id=5)
    assert out["token_type_ids"].dtype == torch.int64
    assert out["token_type_ids"].tolist() == [[0, 0, 0, 0, 0], [0, 0, 1, 1, 1], [0, 1, 0, 0, 0]]
    assert set(out) == {"input_ids", "attention_mask", "labels", "token_type_ids"}


def test_no_token_type_ids_key_when_absent():
    out = pad_batch(batch())
    assert "token_type_ids" not in out
    assert set(out) == {"input_ids", "attention_mask", "labels"}


def test_int32_sequences_and_batch_width_is_per_batch():
    # Each batch gets its own width, not a global max_seq_length.
    out = pad_batch({"input_ids": ragged([4, 5], [6], dtype=np.int32), "labels": np.array([0, 1])})
    assert out["input_ids"].shape == (2, 2)
    assert out["input_ids"].dtype == torch.int64
    assert out["input_ids"].tolist() == [[4, 5], [6, 0]]


def test_equal_lengths_as_2d_array():
    # When every row has the same length Ray Data hands over a plain 2-D array.
    ids = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64)
    out = pad_batch({"input_ids": ids, "labels": np.array([0, 1])})
    assert out["input_ids"].tolist() == ids.tolist()
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 1]]


def test_outputs_are_independent_of_input_buffers():
    b = batch()
    out = pad_batch(b)
    b["input_ids"][0][0] = -1
    assert out["input_ids"][0, 0].item() == 101


def test_pad_collate_is_the_ray_collate_form_of_pad_batch():
    from train_jobs.training.collate import PadCollate

    batch = {"input_ids": np.array([np.array([1, 2, 3]), np.array([4])], dtype=object),
             "labels": np.array([0, 1])}
    expected = pad_batch(batch, pad_token_id=7)
    got = PadCollate(7)(batch)
    assert set(got) == set(expected)
    for name in got:
        assert torch.equal(got[name], expected[name])


def test_multi_hot_labels_become_float_rows():
    hot = np.empty(2, dtype=object)
    hot[0], hot[1] = np.array([1.0, 0.0, 1.0], np.float32), np.array([0.0, 0.0, 0.0], np.float32)
    for labels in (hot, np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]], np.float32)):
        out = pad_batch({"input_ids": np.array([[1, 2], [3, 4]]), "labels": labels})
        assert out["labels"].dtype == torch.float32 and out["labels"].tolist() == [[1, 0, 1], [0, 0, 0]]
