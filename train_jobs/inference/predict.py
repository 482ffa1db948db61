"""Predictions from a trained model directory: tokenise, forward, and map the logits to each task's result.

Plain Python (no Ray), so it is unit-tested in process; the Serve deployment (cluster/model_server.py) wraps
it. The forward pass is the torch model, or onnxruntime when the directory is an ONNX export (backends.py).
The mapping is the one evaluation uses (training/evaluation.py): softmax and argmax for single-label, a
sigmoid per label against the run's threshold for multi-label, the one output for regression, and each
word's first sub-token for token classification.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
from scipy.special import expit, softmax

from train_jobs.files import read_json
from train_jobs.inference.backends import load_forward
from train_jobs.training.metrics import predicted_classes

# The body field each task takes: words for token classification; a text or a text pair otherwise.
KINDS = ("texts", "pairs", "tokens")
# Inputs per forward pass, after sorting a call's (or a Serve batch's) inputs by length so each pass pads little.
# On one CPU thread, 32 BANKING77 texts as they come cost 8.5 ms each; sorted, in passes of 16, 4.4 ms (padding
# is compute on a CPU); a GPU wants larger passes.
CPU_CHUNK, GPU_CHUNK = 16, 64


def input_size(kind: str, item) -> int:
    """Characters: a cheap stand-in for the tokens an input will have."""
    return len(item) if kind == "texts" else sum(len(part) + 1 for part in item)


def task_of(config) -> str:
    """single_label | multi_label | regression | token_classification, from a model config."""
    if any(a.endswith("ForTokenClassification") for a in config.architectures or []):
        return "token_classification"
    return {"regression": "regression", "multi_label_classification": "multi_label"}.get(
        config.problem_type, "single_label")


def model_task(model_dir: Path) -> str:
    from transformers import AutoConfig

    return task_of(AutoConfig.from_pretrained(model_dir))


def probabilities(task: str, logits: np.ndarray) -> np.ndarray:
    """What a task's results are read from: a sigmoid per label (multi-label), the raw output (regression), or
    the softmax over the labels (single-label, and each sub-token in token classification)."""
    if task == "multi_label":
        return expit(logits)
    return logits if task == "regression" else softmax(logits, axis=-1)


class Predictor:
    """A model loaded once; `predict(kind, items)` answers one result per item."""

    def __init__(self, model_dir: str | Path, device: Optional[str] = None, threads: Optional[int] = None):
        from transformers import AutoConfig, AutoTokenizer

        model_dir = Path(model_dir)
        trained = read_json(model_dir / "training_config.json") or {}
        config = AutoConfig.from_pretrained(model_dir)
        self.task = task_of(config)
        self.forward = load_forward(model_dir, self.task == "token_classification", device, threads)
        self.device, self.runtime = self.forward.device, self.forward.runtime
        self.chunk = CPU_CHUNK if str(self.device) == "cpu" else GPU_CHUNK
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.labels = [config.id2label[i] for i in range(config.num_labels)]
        self.threshold = float(trained.get("multi_label_threshold", 0.5))
        self.max_length = int(trained.get("max_seq_length") or 512)
        pairs = len(trained.get("text_columns") or ["text"]) == 2
        self.kind = "tokens" if self.task == "token_classification" else "pairs" if pairs else "texts"

    def describe(self) -> dict[str, Any]:
        return {"task": self.task, "input": self.kind, "labels": self.labels if self.task != "regression" else None,
                "multi_label_threshold": self.threshold if self.task == "multi_label" else None,
                "runtime": self.runtime}

    def encode(self, kind: str, items: list):
        options = {"truncation": True, "max_length": self.max_length, "padding": True, "return_tensors": "np"}
        if kind == "tokens":
            return self.tokenizer([list(words) for words in items], is_split_into_words=True, **options)
        if kind == "pairs":
            return self.tokenizer([a for a, _ in items], [b for _, b in items], **options)
        return self.tokenizer(list(items), **options)

    def outputs(self, kind: str, items: list) -> list[np.ndarray]:
        """Per item, what its result is read from: the probabilities per label (the score, for regression);
        for token classification, a row per word (its first sub-token's), NaN for a word cut by max_seq_length.
        Inputs of similar length share a forward pass; the answers come back in the order given."""
        order = sorted(range(len(items)), key=lambda i: input_size(kind, items[i]))
        out: list = [None] * len(items)
        for start in range(0, len(order), self.chunk):
            chosen = order[start:start + self.chunk]
            for i, result in zip(chosen, self._pass(kind, [items[i] for i in chosen])):
                out[i] = result
        return out

    def _pass(self, kind: str, items: list) -> list[np.ndarray]:
        encoded = self.encode(kind, items)
        probs = probabilities(self.task, self.forward(dict(encoded)))
        if self.task != "token_classification":
            return list(probs)
        out = []
        for i, words in enumerate(items):
            rows = np.full((len(words), len(self.labels)), np.nan, dtype=np.float32)
            previous = None
            for position, word in enumerate(encoded.word_ids(i)):
                if word is not None and word != previous:
                    rows[word] = probs[i, position]
                previous = word
            out.append(rows)
        return out

    def predict(self, kind: str, items: list) -> list[dict[str, Any]]:
        outputs = self.outputs(kind, items)
        if self.task == "token_classification":
            return [{"tokens": list(words), "tags": [None if np.isnan(row[0]) else self.labels[int(row.argmax())]
                                                     for row in rows]} for words, rows in zip(items, outputs)]
        if self.task == "regression":
            return [{"score": float(row[0])} for row in outputs]
        multi = self.task == "multi_label"
        probs = np.stack(outputs)
        chosen = predicted_classes(probs, self.threshold if multi else None)
        out = []
        for row, pick in zip(probs, chosen):
            p = {label: round(float(q), 6) for label, q in zip(self.labels, row)}
            if multi:
                out.append({"labels": [self.labels[i] for i in np.flatnonzero(pick)],
                            "probabilities": {label: q for label, q in p.items() if q >= self.threshold}})
            else:
                out.append({"label": self.labels[int(pick)], "probabilities": p})
        return out
