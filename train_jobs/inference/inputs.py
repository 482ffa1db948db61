"""Checks on a predict call's inputs that depend on the deployment (its task and limits), not on the body's
shape alone: each refusal is a 422 naming the position of the bad item, as FastAPI's own validation does."""

from __future__ import annotations

from train_jobs.errors import InvalidParameters


def _refuse(loc: list, message: str) -> InvalidParameters:
    return InvalidParameters(message, detail=[{"loc": ["body", *loc], "msg": message, "type": "value_error"}])


def check_inputs(kind: str, items: list, expected: str, max_inputs: int, max_chars: int) -> None:
    """`kind` is the body field given (texts, pairs or tokens); `expected` the one the deployed model takes."""
    if kind != expected:
        raise _refuse([kind], f"this model takes `{expected}`, not `{kind}`")
    if not items:
        raise _refuse([kind], "give at least one input")
    if len(items) > max_inputs:
        raise _refuse([kind], f"{len(items)} inputs in one call; at most {max_inputs} (max_inputs_per_call)")
    for i, item in enumerate(items):
        parts = [item] if kind == "texts" else list(item)
        if kind == "tokens" and not parts:
            raise _refuse([kind, i], "a sentence needs at least one word")
        for j, part in enumerate(parts):
            if not isinstance(part, str):
                raise _refuse([kind, i] if kind == "texts" else [kind, i, j], "not a string")
        size = sum(len(p) for p in parts) + (len(parts) - 1 if kind == "tokens" else 0)
        if size > max_chars:
            raise _refuse([kind, i], f"{size} characters; at most {max_chars} per input (max_text_chars)")
