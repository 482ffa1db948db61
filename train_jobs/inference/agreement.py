"""How closely an exported model's predictions follow the trained torch model's, and the bars they must meet.

Both models answer the same inputs through the same Predictor code, so only the forward pass differs.
Figures per task:
- single-label and multi-label: `agreement`, the share of inputs given the same label (the same label set,
  for multi-label), and `max_probability_difference` over every label's probability;
- token classification: `agreement` over words (tags), and `max_probability_difference` over each word's tags;
- regression: `max_score_difference` and `pearson`, the correlation of the two models' scores.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from train_jobs.errors import WrongState

# fp32 computes the same function as torch, so only floating-point noise may differ: a probability (or a
# score) off by more than 1e-3 means a broken export. int8 rounds every weight, so its probabilities drift by
# design; what must hold is the answer: the same label for 99% of inputs (tags of words), or for regression
# scores that correlate at 0.99.
BARS: dict[str, dict[str, tuple[str, float]]] = {
    "onnx": {"probability": ("max_probability_difference", 1e-3), "score": ("max_score_difference", 1e-3)},
    "onnx-int8": {"probability": ("agreement", 0.99), "score": ("pearson", 0.99)},
}


def _answers(task: str, outputs: list[np.ndarray], threshold: float) -> np.ndarray:
    """The answer per input (per word, for token classification): what agreement counts."""
    if task == "token_classification":
        rows = np.concatenate(outputs)
        return rows[~np.isnan(rows[:, 0])].argmax(axis=1)
    probs = np.stack(outputs)
    return (probs >= threshold) if task == "multi_label" else probs.argmax(axis=1)


def _pearson(a: np.ndarray, b: np.ndarray) -> Optional[float]:
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return None  # undefined: constant scores
    return float(np.corrcoef(a, b)[0, 1])


def compare(reference, candidate, kind: str, items: list) -> dict:
    """The figures of `candidate` (the export's Predictor) against `reference` (the torch one) on `items`."""
    ours, theirs = reference.outputs(kind, items), candidate.outputs(kind, items)  # each in length-sorted passes
    task = reference.task
    figures: dict = {"rows": len(items)}
    if task == "regression":
        a, b = np.concatenate(ours), np.concatenate(theirs)
        figures.update(max_score_difference=float(np.abs(a - b).max()), pearson=_pearson(a, b))
        return figures
    a, b = _answers(task, ours, reference.threshold), _answers(task, theirs, reference.threshold)
    same = a == b if a.ndim == 1 else (a == b).all(axis=1)
    difference = np.nanmax(np.abs(np.concatenate(ours) - np.concatenate(theirs)))
    figures.update(agreement=round(float(same.mean()), 6), max_probability_difference=float(difference))
    if task == "token_classification":
        figures["words"] = int(len(a))
    return figures


def bar_of(fmt: str, task: str, bars: Optional[dict] = None) -> tuple[str, float]:
    """(figure, bar) that `fmt` must meet for `task`: a difference at most the bar, an agreement at least."""
    return (bars or BARS)[fmt]["score" if task == "regression" else "probability"]


def passes(figure: str, value: Optional[float], bar: float) -> bool:
    if value is None or np.isnan(value):
        return False
    return value <= bar if figure.startswith("max_") else value >= bar


def refusal(fmt: str, figure: str, values: list[Optional[float]], bar: float, split: str) -> WrongState:
    """The error a failed check raises: which figure missed which bar (once per int8 kind tried), and what to
    use instead. A 409: the same model is refused again until it is trained anew."""
    side = "at most" if figure.startswith("max_") else "at least"
    shown = " then ".join("undefined (constant scores)" if v is None else f"{v:.6g}" for v in values)
    other = "download format=onnx (fp32) or torch, or deploy with runtime onnx" if fmt == "onnx-int8" else \
        "download the torch model (format=torch) and report this model's architecture"
    return WrongState(f"the {fmt} export does not agree with the trained model on the {split} rows: {figure} is "
                      f"{shown}, the bar is {side} {bar:g}; nothing was kept", hint=other)
