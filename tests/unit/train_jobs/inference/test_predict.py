"""The inference function on tiny models built here, one per task, against the model called directly."""

from __future__ import annotations

import json

import pytest
import torch
from tiny_model import build_tiny_bert
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

from train_jobs.errors import InvalidParameters
from train_jobs.inference.inputs import check_inputs
from train_jobs.inference.predict import Predictor

TEXTS = ["the film was great", "a dull and boring plot", "music", "x" * 50]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return build_tiny_bert(tmp_path_factory.mktemp("base") / "bert")


def trained(base, dest, loader=AutoModelForSequenceClassification, config=None, **head):
    torch.manual_seed(1)
    model = loader.from_pretrained(base, **head)
    model.save_pretrained(dest)
    AutoTokenizer.from_pretrained(base).save_pretrained(dest)
    (dest / "training_config.json").write_text(json.dumps({"max_seq_length": 16, **(config or {})}))
    return dest


def direct(model_dir, loader, *args, **kwargs):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = loader.from_pretrained(model_dir).eval()
    encoded = tokenizer(*args, truncation=True, max_length=16, padding=True, return_tensors="pt", **kwargs)
    with torch.no_grad():
        return model(**encoded).logits, encoded


def test_single_label_gives_the_argmax_and_every_probability(base, tmp_path):
    labels = {0: "neg", 1: "pos", 2: "mixed"}
    d = trained(base, tmp_path / "m", num_labels=3, id2label=labels, problem_type="single_label_classification")
    p = Predictor(d, device="cpu")
    out = p.predict("texts", TEXTS)
    logits, _ = direct(d, AutoModelForSequenceClassification, TEXTS)
    assert p.task == "single_label" and p.kind == "texts" and len(out) == len(TEXTS)
    for row, lg in zip(out, logits):
        assert row["label"] == labels[int(lg.argmax())]
        assert sum(row["probabilities"].values()) == pytest.approx(1, abs=1e-4)
        assert list(row["probabilities"]) == ["neg", "pos", "mixed"]


def test_multi_label_keeps_the_labels_over_the_run_threshold(base, tmp_path):
    d = trained(base, tmp_path / "m", config={"multi_label_threshold": 0.5}, num_labels=3,
                id2label={0: "acting", 1: "music", 2: "plot"}, problem_type="multi_label_classification")
    out = Predictor(d, device="cpu").predict("texts", TEXTS)
    logits, _ = direct(d, AutoModelForSequenceClassification, TEXTS)
    for row, probs in zip(out, torch.sigmoid(logits)):
        assert row["labels"] == [n for n, q in zip(["acting", "music", "plot"], probs) if q >= 0.5]
        assert set(row["probabilities"]) == set(row["labels"])


def test_regression_pairs_give_the_score(base, tmp_path):
    d = trained(base, tmp_path / "m", config={"text_columns": ["text_a", "text_b"]}, num_labels=1,
                problem_type="regression")
    pairs = [["a cat sat", "a cat sat down"], ["rain", "the sun is out"]]
    p = Predictor(d, device="cpu")
    out = p.predict("pairs", pairs)
    logits, _ = direct(d, AutoModelForSequenceClassification, [a for a, _ in pairs], [b for _, b in pairs])
    assert p.kind == "pairs" and p.task == "regression"
    assert [r["score"] for r in out] == pytest.approx(logits[:, 0].tolist(), abs=1e-5)


def test_token_classification_tags_each_word_by_its_first_sub_token(base, tmp_path):
    tags = {0: "O", 1: "B-person", 2: "I-person"}
    d = trained(base, tmp_path / "m", AutoModelForTokenClassification, num_labels=3, id2label=tags)
    sentences = [["Alice", "flew", "to", "Reykjavik"], ["hi"], ["word"] * 30]
    p = Predictor(d, device="cpu")
    out = p.predict("tokens", sentences)
    logits, encoded = direct(d, AutoModelForTokenClassification, sentences, is_split_into_words=True)
    assert p.kind == "tokens" and p.task == "token_classification"
    first = {}
    for position, word in enumerate(encoded.word_ids(0)):
        if word is not None and word not in first:
            first[word] = tags[int(logits[0, position].argmax())]
    assert out[0] == {"tokens": sentences[0], "tags": [first[i] for i in range(4)]}
    assert out[2]["tags"][-1] is None and out[2]["tags"][0] is not None  # cut by max_seq_length


@pytest.mark.parametrize("kind, items, loc", [
    ("texts", [], ["texts"]),
    ("texts", ["ok"] * 5, ["texts"]),
    ("texts", ["ok", 3], ["texts", 1]),
    ("texts", ["ok", "ok", "y" * 11], ["texts", 2]),
    ("pairs", [["a", "b"], ["a", None]], ["pairs", 1, 1]),
    ("tokens", [["a"], []], ["tokens", 1]),
    ("pairs", [["a", "b"]], ["pairs"]),
])
def test_bad_inputs_name_their_position(kind, items, loc):
    expected = "pairs" if kind == "pairs" and loc != ["pairs"] else "tokens" if kind == "tokens" else "texts"
    with pytest.raises(InvalidParameters) as e:
        check_inputs(kind, items, expected, max_inputs=4, max_chars=10)
    assert e.value.status_code == 422 and e.value.detail[0]["loc"] == ["body", *loc]


@pytest.mark.parametrize("kind, at_limit, one_over, loc", [
    ("texts", ["a" * 10] * 4, ["a" * 10] * 5, ["texts"]),  # max_inputs=4: four pass, five do not
    ("texts", ["a" * 10] * 4, ["a" * 10] * 3 + ["a" * 11], ["texts", 3]),  # max_chars=10
    ("pairs", [["a" * 5, "b" * 5]], [["a" * 5, "b" * 6]], ["pairs", 0]),  # a pair counts both texts
    ("tokens", [["abcd", "efghi"], ["a"]], [["abcde", "efghi"]], ["tokens", 0]),  # words joined by one space
])
def test_inputs_at_the_limits_pass_and_one_more_is_refused(kind, at_limit, one_over, loc):
    """The limits are inclusive: what is exactly at them passes, one item or one character more is refused."""
    assert check_inputs(kind, at_limit, kind, max_inputs=4, max_chars=10) is None
    with pytest.raises(InvalidParameters) as e:
        check_inputs(kind, one_over, kind, max_inputs=4, max_chars=10)
    assert e.value.detail[0]["loc"] == ["body", *loc]


def test_a_long_call_is_run_in_length_sorted_passes_and_answered_in_its_order(base, tmp_path):
    labels = {0: "neg", 1: "pos", 2: "mixed"}
    d = trained(base, tmp_path / "m", num_labels=3, id2label=labels, problem_type="single_label_classification")
    p = Predictor(d, device="cpu")
    texts = [("word " * (n % 7 + 1)).strip() + f" {n}" for n in range(3 * p.chunk + 5)]  # lengths shuffled
    together = p.predict("texts", texts)
    alone = [p.predict("texts", [t])[0] for t in texts]
    assert [r["label"] for r in together] == [r["label"] for r in alone]
    for a, b in zip(together, alone):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-5)
    pairs = [(t, texts[-1 - i]) for i, t in enumerate(texts)]
    assert [r["label"] for r in p.predict("pairs", pairs)] == [p.predict("pairs", [x])[0]["label"] for x in pairs]
