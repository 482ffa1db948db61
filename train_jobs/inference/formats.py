"""The formats a trained model is downloaded or served in, and the files an export directory holds.

No heavy imports here: the cluster layer and the session record read these names.
"""

from __future__ import annotations

from typing import Literal

# torch: the Hugging Face model directory as trained; onnx: model.onnx in fp32; onnx-int8: its weights
# quantised to int8 with no calibration data (dynamic, or weight-only when dynamic misses the bar: onnx_files.py).
ModelFormat = Literal["torch", "onnx", "onnx-int8"]
EXPORT_FORMATS: tuple[str, ...] = ("onnx", "onnx-int8")
ONNX_FILE = "model.onnx"
CHECK_FILE = "export_check.json"  # the build-time check's figures (train_jobs/inference/agreement.py)
