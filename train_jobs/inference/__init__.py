"""Inference on a trained model directory: the per-task results the model deployment serves."""
