"""Choosing the model to keep: the best evaluation on validation data, and when to stop trying."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

SCORE = "selection_score"  # what Ray Train's CheckpointConfig orders checkpoints by: higher is better
BEST = "best_so_far"  # in every report with validation data: the best score yet (what a Ray Tune search compares)
NONE_YET = -1e30


@dataclass
class Selection:
    metric: str
    minimise: bool
    patience: Optional[int]  # evaluations without improvement before stopping; None: never
    best: Optional[dict] = None  # the best evaluation's history entry
    since_best: int = 0

    def update(self, entry: dict) -> bool:
        """Record an evaluation; True when it is the best so far (the first valid one always is)."""
        value = entry.get(self.metric)
        if value is None or math.isnan(value):
            self.since_best += 1
            return False
        best = None if self.best is None else self.best[self.metric]
        if best is None or (value < best if self.minimise else value > best):
            self.best, self.since_best = entry, 0
            return True
        self.since_best += 1
        return False

    @property
    def exhausted(self) -> bool:
        return self.patience is not None and self.since_best >= self.patience

    def score(self) -> float:
        """The best value, signed so that higher is better; NONE_YET before any valid evaluation."""
        if self.best is None:
            return NONE_YET
        value = self.best[self.metric]
        return -value if self.minimise else value

    def describe(self) -> dict:
        """For training_config.json and the results: which evaluation was kept, and why."""
        direction = "lowest" if self.minimise else "highest"
        return {"metric": self.metric, "value": self.best[self.metric], "epoch": self.best["epoch"],
                "step": self.best["step"], "split": self.best.get("split"),
                "reason": f"{direction} {self.best.get('split', 'validation')} {self.metric} of the run's evaluations"}
