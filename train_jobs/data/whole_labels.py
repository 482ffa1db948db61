"""A dataset by URI's labels counted over its whole source at preprocessing: its upload checked a sample, so the
checks an upload makes on whole files (a held-out label train lacks, fewer than two labels) are made here."""

from __future__ import annotations

from collections import Counter

from train_jobs.data.labels import Target, check_label_count, label_problem, ordered_labels, row_labels
from train_jobs.data.ray_reads import read_source
from train_jobs.errors import BadDataset
from train_jobs.specs import DatasetSpec, StoreOptions


def whole_labels(dataset: DatasetSpec, target: Target, stores: StoreOptions) -> list[str]:
    """Every label of train in order, each held-out label among them; BadDataset naming both URIs otherwise."""
    splits = dataset.splits
    where = {split: f"{info.source['field']} {info.source['uri']}" for split, info in splits.items()}
    counts: dict[str, Counter] = {}
    for split, info in splits.items():
        counts[split] = Counter()
        for batch in read_source(info, list(target.columns), stores).iter_batches(batch_format="pyarrow"):
            for row in batch.to_pylist():
                labels = row_labels(row, target)
                if labels is None:
                    raise BadDataset(f"{where[split]}: column {': '.join(label_problem(row, target))}")
                counts[split].update(labels)
    for split in ("test", "validation"):
        unseen = [label for label in counts.get(split, ()) if label not in counts["train"]]
        if unseen:
            raise BadDataset(f"{where[split]}: label {unseen[0]!r} does not occur in {where['train']}"
                             + (f" ({len(unseen)} unseen labels: {unseen[:10]})" if len(unseen) > 1 else ""))
    labels = target.flag_labels() if target.kind == "flags" else ordered_labels(counts["train"])
    check_label_count(labels, name="train_uri")
    return labels
