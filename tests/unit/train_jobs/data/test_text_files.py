"""Unit tests of train_jobs/dataset_files.py: checking and summarising uploaded CSV/TSV/JSONL files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train_jobs.data.dataset import summarise_dataset
from train_jobs.data.formats import iter_records, sniff_format
from train_jobs.data.labels import ordered_labels
from train_jobs.data.text_files import scan_file
from train_jobs.errors import BadDataset

GOOD_CSV = b"text,label\nthe film was great,pos\nthe plot was dull,neg\nsuperb acting,pos\n"


def write(path: Path, data) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def jsonl(*rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def summarise(tmp_path, train, test, ext="csv", test_ext=None):
    tr = write(tmp_path / f"train.{ext}", train)
    te = write(tmp_path / f"test.{test_ext or ext}", test)
    return summarise_dataset(tr, te)


def bad(tmp_path, which, content, ext="csv"):
    """Run summarise_dataset with `content` as train_file or test_file (the other one good); return the message."""
    good = write(tmp_path / "good.csv", GOOD_CSV)
    broken = write(tmp_path / f"broken.{ext}", content)
    train, test = (broken, good) if which == "train_file" else (good, broken)
    with pytest.raises(BadDataset) as info:
        summarise_dataset(train, test)
    msg = str(info.value)
    assert msg.startswith(which + ":"), msg
    assert info.value.status_code == 400
    return msg


# --- valid files -----------------------------------------------------------------------------------


def test_csv_summary(tmp_path):
    s = summarise(tmp_path, GOOD_CSV, "text,label\nboring,neg\ncharming,pos\n")
    assert s["task_type"] == "sequence_classification"
    assert s["pair"] is False
    assert s["labels"] == ["neg", "pos"]
    tr, te = s["train"], s["test"]
    assert tr["format"] == "csv"
    assert tr["rows"] == 3
    assert tr["label_counts"] == {"neg": 1, "pos": 2}
    assert tr["text_columns"] == ["text"]
    assert tr["columns"] == ["text", "label"]
    assert tr["filename"] == "train.csv"
    assert tr["bytes"] == len(GOOD_CSV)
    assert te["rows"] == 2
    assert te["label_counts"] == {"neg": 1, "pos": 1}


def test_sentence_pairs(tmp_path):
    train = "text_a,text_b,label\nA man eats.,Someone eats.,entail\nA dog runs.,A cat sleeps.,contra\nx,y,entail\n"
    s = summarise(tmp_path, train, "text_a,text_b,label\nq,r,contra\n")
    assert s["pair"] is True
    assert s["train"]["text_columns"] == ["text_a", "text_b"]
    assert s["labels"] == ["contra", "entail"]
    assert s["train"]["rows"] == 3


def test_tsv_keeps_commas_inside_text(tmp_path):
    train = "text\tlabel\nhello, world, again\tpos\nbye, now\tneg\n"
    s = summarise(tmp_path, train, "text\tlabel\na, b\tneg\n", ext="tsv")
    assert s["train"]["format"] == "tsv"
    assert s["train"]["columns"] == ["text", "label"]
    assert s["train"]["label_counts"] == {"neg": 1, "pos": 1}
    rows = [r for _, r in iter_records(tmp_path / "train.tsv", "tsv", "train_file") if "__header__" not in r]
    assert rows[0] == {"text": "hello, world, again", "label": "pos"}


@pytest.mark.parametrize(
    "labels, expected_counts",
    [((1, 0, 1), {"0": 1, "1": 2}), (("pos", "neg", "pos"), {"neg": 1, "pos": 2})],
    ids=["int-labels", "string-labels"],
)
def test_jsonl(tmp_path, labels, expected_counts):
    train = jsonl(*({"text": f"t{i}", "label": lab} for i, lab in enumerate(labels)))
    test = jsonl({"text": "q", "label": labels[1]})
    s = summarise(tmp_path, train, test, ext="jsonl")
    assert s["train"]["format"] == "jsonl"
    assert s["train"]["rows"] == 3
    assert s["train"]["label_counts"] == expected_counts
    assert s["labels"] == sorted(expected_counts)
    assert s["pair"] is False


def test_jsonl_int_labels_match_csv_string_labels(tmp_path):
    # 1 in JSON and "1" in CSV are the same label (a float 1.0 too).
    s = summarise(tmp_path, "text,label\na,0\nb,1\n", jsonl({"text": "c", "label": 1}, {"text": "d", "label": 0.0}),
                  ext="csv", test_ext="jsonl")
    assert s["labels"] == ["0", "1"]
    assert s["test"]["label_counts"] == {"0": 1, "1": 1}


def test_integer_labels_sort_numerically(tmp_path):
    train = "text,label\na,10\nb,2\nc,1\nd,2\n"
    s = summarise(tmp_path, train, "text,label\nx,10\n")
    assert s["labels"] == ["1", "2", "10"]
    train_j = jsonl({"text": "a", "label": 10}, {"text": "b", "label": 2}, {"text": "c", "label": 9})
    s = summarise(tmp_path, train_j, jsonl({"text": "x", "label": 9}), ext="jsonl")
    assert s["labels"] == ["2", "9", "10"]


@pytest.mark.parametrize(
    "labels, expected",
    [
        (["2", "10", "1"], ["1", "2", "10"]),
        (["-1", "0", "1"], ["-1", "0", "1"]),
        (["pos", "neg", "neutral"], ["neg", "neutral", "pos"]),
        (["10", "2", "b"], ["10", "2", "b"]),  # not all integers: plain string order
    ],
)
def test_ordered_labels(labels, expected):
    assert ordered_labels(labels) == expected


def test_quoted_field_with_embedded_newline(tmp_path):
    train = 'text,label\n"first line\nsecond line",pos\nplain,neg\n'
    s = summarise(tmp_path, train, "text,label\nx,neg\n")
    assert s["train"]["rows"] == 2
    assert s["train"]["label_counts"] == {"neg": 1, "pos": 1}
    records = list(iter_records(tmp_path / "train.csv", "csv", "train_file"))
    assert records[1] == (2, {"text": "first line\nsecond line", "label": "pos"})
    assert records[2] == (4, {"text": "plain", "label": "neg"})


@pytest.mark.parametrize(
    "later_line, needle",
    [("bad row,", "line 5, column 2 (label)"), ("a,b,c", "line 5: expected 2 fields")],
)
def test_line_numbers_after_embedded_newline(tmp_path, later_line, needle):
    content = f'text,label\n"one\ntwo",pos\nplain,neg\n{later_line}\n'
    assert needle in bad(tmp_path, "train_file", content)


def test_line_numbers_count_blank_lines(tmp_path):
    assert "line 5, column 2 (label)" in bad(tmp_path, "train_file", "text,label\n\na,pos\n\nb,\n")


def test_utf8_bom_header(tmp_path):
    s = summarise(tmp_path, b"\xef\xbb\xbf" + GOOD_CSV, b"\xef\xbb\xbftext,label\nx,neg\n")
    assert s["train"]["columns"] == ["text", "label"]
    assert s["test"]["columns"] == ["text", "label"]
    assert s["train"]["rows"] == 3


def test_utf8_bom_jsonl(tmp_path):
    train = b"\xef\xbb\xbf" + jsonl({"text": "a", "label": "x"}, {"text": "b", "label": "y"})
    s = summarise(tmp_path, train, jsonl({"text": "c", "label": "y"}), ext="jsonl")
    assert s["train"]["rows"] == 2
    assert s["labels"] == ["x", "y"]


def test_crlf_line_endings(tmp_path):
    s = summarise(tmp_path, b'text,label\r\n"a\r\nb",pos\r\nc,neg\r\n', b"text,label\r\nd,neg\r\n")
    assert s["train"]["rows"] == 2
    assert s["labels"] == ["neg", "pos"]


@pytest.mark.parametrize(
    "suffix, data, expected",
    [
        ("csv", "a\tb\n", "csv"),  # the suffix decides over the content
        ("tsv", "a,b\n", "tsv"),
        ("jsonl", "x\n", "jsonl"),
        ("json", "x\n", "jsonl"),
        ("ndjson", "x\n", "jsonl"),
        ("txt", '{"text": "a"}\n', "jsonl"),
        ("txt", '\xef\xbb\xbf  {"text": "a"}\n', "jsonl"),
        ("txt", "text\tlabel\na,b\tc\n", "tsv"),
        ("txt", "text,label\na\tb,c\n", "csv"),
        ("", "text,label\n", "csv"),
    ],
)
def test_sniff_format(tmp_path, suffix, data, expected):
    path = write(tmp_path / (f"f.{suffix}" if suffix else "f"), data.encode("latin-1") if "\xef" in data else data)
    assert sniff_format(path) == expected


def test_detect_format_uses_upload_filename(tmp_path):
    path = write(tmp_path / "upload.bin", "text,label\na,b\n")
    assert sniff_format(path, "data.tsv") == "tsv"
    s = scan_file(write(tmp_path / "stored", "text\tlabel\na\tb\n"), "train_file", "mine.tsv")
    assert s["filename"] == "mine.tsv"
    assert s["format"] == "tsv"


# --- errors ----------------------------------------------------------------------------------------

BOTH = pytest.mark.parametrize("which", ["train_file", "test_file"])


@BOTH
def test_empty_file(tmp_path, which):
    assert "empty" in bad(tmp_path, which, b"")


@BOTH
def test_header_only(tmp_path, which):
    assert "no data rows" in bad(tmp_path, which, "text,label\n")


@BOTH
@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_invalid_utf8_names_line(tmp_path, which, ext):
    if ext == "csv":
        content = b"text,label\nfine,pos\nbroken \xff\xfe here,neg\n"
    else:
        content = jsonl({"text": "a", "label": "pos"}, {"text": "b", "label": "neg"}) + b'{"text": "\xff"}\n'
    msg = bad(tmp_path, which, content, ext)
    assert "line 3" in msg
    assert "UTF-8" in msg


@BOTH
def test_invalid_utf8_after_embedded_newline(tmp_path, which):
    msg = bad(tmp_path, which, b'text,label\n"a\nb",pos\nc,neg\n\xc3(,pos\n')
    assert "line 5" in msg and "UTF-8" in msg


@BOTH
@pytest.mark.parametrize(
    "header", ["text,category", "sentence,label", "text_a,label", "text_b,label", "label"], ids=str
)
def test_columns_that_do_not_fit(tmp_path, which, header):
    fields = len(header.split(","))
    msg = bad(tmp_path, which, header + "\n" + ",".join(["x"] * fields) + "\n")
    assert "line 1" in msg
    assert "text,label" in msg  # says what is expected


@BOTH
def test_jsonl_missing_label_key(tmp_path, which):
    msg = bad(tmp_path, which, jsonl({"text": "a", "category": "pos"}), "jsonl")
    assert "line 1" in msg


@BOTH
@pytest.mark.parametrize("label", ["", "   "], ids=["empty", "blank"])
def test_empty_label(tmp_path, which, label):
    msg = bad(tmp_path, which, f"text,label\na,pos\nb,{label}\nc,neg\n")
    assert "line 3, column 2 (label)" in msg


@BOTH
def test_empty_label_label_first(tmp_path, which):
    assert "line 2, column 1 (label)" in bad(tmp_path, which, "label,text\n,hello\n")


@BOTH
@pytest.mark.parametrize("value", [None, "", [], {}], ids=["null", "empty", "list", "dict"])
def test_jsonl_bad_label(tmp_path, which, value):
    content = jsonl({"text": "a", "label": "pos"}, {"text": "b", "label": value})
    assert "line 2, column 2 (label)" in bad(tmp_path, which, content, "jsonl")


@BOTH
def test_jsonl_label_missing_on_later_line(tmp_path, which):
    content = jsonl({"text": "a", "label": "pos"}, {"text": "b", "label": "neg"}, {"text": "c"})
    assert "line 3, column 2 (label)" in bad(tmp_path, which, content, "jsonl")


@BOTH
@pytest.mark.parametrize("text", ["", "   "], ids=["empty", "blank"])
def test_empty_text(tmp_path, which, text):
    msg = bad(tmp_path, which, f"text,label\na,pos\n{text},neg\n")
    assert "line 3, column 1 (text)" in msg


def test_empty_text_b_in_pair(tmp_path):
    train = "text_a,text_b,label\nq,r,x\ns, ,y\n"
    with pytest.raises(BadDataset) as info:
        summarise(tmp_path, train, "text_a,text_b,label\nq,r,x\n")
    assert "train_file: line 3, column 2 (text_b)" in str(info.value)


@BOTH
@pytest.mark.parametrize("value", [None, 5, ""], ids=["null", "number", "empty"])
def test_jsonl_bad_text(tmp_path, which, value):
    content = jsonl({"text": "a", "label": "pos"}, {"label": "neg", "text": value})
    assert "line 2, column 1 (text)" in bad(tmp_path, which, content, "jsonl")


@BOTH
@pytest.mark.parametrize("line, found", [("b,neg,extra", 3), ("lonely", 1)])
def test_wrong_field_count(tmp_path, which, line, found):
    msg = bad(tmp_path, which, f"text,label\na,pos\n{line}\nc,neg\n")
    assert "line 3" in msg
    assert "expected 2 fields" in msg
    assert f"found {found}" in msg


@BOTH
def test_invalid_json(tmp_path, which):
    content = jsonl({"text": "a", "label": "pos"}) + b'{"text": "b", label: "neg"}\n'
    msg = bad(tmp_path, which, content, "jsonl")
    assert "line 2, column 15" in msg
    assert "invalid JSON" in msg


@BOTH
def test_json_line_not_an_object(tmp_path, which):
    content = jsonl({"text": "a", "label": "pos"}, ["b", "neg"])
    assert "line 2" in bad(tmp_path, which, content, "jsonl")


def test_unseen_test_label(tmp_path):
    # label column first, and a multi-line row before the bad one: line and column must both be right.
    test = 'label,text\npos,a\nneg,"b\nc"\nmeh,d\nmeh,e\n'
    with pytest.raises(BadDataset) as info:
        summarise(tmp_path, GOOD_CSV, test)
    msg = str(info.value)
    assert msg.startswith("test_file: line 5, column 1 (label)"), msg
    assert "'meh'" in msg
    assert "train_file" in msg


def test_unseen_test_labels_are_counted(tmp_path):
    with pytest.raises(BadDataset) as info:
        summarise(tmp_path, GOOD_CSV, "text,label\na,pos\nb,zzz\nc,aaa\n")
    msg = str(info.value)
    assert msg.startswith("test_file: line 4, column 2 (label): label 'aaa'"), msg
    assert "2 unseen labels" in msg


def test_unseen_test_label_jsonl(tmp_path):
    test = jsonl({"text": "a", "label": "pos"}, {"text": "b", "label": 7})
    with pytest.raises(BadDataset) as info:
        summarise(tmp_path, GOOD_CSV, test, ext="csv", test_ext="jsonl")
    assert str(info.value).startswith("test_file: line 2, column 2 (label): label '7'")


def test_single_label_in_train(tmp_path):
    with pytest.raises(BadDataset) as info:
        summarise(tmp_path, "text,label\na,pos\nb,pos\n", "text,label\nc,pos\n")
    msg = str(info.value)
    assert msg.startswith("train_file:")
    assert "2 distinct labels" in msg
    assert "pos" in msg


@pytest.mark.parametrize(
    "train, test",
    [
        (GOOD_CSV, "text_a,text_b,label\nq,r,pos\n"),
        ("text_a,text_b,label\nq,r,pos\ns,t,neg\n", "text,label\nx,pos\n"),
    ],
)
def test_text_columns_differ(tmp_path, train, test):
    with pytest.raises(BadDataset) as info:
        summarise(tmp_path, train, test)
    msg = str(info.value)
    assert msg.startswith("test_file: line 1"), msg
    assert "train_file" in msg


def test_a_field_over_the_csv_limit_is_a_400_naming_file_and_line(tmp_path):
    train = write(tmp_path / "train.csv", "text,label\nok,a\n" + "x" * (17 << 20) + ",b\nfine,b\n")
    test = write(tmp_path / "test.csv", GOOD_CSV)
    with pytest.raises(BadDataset) as err:
        summarise_dataset(train, test)
    assert err.value.status_code == 400
    assert err.value.message.startswith("train_file: line 3: field larger than field limit")
