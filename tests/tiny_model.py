"""A tiny random BERT (hidden size 32) with the bundled model's tokenizer, built locally."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer, BertConfig, BertModel

from train_jobs.models.lookup import bundled_model_dir


def build_tiny_bert(dest: Path, seed: int = 0) -> Path:
    import torch

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(bundled_model_dir())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest
