"""Unit tests of multi-label uploads in train_jobs/dataset_files.py: a `labels` list, or 0/1 `label_<name>` columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train_jobs.data.dataset import summarise_dataset
from train_jobs.data.labels import flag, label_set
from train_jobs.errors import BadDataset


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def jsonl(*rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.mark.parametrize("value, expected", [
    (["a", "b"], ["a", "b"]),
    ([], []),
    ("a|b", ["a", "b"]),
    (" a | b ", ["a", "b"]),
    ("", []),
    ('["x y", "z"]', ["x y", "z"]),
    ([1, 2], ["1", "2"]),
    (["a", "a"], ["a"]),
])
def test_label_set_reads_lists_json_and_joined_names(value, expected):
    assert label_set(value) == expected


@pytest.mark.parametrize("value", [None, 3, {"a": 1}, "[not json", [None], [["nested"]]])
def test_label_set_refuses_what_is_not_a_list_of_names(value):
    assert label_set(value) is None


@pytest.mark.parametrize("value, expected", [
    (1, True), (0, False), ("1", True), ("0", False), (True, True), ("false", False), (" TRUE ", True),
    (1.0, True), ("2", None), ("", None), (None, None), ("yes", None),
])
def test_flag_values(value, expected):
    assert flag(value) is expected


def test_jsonl_label_lists_summary(tmp_path):
    train = write(tmp_path / "train.jsonl", jsonl({"text": "a", "labels": ["x", "y"]}, {"text": "b", "labels": []},
                                                  {"text": "c", "labels": ["y"]}))
    test = write(tmp_path / "test.jsonl", jsonl({"text": "d", "labels": ["x"]}))
    summary = summarise_dataset(train, test)
    assert summary["multi_label"] is True and summary["target"] == "labels"
    assert summary["labels"] == ["x", "y"]
    assert summary["train"]["label_counts"] == {"x": 1, "y": 2}
    assert summary["train"]["rows_without_labels"] == 1


def test_csv_flag_columns_keep_header_order_and_count_unused_labels(tmp_path):
    train = write(tmp_path / "train.csv", "text,label_z,label_a\nfoo,1,0\nbar,1,0\n")
    test = write(tmp_path / "test.csv", "text,label_z,label_a\nbaz,0,1\n")
    summary = summarise_dataset(train, test)
    assert summary["multi_label"] and summary["target"] == ["label_z", "label_a"]
    assert summary["labels"] == ["z", "a"]  # the header's order, not sorted
    assert summary["train"]["label_counts"] == {"z": 2, "a": 0}


def test_single_label_files_are_not_multi_label(tmp_path):
    train = write(tmp_path / "train.csv", "text,label\nfoo,a\nbar,b\n")
    summary = summarise_dataset(train, train)
    assert summary["multi_label"] is False and summary["target"] == "label"


def test_a_bad_flag_names_line_and_column(tmp_path):
    train = write(tmp_path / "train.csv", "text,label_a,label_b\nfoo,1,0\nbar,0,maybe\n")
    with pytest.raises(BadDataset) as e:
        summarise_dataset(train, train)
    assert "train_file: line 3, column 3 (label_b): 'maybe' is not 0 or 1" in str(e.value)


def test_a_label_value_that_is_not_a_list_names_line_and_column(tmp_path):
    train = write(tmp_path / "train.jsonl", jsonl({"text": "a", "labels": ["x"]}, {"text": "b", "labels": 7}))
    with pytest.raises(BadDataset) as e:
        summarise_dataset(train, train)
    assert "line 2, column 2 (labels)" in str(e.value) and "JSON list" in str(e.value)


def test_a_test_label_unseen_in_train_is_refused_with_its_line(tmp_path):
    train = write(tmp_path / "train.csv", "text,labels\nfoo,x|y\nbar,y\n")
    test = write(tmp_path / "test.csv", "text,labels\nbaz,y\nqux,y|w\n")
    with pytest.raises(BadDataset) as e:
        summarise_dataset(train, test)
    assert "test_file: line 3, column 2 (labels): label 'w' does not occur in train_file" in str(e.value)


def test_test_file_needs_the_same_flag_columns(tmp_path):
    train = write(tmp_path / "train.csv", "text,label_a,label_b\nfoo,1,0\n")
    test = write(tmp_path / "test.csv", "text,label_a,label_c\nfoo,1,0\n")
    with pytest.raises(BadDataset, match="label columns"):
        summarise_dataset(train, test)


def test_one_flag_column_is_not_enough(tmp_path):
    train = write(tmp_path / "train.csv", "text,label_a\nfoo,1\n")
    with pytest.raises(BadDataset, match="two or more 'label_<name>' columns"):
        summarise_dataset(train, train)


def test_multi_label_needs_two_labels(tmp_path):
    train = write(tmp_path / "train.csv", "text,labels\nfoo,x\nbar,\n")
    with pytest.raises(BadDataset, match="at least 2 distinct labels"):
        summarise_dataset(train, train)
