"""Writing model.onnx: the trained torch model's graph (fp32), and its int8 versions.

The exporter is torch.onnx's dynamo exporter (torch.export, then onnxscript), with batch and sequence dynamic.
The TorchScript exporter (`dynamo=False`) is no fallback: under transformers 5 its trace of BERT's attention
mask is wrong (logits off by ~1e-2 against torch, where the dynamo graph matches to ~1e-7). Optimum's exporter
is not used: it pins transformers below 5.

int8 comes in two kinds, tried in this order by the export (export.py), each checked against the bar:
- dynamic: quantize_dynamic, weights QInt8 per output channel, activations quantised per call (uint8, one
  range per tensor); the fastest on CPU (about 2x fp32 for a MiniLM), but a tensor-wide activation range is
  coarse where hidden states have outliers: fine-tuned MiniLMs kept 96-97% of labels (SST-2, banking77);
- weight-only: MatMulNBits with 8-bit weights in blocks of 32, activations quantised per block at compute
  (accuracy level 4); 99.6% of labels on the same models, at about fp32's speed, two thirds of its size.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

EXAMPLES = {"texts": ["an example input", "a second, longer example input"],
            "pairs": [["an example", "a second input"], ["a longer first input", "and its pair"]],
            "tokens": [["an", "example"], ["a", "second", ",", "longer", "example"]]}
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class Logits(torch.nn.Module):
    """The model with named token inputs and the logits as its one output (no loss, no hidden states)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits


def write_onnx(reference, dest: Path) -> int:
    """The torch Predictor's model as an ONNX graph at `dest`, its inputs what the tokenizer gives (token_type_ids
    only where it makes them). Returns the graph's opset."""
    encoded = reference.encode(reference.kind, EXAMPLES[reference.kind])  # two rows: batch stays dynamic
    inputs = {name: torch.from_numpy(encoded[name]) for name in INPUTS if name in encoded}
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    with warnings.catch_warnings():  # the exporter's notes on pytree internals and on the axes' shared names
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec")
        warnings.filterwarnings("ignore", category=UserWarning, message="# The axis name")
        program = torch.onnx.export(Logits(reference.forward.model.cpu()).eval(), (), kwargs=inputs, dynamo=True,
                                    input_names=list(inputs), output_names=["logits"], verbose=False,
                                    dynamic_shapes={name: {0: batch, 1: sequence} for name in inputs})
    program.save(str(dest))
    return int(program.model.opset_imports.get("", 0))


def quantise_dynamic(fp32: Path, dest: Path) -> dict:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(dest), weight_type=QuantType.QInt8, per_channel=True)
    return {"method": "dynamic", "weights": "QInt8 per output channel", "activations": "uint8 per tensor, per call"}


def quantise_weights(fp32: Path, dest: Path) -> dict:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)  # a line a node
    quantiser = MatMulNBitsQuantizer(onnx.load(str(fp32)), bits=8, block_size=32, is_symmetric=True, accuracy_level=4)
    quantiser.process()
    quantiser.model.save_model_to_file(str(dest), use_external_data_format=False)
    return {"method": "weight-only", "weights": "int8, symmetric blocks of 32 (MatMulNBits)",
            "activations": "int8 per block at compute (accuracy level 4)"}


QUANTISERS = {"dynamic": quantise_dynamic, "weight-only": quantise_weights}
