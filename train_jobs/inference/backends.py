"""The forward pass of a Predictor: the trained torch model, or an exported model.onnx on onnxruntime.

Both take the tokenizer's numpy encoding and answer float32 logits, so the mapping of logits to each task's
result (predict.py) is one copy whichever runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from train_jobs.files import read_json
from train_jobs.inference.formats import CHECK_FILE, ONNX_FILE


class TorchForward:
    runtime = "torch"

    def __init__(self, model_dir: Path, token_task: bool, device: Optional[str], threads: Optional[int]):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

        if threads:
            torch.set_num_threads(threads)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        loader = AutoModelForTokenClassification if token_task else AutoModelForSequenceClassification
        self.model = loader.from_pretrained(model_dir).eval().to(self.device)

    def __call__(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():  # no autograd bookkeeping at all (no_grad still tracks versions)
            inputs = {k: torch.from_numpy(np.asarray(v)).to(self.device) for k, v in encoded.items()}
            return self.model(**inputs).logits.float().cpu().numpy()


class OnnxForward:
    """model.onnx on onnxruntime's CPU provider; the graph's inputs are fed by name from the encoding."""

    device = "cpu"

    def __init__(self, model_dir: Path, threads: Optional[int]):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: onnxruntime's default (every core)
        options.inter_op_num_threads = 1  # one graph at a time: the parallelism is inside each operator
        self.session = ort.InferenceSession(str(model_dir / ONNX_FILE), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.runtime = (read_json(model_dir / CHECK_FILE) or {}).get("format", "onnx")

    def __call__(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: np.asarray(encoded[name], dtype=np.int64) for name in self.inputs}
        return self.session.run(None, feed)[0].astype(np.float32, copy=False)


def load_forward(model_dir: Path, token_task: bool, device: Optional[str] = None, threads: Optional[int] = None):
    """ONNX when the directory is an export (it holds model.onnx), else torch."""
    if (model_dir / ONNX_FILE).is_file():
        return OnnxForward(model_dir, threads)
    return TorchForward(model_dir, token_task, device, threads)
