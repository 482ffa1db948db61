"""Predictions from a trained model directory: tokenise, forward, and map the logits to each task's result.

Plain torch and transformers (no Ray), so it is unit-tested in process; the Serve deployment
(cluster/model_server.py) wraps it. The mapping is the one evaluation uses (training/evaluation.py):
softmax and argmax for single-label, a sigmoid per label against the run's threshold for multi-label,
the one output for regression, and each word's first sub-token for token classification.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from train_jobs.files import read_json
from train_jobs.training.metrics import predicted_classes

# The body field each task takes: words for token classification; a text or a text pair otherwise.
KINDS = ("texts", "pairs", "tokens")


def model_task(model_dir: Path) -> str:
    """single_label | multi_label | regression | token_classification, from the saved config."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    if any(a.endswith("ForTokenClassification") for a in config.architectures or []):
        return "token_classification"
    return {"regression": "regression", "multi_label_classification": "multi_label"}.get(
        config.problem_type, "single_label")


class Predictor:
    """A model loaded once; `predict(kind, items)` answers one result per item."""

    def __init__(self, model_dir: str | Path, device: Optional[str] = None):
        from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

        model_dir = Path(model_dir)
        trained = read_json(model_dir / "training_config.json") or {}
        self.task = model_task(model_dir)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        loader = AutoModelForTokenClassification if self.task == "token_classification" \
            else AutoModelForSequenceClassification
        self.model = loader.from_pretrained(model_dir).eval().to(self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        self.threshold = float(trained.get("multi_label_threshold", 0.5))
        self.max_length = int(trained.get("max_seq_length") or 512)
        pairs = len(trained.get("text_columns") or ["text"]) == 2
        self.kind = "tokens" if self.task == "token_classification" else "pairs" if pairs else "texts"

    def describe(self) -> dict[str, Any]:
        return {"task": self.task, "input": self.kind, "labels": self.labels if self.task != "regression" else None,
                "multi_label_threshold": self.threshold if self.task == "multi_label" else None}

    def _encode(self, kind: str, items: list):
        options = {"truncation": True, "max_length": self.max_length, "padding": True, "return_tensors": "pt"}
        if kind == "tokens":
            return self.tokenizer([list(words) for words in items], is_split_into_words=True, **options)
        if kind == "pairs":
            return self.tokenizer([a for a, _ in items], [b for _, b in items], **options)
        return self.tokenizer(list(items), **options)

    @torch.no_grad()
    def predict(self, kind: str, items: list) -> list[dict[str, Any]]:
        encoded = self._encode(kind, items)
        logits = self.model(**{k: v.to(self.device) for k, v in encoded.items()}).logits.float().cpu()
        if self.task == "token_classification":
            return self._tags(encoded, logits.argmax(-1).numpy(), items)
        if self.task == "regression":
            return [{"score": float(s)} for s in logits[:, 0].numpy()]
        multi = self.task == "multi_label"
        probs = (torch.sigmoid(logits) if multi else torch.softmax(logits, dim=-1)).numpy()
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

    def _tags(self, encoded, preds: np.ndarray, items: list) -> list[dict[str, Any]]:
        """Each word's tag is its first sub-token's, as in training; words cut by max_seq_length get None."""
        out = []
        for i, words in enumerate(items):
            tags: list[Optional[str]] = [None] * len(words)
            previous = None
            for position, word in enumerate(encoded.word_ids(i)):
                if word is not None and word != previous:
                    tags[word] = self.labels[int(preds[i][position])]
                previous = word
            out.append({"tokens": list(words), "tags": tags})
        return out
