"""Small labelled datasets the tests write themselves (the suite needs nothing outside the repo)."""

from __future__ import annotations

import csv
import hashlib
import json
import random
from pathlib import Path

POSITIVE = ["great", "wonderful", "superb", "delightful", "moving", "brilliant", "charming", "excellent"]
NEGATIVE = ["awful", "boring", "dreadful", "tedious", "clumsy", "terrible", "dull", "painful"]
SUBJECTS = ["the film", "this movie", "the plot", "the acting", "the ending", "the script", "the cast"]


def sentiment_rows(n: int, seed: int = 0, label_names=("neg", "pos")) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        word = rng.choice(POSITIVE if label else NEGATIVE)
        rows.append((f"{rng.choice(SUBJECTS)} was {word} and {rng.choice(SUBJECTS)} felt {word}",
                     label_names[label]))
    return rows


def write_csv(path: Path, header: list[str], rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def sentiment_files(folder: Path, train_rows: int = 160, test_rows: int = 40) -> tuple[Path, Path]:
    return (write_csv(folder / "train.csv", ["text", "label"], sentiment_rows(train_rows, seed=1)),
            write_csv(folder / "test.csv", ["text", "label"], sentiment_rows(test_rows, seed=2)))


def pair_files(folder: Path, train_rows: int = 120, test_rows: int = 30) -> tuple[Path, Path]:
    """Sentence pairs with integer labels: 1 when both halves share their sentiment."""
    def rows(n, seed):
        a, b = sentiment_rows(n, seed), sentiment_rows(n, seed + 100)
        return [(x[0], y[0], int(x[1] == y[1])) for x, y in zip(a, b)]
    return (write_csv(folder / "pairs_train.csv", ["text_a", "text_b", "label"], rows(train_rows, 3)),
            write_csv(folder / "pairs_test.csv", ["text_a", "text_b", "label"], rows(test_rows, 4)))


def score_files(folder: Path, train_rows: int = 160, test_rows: int = 40) -> tuple[Path, Path]:
    """Sentence pairs with a similarity score from 0 to 5: high when both halves share their sentiment."""
    def rows(n, seed):
        rng = random.Random(seed)
        a, b = sentiment_rows(n, seed), sentiment_rows(n, seed + 100)
        return [(x[0], y[0], round((4.5 if x[1] == y[1] else 0.5) + rng.uniform(-0.5, 0.5), 3))
                for x, y in zip(a, b)]
    return (write_csv(folder / "score_train.csv", ["text_a", "text_b", "score"], rows(train_rows, 5)),
            write_csv(folder / "score_test.csv", ["text_a", "text_b", "score"], rows(test_rows, 6)))


PEOPLE = ["Alice Smith", "Bob Jones", "Carol White", "Dan Brown"]
PLACES = ["Paris", "New York", "Berlin", "Lagos"]


def ner_sentences(n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """Sentences tagged in BIO with person and location entities."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        person, place = rng.choice(PEOPLE).split(), rng.choice(PLACES).split()
        tokens = [*person, "flew", "to", *place, "on", "monday"]
        tags = (["B-person"] + ["I-person"] * (len(person) - 1) + ["O", "O"]
                + ["B-location"] + ["I-location"] * (len(place) - 1) + ["O", "O"])
        out.append((tokens, tags))
    return out


def ner_files(folder: Path, train_rows: int = 120, test_rows: int = 30) -> tuple[Path, Path]:
    """Train as JSONL, test as CoNLL: both upload formats in one dataset."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    train, test = folder / "ner_train.jsonl", folder / "ner_test.conll"
    train.write_text("".join(json.dumps({"tokens": t, "tags": g}) + "\n" for t, g in ner_sentences(train_rows, 7)))
    test.write_text("\n".join("".join(f"{tok}\t{tag}\n" for tok, tag in zip(t, g)) for t, g in ner_sentences(test_rows, 8)))
    return train, test


ASPECTS = {"acting": ["the actors", "the cast"], "music": ["the songs", "the score"],
           "plot": ["the story", "the twists"]}


def aspect_rows(n: int, seed: int) -> list[tuple[str, list[str]]]:
    """Multi-label rows: each text mentions a random set of aspects (possibly none), which are its labels."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        chosen = [a for a in ASPECTS if rng.random() < 0.45]
        parts = [f"{rng.choice(ASPECTS[a])} {rng.choice(['were', 'felt'])} {rng.choice(POSITIVE + NEGATIVE)}"
                 for a in chosen]
        rows.append(((" and ".join(parts) or f"we went on {rng.choice(['monday', 'friday'])}"), chosen))
    return rows


def multilabel_files(folder: Path, form: str, train_rows: int = 160, test_rows: int = 40) -> tuple[Path, Path]:
    """`jsonl`: a `labels` list per row; `csv`: `labels` joined by '|'; `flags`: one 0/1 `label_<name>` column each."""
    import json

    folder.mkdir(parents=True, exist_ok=True)

    def write(name, rows):
        if form == "jsonl":
            path = folder / f"{name}.jsonl"
            path.write_text("".join(json.dumps({"text": t, "labels": labels}) + "\n" for t, labels in rows))
            return path
        if form == "csv":
            return write_csv(folder / f"{name}.csv", ["text", "labels"], [(t, "|".join(ls)) for t, ls in rows])
        return write_csv(folder / f"{name}.csv", ["text", *(f"label_{a}" for a in ASPECTS)],
                         [(t, *(int(a in ls) for a in ASPECTS)) for t, ls in rows])

    return write("ml_train", aspect_rows(train_rows, 9)), write("ml_test", aspect_rows(test_rows, 10))


# One small upload per task (multi_label: 0/1 label columns): (format, train file, test file).
UPLOADS = {
    "sequence_classification": ("csv", "text,label\nthe film was great,pos\nthe plot was dull,neg\nsuperb acting,pos\n",
                                "text,label\na brilliant film,pos\na boring plot,neg\n"),
    "regression": ("csv", "text_a,text_b,score\na cat,a kitten,4.5\na car,a tree,0.5\n",
                   "text_a,text_b,score\na dog,a puppy,4.0\n"),
    "multi_label": ("csv", "text,label_plot,label_music\ngreat plot,1,0\ngood songs,0,1\nboth,1,1\n",
                    "text,label_plot,label_music\nthe plot,1,0\n"),
    "token_classification": ("jsonl", '{"tokens": ["Ada", "codes"], "tags": ["B-PER", "O"]}\n'
                                      '{"tokens": ["Bob", "Lee", "runs"], "tags": ["B-PER", "I-PER", "O"]}\n',
                             '{"tokens": ["Ada"], "tags": ["B-PER"]}\n'),
}


def dict_cache_key(dataset: dict, model_dir: Path, max_seq_length: int) -> str:
    """train_jobs.data.cache.cache_key as it was when the dataset spec was a dict, word for word: what a typed spec's
    key must equal for the caches already on disk to be found."""
    from train_jobs.data.cache import CACHE_VERSION
    from train_jobs.models.lookup import tokenizer_fingerprint

    parts = {
        "version": CACHE_VERSION,
        "files": [dataset[s]["sha256"] for s in ("train", "test", "validation") if s in dataset],
        "tokenizer": tokenizer_fingerprint(model_dir),
        "max_seq_length": max_seq_length,
        "text_columns": dataset["train"]["text_columns"],
        "labels": dataset["labels"],
        "task_type": dataset.get("task_type", "sequence_classification"),
        "target": dataset.get("target"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def uploaded_summary(folder: Path, kind: str, validation: bool = False) -> dict:
    """The summary the session keeps for these files, as a plain dict (a JSON round trip, as the record holds it)."""
    from train_jobs.data.dataset import inspect_upload

    ext, train, test = UPLOADS[kind]
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, text in (("train", train), ("test", test), *((("validation", test),) if validation else ())):
        (folder / f"{split}.{ext}").write_text(text)
        files[split] = (folder / f"{split}.{ext}", f"{split}.{ext}")
    task = "sequence_classification" if kind == "multi_label" else kind
    return json.loads(json.dumps({**inspect_upload(files, task), "dir": str(folder)}))
