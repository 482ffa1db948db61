"""Live progress from rank 0, off the hot path.

Pushed every N steps to the sink the run was given (the session, in the cluster
layer); the reply says whether a stop was requested.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Optional

from train_jobs.specs import TrainingSink


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)


class ProgressReporter:
    def __init__(self, sink: TrainingSink, total_steps: int, global_batch: int, device: str = "cpu", workers: int = 1,
                 precision: str = "fp32"):
        self.sink = sink
        self.device, self.workers, self.precision = device, workers, precision
        self.total_steps = total_steps
        self.global_batch = global_batch
        self.started = time.monotonic()
        self._window_start = self.started
        self._window_steps = 0
        self._window_loss = 0.0
        self._window_tokens = 0
        self.restarts: dict = {}

    def resumed(self, restarts: int, step: int) -> None:
        """This worker group resumed a run from a checkpoint: shown with every push from now on."""
        self.restarts = {"restarts": restarts, "resumed_from_step": step, "resumed_at": time.time()}

    def add_step(self, loss, tokens: int = 0) -> None:
        """`loss` may be a tensor: it is summed where it lives and read once per push.

        `tokens`: positions computed this step on this worker, padding included (what costs FLOPs).
        """
        self._window_steps += 1
        self._window_loss = self._window_loss + loss
        self._window_tokens += tokens

    def push(self, *, epoch: int, step: int, lr: float, phase: str = "training",
             evaluation: Optional[dict] = None) -> bool:
        """Send progress; returns True when the session asked training to stop."""
        now = time.monotonic()
        window = max(now - self._window_start, 1e-9)
        elapsed = now - self.started
        info = {
            "phase": phase,
            "epoch": epoch,
            "step": step,
            "total_steps": self.total_steps,
            "progress": round(step / self.total_steps, 4) if self.total_steps else 0.0,
            "loss": float(self._window_loss) / self._window_steps if self._window_steps else None,
            "learning_rate": lr,
            "samples_per_s": round(self._window_steps * self.global_batch / window, 2),
            "tokens_per_s": round(self._window_tokens * self.workers / window, 1),
            "elapsed_s": round(elapsed, 3),
            "eta_s": round(elapsed / step * (self.total_steps - step), 1) if step else None,
            "device": self.device,
            "workers": self.workers,
            "precision": self.precision,
            "peak_rss_mb": peak_rss_mb(),
            **self.restarts,
        }
        if self._window_steps:
            self._window_start, self._window_steps, self._window_loss, self._window_tokens = now, 0, 0.0, 0
        return self.sink(info, evaluation)
