"""Training batches from a Ray Data shard: shuffled, and grouped by length so padding costs little.

Rows arrive through Ray's local shuffle buffer in windows of `GROUP` batches.
Each window is sorted by length, cut into batches, and the batches are yielded
in a seeded random order: every batch holds rows of similar length (little
padding), drawn at random from a shuffled window, and batch order stays random.
This is what Hugging Face's `group_by_length` does with its LengthGroupedSampler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

GROUP = 50  # batches per sorted window, as in transformers' LengthGroupedSampler


def length_grouped(windows: Iterator[dict[str, np.ndarray]], batch_size: int, seed: int) -> Iterator[dict]:
    """Re-cut each window into batches of similar length, in random order."""
    rng = np.random.default_rng(seed)
    for window in windows:
        lengths = np.fromiter((len(s) for s in window["input_ids"]), dtype=np.int64, count=len(window["input_ids"]))
        order = np.argsort(lengths, kind="stable")
        batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
        for b in rng.permutation(len(batches)):
            yield {k: v[batches[b]] for k, v in window.items()}


def epoch_batches(shard, *, batch_size: int, seed: int, shuffle_buffer: int, group_by_length: bool,
                  collate: Callable) -> Iterator[dict]:
    """One epoch of collated batches; the next window is prefetched while the current one trains."""
    if not group_by_length:
        yield from shard.iter_torch_batches(batch_size=batch_size, collate_fn=collate,
                                            local_shuffle_buffer_size=shuffle_buffer, local_shuffle_seed=seed)
        return
    windows = shard.iter_batches(batch_size=batch_size * GROUP, batch_format="numpy", prefetch_batches=1,
                                 local_shuffle_buffer_size=shuffle_buffer, local_shuffle_seed=seed)
    for batch in length_grouped(windows, batch_size, seed):
        yield collate(batch)
