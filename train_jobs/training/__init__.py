"""Fine-tuning on Ray Train: launch, worker loop, batching, precision, progress, evaluation, metrics."""
